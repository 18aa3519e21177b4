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

/// @title DisputeResolver
/// @notice Checks fraud proofs against pending oracle reports: a reading the report used
///         (proven under its `readingsRoot`) against the device's own signed meter unit for
///         the same (device, interval). A contradiction voids the report in the market and
///         slashes the signing oracles' bonds in the committee, `challengerShareBps` of them to
///         the challenger and the rest to the treasury.
/// @dev Holds FlexMarket.DISPUTE_ROLE and OracleCommittee.DISPUTE_ROLE. Holds no funds and
///      keeps no per-challenge state: once voided, the request is no longer Reported, so the
///      same proof cannot be replayed; a corrected report of the next round can be challenged
///      afresh. Meter units are verified under the EIP-712 domain that nodes sign, the one of
///      the DeviceRegistry ("GridFlex Meter", "1", chainId, registry), not this contract's.
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

    uint16 public challengerShareBps = 5_000;

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
        _cachedChainId = block.chainid;
        _cachedMeterDomain = _buildMeterDomain(address(registry_));
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        emit ChallengerShareSet(5_000);
    }

    // ─── Fraud proofs ─────────────────────────────────────────────────────────────────────

    /// @inheritdoc IDisputeResolver
    /// @dev Checks only (external views), then the two protocol calls, then the event (it
    ///      carries the slashed total). The market and committee are immutable protocol
    ///      contracts; the committee's staking transfers FLEX, which calls back nobody;
    ///      nonReentrant covers the rest.
    // slither-disable-next-line reentrancy-events
    function challenge(
        uint256 requestId,
        uint256 deviceId,
        bytes calldata usedReadings,
        bytes32[] calldata readingsProof,
        uint256 usedIndex,
        MeterUnit calldata signedUnit,
        uint256 unitIndex
    ) external nonReentrant returns (uint256 slashedTotal) {
        Finding memory f = _prove(requestId, deviceId, usedReadings, readingsProof, usedIndex, signedUnit, unitIndex);
        market.voidReport(requestId);
        slashedTotal = committee.slashSigners(f.signerBitmap, msg.sender, challengerShareBps);
        _emitChallenged(requestId, deviceId, f, slashedTotal);
    }

    // ─── Governance ───────────────────────────────────────────────────────────────────────

    function setChallengerShareBps(uint16 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (value < MIN_CHALLENGER_SHARE_BPS || value > MAX_CHALLENGER_SHARE_BPS) {
            revert ParameterOutOfBounds("challengerShareBps", value, MIN_CHALLENGER_SHARE_BPS, MAX_CHALLENGER_SHARE_BPS);
        }
        challengerShareBps = value;
        emit ChallengerShareSet(value);
    }

    // ─── Views ────────────────────────────────────────────────────────────────────────────

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

    function _emitChallenged(uint256 requestId, uint256 deviceId, Finding memory f, uint256 slashedTotal) private {
        emit ReportChallenged(
            requestId, f.round, deviceId, f.intervalStart, f.usedEnergyWh, f.signedEnergyWh, msg.sender, slashedTotal
        );
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
