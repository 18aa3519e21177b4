// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IPoolRegistry} from "./interfaces/IPoolRegistry.sol";
import {IDeviceRegistry} from "./interfaces/IDeviceRegistry.sol";
import {IDeliveryDispute} from "./interfaces/IDeliveryDispute.sol";
import {IFlexMarket} from "./interfaces/IFlexMarket.sol";
import {SettlementMath} from "./libraries/SettlementMath.sol";
import {ReportLeaves} from "./libraries/ReportLeaves.sol";

/// @title PoolRegistry
/// @notice Pools of devices that bid as one (aggregators, energy communities), and the
///         pull payments of their members.
/// @dev Gas of a pool bid, its clearing, report and settlement does not depend on how many
///      devices stand behind it: membership is kept here, per device, when devices join and
///      leave, and the bid carries no device list. Which devices back a bid is a rule on
///      chain state (`Membership`: joined at or before the bid, not asked to leave before
///      it), read by the oracles from the membership events and by anyone from
///      `membershipOf`. A member's payout is claimed with its device record from the final
///      report (`SettlementMath.poolSplit`, `memberShare`); the dust (under one base unit per
///      paid device) stays in this contract.
contract PoolRegistry is IPoolRegistry, EIP712, Nonces, ReentrancyGuard {
    using SafeERC20 for IERC20;

    uint16 public constant MAX_COMMISSION_BPS = 5_000;
    /// @notice A commission change applies this long after it is set, so members can leave first.
    uint256 public constant COMMISSION_NOTICE = 7 days;
    /// @notice Shortest notice of a leave; a member also stays until its pool's bids' windows end.
    uint256 public constant LEAVE_NOTICE = 1 days;
    /// @notice How long members may claim after settlement; then what is left of a bid's
    ///         pot (unclaimed shares and the split's dust) can be swept to its pool's
    ///         operator, who passes it on by the pool's own rules.
    uint256 public constant CLAIM_PERIOD = 365 days;
    /// @notice Devices per enrolment (one owner's consent).
    uint256 public constant MAX_DEVICES_PER_CONSENT = 256;
    bytes32 public constant POOL_CONSENT_TYPEHASH =
        keccak256("PoolConsent(uint256 poolId,address owner,uint256[] deviceIds,uint256 nonce,uint256 deadline)");

    IDeviceRegistry public immutable registry;
    IFlexMarket public market;
    address private immutable _deployer;

    mapping(uint256 poolId => Pool) private _pools;
    uint256 public poolCount;
    // slither-disable-next-line uninitialized-state -- written through a storage pointer in _changeCapacity and onPoolBid
    mapping(uint256 poolId => mapping(bytes32 zone => ZoneState)) private _zones;
    mapping(uint256 deviceId => Membership) private _memberships;
    /// @dev Ended memberships, oldest first, for judging reports of earlier requests.
    mapping(uint256 deviceId => Membership[]) private _pastMemberships;
    // slither-disable-next-line uninitialized-state -- written through a storage pointer in onPoolBidSettled
    mapping(uint256 requestId => RequestPayouts) private _requestPayouts;
    mapping(uint256 requestId => mapping(uint256 bidIndex => PoolPayout)) private _payouts;
    /// @dev Bit `deviceId % 256` of word `deviceId / 256`: the device's share was claimed.
    // slither-disable-next-line uninitialized-state -- written through a storage pointer in _claimOne
    mapping(uint256 requestId => mapping(uint256 word => uint256 bits)) private _claimedBits;
    mapping(address token => mapping(address account => uint256)) private _withdrawable;

    constructor(IDeviceRegistry registry_) EIP712("GridFlex PoolRegistry", "1") {
        registry = registry_;
        _deployer = msg.sender;
    }

    /// @notice Wires FlexMarket, once, by the deploying account.
    function setMarket(IFlexMarket market_) external {
        if (msg.sender != _deployer || address(market) != address(0) || address(market_) == address(0)) {
            revert MarketWiring(msg.sender);
        }
        market = market_;
        emit MarketSet(address(market_));
    }

    // ─── Operators ────────────────────────────────────────────────────────────────────────

    function createPool(uint16 commissionBps, string calldata name) external returns (uint256 poolId) {
        _checkCommission(commissionBps);
        poolId = ++poolCount;
        _pools[poolId] =
            Pool({operator: msg.sender, commissionBps: commissionBps, pendingCommissionBps: 0, pendingEffectiveAt: 0});
        emit PoolCreated(poolId, msg.sender, commissionBps, name);
    }

    /// @notice Schedules a new commission, in force `COMMISSION_NOTICE` from now (a change
    ///         still pending is replaced, and its notice starts again).
    function setCommission(uint256 poolId, uint16 commissionBps) external {
        Pool storage p = _operatedPool(poolId);
        _checkCommission(commissionBps);
        _applyDueCommission(p);
        uint256 effectiveAt = block.timestamp + COMMISSION_NOTICE;
        p.pendingCommissionBps = commissionBps;
        // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit 40 bits
        p.pendingEffectiveAt = uint40(effectiveAt);
        emit CommissionChangeScheduled(poolId, commissionBps, effectiveAt);
    }

    /// @notice Enrols an owner's devices (the operator accepts them) with the owner's EIP-712
    ///         `PoolConsent`, signed for this pool, these devices, its next nonce and a deadline.
    /// @dev Refuses a device in a pool (this one included) and one backing a live individual
    ///      bid; the pool's capacity in each device's zone grows by the device's capacity.
    function enroll(
        uint256 poolId,
        address owner,
        uint256[] calldata deviceIds,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _operatedPool(poolId);
        uint256 count = deviceIds.length;
        if (count == 0 || count > MAX_DEVICES_PER_CONSENT) revert InvalidDeviceCount(count, MAX_DEVICES_PER_CONSENT);
        if (block.timestamp > deadline) revert ConsentExpired(deadline);
        address signer = ECDSA.recover(consentDigest(poolId, owner, deviceIds, nonce, deadline), signature);
        if (signer != owner) revert InvalidConsent(owner, signer);
        _useCheckedNonce(owner, nonce);
        for (uint256 i; i < count; ++i) {
            _enrollDevice(poolId, owner, deviceIds[i]);
        }
    }

    function _enrollDevice(uint256 poolId, address owner, uint256 deviceId) private {
        IDeviceRegistry.Device memory d = registry.device(deviceId);
        if (d.owner != owner) revert DeviceNotOwnedBy(deviceId, owner);
        Membership storage m = _memberships[deviceId];
        if (m.poolId != 0) revert AlreadyInPool(deviceId, m.poolId);
        uint256 live = market.overlappingCommitment(deviceId, block.timestamp, type(uint40).max);
        if (live != 0) revert DeviceCommitted(deviceId, live);
        // forge-lint: disable-next-line(unsafe-typecast) -- pool ids and timestamps fit
        (m.poolId, m.joinedAt) = (uint64(poolId), uint40(block.timestamp));
        _changeCapacity(poolId, d.zone, int256(uint256(d.capacityW)));
        registry.setPooled(deviceId, true);
        emit MemberJoined(poolId, deviceId, owner, d.zone, d.capacityW, block.timestamp);
    }

    // ─── Members ──────────────────────────────────────────────────────────────────────────

    /// @notice Asks devices to leave (their owner, or their pool's operator to evict them):
    ///         from now on they back no new bid of the pool; they stay members for
    ///         `LEAVE_NOTICE` and until the windows of the pool's bids end, then
    ///         `completeLeave` frees them.
    function requestLeave(uint256[] calldata deviceIds) external {
        for (uint256 i; i < deviceIds.length; ++i) {
            uint256 deviceId = deviceIds[i];
            Membership storage m = _memberships[deviceId];
            uint256 poolId = m.poolId;
            if (poolId == 0) revert NotMember(deviceId, 0);
            IDeviceRegistry.Device memory d = registry.device(deviceId);
            if (msg.sender != d.owner && msg.sender != _pools[poolId].operator) {
                revert NotOwnerOrOperator(deviceId, msg.sender);
            }
            if (m.leaveRequestedAt != 0) revert AlreadyLeaving(deviceId, m.leaveAt);
            uint256 leaveAt = block.timestamp + LEAVE_NOTICE;
            uint256 committed = _zones[poolId][d.zone].committedUntil;
            if (committed > leaveAt) leaveAt = committed;
            // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit 40 bits
            (m.leaveRequestedAt, m.leaveAt) = (uint40(block.timestamp), uint40(leaveAt));
            _changeCapacity(poolId, d.zone, -int256(uint256(d.capacityW)));
            emit LeaveRequested(poolId, deviceId, block.timestamp, leaveAt);
        }
    }

    /// @notice Ends memberships whose leave is due (anyone may call it): the devices are free
    ///         to bid alone or join another pool.
    // slither-disable-next-line reentrancy-no-eth -- registry is immutable and calls back nobody
    function completeLeave(uint256[] calldata deviceIds) external {
        for (uint256 i; i < deviceIds.length; ++i) {
            uint256 deviceId = deviceIds[i];
            Membership memory m = _memberships[deviceId];
            // slither-disable-next-line incorrect-equality -- 0 is "no pool" / "not leaving"
            if (m.poolId == 0 || m.leaveRequestedAt == 0) revert NotMember(deviceId, m.poolId);
            if (block.timestamp < m.leaveAt) revert LeaveNotDue(deviceId, m.leaveAt);
            _pastMemberships[deviceId].push(m);
            delete _memberships[deviceId];
            registry.setPooled(deviceId, false);
            emit MemberLeft(m.poolId, deviceId);
        }
    }

    /// @notice Pays the caller its devices' shares of settled pool bids of one request. Each
    ///         record is proven under the request's final devicesRoot; the caller must have
    ///         owned each device at the window start.
    function claim(uint256 requestId, IDeliveryDispute.DeviceRecord[] calldata records, bytes32[][] calldata proofs)
        external
        nonReentrant
        returns (uint256 amount)
    {
        if (records.length != proofs.length) revert LengthMismatch(records.length, proofs.length);
        RequestPayouts memory info = _requestPayouts[requestId];
        uint256 endsAt = uint256(info.settledAt) + CLAIM_PERIOD;
        if (info.settledAt != 0 && block.timestamp > endsAt) revert ClaimPeriodOver(requestId, endsAt);
        for (uint256 i; i < records.length; ++i) {
            amount += _claimOne(requestId, info, records[i], proofs[i]);
        }
        if (amount > 0) IERC20(info.token).safeTransfer(msg.sender, amount);
    }

    function _claimOne(
        uint256 requestId,
        RequestPayouts memory info,
        IDeliveryDispute.DeviceRecord calldata record,
        bytes32[] calldata proof
    ) private returns (uint256 share) {
        uint256 deviceId = record.deviceId;
        PoolPayout storage payout = _payouts[requestId][record.bidIndex];
        if (payout.poolId == 0) revert NotPoolPayout(requestId, record.bidIndex);
        if (!MerkleProof.verifyCalldata(proof, info.devicesRoot, ReportLeaves.recordLeaf(record))) {
            revert InvalidRecordProof(requestId, deviceId);
        }
        address owner = registry.ownerAt(deviceId, info.windowStart);
        if (owner != msg.sender) revert NotDeviceOwnerAt(deviceId, msg.sender, owner);
        mapping(uint256 => uint256) storage claimedBits = _claimedBits[requestId];
        uint256 bit = 1 << (deviceId & 0xff);
        uint256 bits = claimedBits[deviceId >> 8];
        if (bits & bit != 0) revert AlreadyClaimed(requestId, deviceId);
        claimedBits[deviceId >> 8] = bits | bit;
        share = SettlementMath.memberShare(payout.memberPot, payout.deliveredWh, record.deliveredWh);
        uint256 claimedTotal = payout.claimed + share;
        if (claimedTotal > payout.memberPot) revert PotExceeded(requestId, record.bidIndex);
        // forge-lint: disable-next-line(unsafe-typecast) -- at most memberPot (uint128)
        payout.claimed = uint128(claimedTotal);
        emit MemberPaid(requestId, deviceId, msg.sender, record.bidIndex, share);
    }

    /// @notice Pulls the caller's commissions in `token`.
    function withdraw(address token) external nonReentrant returns (uint256 amount) {
        amount = _withdrawable[token][msg.sender];
        if (amount == 0) revert NothingToWithdraw(token, msg.sender);
        _withdrawable[token][msg.sender] = 0;
        emit Withdrawn(token, msg.sender, amount);
        IERC20(token).safeTransfer(msg.sender, amount);
    }

    /// @notice After the claim period, moves what is left of a pool bid's member pot to the
    ///         pool operator's withdrawable balance; anyone may call it.
    function sweepUnclaimed(uint256 requestId, uint256 bidIndex) external returns (uint256 amount) {
        RequestPayouts memory info = _requestPayouts[requestId];
        PoolPayout storage payout = _payouts[requestId][bidIndex];
        if (payout.poolId == 0) revert NotPoolPayout(requestId, bidIndex);
        uint256 endsAt = uint256(info.settledAt) + CLAIM_PERIOD;
        if (block.timestamp <= endsAt) revert ClaimPeriodNotOver(requestId, endsAt);
        amount = payout.memberPot - payout.claimed;
        if (amount == 0) revert NothingToSweep(requestId, bidIndex);
        payout.claimed = payout.memberPot;
        address operator = _pools[payout.poolId].operator;
        _withdrawable[info.token][operator] += amount;
        emit UnclaimedSwept(requestId, bidIndex, payout.poolId, operator, amount);
    }

    // ─── Market hooks ─────────────────────────────────────────────────────────────────────

    function onPoolBid(uint256 poolId, address operator, bytes32 zone, uint256 powerW, uint256 windowEnd)
        external
        returns (uint16 commissionBps, uint256 capacityW)
    {
        if (msg.sender != address(market)) revert NotMarket(msg.sender);
        Pool storage p = _pools[poolId];
        if (p.operator == address(0)) revert UnknownPool(poolId);
        if (p.operator != operator) revert NotPoolOperator(poolId, operator);
        ZoneState storage z = _zones[poolId][zone];
        // Same second as a join or leave: which devices back the bid would depend on the
        // order of transactions in the block, so the bid waits for the next block.
        // slither-disable-next-line incorrect-equality -- the same second, exactly, is the case
        if (z.changedAt == block.timestamp) revert PoolChangedThisBlock(poolId, zone);
        capacityW = z.capacityW;
        if (powerW > capacityW) revert PoolCapacityExceeded(poolId, powerW, capacityW);
        commissionBps = _applyDueCommission(p);
        // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit 40 bits
        if (windowEnd > z.committedUntil) z.committedUntil = uint40(windowEnd);
    }

    /// @dev Reads the pool, its commission at bid time, the token, the window start and the
    ///      final devicesRoot from the market: the request is Settled, so none can change.
    function onPoolBidSettled(uint256 requestId, uint256 bidIndex, uint256 payout, uint256 deliveredWh) external {
        IFlexMarket market_ = market;
        if (msg.sender != address(market_)) revert NotMarket(msg.sender);
        RequestPayouts storage info = _requestPayouts[requestId];
        IFlexMarket.PoolBid memory poolBid = market_.poolBidOf(requestId, bidIndex);
        if (info.token == address(0)) {
            IFlexMarket.Request memory r = market_.request(requestId);
            // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit 40 bits
            (info.devicesRoot, info.token, info.windowStart, info.settledAt) =
            (market_.reportOf(requestId).devicesRoot, r.settlementToken, r.windowStart, uint40(block.timestamp));
        }
        (uint256 commission, uint256 memberPot) = SettlementMath.poolSplit(payout, poolBid.commissionBps);
        address operator = _pools[poolBid.poolId].operator;
        if (commission > 0) _withdrawable[info.token][operator] += commission;
        // forge-lint: disable-next-line(unsafe-typecast) -- payouts come from a uint128 escrow
        _payouts[requestId][bidIndex] = PoolPayout(uint128(memberPot), 0, poolBid.poolId, uint192(deliveredWh));
        emit PoolBidSettled(requestId, bidIndex, poolBid.poolId, payout, commission, memberPot, deliveredWh);
    }

    // ─── Views ────────────────────────────────────────────────────────────────────────────

    function pool(uint256 poolId) external view returns (Pool memory) {
        Pool memory p = _pools[poolId];
        if (p.operator == address(0)) revert UnknownPool(poolId);
        return p;
    }

    function commissionAt(uint256 poolId, uint256 timestamp) external view returns (uint16) {
        Pool memory p = _pools[poolId];
        if (p.operator == address(0)) revert UnknownPool(poolId);
        if (p.pendingEffectiveAt != 0 && timestamp >= p.pendingEffectiveAt) return p.pendingCommissionBps;
        return p.commissionBps;
    }

    function membershipOf(uint256 deviceId) external view returns (Membership memory) {
        return _memberships[deviceId];
    }

    /// @notice The pool whose bids placed at `timestamp` the device backs (0: none): a
    ///         membership that began at or before it and was not asked to end by then.
    function backingPoolAt(uint256 deviceId, uint256 timestamp) external view returns (uint256) {
        Membership memory m = _memberships[deviceId];
        if (_backsAt(m, timestamp)) return m.poolId;
        Membership[] storage past = _pastMemberships[deviceId];
        for (uint256 i = past.length; i > 0; --i) {
            m = past[i - 1];
            if (_backsAt(m, timestamp)) return m.poolId;
            if (m.joinedAt <= timestamp) return 0;
        }
        return 0;
    }

    function pastMemberships(uint256 deviceId) external view returns (Membership[] memory) {
        return _pastMemberships[deviceId];
    }

    function capacityOf(uint256 poolId, bytes32 zone) external view returns (uint256) {
        return _zones[poolId][zone].capacityW;
    }

    function zoneOf(uint256 poolId, bytes32 zone) external view returns (ZoneState memory) {
        return _zones[poolId][zone];
    }

    function payoutOf(uint256 requestId, uint256 bidIndex) external view returns (PoolPayout memory) {
        return _payouts[requestId][bidIndex];
    }

    function claimed(uint256 requestId, uint256 deviceId) external view returns (bool) {
        return _claimedBits[requestId][deviceId >> 8] & (1 << (deviceId & 0xff)) != 0;
    }

    function withdrawable(address token, address account) external view returns (uint256) {
        return _withdrawable[token][account];
    }

    function consentDigest(uint256 poolId, address owner, uint256[] calldata deviceIds, uint256 nonce, uint256 deadline)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    POOL_CONSENT_TYPEHASH, poolId, owner, keccak256(abi.encodePacked(deviceIds)), nonce, deadline
                )
            )
        );
    }

    // ─── Internals ────────────────────────────────────────────────────────────────────────

    function _operatedPool(uint256 poolId) private view returns (Pool storage p) {
        p = _pools[poolId];
        if (p.operator == address(0)) revert UnknownPool(poolId);
        if (p.operator != msg.sender) revert NotPoolOperator(poolId, msg.sender);
    }

    // slither-disable-next-line incorrect-equality -- 0 means "not asked to leave", a sentinel
    function _backsAt(Membership memory m, uint256 timestamp) private pure returns (bool) {
        return m.poolId != 0 && m.joinedAt <= timestamp && (m.leaveRequestedAt == 0 || m.leaveRequestedAt > timestamp);
    }

    function _changeCapacity(uint256 poolId, bytes32 zone, int256 deltaW) private {
        ZoneState storage z = _zones[poolId][zone];
        // forge-lint: disable-next-line(unsafe-typecast) -- sums of uint32 capacities
        z.capacityW = uint128(uint256(int256(uint256(z.capacityW)) + deltaW));
        // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit 40 bits
        z.changedAt = uint40(block.timestamp);
    }

    /// @dev Makes a due pending commission the current one; returns the commission in force.
    function _applyDueCommission(Pool storage p) private returns (uint16) {
        uint40 effectiveAt = p.pendingEffectiveAt;
        if (effectiveAt != 0 && block.timestamp >= effectiveAt) {
            p.commissionBps = p.pendingCommissionBps;
            (p.pendingCommissionBps, p.pendingEffectiveAt) = (0, 0);
        }
        return p.commissionBps;
    }

    function _checkCommission(uint16 commissionBps) private pure {
        if (commissionBps > MAX_COMMISSION_BPS) revert CommissionTooHigh(commissionBps, MAX_COMMISSION_BPS);
    }
}
