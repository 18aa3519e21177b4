// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {P256} from "@openzeppelin/contracts/utils/cryptography/P256.sol";
import {IDisputeResolver} from "./interfaces/IDisputeResolver.sol";
import {IFlexMarket} from "./interfaces/IFlexMarket.sol";
import {IOracleCommittee} from "./interfaces/IOracleCommittee.sol";
import {IDeviceRegistry} from "./interfaces/IDeviceRegistry.sol";
import {IStaking} from "./interfaces/IStaking.sol";

/// @title DisputeResolver
/// @notice Two-phase fraud proofs against pending oracle reports. `challenge` shows a reading
///         the report used (proven under its `readingsRoot`) and the device's own signed meter
///         unit for the same (device, interval) with another value; it opens a pending
///         challenge and extends the report's dispute end so it cannot finalize. `rebut` (before
///         the response deadline) shows a unit of the same device with the used value: the
///         device equivocated, the challenge is dismissed, the owner's free stake is slashed,
///         the report stands. `resolve` (after the deadline, unrebutted) voids the report and
///         slashes the signing oracles' bonds, `challengerShareBps` of them to the challenger
///         and the rest to the treasury.
/// @dev Holds FlexMarket.DISPUTE_ROLE, OracleCommittee.DISPUTE_ROLE and Staking.SLASHER_ROLE
///      (equivocation penalties, via `slashUnlocked`: never the stake a bid bond locks, so a
///      penalty cannot make the market's settlement revert). Holds no funds.
///      Timeline of a challenge opened at t: rebuttals in [t, t + W), resolution in
///      [t + W, t + 2W) where W = `responseWindow` at challenge time; the market's dispute end
///      is raised to t + 2W (never lowered), so the report can neither finalize before the
///      resolution period ends nor escape a resolution called within it. A resolution after
///      t + 2W is refused by the market (DisputeWindowClosed), as a challenge after the
///      original window would be: someone must act in time (the watcher resolves at t + W).
///      One pending challenge per request (ChallengePending otherwise); a rebutted device is
///      marked `equivocated` and backs no further challenge, so a device owner can delay a
///      report by at most 2W per device, each time paying the penalty. No challenger bond:
///      only the device key can sign a contradicting unit, so every false challenge comes
///      with a slashable equivocation by the device owner (residual risk: an owner with no
///      free stake delays once per device for free).
///      Known limit: after a rebuttal the report stands although the device's data is
///      suspect (it signed two values; the oracles' choice among them is not judged).
///      Meter units are verified under the EIP-712 domain that nodes sign, the one of the
///      DeviceRegistry ("GridFlex Meter", "1", chainId, registry), not this contract's.
///      Units a node would never sign (see gridflex/attestation.py `check_shape`: zero
///      interval, start off the grid, 0 or more than 96 readings, a partial int64) are
///      rejected as malformed: oracles reject them at ingest, so they cannot be what a
///      report contradicts.
contract DisputeResolver is IDisputeResolver, AccessControl, ReentrancyGuard {
    bytes32 public constant METER_READINGS_TYPEHASH = keccak256(
        "MeterReadings(uint256 deviceId,uint64 firstIntervalStart,uint32 intervalSeconds,uint64 sequence,bytes energyWh)"
    );
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant METER_NAME_HASH = keccak256("GridFlex Meter");
    bytes32 private constant METER_VERSION_HASH = keccak256("1");

    uint256 public constant MAX_INTERVALS_PER_UNIT = 96;
    /// @notice Bounds of the challenger's share. At most half, so an oracle challenging its
    ///         own report still loses at least half of its bond to the treasury; at least a
    ///         tenth, so watching reports pays.
    uint16 public constant MIN_CHALLENGER_SHARE_BPS = 1_000;
    uint16 public constant MAX_CHALLENGER_SHARE_BPS = 5_000;

    uint256 private constant USED_READING_BYTES = 16;
    uint256 private constant ENERGY_BYTES = 8;
    uint256 private constant P256_SIGNATURE_LENGTH = 64;

    IFlexMarket public immutable market;
    IOracleCommittee public immutable committee;
    IDeviceRegistry public immutable registry;

    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedMeterDomain;

    /// @notice Bounds of the response window (rebuttal period; the resolution period after it
    ///         has the same length).
    uint64 public constant MIN_RESPONSE_WINDOW = 10 minutes;
    uint64 public constant MAX_RESPONSE_WINDOW = 1 days;
    /// @notice Bounds of the equivocation penalty (FLEX, 18 decimals).
    uint256 public constant MIN_EQUIVOCATION_PENALTY = 1e18;
    uint256 public constant MAX_EQUIVOCATION_PENALTY = 1_000_000e18;

    IStaking public immutable staking;

    uint16 public challengerShareBps = 5_000;
    uint64 public responseWindow = 1 hours;
    uint256 public equivocationPenalty = 1_000e18;
    uint256 public challengeCount;

    mapping(uint256 challengeId => Challenge) private _challenges;
    mapping(uint256 requestId => uint256 challengeId) public pendingChallengeOf;
    mapping(uint256 deviceId => bool) public equivocated;

    /// @dev What a valid proof established, carried from the checks to the effects.
    struct Finding {
        uint16 round;
        uint64 signerBitmap;
        uint64 intervalStart;
        int64 usedEnergyWh;
        int64 signedEnergyWh;
    }

    constructor(address admin, IFlexMarket market_, IOracleCommittee committee_, IDeviceRegistry registry_) {
        if (
            admin == address(0) || address(market_) == address(0) || address(committee_) == address(0)
                || address(registry_) == address(0)
        ) revert ZeroAddress();
        market = market_;
        committee = committee_;
        registry = registry_;
        staking = committee_.staking();
        _cachedChainId = block.chainid;
        _cachedMeterDomain = _buildMeterDomain(address(registry_));
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        emit ChallengerShareSet(5_000);
        emit ResponseWindowSet(1 hours);
        emit EquivocationPenaltySet(1_000e18);
    }

    // ─── Fraud proofs ─────────────────────────────────────────────────────────────────────

    /// @inheritdoc IDisputeResolver
    /// @dev Checks (views), state, then the market call (an immutable protocol contract).
    // slither-disable-next-line reentrancy-events
    function challenge(
        uint256 requestId,
        uint256 deviceId,
        bytes calldata usedReadings,
        bytes32[] calldata readingsProof,
        uint256 usedIndex,
        MeterUnit calldata signedUnit,
        uint256 unitIndex
    ) external nonReentrant returns (uint256 challengeId) {
        uint256 pending = pendingChallengeOf[requestId];
        if (pending != 0) revert ChallengePending(requestId, pending);
        if (equivocated[deviceId]) revert DeviceEquivocated(deviceId);
        Finding memory f = _prove(requestId, deviceId, usedReadings, readingsProof, usedIndex, signedUnit, unitIndex);
        challengeId = _open(requestId, deviceId, f);
    }

    /// @inheritdoc IDisputeResolver
    /// @dev State is written before the one external call (staking, which calls back nobody).
    // slither-disable-next-line reentrancy-events
    function rebut(uint256 challengeId, MeterUnit calldata unit, uint256 unitIndex)
        external
        nonReentrant
        returns (uint256 penalty)
    {
        Challenge storage c = _pendingChallenge(challengeId);
        uint256 deadline = c.responseDeadline;
        if (block.timestamp >= deadline) revert ResponseWindowClosed(challengeId, deadline);
        uint256 deviceId = c.deviceId;
        int64 value = _signedReading(deviceId, c.intervalStart, unit, unitIndex);
        if (value != c.usedEnergyWh) revert RebuttalValueMismatch(challengeId, value, c.usedEnergyWh);
        c.status = ChallengeStatus.Rebutted;
        uint256 requestId = c.requestId;
        address owner = c.deviceOwner;
        delete pendingChallengeOf[requestId];
        equivocated[deviceId] = true;
        penalty = staking.slashUnlocked(owner, equivocationPenalty, msg.sender, challengerShareBps);
        emit ChallengeRebutted(challengeId, requestId, deviceId, msg.sender, owner, penalty);
    }

    /// @inheritdoc IDisputeResolver
    /// @dev State first, then the market and committee (immutable protocol contracts; the
    ///      committee's staking transfers FLEX, which calls back nobody); nonReentrant.
    // slither-disable-next-line reentrancy-events
    function resolve(uint256 challengeId) external nonReentrant returns (uint256 slashedTotal) {
        Challenge storage c = _pendingChallenge(challengeId);
        uint256 deadline = c.responseDeadline;
        if (block.timestamp < deadline) revert ResponseWindowOpen(challengeId, deadline);
        c.status = ChallengeStatus.Resolved;
        uint256 requestId = c.requestId;
        address challenger = c.challenger;
        delete pendingChallengeOf[requestId];
        market.voidReport(requestId);
        slashedTotal = committee.slashSigners(c.signerBitmap, challenger, challengerShareBps);
        emit ChallengeResolved(challengeId, requestId, c.round, challenger, slashedTotal);
    }

    // ─── Governance ───────────────────────────────────────────────────────────────────────

    function setChallengerShareBps(uint16 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (value < MIN_CHALLENGER_SHARE_BPS || value > MAX_CHALLENGER_SHARE_BPS) {
            revert ParameterOutOfBounds("challengerShareBps", value, MIN_CHALLENGER_SHARE_BPS, MAX_CHALLENGER_SHARE_BPS);
        }
        challengerShareBps = value;
        emit ChallengerShareSet(value);
    }

    function setResponseWindow(uint64 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (value < MIN_RESPONSE_WINDOW || value > MAX_RESPONSE_WINDOW) {
            revert ParameterOutOfBounds("responseWindow", value, MIN_RESPONSE_WINDOW, MAX_RESPONSE_WINDOW);
        }
        responseWindow = value;
        emit ResponseWindowSet(value);
    }

    function setEquivocationPenalty(uint256 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (value < MIN_EQUIVOCATION_PENALTY || value > MAX_EQUIVOCATION_PENALTY) {
            revert ParameterOutOfBounds(
                "equivocationPenalty", value, MIN_EQUIVOCATION_PENALTY, MAX_EQUIVOCATION_PENALTY
            );
        }
        equivocationPenalty = value;
        emit EquivocationPenaltySet(value);
    }

    // ─── Views ────────────────────────────────────────────────────────────────────────────

    function challengeOf(uint256 challengeId) external view returns (Challenge memory) {
        return _challenges[challengeId];
    }

    function meterDomainSeparator() public view returns (bytes32) {
        if (block.chainid == _cachedChainId) return _cachedMeterDomain;
        return _buildMeterDomain(address(registry));
    }

    function unitDigest(MeterUnit calldata unit) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                METER_READINGS_TYPEHASH,
                unit.deviceId,
                unit.firstIntervalStart,
                unit.intervalSeconds,
                unit.sequence,
                keccak256(unit.energyWh)
            )
        );
        return MessageHashUtils.toTypedDataHash(meterDomainSeparator(), structHash);
    }

    // ─── Internals ────────────────────────────────────────────────────────────────────────

    /// @dev Every check of a challenge (views only); reverts with the first one that fails.
    function _prove(
        uint256 requestId,
        uint256 deviceId,
        bytes calldata usedReadings,
        bytes32[] calldata readingsProof,
        uint256 usedIndex,
        MeterUnit calldata signedUnit,
        uint256 unitIndex
    ) private view returns (Finding memory f) {
        (f.round, f.signerBitmap) = _disputableReport(requestId);
        (f.intervalStart, f.usedEnergyWh) = _usedReading(requestId, deviceId, usedReadings, readingsProof, usedIndex);
        f.signedEnergyWh = _signedReading(deviceId, f.intervalStart, signedUnit, unitIndex);
        if (f.signedEnergyWh == f.usedEnergyWh) revert ValuesAgree(deviceId, f.intervalStart, f.usedEnergyWh);
    }

    /// @dev Records the challenge, extends the report's dispute end, emits ChallengeOpened.
    // slither-disable-next-line reentrancy-events
    function _open(uint256 requestId, uint256 deviceId, Finding memory f) private returns (uint256 challengeId) {
        uint256 window = responseWindow;
        uint256 deadline = block.timestamp + window;
        challengeId = ++challengeCount;
        Challenge storage c = _challenges[challengeId];
        c.requestId = requestId;
        c.deviceId = deviceId;
        c.challenger = msg.sender;
        // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit 40 bits
        c.responseDeadline = uint40(deadline);
        c.round = f.round;
        c.status = ChallengeStatus.Pending;
        c.deviceOwner = registry.device(deviceId).owner;
        c.signerBitmap = f.signerBitmap;
        c.intervalStart = f.intervalStart;
        c.usedEnergyWh = f.usedEnergyWh;
        c.signedEnergyWh = f.signedEnergyWh;
        pendingChallengeOf[requestId] = challengeId;
        market.extendDispute(requestId, deadline + window);
        _emitOpened(challengeId, requestId, deviceId, f, deadline, market.request(requestId).disputeEndsAt);
    }

    function _emitOpened(
        uint256 challengeId,
        uint256 requestId,
        uint256 deviceId,
        Finding memory f,
        uint256 deadline,
        uint256 disputeEndsAt
    ) private {
        emit ChallengeOpened(
            challengeId,
            requestId,
            deviceId,
            f.round,
            f.intervalStart,
            f.usedEnergyWh,
            f.signedEnergyWh,
            msg.sender,
            deadline,
            disputeEndsAt
        );
    }

    function _pendingChallenge(uint256 challengeId) private view returns (Challenge storage c) {
        c = _challenges[challengeId];
        if (c.status != ChallengeStatus.Pending) revert ChallengeNotPending(challengeId, c.status);
    }

    /// @dev The pending report's round and signers; reverts unless the request is Reported
    ///      and its dispute window is open (the market's own voidReport rule).
    function _disputableReport(uint256 requestId) private view returns (uint16 round, uint64 signerBitmap) {
        IFlexMarket.Request memory r = market.request(requestId);
        if (r.status != IFlexMarket.RequestStatus.Reported || block.timestamp >= r.disputeEndsAt) {
            revert NotDisputable(requestId, r.status, r.disputeEndsAt);
        }
        return (r.reportRound, r.signerBitmap);
    }

    /// @dev Proves the device's used readings under the pending report's readingsRoot and
    ///      decodes reading `usedIndex`.
    function _usedReading(
        uint256 requestId,
        uint256 deviceId,
        bytes calldata usedReadings,
        bytes32[] calldata readingsProof,
        uint256 usedIndex
    ) private view returns (uint64 intervalStart, int64 energyWh) {
        uint256 count = usedReadings.length / USED_READING_BYTES;
        if (usedIndex >= count) revert UsedIndexOutOfRange(usedIndex, count);
        bytes32 readingsRoot = market.reportOf(requestId).readingsRoot;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(deviceId, keccak256(usedReadings)))));
        if (!MerkleProof.verifyCalldata(readingsProof, readingsRoot, leaf)) {
            revert ReadingsProofInvalid(requestId, deviceId, readingsRoot);
        }
        uint256 offset = usedIndex * USED_READING_BYTES;
        intervalStart = uint64(bytes8(usedReadings[offset:offset + 8]));
        energyWh = int64(uint64(bytes8(usedReadings[offset + 8:offset + 16])));
    }

    /// @dev Checks that `unit` is the device's, well formed, covers `intervalStart` at
    ///      `unitIndex` and is signed by the device's registered key; returns the signed value.
    function _signedReading(uint256 deviceId, uint64 intervalStart, MeterUnit calldata unit, uint256 unitIndex)
        private
        view
        returns (int64)
    {
        if (unit.deviceId != deviceId) revert UnitDeviceMismatch(unit.deviceId, deviceId);
        uint256 length = unit.energyWh.length;
        uint256 interval = unit.intervalSeconds;
        uint256 count = length / ENERGY_BYTES;
        if (
            interval == 0 || unit.firstIntervalStart % interval != 0 || length % ENERGY_BYTES != 0 || count == 0
                || count > MAX_INTERVALS_PER_UNIT
        ) revert UnitMalformed(deviceId, interval, length);
        if (unitIndex >= count) revert UnitIndexOutOfRange(unitIndex, count);
        uint256 unitStart = uint256(unit.firstIntervalStart) + unitIndex * interval;
        if (unitStart != intervalStart) revert UnitIntervalMismatch(unitStart, intervalStart);
        _checkUnitSignature(unit);
        uint256 offset = unitIndex * ENERGY_BYTES;
        return int64(uint64(bytes8(unit.energyWh[offset:offset + ENERGY_BYTES])));
    }

    function _checkUnitSignature(MeterUnit calldata unit) private view {
        IDeviceRegistry.Device memory d = registry.device(unit.deviceId);
        bytes32 digest = unitDigest(unit);
        bool valid = false;
        if (d.keyType == IDeviceRegistry.KeyType.Secp256k1) {
            // slither-disable-next-line unused-return -- the third value only details `err`
            (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, unit.signature);
            valid = err == ECDSA.RecoverError.NoError && signer == address(uint160(uint256(d.keyX)));
        } else if (unit.signature.length == P256_SIGNATURE_LENGTH) {
            // verifyNative rejects high-s signatures (malleability) and invalid keys.
            valid = P256.verifyNative(
                digest, bytes32(unit.signature[0:32]), bytes32(unit.signature[32:64]), d.keyX, d.keyY
            );
        }
        if (!valid) revert UnitSignatureInvalid(unit.deviceId, d.keyType);
    }

    function _buildMeterDomain(address registry_) private view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, METER_NAME_HASH, METER_VERSION_HASH, block.chainid, registry_));
    }
}
