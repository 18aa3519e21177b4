// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IFlexMarket} from "./IFlexMarket.sol";
import {IDeviceRegistry} from "./IDeviceRegistry.sol";

/// @title IDisputeResolver
/// @notice Fraud proofs against oracle reports. During a report's dispute window anyone may
///         show one reading the report used (proven under its `readingsRoot`) and the device's
///         own signed meter unit for the same (device, interval) with a different value. A
///         valid proof voids the report (the committee then posts a corrected one in the next
///         round) and slashes the bonds of the oracles that signed it, part to the challenger.
/// @dev Formats (gridflex/attestation.py, gridflex/reports.py):
///      - used readings of one device: `abi.encodePacked(uint64 intervalStart, int64 energyWh)`
///        pairs (16 bytes each) sorted by interval; leaf
///        `keccak256(keccak256(abi.encode(uint256 deviceId, bytes32 keccak256(usedReadings))))`
///        (OpenZeppelin StandardMerkleTree), root = the report's `readingsRoot`;
///      - meter unit: EIP-712 `MeterReadings(uint256 deviceId,uint64 firstIntervalStart,
///        uint32 intervalSeconds,uint64 sequence,bytes energyWh)`, `energyWh` int64 big-endian
///        packed (8 bytes per interval), domain {name "GridFlex Meter", version "1", chainId,
///        verifyingContract = the DeviceRegistry}; signature 65-byte r||s||v (secp256k1) or
///        64-byte low-s r||s (P-256), by the key the registry holds for the device.
interface IDisputeResolver {
    /// @notice A run of interval readings signed by one device (the node's signed unit).
    struct MeterUnit {
        uint256 deviceId;
        uint64 firstIntervalStart;
        uint32 intervalSeconds;
        uint64 sequence;
        /// @dev int64 values, big-endian, 8 bytes each.
        bytes energyWh;
        /// @dev 65-byte r||s||v (secp256k1 device key) or 64-byte low-s r||s (P-256 key).
        bytes signature;
    }

    /// @notice Thrown when a constructor address is zero.
    error ZeroAddress();
    /// @notice Thrown when the request has no report in its dispute window: not Reported, or
    ///         the window ended (`disputeEndsAt` <= now).
    error NotDisputable(uint256 requestId, IFlexMarket.RequestStatus status, uint256 disputeEndsAt);
    /// @notice Thrown when the Merkle proof of (deviceId, keccak256(usedReadings)) does not
    ///         lead to the report's readingsRoot.
    error ReadingsProofInvalid(uint256 requestId, uint256 deviceId, bytes32 readingsRoot);
    /// @notice Thrown when `usedIndex` points past the used readings (16 bytes per reading).
    error UsedIndexOutOfRange(uint256 usedIndex, uint256 readingCount);
    /// @notice Thrown when the signed unit belongs to another device than the used readings.
    error UnitDeviceMismatch(uint256 unitDeviceId, uint256 deviceId);
    /// @notice Thrown for a unit no node signs and no oracle accepts: zero interval, start off
    ///         the interval grid, a partial int64, or not 1 to 96 readings.
    error UnitMalformed(uint256 deviceId, uint256 intervalSeconds, uint256 energyBytes);
    /// @notice Thrown when `unitIndex` points past the unit's readings (8 bytes per reading).
    error UnitIndexOutOfRange(uint256 unitIndex, uint256 intervalCount);
    /// @notice Thrown when the unit's interval at `unitIndex` is not the used reading's interval.
    error UnitIntervalMismatch(uint256 unitIntervalStart, uint256 usedIntervalStart);
    /// @notice Thrown when the unit's signature does not verify against the device's
    ///         registered key under the meter domain of this chain and registry.
    error UnitSignatureInvalid(uint256 deviceId, IDeviceRegistry.KeyType keyType);
    /// @notice Thrown when the signed value equals the used one: nothing to dispute.
    error ValuesAgree(uint256 deviceId, uint256 intervalStart, int64 energyWh);
    /// @notice Thrown when a governance parameter is outside its bounds.
    error ParameterOutOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max);

    /// @notice A fraud proof succeeded: report `round` of `requestId` is void and its signers
    ///         lost `slashedTotal` FLEX of bond (`challenger` got its share).
    event ReportChallenged(
        uint256 indexed requestId,
        uint16 indexed round,
        uint256 indexed deviceId,
        uint64 intervalStart,
        int64 usedEnergyWh,
        int64 signedEnergyWh,
        address challenger,
        uint256 slashedTotal
    );
    event ChallengerShareSet(uint256 challengerShareBps);

    /// @notice Proves the pending report of `requestId` used a reading that contradicts what
    ///         the device signed; voids the report and slashes its signers.
    /// @param deviceId the device whose used readings are shown
    /// @param usedReadings the device's used readings as committed in the report
    /// @param readingsProof Merkle proof of the (deviceId, keccak256(usedReadings)) leaf
    /// @param usedIndex which 16-byte reading of `usedReadings` is disputed
    /// @param signedUnit a unit signed by the device covering the disputed interval
    /// @param unitIndex position of the disputed interval in `signedUnit`
    /// @dev Reverts with UnknownRequest (from the market) or UnknownDevice (from the registry)
    ///      for ids that do not exist.
    function challenge(
        uint256 requestId,
        uint256 deviceId,
        bytes calldata usedReadings,
        bytes32[] calldata readingsProof,
        uint256 usedIndex,
        MeterUnit calldata signedUnit,
        uint256 unitIndex
    ) external returns (uint256 slashedTotal);

    /// @notice Governance: the challenger's share of slashed oracle bonds, in basis points.
    function setChallengerShareBps(uint16 value) external;

    function challengerShareBps() external view returns (uint16);
    /// @notice The EIP-712 domain separator of meter units on this chain (the registry's).
    function meterDomainSeparator() external view returns (bytes32);
    /// @notice The EIP-712 digest a device signs for `unit` (its signature is ignored).
    function unitDigest(MeterUnit calldata unit) external view returns (bytes32);
}
