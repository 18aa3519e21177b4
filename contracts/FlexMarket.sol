// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IFlexMarket} from "./interfaces/IFlexMarket.sol";
import {IDeviceRegistry} from "./interfaces/IDeviceRegistry.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {IOracleCommittee} from "./interfaces/IOracleCommittee.sol";
import {IPoolRegistry} from "./interfaces/IPoolRegistry.sol";
import {SettlementMath} from "./libraries/SettlementMath.sol";

/// @title FlexMarket
/// @notice Grid operators post flexibility requests with an escrowed budget; device owners
///         bid with bonded stake; clearing awards in merit order; the oracle committee reports
///         delivery; after the dispute window, settlement pays providers, slashes
///         non-delivery, takes the protocol fee and refunds the rest (pull payments).
/// @dev Gas is bounded per request: at most `maxBidsPerRequest` bids (<= MAX_BIDS_CAP); a
///      full request still takes a cheaper bid, which displaces the worst one.
///      Clearing takes the merit order computed off-chain and checks it in O(bids).
///      A device backs at most one live bid among requests with overlapping windows, so
///      every report stays a function of its own request and no delivery is paid twice.
///      Reports store three hashes whatever the number of devices behind them.
contract FlexMarket is IFlexMarket, AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    bytes32 public constant GRID_OPERATOR_ROLE = keccak256("GRID_OPERATOR_ROLE");
    /// @notice Held by the DisputeResolver (fraud proofs); may void a report in its window.
    bytes32 public constant DISPUTE_ROLE = keccak256("DISPUTE_ROLE");

    /// @notice Baseline method ids: 0 MBMA, 1 CAISO 10-in-10, 2 PJM high-4-of-5.
    uint8 public constant BASELINE_METHOD_COUNT = 3;
    uint256 public constant MAX_DEVICES_PER_BID = 64;
    uint16 public constant MAX_BIDS_CAP = 256;
    /// @notice Live commitments (bids that may still have to deliver) a device may hold in
    ///         requests whose windows have not ended; bounds the checks a bid pays per device.
    uint256 public constant MAX_LIVE_COMMITMENTS_PER_DEVICE = 8;
    uint256 public constant MAX_WINDOW_INTERVALS = 96;
    uint16 public constant MAX_FEE_BPS = 1000;
    /// @notice 1,000,000 FLEX per kW. A bond above uint96 (about 79 MW at this rate) reverts
    ///         with SafeCast's SafeCastOverflowedUintDowncast; the FLEX supply is below 2^96.
    uint128 public constant MAX_BOND_PER_KW = 1e24;
    uint256 private constant BPS = 10_000;

    IDeviceRegistry public immutable registry;
    IStaking public immutable staking;
    IOracleCommittee public immutable committee;
    address public treasury;
    /// @notice Pools and their members' payouts.
    IPoolRegistry public immutable pools;

    // ─── Governance parameters (bounded, see the setters) ────────────────────────────────
    uint128 public bondPerKW = 10e18;
    uint48 public minBidW = 1_000;
    uint48 public minRequestW = 1_000;
    uint16 public protocolFeeBps = 100;
    uint16 public deliveryThresholdBps = 5_000;
    uint16 public maxBidsPerRequest = MAX_BIDS_CAP;
    uint64 public disputeWindow = 1 days;
    uint64 public reportTimeout = 2 days;

    /// @notice Smallest escrow per settlement token, in its base units (0: none). Per token
    ///         because decimals and value differ; refuses dust requests that would make
    ///         providers bond and oracles report for (next to) nothing.
    mapping(address token => uint256 minEscrow) public minEscrowOf;

    mapping(uint256 requestId => Request) private _requests;
    mapping(uint256 requestId => mapping(uint256 bidIndex => Bid)) private _bids;
    /// @dev Non-zero once `bidder` bid on the request: one bid per bidder per request.
    mapping(uint256 requestId => mapping(address bidder => bytes32 devicesHash)) private _bidDevices;
    mapping(uint256 requestId => Report) private _reports;
    /// @dev The pool behind a bid (poolId 0: an individual bid).
    mapping(uint256 requestId => mapping(uint256 bidIndex => PoolBid)) private _poolBids;

    /// @dev Filled from index 0; the first entry with requestId 0 ends the list. Dead
    ///      entries are pruned lazily by the device's next bid.
    // slither-disable-next-line uninitialized-state -- written through a storage pointer in _commitDevice
    mapping(uint256 deviceId => DeviceCommitment[MAX_LIVE_COMMITMENTS_PER_DEVICE]) private _commitments;
    mapping(address token => mapping(address account => uint256)) private _claimable;
    uint256 private _requestCount;

    constructor(
        address admin,
        IDeviceRegistry registry_,
        IStaking staking_,
        IOracleCommittee committee_,
        IPoolRegistry pools_,
        address treasury_
    ) {
        if (
            admin == address(0) || address(registry_) == address(0) || address(staking_) == address(0)
                || address(committee_) == address(0) || address(pools_) == address(0) || treasury_ == address(0)
        ) revert ZeroAddress();
        pools = pools_;
        registry = registry_;
        staking = staking_;
        committee = committee_;
        treasury = treasury_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        emit TreasurySet(treasury_);
    }

    // ─── Grid operators ───────────────────────────────────────────────────────────────────

    /// @notice Posts a request and escrows its maximum budget (needs an allowance).
    function createRequest(RequestParams calldata p)
        external
        onlyRole(GRID_OPERATOR_ROLE)
        nonReentrant
        returns (uint256 requestId)
    {
        _checkRequestParams(p);
        uint256 duration = uint256(p.windowEnd) - p.windowStart;
        (uint256 utilization, uint256 availability) =
            SettlementMath.maxBudget(p.powerW, duration, p.priceCapPerKWh, p.availabilityPricePerKWh);
        uint256 escrow = utilization + availability;
        if (escrow > type(uint128).max) revert ParameterOutOfBounds("escrow", escrow, 0, type(uint128).max);
        uint256 minEscrow = minEscrowOf[p.settlementToken];
        if (escrow < minEscrow) revert EscrowBelowMinimum(p.settlementToken, escrow, minEscrow);

        requestId = ++_requestCount;
        Request storage r = _requests[requestId];
        r.operator = msg.sender;
        r.gateClosure = p.gateClosure;
        r.direction = Direction(p.direction);
        r.baselineMethod = p.baselineMethod;
        r.pricingRule = PricingRule(p.pricingRule);
        r.settlementToken = p.settlementToken;
        r.powerW = p.powerW;
        r.windowStart = p.windowStart;
        r.windowEnd = p.windowEnd;
        r.intervalSeconds = p.intervalSeconds;
        r.status = RequestStatus.Open;
        r.zone = p.zone;
        r.priceCapPerKWh = p.priceCapPerKWh;
        r.availabilityPricePerKWh = p.availabilityPricePerKWh;
        // forge-lint: disable-next-line(unsafe-typecast) -- checked against uint128 max above
        r.escrow = uint128(escrow);
        // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit 40 bits
        r.createdAt = uint40(block.timestamp);
        emit RequestCreated(requestId, msg.sender, p.zone, p, escrow);

        IERC20 token = IERC20(p.settlementToken);
        uint256 balanceBefore = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), escrow);
        uint256 received = token.balanceOf(address(this)) - balanceBefore;
        if (received != escrow) revert EscrowMismatch(received, escrow);
    }

    /// @notice Withdraws a request before gate closure: bonds are released, escrow refunded.
    function cancelRequest(uint256 requestId) external {
        Request storage r = _openRequest(requestId);
        if (msg.sender != r.operator) revert NotRequestOperator(requestId, msg.sender);
        if (block.timestamp >= r.gateClosure) revert GateClosed(requestId, r.gateClosure);
        r.status = RequestStatus.Cancelled;
        _releaseBonds(requestId, false);
        uint256 refund = r.escrow;
        _claimable[r.settlementToken][r.operator] += refund;
        emit RequestCancelled(requestId, refund);
    }

    // ─── Providers ────────────────────────────────────────────────────────────────────────

    /// @notice Offers `powerW` from the caller's devices at `pricePerKWh`; locks the bond.
    ///         When the request is full, a bid priced strictly below the worst bid (highest
    ///         price, latest among equals) takes its slot and releases its bond.
    /// @param deviceIds strictly ascending ids of devices the caller owns in the request's zone
    /// @dev One bid per bidder per request, so no device can be offered twice in a request;
    ///      no device can back two live bids in requests with overlapping windows.
    function bid(uint256 requestId, uint48 powerW, uint96 pricePerKWh, uint256[] calldata deviceIds)
        external
        returns (uint256 bidIndex)
    {
        Request storage r = _openRequest(requestId);
        if (block.timestamp >= r.gateClosure) revert GateClosed(requestId, r.gateClosure);
        if (_bidDevices[requestId][msg.sender] != bytes32(0)) revert AlreadyBid(requestId, msg.sender);
        Bid memory displaced;
        (bidIndex, displaced) = _checkBid(requestId, r, powerW, pricePerKWh);
        uint256 deviceCount = deviceIds.length;
        if (deviceCount == 0 || deviceCount > MAX_DEVICES_PER_BID) {
            revert InvalidDeviceCount(deviceCount, MAX_DEVICES_PER_BID);
        }
        uint256 capacityW = registry.checkBidDevices(msg.sender, r.zone, r.createdAt, deviceIds);
        if (powerW > capacityW) revert BidExceedsCapacity(powerW, capacityW);

        DeviceCommitment memory entry = _recordBid(requestId, r, bidIndex, displaced, powerW, pricePerKWh);
        for (uint256 i; i < deviceCount; ++i) {
            _commitDevice(deviceIds[i], entry);
        }
        _bidDevices[requestId][msg.sender] = keccak256(abi.encodePacked(deviceIds));
        uint96 bond = _bids[requestId][bidIndex].bond;
        emit BidPlaced(requestId, bidIndex, msg.sender, powerW, pricePerKWh, bond, deviceIds);
        _moveBonds(displaced, bond);
    }

    /// @notice Offers `powerW` from pool `poolId`, of which the caller is the operator, at
    ///         `pricePerKWh`; the operator's stake bonds it. Backed by the pool's members in
    ///         the request's zone (PoolRegistry): no device list, so its gas and that of its
    ///         clearing, report and settlement do not depend on the pool's size.
    /// @dev The pool's members in the zone back at most one live bid among requests with
    ///      overlapping windows (one commitment list per pool and zone), so a pool bids once
    ///      per request: a second bid reverts with DeviceOvercommitted(key, requestId).
    // slither-disable-next-line reentrancy-no-eth -- pools is immutable and calls back nobody
    function bidAsPool(uint256 requestId, uint256 poolId, uint48 powerW, uint96 pricePerKWh)
        external
        returns (uint256 bidIndex)
    {
        Request storage r = _openRequest(requestId);
        if (block.timestamp >= r.gateClosure) revert GateClosed(requestId, r.gateClosure);
        Bid memory displaced;
        (bidIndex, displaced) = _checkBid(requestId, r, powerW, pricePerKWh);
        (uint16 commissionBps, uint256 capacityW) = pools.onPoolBid(poolId, msg.sender, r.zone, powerW, r.windowEnd);

        DeviceCommitment memory entry = _recordBid(requestId, r, bidIndex, displaced, powerW, pricePerKWh);
        _commitDevice(_poolCommitmentKey(poolId, r.zone), entry);
        _poolBids[requestId][bidIndex] = PoolBid({
            poolId: SafeCast.toUint64(poolId), commissionBps: commissionBps, capacityW: SafeCast.toUint48(capacityW)
        });
        uint96 bond = _bids[requestId][bidIndex].bond;
        emit BidPlaced(requestId, bidIndex, msg.sender, powerW, pricePerKWh, bond, new uint256[](0));
        emit PoolBidPlaced(requestId, bidIndex, poolId, capacityW, commissionBps);
        _moveBonds(displaced, bond);
    }

    /// @dev The key of a pool's commitment list in a zone (beside device ids, which are
    ///      small counters).
    function _poolCommitmentKey(uint256 poolId, bytes32 zone) private pure returns (uint256) {
        return uint256(keccak256(abi.encode(poolId, zone)));
    }

    // ─── Clearing ─────────────────────────────────────────────────────────────────────────

    /// @notice Awards bids in merit order until the requested power is met; anyone may call
    ///         it between gate closure and window start.
    /// @param meritOrder every bid index once, sorted by price then `Bid.sequence` (bid time)
    function clear(uint256 requestId, uint16[] calldata meritOrder) external {
        Request storage r = _openRequest(requestId);
        if (block.timestamp < r.gateClosure) revert GateNotClosed(requestId, r.gateClosure);
        if (block.timestamp > r.windowStart) revert ClearingTooLate(requestId, r.windowStart);
        uint256 bidCount = r.bidCount;
        if (meritOrder.length != bidCount) revert InvalidMeritOrder(meritOrder.length);

        mapping(uint256 => Bid) storage bids = _bids[requestId];
        uint256 remainingW = r.powerW;
        uint256 accepted = 0;
        uint96 marginalPrice = 0;
        uint256 previousKey = 0;
        for (uint256 position; position < bidCount; ++position) {
            uint256 index = meritOrder[position];
            if (index >= bidCount) revert InvalidMeritOrder(position);
            Bid storage b = bids[index];
            uint96 price = b.pricePerKWh;
            // Strictly ascending (price, sequence) keys over bidCount entries is a permutation:
            // sequences are unique in a request, so a repeated index repeats its key.
            uint256 key = _meritKey(price, b.sequence);
            if (position > 0 && key <= previousKey) revert InvalidMeritOrder(position);
            previousKey = key;
            // No partial award below the minimum bid: a sliver of a bid (say 2 W) caps each
            // of its devices at 0 Wh and is slashed whatever they deliver. A later, smaller
            // bid may still fit whole.
            if (remainingW == 0 || (remainingW < b.powerW && remainingW < minBidW)) {
                if (b.bond > 0) staking.unlock(b.bidder, b.bond);
            } else {
                remainingW -= _award(requestId, index, b, remainingW);
                marginalPrice = price;
                accepted += 1;
            }
        }

        // forge-lint: disable-next-line(unsafe-typecast) -- at most powerW (uint48)
        uint48 awardedW = uint48(r.powerW - remainingW);
        r.awardedW = awardedW;
        r.clearingPrice = marginalPrice;
        emit RequestCleared(requestId, awardedW, marginalPrice, accepted);
        if (awardedW == 0) {
            // Nothing to deliver: settle at once with a full refund.
            r.status = RequestStatus.Settled;
            _claimable[r.settlementToken][r.operator] += r.escrow;
            emit RequestSettled(requestId, 0, 0, r.escrow, 0);
        } else {
            r.status = RequestStatus.Cleared;
        }
    }

    // ─── Reports and settlement ───────────────────────────────────────────────────────────

    /// @notice Posts the committee's report: delivered Wh per bid (one figure for every bid;
    ///         settlement ignores those of bids not awarded) plus Merkle roots of per-device
    ///         records and of the readings used.
    /// @dev Idempotent: posting the report already pending again is a no-op. Costs the same
    ///      whatever the number of devices: only three hashes are stored.
    function submitReport(
        uint256 requestId,
        uint256[] calldata deliveredWh,
        bytes32 devicesRoot,
        bytes32 readingsRoot,
        bytes[] calldata signatures
    ) external {
        Request storage r = _requests[requestId];
        Report memory report = Report(keccak256(abi.encodePacked(deliveredWh)), devicesRoot, readingsRoot);
        if (_isPendingReport(requestId, r, report)) return;
        _checkDelivery(requestId, r, deliveredWh);
        uint16 round = r.reportRound;
        uint64 signerBitmap = committee.verifyReport(
            requestId, round, report.deliveredHash, report.devicesRoot, report.readingsRoot, signatures
        );
        uint256 disputeEndsAt = block.timestamp + disputeWindow;
        r.status = RequestStatus.Reported;
        // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit 40 bits
        r.disputeEndsAt = uint40(disputeEndsAt);
        r.signerBitmap = signerBitmap;
        _reports[requestId] = report;
        emit ReportSubmitted(requestId, round, report, deliveredWh, signerBitmap, disputeEndsAt);
    }

    /// @notice Voids the pending report during its dispute window so that the committee can
    ///         submit a corrected one in the next round (the hook for fraud proofs).
    function voidReport(uint256 requestId) external onlyRole(DISPUTE_ROLE) {
        Request storage r = _requests[requestId];
        if (r.status != RequestStatus.Reported) _revertWrongStatus(requestId, r.status, RequestStatus.Reported);
        uint256 endsAt = r.disputeEndsAt;
        if (block.timestamp >= endsAt) revert DisputeWindowClosed(requestId, endsAt);
        uint16 round = r.reportRound;
        uint64 signerBitmap = r.signerBitmap;
        r.status = RequestStatus.Cleared;
        r.reportRound = round + 1;
        // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit 40 bits
        r.disputeEndsAt = uint40(block.timestamp);
        r.signerBitmap = 0;
        delete _reports[requestId];
        emit ReportVoided(requestId, round, signerBitmap);
    }

    /// @notice Raises the pending report's dispute end to `until` (never lowers it) so that
    ///         it cannot be finalized while a challenge against it awaits a response or its
    ///         resolution; a later void still happens before the (extended) end.
    /// @dev Only during the current window: a closed window is never reopened.
    function extendDispute(uint256 requestId, uint256 until) external onlyRole(DISPUTE_ROLE) {
        Request storage r = _requests[requestId];
        if (r.status != RequestStatus.Reported) _revertWrongStatus(requestId, r.status, RequestStatus.Reported);
        uint256 endsAt = r.disputeEndsAt;
        if (block.timestamp >= endsAt) revert DisputeWindowClosed(requestId, endsAt);
        if (until <= endsAt) return;
        _checkBounds("disputeEndsAt", until, endsAt, type(uint40).max);
        // forge-lint: disable-next-line(unsafe-typecast) -- bounded on the line above
        r.disputeEndsAt = uint40(until);
        emit DisputeExtended(requestId, r.reportRound, until);
    }

    /// @notice Settles a reported request after its dispute window; anyone may call it with
    ///         the per-bid delivery figures of the report (from `ReportSubmitted`).
    /// @dev The only external calls are to `staking`, an immutable protocol contract that
    ///      calls back nobody; the request is marked Settled before them and the function is
    ///      nonReentrant, so the writes after the loop cannot be reached twice.
    // slither-disable-next-line reentrancy-no-eth
    function finalize(uint256 requestId, uint256[] calldata deliveredWh) external nonReentrant {
        Request storage r = _requests[requestId];
        if (r.status != RequestStatus.Reported) _revertWrongStatus(requestId, r.status, RequestStatus.Reported);
        uint256 endsAt = r.disputeEndsAt;
        if (block.timestamp < endsAt) revert DisputeWindowOpen(requestId, endsAt);
        if (keccak256(abi.encodePacked(deliveredWh)) != _reports[requestId].deliveredHash) {
            revert DeliveryHashMismatch(requestId);
        }
        r.status = RequestStatus.Settled;

        SettlementContext memory ctx = SettlementContext({
            requestId: requestId,
            token: r.settlementToken,
            duration: uint256(r.windowEnd) - r.windowStart,
            uniformPrice: r.pricingRule == PricingRule.Uniform ? r.clearingPrice : 0,
            availabilityPrice: r.availabilityPricePerKWh,
            thresholdBps: deliveryThresholdBps,
            feeBps: protocolFeeBps,
            gross: 0,
            fees: 0,
            slashed: 0
        });
        mapping(uint256 => Bid) storage bids = _bids[requestId];
        for (uint256 i; i < deliveredWh.length; ++i) {
            Bid storage b = bids[i];
            if (b.awardedW == 0) continue;
            _settleBid(ctx, i, b, deliveredWh[i]);
        }

        uint256 refund = r.escrow - ctx.gross;
        _claimable[ctx.token][treasury] += ctx.fees;
        _claimable[ctx.token][r.operator] += refund;
        emit RequestSettled(requestId, ctx.gross - ctx.fees, ctx.fees, refund, ctx.slashed);
    }

    /// @notice Ends a request the market can no longer carry through: never cleared by its
    ///         window start, or never reported `reportTimeout` after its window end. Bonds are
    ///         released without slashing (nobody proved a failure) and the escrow refunded.
    function expire(uint256 requestId) external {
        Request storage r = _requests[requestId];
        RequestStatus status = r.status;
        uint256 expiresAt = 0;
        if (status == RequestStatus.Open) expiresAt = uint256(r.windowStart) + 1;
        // After a voided report the committee gets a full `reportTimeout` again.
        else if (status == RequestStatus.Cleared) expiresAt = Math.max(r.windowEnd, r.disputeEndsAt) + reportTimeout;
        else if (status == RequestStatus.None) revert UnknownRequest(requestId);
        else revert NotExpirable(requestId, status, 0);
        if (block.timestamp < expiresAt) revert NotExpirable(requestId, status, expiresAt);

        r.status = RequestStatus.Expired;
        _releaseBonds(requestId, status == RequestStatus.Cleared);
        uint256 refund = r.escrow;
        _claimable[r.settlementToken][r.operator] += refund;
        emit RequestExpired(requestId, refund);
    }

    /// @notice Pulls everything credited to the caller in `token`.
    function withdraw(address token) external nonReentrant returns (uint256 amount) {
        amount = _claimable[token][msg.sender];
        if (amount == 0) revert NothingToWithdraw(token, msg.sender);
        _claimable[token][msg.sender] = 0;
        emit Withdrawn(token, msg.sender, amount);
        IERC20(token).safeTransfer(msg.sender, amount);
    }

    // ─── Governance ───────────────────────────────────────────────────────────────────────

    function setBondPerKW(uint128 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkBounds("bondPerKW", value, 0, MAX_BOND_PER_KW);
        bondPerKW = value;
        emit ParameterSet("bondPerKW", value);
    }

    function setMinBidW(uint48 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkBounds("minBidW", value, 1, 1_000_000);
        minBidW = value;
        emit ParameterSet("minBidW", value);
    }

    function setMinRequestW(uint48 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkBounds("minRequestW", value, 1, 100_000_000);
        minRequestW = value;
        emit ParameterSet("minRequestW", value);
    }

    function setProtocolFeeBps(uint16 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkBounds("protocolFeeBps", value, 0, MAX_FEE_BPS);
        protocolFeeBps = value;
        emit ParameterSet("protocolFeeBps", value);
    }

    function setDeliveryThresholdBps(uint16 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkBounds("deliveryThresholdBps", value, 0, BPS);
        deliveryThresholdBps = value;
        emit ParameterSet("deliveryThresholdBps", value);
    }

    function setMaxBidsPerRequest(uint16 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkBounds("maxBidsPerRequest", value, 1, MAX_BIDS_CAP);
        maxBidsPerRequest = value;
        emit ParameterSet("maxBidsPerRequest", value);
    }

    /// @dev Never longer than the staking unbonding period, so bonds stay slashable.
    function setDisputeWindow(uint64 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkBounds("disputeWindow", value, 60, staking.unbondingPeriod());
        disputeWindow = value;
        emit ParameterSet("disputeWindow", value);
    }

    function setReportTimeout(uint64 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkBounds("reportTimeout", value, 60, 30 days);
        reportTimeout = value;
        emit ParameterSet("reportTimeout", value);
    }

    function setTreasury(address treasury_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (treasury_ == address(0)) revert ZeroAddress();
        treasury = treasury_;
        emit TreasurySet(treasury_);
    }

    /// @notice Sets the smallest escrow of requests settled in `token` (0 lifts the minimum).
    function setMinEscrow(address token, uint256 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (token == address(0)) revert ZeroAddress();
        _checkBounds("minEscrow", value, 0, type(uint128).max);
        minEscrowOf[token] = value;
        emit MinEscrowSet(token, value);
    }

    // ─── Views ────────────────────────────────────────────────────────────────────────────

    function request(uint256 requestId) external view returns (Request memory) {
        Request memory r = _requests[requestId];
        // slither-disable-next-line incorrect-equality -- an enum compared with its zero value
        if (r.status == RequestStatus.None) revert UnknownRequest(requestId);
        return r;
    }

    function bidOf(uint256 requestId, uint256 bidIndex) external view returns (Bid memory) {
        return _bids[requestId][bidIndex];
    }

    function poolBidOf(uint256 requestId, uint256 bidIndex) external view returns (PoolBid memory) {
        return _poolBids[requestId][bidIndex];
    }

    function devicesHashOf(uint256 requestId, address bidder) external view returns (bytes32) {
        return _bidDevices[requestId][bidder];
    }

    function reportOf(uint256 requestId) external view returns (Report memory) {
        return _reports[requestId];
    }

    function overlappingCommitment(uint256 deviceId, uint256 windowStart, uint256 windowEnd)
        external
        view
        returns (uint256 requestId)
    {
        DeviceCommitment[MAX_LIVE_COMMITMENTS_PER_DEVICE] storage list = _commitments[deviceId];
        for (uint256 i; i < MAX_LIVE_COMMITMENTS_PER_DEVICE && list[i].requestId != 0; ++i) {
            DeviceCommitment memory c = list[i];
            if (c.windowStart < windowEnd && windowStart < c.windowEnd && _isLive(c)) return c.requestId;
        }
        return 0;
    }

    function claimable(address token, address account) external view returns (uint256) {
        return _claimable[token][account];
    }

    function requestCount() external view returns (uint256) {
        return _requestCount;
    }

    // ─── Internals ────────────────────────────────────────────────────────────────────────

    /// @dev Running totals of one settlement, kept in memory to stay clear of stack limits.
    struct SettlementContext {
        uint256 requestId;
        address token;
        uint256 duration;
        uint256 uniformPrice;
        uint256 availabilityPrice;
        uint256 thresholdBps;
        uint256 feeBps;
        uint256 gross;
        uint256 fees;
        uint256 slashed;
    }

    function _settleBid(SettlementContext memory ctx, uint256 bidIndex, Bid storage b, uint256 deliveredWh) private {
        address bidder = b.bidder;
        uint256 bond = b.bond;
        uint256 price = ctx.uniformPrice != 0 ? ctx.uniformPrice : b.pricePerKWh;
        SettlementMath.BidOutcome memory o = SettlementMath.settleBid(
            b.awardedW, ctx.duration, deliveredWh, price, ctx.availabilityPrice, ctx.thresholdBps, bond
        );
        uint256 gross = o.utilization + o.availability;
        uint256 fee = SettlementMath.fee(gross, ctx.feeBps);
        ctx.gross += gross;
        ctx.fees += fee;
        emit BidSettled(ctx.requestId, bidIndex, bidder, deliveredWh, o.utilization, o.availability, fee, o.slashed);
        if (gross > fee) _pay(ctx, bidIndex, bidder, gross - fee, deliveredWh);

        uint256 slashed = 0;
        if (o.slashed > 0) slashed = staking.slash(bidder, o.slashed, address(0), 0);
        ctx.slashed += slashed;
        if (bond > slashed) staking.unlock(bidder, bond - slashed);
    }

    /// @dev Credits an individual bid's payout to its bidder; a pool bid's goes to
    ///      PoolRegistry, which splits it into commission and member shares.
    function _pay(SettlementContext memory ctx, uint256 bidIndex, address bidder, uint256 net, uint256 deliveredWh)
        private
    {
        if (_poolBids[ctx.requestId][bidIndex].poolId == 0) {
            _claimable[ctx.token][bidder] += net;
        } else {
            IERC20(ctx.token).safeTransfer(address(pools), net);
            pools.onPoolBidSettled(ctx.requestId, bidIndex, net, deliveredWh);
        }
    }

    /// @dev Before clearing every bid holds its full bond; after clearing only awarded bids
    ///      still hold theirs (rejected ones were released by `clear`).
    /// @dev Awards min(bid, remaining) and releases the bond of the part not awarded.
    function _award(uint256 requestId, uint256 index, Bid storage b, uint256 remainingW)
        private
        returns (uint48 awardW)
    {
        uint48 powerW = b.powerW;
        // forge-lint: disable-next-line(unsafe-typecast) -- at most powerW (uint48)
        awardW = uint48(Math.min(powerW, remainingW));
        b.awardedW = awardW;
        if (awardW < powerW) {
            // forge-lint: disable-next-line(unsafe-typecast) -- at most b.bond (uint128)
            uint96 keptBond = uint96(uint256(b.bond) * awardW / powerW);
            uint96 released = b.bond - keptBond;
            b.bond = keptBond;
            if (released > 0) staking.unlock(b.bidder, released);
        }
        emit Awarded(requestId, index, b.bidder, awardW, b.pricePerKWh);
    }

    /// @dev The checks every bid passes, in order: a slot (or a bid to displace), the
    ///      minimum power, the price.
    function _checkBid(uint256 requestId, Request storage r, uint48 powerW, uint96 pricePerKWh)
        private
        view
        returns (uint256 bidIndex, Bid memory displaced)
    {
        (bidIndex, displaced) = _bidSlot(requestId, r, pricePerKWh);
        if (powerW < minBidW) revert PowerBelowMinimum(powerW, minBidW);
        if (pricePerKWh == 0 || pricePerKWh > r.priceCapPerKWh) revert InvalidBidPrice(pricePerKWh, r.priceCapPerKWh);
    }

    /// @dev Stores the bid in its slot, frees the displaced bid's markers, and returns the
    ///      commitment its devices (or its pool) take.
    function _recordBid(
        uint256 requestId,
        Request storage r,
        uint256 bidIndex,
        Bid memory displaced,
        uint48 powerW,
        uint96 pricePerKWh
    ) private returns (DeviceCommitment memory entry) {
        uint96 bond = SafeCast.toUint96(SettlementMath.bondFor(powerW, bondPerKW));
        uint24 sequence = r.bidsPlaced;
        r.bidsPlaced = SafeCast.toUint24(uint256(sequence) + 1);
        if (displaced.bidder == address(0)) {
            // forge-lint: disable-next-line(unsafe-typecast) -- bidIndex < maxBidsPerRequest <= 256
            r.bidCount = uint16(bidIndex + 1);
        } else {
            if (_poolBids[requestId][bidIndex].poolId == 0) delete _bidDevices[requestId][displaced.bidder];
            else delete _poolBids[requestId][bidIndex];
            emit BidDisplaced(requestId, bidIndex, displaced.bidder, msg.sender);
        }
        _bids[requestId][bidIndex] = Bid({
            bidder: msg.sender,
            powerW: powerW,
            awardedW: 0,
            pricePerKWh: pricePerKWh,
            bond: bond,
            // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit 40 bits
            placedAt: uint40(block.timestamp),
            sequence: sequence
        });
        entry = DeviceCommitment({
            requestId: SafeCast.toUint64(requestId),
            // forge-lint: disable-next-line(unsafe-typecast) -- bidIndex < MAX_BIDS_CAP
            bidIndex: uint16(bidIndex),
            sequence: sequence,
            windowStart: r.windowStart,
            windowEnd: r.windowEnd
        });
    }

    function _moveBonds(Bid memory displaced, uint96 bond) private {
        if (displaced.bond > 0) staking.unlock(displaced.bidder, displaced.bond);
        if (bond > 0) staking.lock(msg.sender, bond);
    }

    /// @dev The slot a new bid at `price` takes: the next free one, or in a full request the
    ///      worst bid's, which it displaces (returned, empty otherwise) if strictly cheaper.
    ///      Scans at most MAX_BIDS_CAP slots (one storage slot each), paid by the displacing
    ///      bid only: nothing is kept sorted at the expense of every other bid.
    function _bidSlot(uint256 requestId, Request storage r, uint96 price)
        private
        view
        returns (uint256 bidIndex, Bid memory displaced)
    {
        uint256 bidCount = r.bidCount;
        uint256 maxBids = maxBidsPerRequest;
        if (bidCount < maxBids) return (bidCount, displaced);
        mapping(uint256 => Bid) storage bids = _bids[requestId];
        uint256 worstKey = 0;
        for (uint256 i; i < bidCount; ++i) {
            Bid storage b = bids[i];
            uint256 key = _meritKey(b.pricePerKWh, b.sequence);
            if (key > worstKey) (worstKey, bidIndex) = (key, i);
        }
        displaced = bids[bidIndex];
        if (price >= displaced.pricePerKWh) revert TooManyBids(requestId, maxBids);
    }

    /// @dev Merit order key: price first, then placement (a later bid ranks after).
    function _meritKey(uint96 price, uint24 sequence) private pure returns (uint256) {
        return (uint256(price) << 24) | sequence;
    }

    /// @dev Compacts the device's list while checking it. An entry whose window has ended is
    ///      dropped unread (a bid is always for a window that starts after now); one that
    ///      overlaps is live or dropped; the others are only checked when the list is full.
    function _commitDevice(uint256 deviceId, DeviceCommitment memory entry) private {
        DeviceCommitment[MAX_LIVE_COMMITMENTS_PER_DEVICE] storage list = _commitments[deviceId];
        uint256 count = 0;
        while (count < MAX_LIVE_COMMITMENTS_PER_DEVICE && list[count].requestId != 0) ++count;
        bool full = count == MAX_LIVE_COMMITMENTS_PER_DEVICE;
        uint256 kept = 0;
        for (uint256 i; i < count; ++i) {
            DeviceCommitment memory c = list[i];
            if (c.windowEnd <= block.timestamp) continue;
            bool overlaps = c.windowStart < entry.windowEnd && entry.windowStart < c.windowEnd;
            if ((overlaps || full) && !_isLive(c)) continue;
            if (overlaps) revert DeviceOvercommitted(deviceId, c.requestId);
            if (kept != i) list[kept] = c;
            ++kept;
        }
        if (kept == MAX_LIVE_COMMITMENTS_PER_DEVICE) {
            revert DeviceCommitmentsFull(deviceId, MAX_LIVE_COMMITMENTS_PER_DEVICE);
        }
        list[kept] = entry;
        for (uint256 i = kept + 1; i < count; ++i) {
            delete list[i];
        }
    }

    /// @dev Live: the bid still holds its slot and may still have to deliver (its request is
    ///      open and clearable, or it was awarded and the request is not yet settled).
    function _isLive(DeviceCommitment memory c) private view returns (bool) {
        Bid storage b = _bids[c.requestId][c.bidIndex];
        if (b.sequence != c.sequence) return false; // displaced: the slot holds a later bid
        Request storage r = _requests[c.requestId];
        RequestStatus status = r.status;
        if (status == RequestStatus.Open) return block.timestamp <= r.windowStart; // clearable
        return (status == RequestStatus.Cleared || status == RequestStatus.Reported) && b.awardedW > 0;
    }

    /// @dev True when `report` is the one already pending (a retried post); reverts when a
    ///      different report is pending or the request is not ready for a report.
    function _isPendingReport(uint256 requestId, Request storage r, Report memory report) private view returns (bool) {
        RequestStatus status = r.status;
        if (status == RequestStatus.Reported) {
            Report storage pending = _reports[requestId];
            if (
                pending.deliveredHash == report.deliveredHash && pending.devicesRoot == report.devicesRoot
                    && pending.readingsRoot == report.readingsRoot
            ) return true;
            revert ConflictingReport(requestId, r.reportRound);
        }
        if (status != RequestStatus.Cleared) _revertWrongStatus(requestId, status, RequestStatus.Cleared);
        return false;
    }

    function _checkDelivery(uint256 requestId, Request storage r, uint256[] calldata deliveredWh) private view {
        if (block.timestamp < r.windowEnd) revert WindowNotEnded(requestId, r.windowEnd);
        uint256 bidCount = r.bidCount;
        if (deliveredWh.length != bidCount) revert DeliveryLengthMismatch(deliveredWh.length, bidCount);
    }

    function _releaseBonds(uint256 requestId, bool awardedOnly) private {
        mapping(uint256 => Bid) storage bids = _bids[requestId];
        uint256 count = _requests[requestId].bidCount;
        for (uint256 i; i < count; ++i) {
            Bid storage b = bids[i];
            if (awardedOnly && b.awardedW == 0) continue;
            if (b.bond > 0) staking.unlock(b.bidder, b.bond);
        }
    }

    function _checkRequestParams(RequestParams calldata p) private view {
        if (p.settlementToken == address(0)) revert ZeroAddress();
        if (p.zone == bytes32(0)) revert ParameterOutOfBounds("zone", 0, 1, type(uint256).max);
        if (p.powerW < minRequestW) revert PowerBelowMinimum(p.powerW, minRequestW);
        if (p.priceCapPerKWh == 0) revert ZeroPriceCap();
        if (p.baselineMethod >= BASELINE_METHOD_COUNT) revert UnknownBaselineMethod(p.baselineMethod);
        if (p.direction > uint8(Direction.IncreaseConsumption)) revert InvalidDirection(p.direction);
        if (p.pricingRule > uint8(PricingRule.Uniform)) revert InvalidPricingRule(p.pricingRule);
        uint256 interval = p.intervalSeconds;
        if (interval != 900 && interval != 1800) revert InvalidInterval(interval);
        if (
            p.windowEnd <= p.windowStart || p.windowStart % interval != 0 || p.windowEnd % interval != 0
                || (uint256(p.windowEnd) - p.windowStart) / interval > MAX_WINDOW_INTERVALS
        ) revert InvalidWindow(p.windowStart, p.windowEnd, interval);
        if (p.gateClosure <= block.timestamp || p.gateClosure > p.windowStart) {
            revert InvalidGateClosure(p.gateClosure, block.timestamp, p.windowStart);
        }
    }

    function _openRequest(uint256 requestId) private view returns (Request storage r) {
        r = _requests[requestId];
        if (r.status != RequestStatus.Open) _revertWrongStatus(requestId, r.status, RequestStatus.Open);
    }

    function _revertWrongStatus(uint256 requestId, RequestStatus status, RequestStatus expected) private pure {
        if (status == RequestStatus.None) revert UnknownRequest(requestId);
        revert WrongStatus(requestId, status, expected);
    }

    function _checkBounds(bytes32 name, uint256 value, uint256 min, uint256 max) private pure {
        if (value < min || value > max) revert ParameterOutOfBounds(name, value, min, max);
    }
}
