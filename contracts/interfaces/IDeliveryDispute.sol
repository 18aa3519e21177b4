// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IFlexMarket} from "./IFlexMarket.sol";
import {BaselineMath} from "../libraries/BaselineMath.sol";

/// @title IDeliveryDispute
/// @notice One-phase proofs that a pending oracle report's arithmetic does not follow from its
///         own committed readings. Where `IDisputeResolver` proves that a *used reading*
///         contradicts what the device signed, this proves that the *record* built from the used
///         readings is wrong: the baseline, metered or delivered energy, or the quality flag, is
///         not what `gridflex.measurement` computes from them, or the per-bid delivery figure the
///         market pays is not the sum of the bid's device records. The proof is self-contained
///         (both the record and the readings are signed by k oracles through the report's
///         roots), so there is no rebuttal: a valid proof voids the report at once and slashes
///         every signer's bond (`DisputeResolver.challengerShareBps` of it to the prover).
/// @dev Formats (gridflex/reports.py; OpenZeppelin StandardMerkleTree leaves):
///      - device record leaf `keccak256(keccak256(abi.encode(uint256 deviceId, uint16 bidIndex,
///        int256 baselineWh, int256 meteredWh, int256 deliveredWh, uint8 quality)))` under the
///        report's `devicesRoot`;
///      - used readings: `abi.encodePacked(uint64 intervalStart, int64 energyWh)` pairs sorted by
///        interval, leaf `keccak256(keccak256(abi.encode(uint256 deviceId,
///        bytes32 keccak256(usedReadings))))` under `readingsRoot`.
///      What the chain can and cannot judge: see `challengeArithmetic`.
interface IDeliveryDispute {
    /// @notice One device's record as committed under a report's devicesRoot.
    struct DeviceRecord {
        uint256 deviceId;
        uint16 bidIndex;
        int256 baselineWh;
        int256 meteredWh;
        int256 deliveredWh;
        /// @dev gridflex.reports.Quality: 0 OK, 1 FALLBACK, 2 INSUFFICIENT_DATA, 3 CONFLICT.
        uint8 quality;
    }

    /// @notice A device record with its Merkle proof under the report's devicesRoot.
    struct ProvenRecord {
        DeviceRecord record;
        bytes32[] proof;
    }

    /// @notice What a proof established.
    enum Fault {
        /// @dev The record's figures are not those recomputed from its used readings.
        Arithmetic,
        /// @dev The record names a bid index the request does not have.
        UnknownBid,
        /// @dev The record names a bid that was not awarded (measured devices are awarded ones).
        BidNotAwarded,
        /// @dev The record's device is not one of its bid's devices.
        DeviceNotInBid,
        /// @dev The used readings are not whole 16-byte pairs in strictly ascending order.
        MalformedReadings,
        /// @dev The bid's paid delivery figure is not the sum of its devices' records.
        BidTotal
    }

    /// @notice Thrown when a constructor address is zero.
    error ZeroAddress();
    /// @notice Thrown when the request has no report in its dispute window: not Reported (never
    ///         reported, settled, or already voided by an earlier proof), or the window ended.
    error NotDisputable(uint256 requestId, IFlexMarket.RequestStatus status, uint256 disputeEndsAt);
    /// @notice Thrown when the record's Merkle proof does not lead to the report's devicesRoot.
    error RecordProofInvalid(uint256 requestId, uint256 deviceId, bytes32 devicesRoot);
    /// @notice Thrown when the used readings' Merkle proof does not lead to the readingsRoot.
    error ReadingsProofInvalid(uint256 requestId, uint256 deviceId, bytes32 readingsRoot);
    /// @notice Thrown when the device list given for a bid is not the one the bid committed to
    ///         (`FlexMarket.devicesHashOf`).
    error BidDevicesMismatch(uint256 requestId, uint256 bidIndex);
    /// @notice Thrown when an X-of-Y record cannot be recomputed from used readings alone
    ///         (adjustment lead of 4 h plus the window longer than a day).
    error RecordNotJudgeable(uint256 requestId, uint8 baselineMethod, uint256 windowSeconds);
    /// @notice Thrown when the record is exactly what follows from its used readings.
    error ArithmeticCorrect(uint256 requestId, uint256 deviceId);
    /// @notice Thrown when the per-bid figures given are not the report's (deliveredHash).
    error DeliveryHashMismatch(uint256 requestId);
    /// @notice Thrown when a bid-total proof names a bid index the request does not have.
    error UnknownBid(uint256 requestId, uint256 bidIndex, uint256 bidCount);
    /// @notice Thrown when a bid-total proof targets a bid that was not awarded (its figure is
    ///         not paid).
    error BidNotAwarded(uint256 requestId, uint256 bidIndex);
    /// @notice Thrown when a bid-total proof does not give one record per bid device, in the
    ///         bid's device order (`position`: the first one that differs).
    error RecordsDoNotMatchBid(uint256 requestId, uint256 bidIndex, uint256 position);
    /// @notice Thrown when the bid's paid figure is exactly the sum of its device records.
    error BidTotalCorrect(uint256 requestId, uint256 bidIndex, uint256 deliveredWh);

    /// @notice Report `round` of `requestId` was proven wrong (`fault`, about `deviceId`; the
    ///         bid's first device for a BidTotal fault) and voided; its signers lost
    ///         `slashedTotal` FLEX of bond (`challenger` got its share). `expected` holds the
    ///         figures recomputed from the used readings (Arithmetic faults; zero otherwise).
    event ArithmeticProven(
        uint256 indexed requestId,
        uint16 indexed round,
        uint256 indexed deviceId,
        Fault fault,
        address challenger,
        BaselineMath.Figures expected,
        uint256 slashedTotal
    );

    /// @notice Proves that one device record of `requestId`'s pending report does not follow
    ///         from the report's own used readings of that device, voids the report and
    ///         slashes its signers. Permissionless, during the report's dispute window, one
    ///         proof per report (the next ones find it voided: NotDisputable).
    /// @param record the device record as committed under the report's devicesRoot
    /// @param recordProof Merkle proof of `record`
    /// @param usedReadings the device's used readings as committed under readingsRoot (not
    ///        read for a record of an unknown or unawarded bid or of a device not in its bid)
    /// @param readingsProof Merkle proof of (record.deviceId, keccak256(usedReadings))
    /// @param bidDeviceIds the device ids of the record's bid, as bid (`BidPlaced`)
    /// @return slashedTotal the oracle bonds slashed
    /// @dev Recomputes, from the used readings and on-chain facts only (the request's method,
    ///      direction, window and interval; the bid's awardedW; each bid device's capacity
    ///      `DeviceRegistry.deviceAt(id, bid.placedAt).capacityW`, which give the device's cap
    ///      `BaselineMath.deviceCapWh`), the record `gridflex.measurement.measure_device` builds
    ///      (`BaselineMath.measureUsedReadings`). It judges: baseline, metered and delivered
    ///      energy; OK vs FALLBACK vs INSUFFICIENT_DATA; for X-of-Y methods which history days
    ///      count (complete, same day type, within 45 days before the event day, the most
    ///      recent 10 / 4 / 5 / 3 of those in the used readings) and the day-of adjustment;
    ///      that the record's bid exists, was awarded and holds the device; malformed used
    ///      readings. It cannot judge: a CONFLICT flag (the conflict is evidence outside the
    ///      report; a CONFLICT record is still checked for its baseline and metered figures and
    ///      a zero delivery); omission (a reading or a whole eligible day left out of the used
    ///      readings, or a device's record left out of the tree, looks like missing data); the
    ///      device's earlier event days (a history day the oracles skipped as an event day);
    ///      and X-of-Y windows longer than 20 h (RecordNotJudgeable).
    function challengeArithmetic(
        uint256 requestId,
        DeviceRecord calldata record,
        bytes32[] calldata recordProof,
        bytes calldata usedReadings,
        bytes32[] calldata readingsProof,
        uint256[] calldata bidDeviceIds
    ) external returns (uint256 slashedTotal);

    /// @notice Proves that the delivery figure the market would pay for bid `bidIndex` is not
    ///         the sum of its devices' records (their deliveredWh, negatives counted as zero,
    ///         as gridflex.reports.build_report_trees sums them), voids the report and slashes
    ///         its signers. Needs every bid device's record, in the bid's device order.
    /// @param deliveredWh the report's per-bid figures (from `ReportSubmitted`)
    /// @param records one record per device of the bid, in `bidDeviceIds` order, each with its
    ///        Merkle proof under devicesRoot
    /// @param bidDeviceIds the device ids of the bid, as bid (`BidPlaced`)
    /// @return slashedTotal the oracle bonds slashed
    /// @dev A record of a bid device that names another bid is a fault too (DeviceNotInBid).
    ///      A record left out of the tree cannot be shown, so an omitted device is not judged.
    function challengeBidTotal(
        uint256 requestId,
        uint256[] calldata deliveredWh,
        uint16 bidIndex,
        ProvenRecord[] calldata records,
        uint256[] calldata bidDeviceIds
    ) external returns (uint256 slashedTotal);

    function market() external view returns (IFlexMarket);
}
