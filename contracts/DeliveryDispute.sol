// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IDeliveryDispute} from "./interfaces/IDeliveryDispute.sol";
import {IDisputeResolver} from "./interfaces/IDisputeResolver.sol";
import {IFlexMarket} from "./interfaces/IFlexMarket.sol";
import {IOracleCommittee} from "./interfaces/IOracleCommittee.sol";
import {IDeviceRegistry} from "./interfaces/IDeviceRegistry.sol";
import {BaselineMath} from "./libraries/BaselineMath.sol";
import {ReportLeaves} from "./libraries/ReportLeaves.sol";

/// @title DeliveryDispute
/// @notice One-phase arithmetic fraud proofs against pending oracle reports: a device record
///         that does not follow from the report's own used readings of that device
///         (`challengeArithmetic`), or a paid per-bid figure that is not the sum of the bid's
///         device records (`challengeBidTotal`). A valid proof voids the report and slashes its
///         signers at once; there is nothing to rebut, since k oracles signed both the record
///         and the readings it contradicts.
/// @dev Holds FlexMarket.DISPUTE_ROLE (voidReport) and OracleCommittee.DISPUTE_ROLE
///      (slashSigners); no state, no funds, no governance of its own: the prover's share is
///      DisputeResolver's `challengerShareBps`, one knob for both kinds of fraud proof. Reading
///      challenges pending against the report do not block a proof; after the void they resolve
///      Moot (DisputeResolver.resolve). A challenge's extension of the dispute end also extends
///      the time for an arithmetic proof.
contract DeliveryDispute is IDeliveryDispute, ReentrancyGuard {
    IFlexMarket public immutable market;
    IOracleCommittee public immutable committee;
    IDeviceRegistry public immutable registry;
    IDisputeResolver public immutable resolver;

    constructor(
        IFlexMarket market_,
        IOracleCommittee committee_,
        IDeviceRegistry registry_,
        IDisputeResolver resolver_
    ) {
        if (
            address(market_) == address(0) || address(committee_) == address(0) || address(registry_) == address(0)
                || address(resolver_) == address(0)
        ) revert ZeroAddress();
        market = market_;
        committee = committee_;
        registry = registry_;
        resolver = resolver_;
    }

    // ─── Proofs ───────────────────────────────────────────────────────────────────────────

    /// @inheritdoc IDeliveryDispute
    function challengeArithmetic(
        uint256 requestId,
        DeviceRecord calldata record,
        bytes32[] calldata recordProof,
        bytes calldata usedReadings,
        bytes32[] calldata readingsProof,
        uint256[] calldata bidDeviceIds
    ) external nonReentrant returns (uint256 slashedTotal) {
        IFlexMarket.Request memory r = _disputableRequest(requestId);
        _proveRecord(requestId, market.reportOf(requestId).devicesRoot, record, recordProof);
        (Fault fault, BaselineMath.Figures memory expected) =
            _findFault(requestId, r, record, usedReadings, readingsProof, bidDeviceIds);
        slashedTotal = _void(requestId, r, record.deviceId, fault, expected);
    }

    /// @inheritdoc IDeliveryDispute
    function challengeBidTotal(
        uint256 requestId,
        uint256[] calldata deliveredWh,
        uint16 bidIndex,
        ProvenRecord[] calldata records,
        uint256[] calldata bidDeviceIds
    ) external nonReentrant returns (uint256 slashedTotal) {
        IFlexMarket.Request memory r = _disputableRequest(requestId);
        if (bidIndex >= r.bidCount) revert UnknownBid(requestId, bidIndex, r.bidCount);
        Fault fault = _bidTotalFault(requestId, deliveredWh, bidIndex, records, bidDeviceIds);
        BaselineMath.Figures memory none = BaselineMath.Figures(0, 0, 0, 0);
        slashedTotal = _void(requestId, r, bidDeviceIds[0], fault, none);
    }

    // ─── Internals ────────────────────────────────────────────────────────────────────────

    /// @dev BidTotal or DeviceNotInBid for a wrong per-bid figure, else BidTotalCorrect.
    function _bidTotalFault(
        uint256 requestId,
        uint256[] calldata deliveredWh,
        uint16 bidIndex,
        ProvenRecord[] calldata records,
        uint256[] calldata bidDeviceIds
    ) private view returns (Fault fault) {
        IFlexMarket.Report memory report = market.reportOf(requestId);
        if (keccak256(abi.encodePacked(deliveredWh)) != report.deliveredHash) revert DeliveryHashMismatch(requestId);
        IFlexMarket.Bid memory b = market.bidOf(requestId, bidIndex);
        if (b.awardedW == 0) revert BidNotAwarded(requestId, bidIndex);
        _checkBidDevices(requestId, bidIndex, b.bidder, bidDeviceIds);
        uint256 total;
        (fault, total) = _sumRecords(requestId, report.devicesRoot, bidIndex, records, bidDeviceIds);
        if (fault == Fault.BidTotal && total == deliveredWh[bidIndex]) {
            revert BidTotalCorrect(requestId, bidIndex, total);
        }
    }

    /// @dev Proves one record per bid device (in the bid's order) and sums their positive
    ///      deliveries; DeviceNotInBid when one of them names another bid, else BidTotal.
    function _sumRecords(
        uint256 requestId,
        bytes32 devicesRoot,
        uint16 bidIndex,
        ProvenRecord[] calldata records,
        uint256[] calldata bidDeviceIds
    ) private pure returns (Fault fault, uint256 total) {
        uint256 n = bidDeviceIds.length;
        if (records.length != n) {
            revert RecordsDoNotMatchBid(requestId, bidIndex, records.length < n ? records.length : n);
        }
        fault = Fault.BidTotal;
        for (uint256 i; i < n; ++i) {
            DeviceRecord calldata record = records[i].record;
            if (record.deviceId != bidDeviceIds[i]) revert RecordsDoNotMatchBid(requestId, bidIndex, i);
            _proveRecord(requestId, devicesRoot, record, records[i].proof);
            if (record.bidIndex != bidIndex) fault = Fault.DeviceNotInBid;
            if (record.deliveredWh > 0) total += uint256(record.deliveredWh);
        }
    }

    /// @dev The request, if its report can still be voided (the market's own rule). Reading
    ///      challenges pending against it do not block a proof: once the round is voided they
    ///      resolve Moot (bond back, nothing slashed twice).
    function _disputableRequest(uint256 requestId) private view returns (IFlexMarket.Request memory r) {
        r = market.request(requestId);
        if (r.status != IFlexMarket.RequestStatus.Reported || block.timestamp >= r.disputeEndsAt) {
            revert NotDisputable(requestId, r.status, r.disputeEndsAt);
        }
    }

    function _proveReadings(
        uint256 requestId,
        uint256 deviceId,
        bytes calldata usedReadings,
        bytes32[] calldata readingsProof
    ) private view {
        bytes32 readingsRoot = market.reportOf(requestId).readingsRoot;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(deviceId, keccak256(usedReadings)))));
        if (!MerkleProof.verifyCalldata(readingsProof, readingsRoot, leaf)) {
            revert ReadingsProofInvalid(requestId, deviceId, readingsRoot);
        }
    }

    function _proveRecord(
        uint256 requestId,
        bytes32 devicesRoot,
        DeviceRecord calldata record,
        bytes32[] calldata proof
    ) private pure {
        bytes32 leaf = ReportLeaves.recordLeaf(record);
        if (!MerkleProof.verifyCalldata(proof, devicesRoot, leaf)) {
            revert RecordProofInvalid(requestId, record.deviceId, devicesRoot);
        }
    }

    function _checkBidDevices(uint256 requestId, uint256 bidIndex, address bidder, uint256[] calldata deviceIds)
        private
        view
    {
        if (keccak256(abi.encodePacked(deviceIds)) != market.devicesHashOf(requestId, bidder)) {
            revert BidDevicesMismatch(requestId, bidIndex);
        }
    }

    /// @dev The fault of a proven record, or ArithmeticCorrect. A record that should not exist
    ///      is a fault whatever readings it has (or lacks); otherwise its used readings must be
    ///      the committed ones.
    function _findFault(
        uint256 requestId,
        IFlexMarket.Request memory r,
        DeviceRecord calldata record,
        bytes calldata usedReadings,
        bytes32[] calldata readingsProof,
        uint256[] calldata bidDeviceIds
    ) private view returns (Fault, BaselineMath.Figures memory expected) {
        (bool structural, Fault fault, uint256 capWh) = _deviceCap(requestId, r, record, bidDeviceIds);
        if (structural) return (fault, expected);
        _proveReadings(requestId, record.deviceId, usedReadings, readingsProof);
        return _judge(requestId, r, record, usedReadings, capWh);
    }

    /// @dev The fault of a proven, structurally sound record (well-formed readings, then the
    ///      recomputation), or ArithmeticCorrect.
    function _judge(
        uint256 requestId,
        IFlexMarket.Request memory r,
        DeviceRecord calldata record,
        bytes calldata usedReadings,
        uint256 capWh
    ) private pure returns (Fault, BaselineMath.Figures memory expected) {
        if (!BaselineMath.wellFormedUsedReadings(usedReadings)) {
            return (Fault.MalformedReadings, expected);
        }
        expected = _recompute(requestId, r, usedReadings, capWh);
        if (_follows(record, expected)) revert ArithmeticCorrect(requestId, record.deviceId);
        return (Fault.Arithmetic, expected);
    }

    /// @dev The device's per-interval cap in its bid, or a structural fault of the record (an
    ///      honest report has records only for devices of awarded bids, under their own bid):
    ///      an unknown or unawarded bid, a device not in it.
    function _deviceCap(
        uint256 requestId,
        IFlexMarket.Request memory r,
        DeviceRecord calldata record,
        uint256[] calldata bidDeviceIds
    ) private view returns (bool structural, Fault fault, uint256 capWh) {
        if (record.bidIndex >= r.bidCount) return (true, Fault.UnknownBid, 0);
        IFlexMarket.Bid memory b = market.bidOf(requestId, record.bidIndex);
        if (b.awardedW == 0) return (true, Fault.BidNotAwarded, 0);
        IFlexMarket.PoolBid memory pool = market.poolBidOf(requestId, record.bidIndex);
        bool inBid;
        uint256 deviceCapacityW;
        uint256 bidCapacityW;
        if (pool.poolId == 0) {
            _checkBidDevices(requestId, record.bidIndex, b.bidder, bidDeviceIds);
            (inBid, deviceCapacityW, bidCapacityW) = _capacities(record.deviceId, bidDeviceIds, b.placedAt);
        } else {
            // A pool bid: its backing devices are the pool's members in the zone when it was
            // placed (PoolRegistry), its capacity the one recorded with the bid.
            IDeviceRegistry.DeviceEpoch memory epoch = registry.deviceAt(record.deviceId, b.placedAt);
            inBid = epoch.zone == r.zone && market.pools().backingPoolAt(record.deviceId, b.placedAt) == pool.poolId;
            (deviceCapacityW, bidCapacityW) = (epoch.capacityW, pool.capacityW);
        }
        if (!inBid) return (true, Fault.DeviceNotInBid, 0);
        capWh = BaselineMath.deviceCapWh(b.awardedW, deviceCapacityW, bidCapacityW, r.intervalSeconds);
    }

    function _recompute(uint256 requestId, IFlexMarket.Request memory r, bytes calldata usedReadings, uint256 capWh)
        private
        pure
        returns (BaselineMath.Figures memory)
    {
        uint256 windowSeconds = uint256(r.windowEnd) - r.windowStart;
        if (
            r.baselineMethod != BaselineMath.METHOD_MBMA
                && windowSeconds + BaselineMath.ADJUSTMENT_LEAD_SECONDS > BaselineMath.SECONDS_PER_DAY
        ) revert RecordNotJudgeable(requestId, r.baselineMethod, windowSeconds);
        return BaselineMath.measureUsedReadings(
            usedReadings,
            BaselineMath.Measurement({
                method: r.baselineMethod,
                direction: uint8(r.direction),
                windowStart: r.windowStart,
                windowEnd: r.windowEnd,
                intervalSeconds: r.intervalSeconds,
                capWh: capWh
            })
        );
    }

    /// @dev A CONFLICT record cannot be judged on its flag (the conflicting units are not in the
    ///      report): its baseline and metered figures must follow and its delivery be zero.
    function _follows(DeviceRecord calldata record, BaselineMath.Figures memory expected) private pure returns (bool) {
        bool figures = record.baselineWh == expected.baselineWh && record.meteredWh == expected.meteredWh;
        if (record.quality == BaselineMath.QUALITY_CONFLICT) return figures && record.deliveredWh == 0;
        return figures && record.deliveredWh == expected.deliveredWh && record.quality == expected.quality;
    }

    /// @dev Whether `deviceId` is in the bid, its capacity and the bid's total capacity, each
    ///      as registered when the bid was placed (what gridflex.measurement reads).
    function _capacities(uint256 deviceId, uint256[] calldata bidDeviceIds, uint256 placedAt)
        private
        view
        returns (bool inBid, uint256 deviceCapacityW, uint256 bidCapacityW)
    {
        for (uint256 i; i < bidDeviceIds.length; ++i) {
            uint256 capacityW = registry.deviceAt(bidDeviceIds[i], placedAt).capacityW;
            bidCapacityW += capacityW;
            if (bidDeviceIds[i] == deviceId) (inBid, deviceCapacityW) = (true, capacityW);
        }
    }

    /// @dev Voids the report (the market re-checks status and window) and slashes the signers
    ///      captured with it; both are immutable protocol contracts, this one holds no state.
    // slither-disable-next-line reentrancy-events
    function _void(
        uint256 requestId,
        IFlexMarket.Request memory r,
        uint256 deviceId,
        Fault fault,
        BaselineMath.Figures memory expected
    ) private returns (uint256 slashedTotal) {
        uint16 share = resolver.challengerShareBps();
        market.voidReport(requestId);
        slashedTotal = committee.slashSigners(r.signerBitmap, msg.sender, share);
        emit ArithmeticProven(requestId, r.reportRound, deviceId, fault, msg.sender, expected, slashedTotal);
    }
}
