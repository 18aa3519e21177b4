// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IFlexMarket} from "./IFlexMarket.sol";
import {IDeviceRegistry} from "./IDeviceRegistry.sol";

/// @title IDisputeResolver
/// @notice Fraud proofs against oracle reports, in two phases. During a report's dispute
///         window anyone may `challenge` it: show one reading the report used (proven under its
///         `readingsRoot`) and the device's own signed meter unit for the same (device,
///         interval) with a different value. That opens a pending challenge and extends the
///         report's dispute end past the response deadline, so the report cannot finalize.
///         Until the deadline anyone may `rebut`: show a unit signed by the same device for the
///         same interval with exactly the used value. The device then signed two values
///         (equivocation): the challenge is dismissed, the report stands, the device owner's
///         free stake is slashed (`equivocationPenalty`, part to the rebutter) and the device
///         can no longer back a challenge; the challenger's bond is slashed too. Without a
///         rebuttal, after the deadline anyone may `resolve`: the report is voided (the
///         committee posts a corrected one in the next round), its signers' bonds are slashed,
///         part to the challenger, and the challenger's bond is released.
///         Every unit is judged by the device as it stood at the unit's first interval
///         (`IDeviceRegistry.deviceAt`): its key then, its owner then. A later rotation,
///         transfer, deactivation or update changes nothing about who was right, and an
///         equivocation is paid by whoever owned the device when it was metered.
///         `proveEquivocation` needs no report at all: two units signed for one interval
///         with different values slash the owner at that interval, so a provider who shows
///         oracles split views pays even when the request then expires without a report.
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
    enum ChallengeStatus {
        None,
        Pending,
        Rebutted,
        Resolved,
        /// @dev Nothing left to judge when resolved: the report round was voided by another
        ///      challenge, finalized or its window closed. The bond is released; nobody slashed.
        Moot
    }

    /// @notice A challenge (five slots). `signerBitmap` is captured at challenge time (the
    ///         signers are slashed on resolution); `deviceOwner` is the owner of the device at
    ///         the disputed interval (`deviceAt`), who controlled the key that signed it and
    ///         pays on rebuttal whatever happened to the device since. `bond` is the
    ///         challenger's stake locked until the challenge is settled.
    struct Challenge {
        uint256 requestId;
        uint256 deviceId;
        address challenger;
        uint40 responseDeadline;
        uint16 round;
        ChallengeStatus status;
        address deviceOwner;
        uint96 bond;
        uint64 signerBitmap;
        uint64 intervalStart;
        int64 usedEnergyWh;
        int64 signedEnergyWh;
    }

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
    /// @notice Thrown when a challenge comes at or after the report round's original dispute
    ///         end (before any extension): challenges only extend, they never open, a window.
    error ChallengeWindowClosed(uint256 requestId, uint16 round, uint256 originalDisputeEndsAt);
    /// @notice Thrown when a unit is not wholly inside the device epoch of its first interval:
    ///         it ends after the next owner action (`validUntil`), so no single key signed it.
    error UnitSpansDeviceEpochs(uint256 deviceId, uint256 unitStart, uint256 unitEnd, uint256 validUntil);
    /// @notice Thrown when a unit's last interval has not ended yet: nothing metered it.
    error UnitNotEnded(uint256 deviceId, uint256 unitEnd, uint256 now_);
    /// @notice Thrown when the two units of an equivocation proof have different interval lengths.
    error IntervalLengthMismatch(uint256 intervalSecondsA, uint256 intervalSecondsB); /// @notice Thrown when the device was proven to equivocate: its units back no challenge.
    error DeviceEquivocated(uint256 deviceId);
    /// @notice Thrown when the challenge is not pending (unknown, rebutted or resolved).
    error ChallengeNotPending(uint256 challengeId, ChallengeStatus status);
    /// @notice Thrown when rebutting at or after the challenge's response deadline.
    error ResponseWindowClosed(uint256 challengeId, uint256 responseDeadline);
    /// @notice Thrown when resolving before the challenge's response deadline.
    error ResponseWindowOpen(uint256 challengeId, uint256 responseDeadline);
    /// @notice Thrown when the rebuttal unit's value is not the value the report used.
    error RebuttalValueMismatch(uint256 challengeId, int64 unitEnergyWh, int64 usedEnergyWh);

    /// @notice A fraud proof was shown against report `round` of `requestId`: it cannot
    ///         finalize before `disputeEndsAt`; it may be rebutted until `responseDeadline`.
    event ChallengeOpened(
        uint256 indexed challengeId,
        uint256 indexed requestId,
        uint256 indexed deviceId,
        uint16 round,
        uint64 intervalStart,
        int64 usedEnergyWh,
        int64 signedEnergyWh,
        address challenger,
        uint256 responseDeadline,
        uint256 disputeEndsAt
    );
    /// @notice The device signed the used value too: the challenge is dismissed, the report
    ///         stands, `deviceOwner` lost `penalty` FLEX of stake (0 when the device had been
    ///         proven to equivocate already) and the challenger its bond (`bondSlashed`);
    ///         `rebutter` got its share of both.
    event ChallengeRebutted(
        uint256 indexed challengeId,
        uint256 indexed requestId,
        uint256 indexed deviceId,
        address rebutter,
        address deviceOwner,
        uint256 penalty,
        address challenger,
        uint256 bondSlashed
    );
    /// @notice Resolved with nothing left to judge (the round was voided by another challenge,
    ///         finalized, or its window closed): `bond` released, no void, no slash.
    event ChallengeMooted(uint256 indexed challengeId, uint256 indexed requestId, uint16 indexed round, uint256 bond);
    /// @notice `deviceId` signed two values for the interval at `intervalStart`; `owner`, who
    ///         owned it then, lost `penalty` FLEX (`prover` got its share).
    event EquivocationProven(
        uint256 indexed deviceId, uint64 indexed intervalStart, address indexed owner, address prover, uint256 penalty
    );
    event ChallengeBondSet(uint256 challengeBond);
    /// @notice Unrebutted: report `round` of `requestId` is void and its signers lost
    ///         `slashedTotal` FLEX of bond (`challenger` got its share).
    event ChallengeResolved(
        uint256 indexed challengeId,
        uint256 indexed requestId,
        uint16 indexed round,
        address challenger,
        uint256 slashedTotal
    );
    event ResponseWindowSet(uint256 responseWindow);
    event EquivocationPenaltySet(uint256 equivocationPenalty);
    event ChallengerShareSet(uint256 challengerShareBps);

    /// @notice Proves the pending report of `requestId` used a reading that contradicts what
    ///         the device signed; opens a challenge (nothing is voided or slashed yet) and
    ///         extends the report's dispute end to `responseDeadline + responseWindow`.
    /// @param deviceId the device whose used readings are shown
    /// @param usedReadings the device's used readings as committed in the report
    /// @param readingsProof Merkle proof of the (deviceId, keccak256(usedReadings)) leaf
    /// @param usedIndex which 16-byte reading of `usedReadings` is disputed
    /// @param signedUnit a unit signed by the device covering the disputed interval
    /// @param unitIndex position of the disputed interval in `signedUnit`
    /// @return challengeId the new challenge's id (from 1)
    /// @dev Locks `challengeBond` of the caller's free stake (Staking.InsufficientFreeStake
    ///      otherwise). Several challenges may be pending against one report; each opened
    ///      before the round's original dispute end (ChallengeWindowClosed after it) and each
    ///      raises the end to at most its own t + 2W, so a report's total delay is bounded by
    ///      2 x responseWindow past its original window. Reverts with UnknownRequest (from the
    ///      market) or UnknownDevice / DeviceNotYetRegistered (from the registry);
    ///      DeviceEquivocated for a device proven to equivocate.
    function challenge(
        uint256 requestId,
        uint256 deviceId,
        bytes calldata usedReadings,
        bytes32[] calldata readingsProof,
        uint256 usedIndex,
        MeterUnit calldata signedUnit,
        uint256 unitIndex
    ) external returns (uint256 challengeId);

    /// @notice Dismisses a pending challenge with a unit signed by the same device covering the
    ///         same interval with exactly the value the report used: proof that the device
    ///         signed two values for one interval. Slashes the device owner's free stake (up
    ///         to `equivocationPenalty`, `challengerShareBps` of it to the caller); the report
    ///         stands and finalizes after its extended dispute end. Before the response
    ///         deadline only; permissionless.
    /// @param unit the device-signed unit with the used value
    /// @param unitIndex position of the disputed interval in `unit`
    ///         The challenger's bond is slashed too (same share to the caller).
    /// @return penalty what was taken from the device owner
    function rebut(uint256 challengeId, MeterUnit calldata unit, uint256 unitIndex) external returns (uint256 penalty);

    /// @notice Executes an unrebutted challenge once its response deadline passed: voids the
    ///         report and slashes the signers captured at challenge time (the challenger gets
    ///         `challengerShareBps`). Permissionless.
    /// @dev Must run before the extended dispute end (the market refuses a void after it,
    ///      DisputeWindowClosed): the resolution period is `responseWindow` long.
    ///         Releases the challenger's bond. When the round is no longer voidable (another
    ///         challenge voided it, it was finalized, its window closed) the challenge is Moot:
    ///         bond released, nothing voided or slashed.
    /// @return slashedTotal the oracle bonds slashed (0 when moot)
    function resolve(uint256 challengeId) external returns (uint256 slashedTotal);

    /// @notice Proves that a device signed two different values for one interval, with no
    ///         report needed and at any time: both units verified against the device's key in
    ///         force at that interval. Marks the device equivocated (once per device: its units
    ///         back no challenge from now on) and slashes the owner at that interval
    ///         (`equivocationPenalty` of free then unbonding stake, `challengerShareBps` of it
    ///         to the caller). Permissionless.
    /// @param a a device-signed unit; `ia` the position of the interval in it
    /// @param b another unit of the same device with the same interval (at `ib`) and length
    /// @return penalty what was taken from the owner
    function proveEquivocation(MeterUnit calldata a, uint256 ia, MeterUnit calldata b, uint256 ib)
        external
        returns (uint256 penalty);

    /// @notice Governance: how long a challenge waits for a rebuttal (also the length of the
    ///         resolution period after it).
    function setResponseWindow(uint64 value) external;
    /// @notice Governance: the most FLEX taken from a device owner whose device equivocated.
    function setEquivocationPenalty(uint256 value) external;
    /// @notice Governance: the FLEX a challenger locks per challenge (lost when rebutted).
    function setChallengeBond(uint256 value) external;

    function challengeOf(uint256 challengeId) external view returns (Challenge memory);
    /// @notice How many challenges against `requestId` (any round) are pending.
    function pendingChallengeCount(uint256 requestId) external view returns (uint256);
    /// @notice The dispute end of report `round` of `requestId` before any challenge extended
    ///         it (0 until its first challenge); no challenge is opened at or after it.
    function originalDisputeEndsAt(uint256 requestId, uint16 round) external view returns (uint256);
    function challengeBond() external view returns (uint256);
    function challengeCount() external view returns (uint256);
    /// @notice True once the device was proven to have signed two values for one interval.
    function equivocated(uint256 deviceId) external view returns (bool);
    function responseWindow() external view returns (uint64);
    function equivocationPenalty() external view returns (uint256);

    /// @notice Governance: the challenger's share of slashed oracle bonds, in basis points.
    function setChallengerShareBps(uint16 value) external;

    function challengerShareBps() external view returns (uint16);
    /// @notice The EIP-712 domain separator of meter units on this chain (the registry's).
    function meterDomainSeparator() external view returns (bytes32);
    /// @notice The EIP-712 digest a device signs for `unit` (its signature is ignored).
    function unitDigest(MeterUnit calldata unit) external view returns (bytes32);
}
