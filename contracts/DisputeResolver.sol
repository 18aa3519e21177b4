// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {P256} from "@openzeppelin/contracts/utils/cryptography/P256.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
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
/// @dev Holds FlexMarket.DISPUTE_ROLE, OracleCommittee.DISPUTE_ROLE, Staking.SLASHER_ROLE
///      (equivocation penalties, via `slashUnlocked`: never the stake a bid bond locks, so a
///      penalty cannot make the market's settlement revert; challenger bonds, via `slash` of
///      exactly what this contract locked) and Staking.LOCKER_ROLE (challenger bonds).
///      Holds no funds.
///      Timeline of a challenge opened at t: rebuttals in [t, t + W), resolution in
///      [t + W, t + 2W) where W = `responseWindow` at challenge time; the market's dispute end
///      is raised to t + 2W (never lowered), so the report can neither finalize before the
///      resolution period ends nor escape a resolution called within it. Challenges are
///      opened only before the round's original dispute end E (recorded at its first
///      challenge), so however many there are the report finalizes by E + 2W at the latest.
///      Several may be pending at once (a decoy cannot block an honest one); the first to be
///      resolved voids the round and the others become Moot (bond back, no second slash).
///      Every challenge locks `challengeBond` of the challenger's free stake, lost on
///      rebuttal: delays cost the one who causes them even with no free stake left after.
///      Units are judged by the device epoch in force at their first interval
///      (`IDeviceRegistry.signingKeyAt`), must lie wholly in it and must have ended: the
///      judgement of an interval never changes after the fact.
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
    /// @notice Bounds of the challenger's bond (FLEX, 18 decimals; fits the uint96 field).
    uint256 public constant MIN_CHALLENGE_BOND = 1e18;
    uint256 public constant MAX_CHALLENGE_BOND = 1_000_000e18;

    IStaking public immutable staking;

    uint16 public challengerShareBps = 5_000;
    uint64 public responseWindow = 1 hours;
    uint256 public equivocationPenalty = 1_000e18;
    uint256 public challengeBond = 100e18;
    uint256 public challengeCount;

    mapping(uint256 challengeId => Challenge) private _challenges;

    /// @dev Per request, one slot: the pending count (any round) and the original dispute end
    ///      of the latest challenged round (rounds only grow: a round is challenged only
    ///      while it is the request's current one).
    struct RequestDisputes {
        uint32 pending;
        uint16 round;
        uint40 originalEndsAt;
    }

    mapping(uint256 requestId => RequestDisputes) private _disputes;
    mapping(uint256 deviceId => bool) public equivocated;

    /// @dev What a valid proof established, carried from the checks to the effects.
    struct Finding {
        uint16 round;
        uint40 originalEndsAt;
        /// @dev The market's dispute end before this challenge.
        uint40 endsAt;
        address deviceOwner;
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
        emit ChallengeBondSet(100e18);
    }

    // ─── Fraud proofs ─────────────────────────────────────────────────────────────────────

    /// @inheritdoc IDisputeResolver
    /// @dev Checks (views), state, then the staking and market calls (immutable protocol
    ///      contracts that call back nobody); nonReentrant.
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
        if (equivocated[deviceId]) revert DeviceEquivocated(deviceId);
        Finding memory f = _prove(requestId, deviceId, usedReadings, readingsProof, usedIndex, signedUnit, unitIndex);
        challengeId = _open(requestId, deviceId, f);
    }

    /// @inheritdoc IDisputeResolver
    /// @dev State is written before the external calls (staking, which calls back nobody).
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
        (int64 value,) = _signedReading(deviceId, c.intervalStart, unit, unitIndex);
        if (value != c.usedEnergyWh) revert RebuttalValueMismatch(challengeId, value, c.usedEnergyWh);
        c.status = ChallengeStatus.Rebutted;
        _disputes[c.requestId].pending -= 1;
        // Proven before (another rebuttal or proveEquivocation): the owner paid once already.
        bool alreadyProven = equivocated[deviceId];
        equivocated[deviceId] = true;
        penalty = _slashRebutted(challengeId, c, alreadyProven);
    }

    /// @dev The rebutted challenger's bond (locked by `challenge`) and, once per device, the
    ///      owner's equivocation penalty (free stake only); the rebutter gets its share of both.
    function _slashRebutted(uint256 challengeId, Challenge storage c, bool alreadyProven)
        private
        returns (uint256 penalty)
    {
        uint16 share = challengerShareBps;
        address challenger = c.challenger;
        address owner = c.deviceOwner;
        uint256 bondSlashed = staking.slash(challenger, c.bond, msg.sender, share);
        if (!alreadyProven) penalty = staking.slashUnlocked(owner, equivocationPenalty, msg.sender, share);
        emit ChallengeRebutted(
            challengeId, c.requestId, c.deviceId, msg.sender, owner, penalty, challenger, bondSlashed
        );
    }

    /// @inheritdoc IDisputeResolver
    /// @dev State first, then the market, committee and staking (immutable protocol
    ///      contracts; staking transfers FLEX, which calls back nobody); nonReentrant.
    // slither-disable-next-line reentrancy-events
    function resolve(uint256 challengeId) external nonReentrant returns (uint256 slashedTotal) {
        Challenge storage c = _pendingChallenge(challengeId);
        uint256 deadline = c.responseDeadline;
        if (block.timestamp < deadline) revert ResponseWindowOpen(challengeId, deadline);
        uint256 requestId = c.requestId;
        address challenger = c.challenger;
        uint256 bond = c.bond;
        uint16 round = c.round;
        _disputes[requestId].pending -= 1;
        IFlexMarket.Request memory r = market.request(requestId);
        if (
            r.status != IFlexMarket.RequestStatus.Reported || r.reportRound != round
                || block.timestamp >= r.disputeEndsAt
        ) {
            c.status = ChallengeStatus.Moot;
            staking.unlock(challenger, bond);
            emit ChallengeMooted(challengeId, requestId, round, bond);
            return 0;
        }
        c.status = ChallengeStatus.Resolved;
        market.voidReport(requestId);
        slashedTotal = committee.slashSigners(c.signerBitmap, challenger, challengerShareBps);
        staking.unlock(challenger, bond);
        emit ChallengeResolved(challengeId, requestId, round, challenger, slashedTotal);
    }

    /// @inheritdoc IDisputeResolver
    /// @dev Checks (views), state, then the one staking call; nonReentrant.
    // slither-disable-next-line reentrancy-events
    function proveEquivocation(MeterUnit calldata a, uint256 ia, MeterUnit calldata b, uint256 ib)
        external
        nonReentrant
        returns (uint256 penalty)
    {
        uint256 deviceId = a.deviceId;
        if (equivocated[deviceId]) revert DeviceEquivocated(deviceId);
        if (a.intervalSeconds != b.intervalSeconds) {
            revert IntervalLengthMismatch(a.intervalSeconds, b.intervalSeconds);
        }
        if (ia >= MAX_INTERVALS_PER_UNIT) revert UnitIndexOutOfRange(ia, a.energyWh.length / ENERGY_BYTES);
        // forge-lint: disable-next-line(unsafe-typecast) -- checked against the unit grid below
        uint64 intervalStart = uint64(uint256(a.firstIntervalStart) + ia * a.intervalSeconds);
        (int64 valueA, address owner) = _signedReading(deviceId, intervalStart, a, ia);
        (int64 valueB,) = _signedReading(deviceId, intervalStart, b, ib);
        if (valueA == valueB) revert ValuesAgree(deviceId, intervalStart, valueA);
        equivocated[deviceId] = true;
        penalty = staking.slashUnlocked(owner, equivocationPenalty, msg.sender, challengerShareBps);
        emit EquivocationProven(deviceId, intervalStart, owner, msg.sender, penalty);
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

    function setChallengeBond(uint256 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (value < MIN_CHALLENGE_BOND || value > MAX_CHALLENGE_BOND) {
            revert ParameterOutOfBounds("challengeBond", value, MIN_CHALLENGE_BOND, MAX_CHALLENGE_BOND);
        }
        challengeBond = value;
        emit ChallengeBondSet(value);
    }

    // ─── Views ────────────────────────────────────────────────────────────────────────────

    function pendingChallengeCount(uint256 requestId) external view returns (uint256) {
        return _disputes[requestId].pending;
    }

    function originalDisputeEndsAt(uint256 requestId, uint16 round) public view returns (uint256) {
        RequestDisputes storage d = _disputes[requestId];
        return d.round == round ? d.originalEndsAt : 0;
    }

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
        (f.round, f.signerBitmap, f.originalEndsAt, f.endsAt) = _disputableReport(requestId);
        (f.intervalStart, f.usedEnergyWh) = _usedReading(requestId, deviceId, usedReadings, readingsProof, usedIndex);
        (f.signedEnergyWh, f.deviceOwner) = _signedReading(deviceId, f.intervalStart, signedUnit, unitIndex);
        if (f.signedEnergyWh == f.usedEnergyWh) revert ValuesAgree(deviceId, f.intervalStart, f.usedEnergyWh);
    }

    /// @dev Records the challenge, locks the bond, extends the report's dispute end, emits
    ///      ChallengeOpened.
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
        c.deviceOwner = f.deviceOwner;
        uint256 bond = challengeBond;
        // forge-lint: disable-next-line(unsafe-typecast) -- bounded by MAX_CHALLENGE_BOND
        c.bond = uint96(bond);
        c.signerBitmap = f.signerBitmap;
        c.intervalStart = f.intervalStart;
        c.usedEnergyWh = f.usedEnergyWh;
        c.signedEnergyWh = f.signedEnergyWh;
        _recordChallenge(requestId, f);
        market.extendDispute(requestId, deadline + window);
        staking.lock(msg.sender, bond);
        // The market's rule: the end is raised to `deadline + window`, never lowered.
        _emitOpened(challengeId, requestId, deviceId, f, deadline, Math.max(f.endsAt, deadline + window));
    }

    /// @dev Counts the challenge; at the round's first one, records the end that all its
    ///      challenges must come before.
    function _recordChallenge(uint256 requestId, Finding memory f) private {
        RequestDisputes storage d = _disputes[requestId];
        if (d.originalEndsAt == 0 || d.round != f.round) {
            d.round = f.round;
            d.originalEndsAt = f.originalEndsAt;
        }
        d.pending += 1;
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

    /// @dev The pending report's round, signers and original dispute end; reverts unless the
    ///      request is Reported, its (extended) window is open (the market's own voidReport
    ///      rule) and the round's original window is open too. Before the round's first
    ///      challenge the market's end is the original one: only challenges extend it.
    function _disputableReport(uint256 requestId)
        private
        view
        returns (uint16 round, uint64 signerBitmap, uint40 originalEndsAt, uint40 endsAt)
    {
        IFlexMarket.Request memory r = market.request(requestId);
        if (r.status != IFlexMarket.RequestStatus.Reported || block.timestamp >= r.disputeEndsAt) {
            revert NotDisputable(requestId, r.status, r.disputeEndsAt);
        }
        round = r.reportRound;
        uint256 recorded = originalDisputeEndsAt(requestId, round);
        if (recorded == 0) return (round, r.signerBitmap, r.disputeEndsAt, r.disputeEndsAt);
        if (block.timestamp >= recorded) revert ChallengeWindowClosed(requestId, round, recorded);
        // forge-lint: disable-next-line(unsafe-typecast) -- a stored uint40 timestamp
        return (round, r.signerBitmap, uint40(recorded), r.disputeEndsAt);
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

    /// @dev Checks that `unit` is the device's, well formed, ended, covers `intervalStart` at
    ///      `unitIndex`, lies in one device epoch and is signed by that epoch's key; returns the
    ///      signed value and the owner of that epoch (who answers for what its key signed).
    function _signedReading(uint256 deviceId, uint64 intervalStart, MeterUnit calldata unit, uint256 unitIndex)
        private
        view
        returns (int64 value, address owner)
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
        uint256 first = unit.firstIntervalStart;
        // slither-disable-next-line divide-before-multiply -- exact: length % ENERGY_BYTES == 0
        uint256 end = first + count * interval;
        // Only a finished reading is final: every epoch appended later starts at or after now.
        if (end > block.timestamp) revert UnitNotEnded(deviceId, end, block.timestamp);
        IDeviceRegistry.SigningKey memory key = registry.signingKeyAt(deviceId, first);
        if (end > key.validUntil) revert UnitSpansDeviceEpochs(deviceId, first, end, key.validUntil);
        _checkUnitSignature(unit, key);
        uint256 offset = unitIndex * ENERGY_BYTES;
        value = int64(uint64(bytes8(unit.energyWh[offset:offset + ENERGY_BYTES])));
        owner = key.owner;
    }

    function _checkUnitSignature(MeterUnit calldata unit, IDeviceRegistry.SigningKey memory d) private view {
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
