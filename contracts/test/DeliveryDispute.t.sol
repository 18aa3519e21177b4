// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {DeliveryFixtures} from "./utils/DeliveryFixtures.sol";
import {DeliveryDispute} from "../DeliveryDispute.sol";
import {IDeliveryDispute} from "../interfaces/IDeliveryDispute.sol";
import {IDisputeResolver} from "../interfaces/IDisputeResolver.sol";
import {IFlexMarket} from "../interfaces/IFlexMarket.sol";
import {IOracleCommittee} from "../interfaces/IOracleCommittee.sol";
import {IDeviceRegistry} from "../interfaces/IDeviceRegistry.sol";
import {BaselineMath} from "../libraries/BaselineMath.sol";

/// @notice Arithmetic fraud proofs on an MBMA request: alice bids 50 kW from two devices
///         (40 kW and 20 kW, so their caps are 8,333 and 4,166 Wh per 15 minutes); the report's
///         used readings are exactly what the devices signed, and only the arithmetic on them
///         is wrong. Figures are computed by hand below, not by the contract.
contract DeliveryDisputeMbmaTest is DeliveryFixtures {
    address internal alice = address(0xA11CE0);
    address internal bob = address(0xB0B0);
    address internal stranger = address(0x5742);
    uint256 internal deviceA;
    uint256 internal deviceB;
    uint256 internal bobDevice;
    uint256 internal requestId;
    uint256 internal start;
    bytes internal usedA;
    bytes internal usedB;
    bytes32 internal readingsRoot;
    bytes32[] internal readingsProofA;
    bytes32[] internal readingsProofB;

    // What follows from the readings (by hand):
    // A: before 12,000; event 2,000 1,500 2,200 1,900 -> differences 10,000 10,500 9,800 10,100,
    //    each capped at 50,000 * 40,000 / 60,000 = 33,333 W -> 8,333 Wh: delivered 33,332.
    // B: before 6,000; event 1,000 2,000 3,000 7,000 -> 5,000 (cap 16,666 W -> 4,166), 4,000,
    //    3,000, -1,000 -> 0: delivered 11,166.
    int256 internal constant A_BASELINE = 48_000;
    int256 internal constant A_METERED = 7_600;
    int256 internal constant A_DELIVERED = 33_332;
    int256 internal constant B_BASELINE = 24_000;
    int256 internal constant B_METERED = 13_000;
    int256 internal constant B_DELIVERED = 11_166;

    function setUp() public {
        deployWithDelivery();
        fundAndStake(alice, 10_000 * FLEX);
        fundAndStake(bob, 10_000 * FLEX);
        deviceA = registerDevice(alice, 0xA1, 40_000, ZONE);
        deviceB = registerDevice(alice, 0xB1, 20_000, ZONE);
        bobDevice = registerDevice(bob, 0xC1, 30_000, ZONE);
        IFlexMarket.RequestParams memory p = defaultParams();
        p.powerW = 50_000; // alice's cheaper bid takes it all; bob's is not awarded
        start = p.windowStart;
        requestId = createRequest(p);
        placeBid(alice, requestId, 50_000, 200_000, ids(deviceA, deviceB));
        placeBid(bob, requestId, 20_000, 300_000, ids(bobDevice));
        clearRequest(requestId);

        usedA = _used(12_000, [int256(2_000), 1_500, 2_200, 1_900]);
        usedB = _used(6_000, [int256(1_000), 2_000, 3_000, 7_000]);
        (readingsRoot, readingsProofA, readingsProofB) =
            pairTree(readingsLeaf(deviceA, usedA), readingsLeaf(deviceB, usedB));
    }

    function _used(int256 before, int256[4] memory events) internal view returns (bytes memory used) {
        used = usedBuffer(5);
        put(used, 0, start - INTERVAL, before);
        for (uint256 i; i < 4; ++i) {
            put(used, i + 1, start + i * INTERVAL, events[i]);
        }
    }

    function honestA() internal view returns (IDeliveryDispute.DeviceRecord memory) {
        return record(deviceA, 0, A_BASELINE, A_METERED, A_DELIVERED, OK);
    }

    function honestB() internal view returns (IDeliveryDispute.DeviceRecord memory) {
        return record(deviceB, 0, B_BASELINE, B_METERED, B_DELIVERED, OK);
    }

    /// @dev Posts a report with records `a` and `b` for alice's devices and per-bid figure
    ///      `aliceTotal`; returns the record proofs.
    function post(IDeliveryDispute.DeviceRecord memory a, IDeliveryDispute.DeviceRecord memory b, uint256 aliceTotal)
        internal
        returns (bytes32[] memory proofA, bytes32[] memory proofB)
    {
        bytes32 devicesRoot;
        (devicesRoot, proofA, proofB) = pairTree(recordLeaf(a), recordLeaf(b));
        uint256[] memory delivered = new uint256[](2);
        delivered[0] = aliceTotal;
        postRoots(requestId, delivered, devicesRoot, readingsRoot);
    }

    function challengeA(IDeliveryDispute.DeviceRecord memory a, bytes32[] memory proof) internal returns (uint256) {
        vm.prank(stranger);
        return delivery.challengeArithmetic(requestId, a, proof, usedA, readingsProofA, ids(deviceA, deviceB));
    }

    function challengeB(IDeliveryDispute.DeviceRecord memory b, bytes32[] memory proof) internal returns (uint256) {
        vm.prank(stranger);
        return delivery.challengeArithmetic(requestId, b, proof, usedB, readingsProofB, ids(deviceA, deviceB));
    }

    function assertVoidedAndSlashed(uint256 slashed, uint256 strangerBefore) internal view {
        IFlexMarket.Request memory r = market.request(requestId);
        assertTrue(r.status == IFlexMarket.RequestStatus.Cleared, "report voided: back to Cleared");
        assertEq(r.reportRound, 1, "next round");
        assertEq(slashed, 2 * uint256(ORACLE_BOND), "both signers' whole bonds");
        assertEq(committee.oracleOf(oracles[0]).bond, 0, "signer 0 slashed");
        assertEq(committee.oracleOf(oracles[1]).bond, 0, "signer 1 slashed");
        assertEq(committee.oracleOf(oracles[2]).bond, ORACLE_BOND, "non-signer untouched");
        uint256 share = slashed * dispute.challengerShareBps() / 10_000;
        assertEq(flex.balanceOf(stranger), strangerBefore + share, "prover paid its share");
    }

    /// @dev A structural fault (no recomputed figures) about `deviceId` in round 0.
    function expectProven(uint256 deviceId, IDeliveryDispute.Fault fault) internal {
        BaselineMath.Figures memory none;
        vm.expectEmit(address(delivery));
        emit IDeliveryDispute.ArithmeticProven(
            requestId, 0, deviceId, fault, stranger, none, 2 * uint256(ORACLE_BOND)
        );
    }

    // ─── Attacks ──────────────────────────────────────────────────────────────────────────

    function test_attack_deliveredIgnoresTheDeviceCap_voidedByAnyone_signersSlashed() public {
        // Device-signed readings, right baseline, but A's delivery is not capped at its share.
        IDeliveryDispute.DeviceRecord memory inflated = record(deviceA, 0, A_BASELINE, A_METERED, 40_400, OK);
        (bytes32[] memory proofA,) = post(inflated, honestB(), 40_400 + uint256(B_DELIVERED));
        BaselineMath.Figures memory expected = BaselineMath.Figures(A_BASELINE, A_METERED, A_DELIVERED, OK);
        vm.expectEmit(address(delivery));
        emit IDeliveryDispute.ArithmeticProven(
            requestId, 0, deviceA, IDeliveryDispute.Fault.Arithmetic, stranger, expected, 2 * uint256(ORACLE_BOND)
        );
        uint256 slashed = challengeA(inflated, proofA);
        assertVoidedAndSlashed(slashed, 0);
    }

    function test_attack_baselineDoesNotFollow_voided() public {
        // B's baseline taken as 8,000 Wh per interval instead of the 6,000 before the event.
        IDeliveryDispute.DeviceRecord memory wrong = record(deviceB, 0, 32_000, B_METERED, 15_498, OK);
        (, bytes32[] memory proofB) = post(honestA(), wrong, uint256(A_DELIVERED) + 15_498);
        assertVoidedAndSlashed(challengeB(wrong, proofB), 0);
    }

    function test_attack_honestDeviceMarkedInsufficient_voided() public {
        // Denying pay: complete readings, but the record says INSUFFICIENT_DATA, zero delivery.
        IDeliveryDispute.DeviceRecord memory zeroed = record(deviceA, 0, A_BASELINE, A_METERED, 0, INSUFFICIENT);
        (bytes32[] memory proofA,) = post(zeroed, honestB(), uint256(B_DELIVERED));
        assertVoidedAndSlashed(challengeA(zeroed, proofA), 0);
    }

    function test_attack_meteredDoesNotFollow_voided() public {
        IDeliveryDispute.DeviceRecord memory wrong = record(deviceB, 0, B_BASELINE, 12_000, B_DELIVERED, OK);
        (, bytes32[] memory proofB) = post(honestA(), wrong, uint256(A_DELIVERED + B_DELIVERED));
        assertVoidedAndSlashed(challengeB(wrong, proofB), 0);
    }

    function test_attack_conflictRecordThatDelivers_voided() public {
        IDeliveryDispute.DeviceRecord memory wrong = record(deviceB, 0, B_BASELINE, B_METERED, B_DELIVERED, CONFLICT);
        (, bytes32[] memory proofB) = post(honestA(), wrong, uint256(A_DELIVERED + B_DELIVERED));
        assertVoidedAndSlashed(challengeB(wrong, proofB), 0);
    }

    function test_attack_bidTotalAboveItsRecords_voided() public {
        // Every record is right; the per-bid figure the market pays is not their sum.
        (bytes32[] memory proofA, bytes32[] memory proofB) = post(honestA(), honestB(), 60_000);
        IDeliveryDispute.ProvenRecord[] memory records = new IDeliveryDispute.ProvenRecord[](2);
        records[0] = IDeliveryDispute.ProvenRecord(honestA(), proofA);
        records[1] = IDeliveryDispute.ProvenRecord(honestB(), proofB);
        uint256[] memory delivered = new uint256[](2);
        delivered[0] = 60_000;
        expectProven(deviceA, IDeliveryDispute.Fault.BidTotal);
        vm.prank(stranger);
        uint256 slashed = delivery.challengeBidTotal(requestId, delivered, 0, records, ids(deviceA, deviceB));
        assertVoidedAndSlashed(slashed, 0);
    }

    function test_attack_recordForADeviceOutsideTheBid_voided_evenWithoutItsReadings() public {
        // bob's device credited under alice's bid (a record that should not exist); the report
        // commits no used readings for it, and none are needed to prove it.
        IDeliveryDispute.DeviceRecord memory foreign = record(bobDevice, 0, B_BASELINE, B_METERED, B_DELIVERED, OK);
        (bytes32 root,, bytes32[] memory proofForeign) = pairTree(recordLeaf(honestA()), recordLeaf(foreign));
        uint256[] memory delivered = new uint256[](2);
        delivered[0] = uint256(A_DELIVERED + B_DELIVERED);
        postRoots(requestId, delivered, root, readingsRoot);
        expectProven(bobDevice, IDeliveryDispute.Fault.DeviceNotInBid);
        vm.prank(stranger);
        uint256 slashed =
            delivery.challengeArithmetic(requestId, foreign, proofForeign, "", new bytes32[](0), ids(deviceA, deviceB));
        assertVoidedAndSlashed(slashed, 0);
    }

    function test_attack_recordUnderABidNotAwarded_voided() public {
        IDeliveryDispute.DeviceRecord memory ghost = record(bobDevice, 1, B_BASELINE, B_METERED, B_DELIVERED, OK);
        (bytes32 root,, bytes32[] memory proofGhost) = pairTree(recordLeaf(honestA()), recordLeaf(ghost));
        uint256[] memory delivered = new uint256[](2);
        delivered[0] = uint256(A_DELIVERED);
        delivered[1] = uint256(B_DELIVERED);
        postRoots(requestId, delivered, root, readingsRoot);
        expectProven(bobDevice, IDeliveryDispute.Fault.BidNotAwarded);
        vm.prank(stranger);
        delivery.challengeArithmetic(requestId, ghost, proofGhost, "", new bytes32[](0), ids(bobDevice));
    }

    function test_attack_malformedUsedReadings_voided() public {
        // The readings of B committed out of order: no honest measurement writes that.
        bytes memory shuffled = usedBuffer(5);
        put(shuffled, 0, start, 1_000);
        put(shuffled, 1, start - INTERVAL, 6_000);
        put(shuffled, 2, start + INTERVAL, 2_000);
        put(shuffled, 3, start + 2 * INTERVAL, 3_000);
        put(shuffled, 4, start + 3 * INTERVAL, 7_000);
        (bytes32 rRoot, bytes32[] memory rProofA,) =
            pairTree(readingsLeaf(deviceB, shuffled), readingsLeaf(deviceA, usedA));
        (bytes32 root, bytes32[] memory proofB,) = pairTree(recordLeaf(honestB()), recordLeaf(honestA()));
        uint256[] memory delivered = new uint256[](2);
        delivered[0] = uint256(A_DELIVERED + B_DELIVERED);
        postRoots(requestId, delivered, root, rRoot);
        expectProven(deviceB, IDeliveryDispute.Fault.MalformedReadings);
        vm.prank(stranger);
        uint256 slashed =
            delivery.challengeArithmetic(requestId, honestB(), proofB, shuffled, rProofA, ids(deviceA, deviceB));
        assertVoidedAndSlashed(slashed, 0);
    }

    // ─── Correct reports change nothing ───────────────────────────────────────────────────

    function test_correctRecords_refusedWithArithmeticCorrect() public {
        (bytes32[] memory proofA, bytes32[] memory proofB) =
            post(honestA(), honestB(), uint256(A_DELIVERED + B_DELIVERED));
        vm.expectRevert(abi.encodeWithSelector(IDeliveryDispute.ArithmeticCorrect.selector, requestId, deviceA));
        challengeA(honestA(), proofA);
        vm.expectRevert(abi.encodeWithSelector(IDeliveryDispute.ArithmeticCorrect.selector, requestId, deviceB));
        challengeB(honestB(), proofB);
        assertTrue(market.request(requestId).status == IFlexMarket.RequestStatus.Reported, "report stands");
        assertEq(committee.oracleOf(oracles[0]).bond, ORACLE_BOND, "nobody slashed");
    }

    function test_correctBidTotal_refusedWithBidTotalCorrect() public {
        uint256 total = uint256(A_DELIVERED + B_DELIVERED);
        (bytes32[] memory proofA, bytes32[] memory proofB) = post(honestA(), honestB(), total);
        IDeliveryDispute.ProvenRecord[] memory records = new IDeliveryDispute.ProvenRecord[](2);
        records[0] = IDeliveryDispute.ProvenRecord(honestA(), proofA);
        records[1] = IDeliveryDispute.ProvenRecord(honestB(), proofB);
        uint256[] memory delivered = new uint256[](2);
        delivered[0] = total;
        vm.expectRevert(abi.encodeWithSelector(IDeliveryDispute.BidTotalCorrect.selector, requestId, 0, total));
        delivery.challengeBidTotal(requestId, delivered, 0, records, ids(deviceA, deviceB));
        // A record missing from the list is refused, not judged.
        IDeliveryDispute.ProvenRecord[] memory onlyA = new IDeliveryDispute.ProvenRecord[](1);
        onlyA[0] = records[0];
        vm.expectRevert(
            abi.encodeWithSelector(IDeliveryDispute.RecordsDoNotMatchBid.selector, requestId, 0, uint256(1))
        );
        delivery.challengeBidTotal(requestId, delivered, 0, onlyA, ids(deviceA, deviceB));
    }

    function test_knownLimit_conflictFlagIsNotJudged() public {
        // CONFLICT with the figures that follow and zero delivery: the conflicting units are
        // outside the report, so the chain cannot tell a real conflict from a false one.
        IDeliveryDispute.DeviceRecord memory flagged = record(deviceB, 0, B_BASELINE, B_METERED, 0, CONFLICT);
        (, bytes32[] memory proofB) = post(honestA(), flagged, uint256(A_DELIVERED));
        vm.expectRevert(abi.encodeWithSelector(IDeliveryDispute.ArithmeticCorrect.selector, requestId, deviceB));
        challengeB(flagged, proofB);
    }

    function test_attack_honestConflictRecordAsPublished_refusedWithArithmeticCorrect() public {
        // Attack: void an honest report, and slash its signers, with an arithmetic proof on its
        // CONFLICT record exactly as oracle.measurement.conflict_measurement publishes it: no
        // used readings, baseline 0, metered 0, delivered 0. Empty readings recompute to 0/0
        // (no reading before the window: insufficient data), so the record follows.
        IDeliveryDispute.DeviceRecord memory conflict = record(deviceB, 0, 0, 0, 0, CONFLICT);
        (bytes32 root,, bytes32[] memory usedProofB) = pairTree(readingsLeaf(deviceA, usedA), readingsLeaf(deviceB, ""));
        (bytes32 devicesRoot,, bytes32[] memory proofB) = pairTree(recordLeaf(honestA()), recordLeaf(conflict));
        postRoots(requestId, wh2(uint256(A_DELIVERED)), devicesRoot, root);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IDeliveryDispute.ArithmeticCorrect.selector, requestId, deviceB));
        delivery.challengeArithmetic(requestId, conflict, proofB, "", usedProofB, ids(deviceA, deviceB));
        assertTrue(market.request(requestId).status == IFlexMarket.RequestStatus.Reported, "report stands");
        assertEq(committee.oracleOf(oracles[0]).bond, ORACLE_BOND, "nobody slashed");
    }

    function test_attack_conflictRecordWithEmptyReadingsThatDelivers_voided() public {
        // The check behind the refusal above can fail: with the same empty used readings, a
        // CONFLICT record claiming a delivery (or any figure the readings do not give) is voided.
        IDeliveryDispute.DeviceRecord memory paying = record(deviceB, 0, 0, 0, 1_000, CONFLICT);
        (bytes32 root,, bytes32[] memory usedProofB) = pairTree(readingsLeaf(deviceA, usedA), readingsLeaf(deviceB, ""));
        (bytes32 devicesRoot,, bytes32[] memory proofB) = pairTree(recordLeaf(honestA()), recordLeaf(paying));
        postRoots(requestId, wh2(uint256(A_DELIVERED) + 1_000), devicesRoot, root);
        vm.prank(stranger);
        uint256 slashed = delivery.challengeArithmetic(requestId, paying, proofB, "", usedProofB, ids(deviceA, deviceB));
        assertVoidedAndSlashed(slashed, 0);
    }

    // ─── Bad proofs ───────────────────────────────────────────────────────────────────────

    function test_revert_badProofs() public {
        IDeliveryDispute.DeviceRecord memory inflated = record(deviceA, 0, A_BASELINE, A_METERED, 40_400, OK);
        (bytes32[] memory proofA, bytes32[] memory proofB) = post(inflated, honestB(), 51_566);
        bytes32 devicesRoot = market.reportOf(requestId).devicesRoot;

        // The record as it should have been is not in the tree.
        vm.expectRevert(
            abi.encodeWithSelector(IDeliveryDispute.RecordProofInvalid.selector, requestId, deviceA, devicesRoot)
        );
        challengeA(honestA(), proofA);
        vm.expectRevert(
            abi.encodeWithSelector(IDeliveryDispute.RecordProofInvalid.selector, requestId, deviceA, devicesRoot)
        );
        challengeA(inflated, proofB);

        // Readings other than the committed ones.
        bytes memory other = _used(30_000, [int256(2_000), 1_500, 2_200, 1_900]);
        vm.expectRevert(
            abi.encodeWithSelector(IDeliveryDispute.ReadingsProofInvalid.selector, requestId, deviceA, readingsRoot)
        );
        delivery.challengeArithmetic(requestId, inflated, proofA, other, readingsProofA, ids(deviceA, deviceB));

        // A device list other than the bid's (it would change the caps).
        vm.expectRevert(abi.encodeWithSelector(IDeliveryDispute.BidDevicesMismatch.selector, requestId, 0));
        delivery.challengeArithmetic(requestId, inflated, proofA, usedA, readingsProofA, ids(deviceA));

        // Per-bid figures other than the report's.
        IDeliveryDispute.ProvenRecord[] memory records = new IDeliveryDispute.ProvenRecord[](2);
        records[0] = IDeliveryDispute.ProvenRecord(inflated, proofA);
        records[1] = IDeliveryDispute.ProvenRecord(honestB(), proofB);
        vm.expectRevert(abi.encodeWithSelector(IDeliveryDispute.DeliveryHashMismatch.selector, requestId));
        delivery.challengeBidTotal(requestId, wh2(51_565), 0, records, ids(deviceA, deviceB));
        vm.expectRevert(abi.encodeWithSelector(IDeliveryDispute.BidNotAwarded.selector, requestId, 1));
        delivery.challengeBidTotal(requestId, wh2(51_566), 1, records, ids(bobDevice));
        vm.expectRevert(abi.encodeWithSelector(IDeliveryDispute.UnknownBid.selector, requestId, 2, 2));
        delivery.challengeBidTotal(requestId, wh2(51_566), 2, records, ids(deviceA, deviceB));

        assertTrue(market.request(requestId).status == IFlexMarket.RequestStatus.Reported, "nothing changed");
        // ... and the real proof still works.
        challengeA(inflated, proofA);
    }

    function wh2(uint256 a) internal pure returns (uint256[] memory out) {
        out = new uint256[](2);
        out[0] = a;
    }

    function test_revert_oneProofPerRound_thenNotDisputable() public {
        IDeliveryDispute.DeviceRecord memory inflated = record(deviceA, 0, A_BASELINE, A_METERED, 40_400, OK);
        IDeliveryDispute.DeviceRecord memory wrongB = record(deviceB, 0, 1, B_METERED, B_DELIVERED, OK);
        (bytes32[] memory proofA, bytes32[] memory proofB) = post(inflated, wrongB, 51_566);
        challengeA(inflated, proofA);
        uint40 voidedAt = market.request(requestId).disputeEndsAt;
        vm.expectRevert(
            abi.encodeWithSelector(
                IDeliveryDispute.NotDisputable.selector, requestId, IFlexMarket.RequestStatus.Cleared, voidedAt
            )
        );
        challengeB(wrongB, proofB);
    }

    function test_revert_afterTheDisputeWindow() public {
        IDeliveryDispute.DeviceRecord memory inflated = record(deviceA, 0, A_BASELINE, A_METERED, 40_400, OK);
        (bytes32[] memory proofA,) = post(inflated, honestB(), 51_566);
        uint40 endsAt = market.request(requestId).disputeEndsAt;
        vm.warp(endsAt);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDeliveryDispute.NotDisputable.selector, requestId, IFlexMarket.RequestStatus.Reported, endsAt
            )
        );
        challengeA(inflated, proofA);
    }

    function test_revert_beforeAnyReport() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IDeliveryDispute.NotDisputable.selector, requestId, IFlexMarket.RequestStatus.Cleared, uint256(0)
            )
        );
        challengeA(honestA(), new bytes32[](0));
    }

    function test_pendingReadingChallenge_doesNotBlockTheProof_andResolvesMootAfterTheVoid() public {
        IDeliveryDispute.DeviceRecord memory inflated = record(deviceA, 0, A_BASELINE, A_METERED, 40_400, OK);
        (bytes32[] memory proofA,) = post(inflated, honestB(), 51_566);
        // A decoy: alice's device signs another value for a used interval and challenges, to
        // hold the report up (or to front-run the arithmetic proof).
        int64[] memory values = new int64[](1);
        values[0] = 2_001;
        IDisputeResolver.MeterUnit memory u = signSecp(unit(deviceA, start, values), 0xA1);
        vm.prank(alice);
        uint256 challengeId = dispute.challenge(requestId, deviceA, usedA, readingsProofA, 1, u, 0);
        uint256 slashed = challengeA(inflated, proofA);
        assertVoidedAndSlashed(slashed, 0);
        // The decoy cannot void or slash again: it resolves Moot once due.
        vm.warp(dispute.challengeOf(challengeId).responseDeadline);
        assertEq(dispute.resolve(challengeId), 0, "nothing slashed twice");
        assertTrue(
            dispute.challengeOf(challengeId).status == IDisputeResolver.ChallengeStatus.Moot, "moot after the void"
        );
    }

    function test_constructor_zeroAddress() public {
        vm.expectRevert(IDeliveryDispute.ZeroAddress.selector);
        new DeliveryDispute(IFlexMarket(address(0)), committee, registry, dispute);
        vm.expectRevert(IDeliveryDispute.ZeroAddress.selector);
        new DeliveryDispute(market, IOracleCommittee(address(0)), registry, dispute);
        vm.expectRevert(IDeliveryDispute.ZeroAddress.selector);
        new DeliveryDispute(market, committee, IDeviceRegistry(address(0)), dispute);
        vm.expectRevert(IDeliveryDispute.ZeroAddress.selector);
        new DeliveryDispute(market, committee, registry, IDisputeResolver(address(0)));
    }
}

/// @notice Arithmetic fraud proofs on a CAISO 10-in-10 request (Friday 10:00-11:00 UTC, four
///         15-minute intervals): one 60 kW device, bid and awarded 50 kW (cap 12,500 Wh per
///         interval). History on each of the 10 most recent weekdays: 1,000 Wh per adjustment
///         interval (06:00-09:00), 2,000 Wh per event interval; event day: 1,100 Wh in the
///         adjustment window, 1,000 Wh metered per event interval. By hand: averages 1,000 and
///         2,000; adjustment ratio 13,200 / 12,000 = 1.1 (inside +/-20%); baseline 2,200 per
///         interval (8,800), metered 4,000, delivered 4 x 1,200 = 4,800, OK.
contract DeliveryDisputeCaisoTest is DeliveryFixtures {
    address internal alice = address(0xA11CE0);
    address internal stranger = address(0x5742);
    uint256 internal device;
    uint256 internal requestId;
    uint256 internal start;
    uint256 internal eventDay;
    uint256[] internal weekdaysBack; // the 10 most recent weekdays, in days back
    uint256 internal sundayBack;

    uint256 internal constant ADJUSTMENT = 12;
    uint256 internal constant EVENTS = 4;

    function setUp() public {
        deployWithDelivery();
        fundAndStake(alice, 10_000 * FLEX);
        device = registerDevice(alice, 0xA1, 60_000, ZONE);
        IFlexMarket.RequestParams memory p = defaultParams();
        p.powerW = 50_000;
        p.baselineMethod = 1; // CAISO_10_OF_10
        start = p.windowStart;
        requestId = createRequest(p);
        placeBid(alice, requestId, 50_000, 200_000, ids(device));
        clearRequest(requestId);
        eventDay = start / DAY;
        // 1970-01-01 was a Thursday: weekday index (Monday 0) = (day + 3) % 7.
        assertEq((eventDay + 3) % 7, 4, "the fixture's event day is a Friday");
        for (uint256 back = 1; weekdaysBack.length < 10; ++back) {
            uint256 weekday = (eventDay - back + 3) % 7;
            if (weekday < 5) weekdaysBack.push(back);
            else if (weekday == 6 && sundayBack == 0) sundayBack = back;
        }
    }

    /// @dev Used readings: `days_` history days (their days back), then the event day, each
    ///      with its 12 adjustment and 4 event intervals, ascending in time.
    function used(uint256[] memory days_, int256 historyEvent) internal view returns (bytes memory) {
        return usedWith(days_, historyEvent, 0, 0);
    }

    /// @dev As `used`, with event intervals of `specialEvent` Wh on the day `specialBack`.
    function usedWith(uint256[] memory days_, int256 historyEvent, uint256 specialBack, int256 specialEvent)
        internal
        view
        returns (bytes memory out)
    {
        out = usedBuffer((days_.length + 1) * (ADJUSTMENT + EVENTS));
        uint256 n;
        for (uint256 i = days_.length; i > 0; --i) {
            uint256 back = days_[i - 1];
            n = _day(out, n, back, 1_000, back == specialBack ? specialEvent : historyEvent);
        }
        n = _day(out, n, 0, 1_100, 1_000);
    }

    function _day(bytes memory out, uint256 n, uint256 back, int256 adjustmentWh, int256 eventWh)
        internal
        view
        returns (uint256)
    {
        uint256 shift = back * DAY;
        for (uint256 i; i < ADJUSTMENT; ++i) {
            put(out, n++, start - 4 hours + i * INTERVAL - shift, adjustmentWh);
        }
        for (uint256 i; i < EVENTS; ++i) {
            put(out, n++, start + i * INTERVAL - shift, eventWh);
        }
        return n;
    }

    function tenWeekdays() internal view returns (uint256[] memory) {
        return weekdaysBack;
    }

    /// @dev Posts a one-record report over `readings`; returns the proofs (single leaves).
    function post(IDeliveryDispute.DeviceRecord memory r, bytes memory readings) internal {
        postRoots(requestId, one(uint256(r.deliveredWh)), recordLeaf(r), readingsLeaf(device, readings));
    }

    function prove(IDeliveryDispute.DeviceRecord memory r, bytes memory readings) internal returns (uint256) {
        vm.prank(stranger);
        return delivery.challengeArithmetic(requestId, r, new bytes32[](0), readings, new bytes32[](0), ids(device));
    }

    function expectArithmetic(BaselineMath.Figures memory expected) internal {
        vm.expectEmit(address(delivery));
        emit IDeliveryDispute.ArithmeticProven(
            requestId, 0, device, IDeliveryDispute.Fault.Arithmetic, stranger, expected, 2 * uint256(ORACLE_BOND)
        );
    }

    function assertVoided() internal view {
        assertTrue(market.request(requestId).status == IFlexMarket.RequestStatus.Cleared, "voided");
        assertEq(committee.oracleOf(oracles[0]).bond, 0, "signer slashed");
        assertGe(flex.balanceOf(stranger), 1, "prover paid");
    }

    function test_correctCaisoRecord_refusedWithArithmeticCorrect() public {
        bytes memory readings = used(tenWeekdays(), 2_000);
        IDeliveryDispute.DeviceRecord memory honest = record(device, 0, 8_800, 4_000, 4_800, OK);
        post(honest, readings);
        vm.expectRevert(abi.encodeWithSelector(IDeliveryDispute.ArithmeticCorrect.selector, requestId, device));
        prove(honest, readings);
        assertTrue(market.request(requestId).status == IFlexMarket.RequestStatus.Reported, "report stands");
    }

    function test_attack_honestCaisoConflictRecordAsPublished_refusedWithArithmeticCorrect() public {
        // As the MBMA case: the oracle's CONFLICT record (no used readings, 0/0/0) recomputes
        // from its empty readings (no history days: insufficient data) and is refused.
        IDeliveryDispute.DeviceRecord memory conflict = record(device, 0, 0, 0, 0, CONFLICT);
        post(conflict, "");
        vm.expectRevert(abi.encodeWithSelector(IDeliveryDispute.ArithmeticCorrect.selector, requestId, device));
        prove(conflict, "");
        assertTrue(market.request(requestId).status == IFlexMarket.RequestStatus.Reported, "report stands");
        assertEq(committee.oracleOf(oracles[0]).bond, ORACLE_BOND, "nobody slashed");
    }

    function test_attack_caisoConflictRecordWithEmptyReadingsThatDelivers_voided() public {
        IDeliveryDispute.DeviceRecord memory paying = record(device, 0, 0, 0, 500, CONFLICT);
        post(paying, "");
        prove(paying, "");
        assertVoided();
    }

    function test_attack_caisoBaselineWithoutTheDayOfAdjustment_voided() public {
        // Baseline 2,000 per interval (no adjustment): under-paying the provider by 800 Wh.
        bytes memory readings = used(tenWeekdays(), 2_000);
        IDeliveryDispute.DeviceRecord memory wrong = record(device, 0, 8_000, 4_000, 4_000, OK);
        post(wrong, readings);
        BaselineMath.Figures memory expected = BaselineMath.Figures(8_800, 4_000, 4_800, OK);
        vm.expectEmit(address(delivery));
        emit IDeliveryDispute.ArithmeticProven(
            requestId, 0, device, IDeliveryDispute.Fault.Arithmetic, stranger, expected, 2 * uint256(ORACLE_BOND)
        );
        prove(wrong, readings);
        assertVoided();
    }

    function test_attack_caisoDeliveredInflated_voided() public {
        bytes memory readings = used(tenWeekdays(), 2_000);
        IDeliveryDispute.DeviceRecord memory wrong = record(device, 0, 8_800, 4_000, 9_000, OK);
        post(wrong, readings);
        expectArithmetic(BaselineMath.Figures(8_800, 4_000, 4_800, OK));
        prove(wrong, readings);
        assertVoided();
    }

    function test_attack_caisoWeekendDayAveraged_voided() public {
        // The oracles put a Sunday (5,000 Wh per event interval) into the used readings and
        // averaged it with the 10 weekdays: 2,272 -> x1.1 = 2,499 per interval; delivered 5,996.
        // The chain counts weekdays only for a weekday event: the record does not follow.
        uint256[] memory days_ = new uint256[](11);
        uint256 k;
        for (uint256 i; i < 10; ++i) {
            if (k == i && weekdaysBack[i] > sundayBack) days_[k++] = sundayBack;
            days_[k++] = weekdaysBack[i];
        }
        assertEq(k, 11, "ten weekdays and the Sunday");
        bytes memory readings = usedWith(days_, 2_000, sundayBack, 5_000);
        IDeliveryDispute.DeviceRecord memory wrong = record(device, 0, 9_996, 4_000, 5_996, OK);
        post(wrong, readings);
        BaselineMath.Figures memory expected = BaselineMath.Figures(8_800, 4_000, 4_800, OK);
        vm.expectEmit(address(delivery));
        emit IDeliveryDispute.ArithmeticProven(
            requestId, 0, device, IDeliveryDispute.Fault.Arithmetic, stranger, expected, 2 * uint256(ORACLE_BOND)
        );
        prove(wrong, readings);
        assertVoided();
    }

    function sevenWeekdays() internal view returns (uint256[] memory seven) {
        seven = new uint256[](7);
        for (uint256 i; i < 7; ++i) {
            seven[i] = weekdaysBack[i];
        }
    }

    function test_caisoFallbackRecord_isCorrect() public {
        // Only 7 complete weekdays: the method's fallback (>= 5 days) gives FALLBACK.
        bytes memory readings = used(sevenWeekdays(), 2_000);
        IDeliveryDispute.DeviceRecord memory fallbackRecord = record(device, 0, 8_800, 4_000, 4_800, FALLBACK);
        post(fallbackRecord, readings);
        vm.expectRevert(abi.encodeWithSelector(IDeliveryDispute.ArithmeticCorrect.selector, requestId, device));
        prove(fallbackRecord, readings);
    }

    function test_attack_caisoFallbackClaimedAsOk_voided() public {
        bytes memory readings = used(sevenWeekdays(), 2_000);
        IDeliveryDispute.DeviceRecord memory claimedOk = record(device, 0, 8_800, 4_000, 4_800, OK);
        post(claimedOk, readings);
        expectArithmetic(BaselineMath.Figures(8_800, 4_000, 4_800, FALLBACK));
        prove(claimedOk, readings);
        assertVoided();
    }

    function test_attack_caisoTooFewDaysStillPaid_voided() public {
        // Four complete weekdays: below the minimum of 5, the record must be INSUFFICIENT_DATA
        // with a zero baseline and no delivery.
        uint256[] memory four = new uint256[](4);
        for (uint256 i; i < 4; ++i) {
            four[i] = weekdaysBack[i];
        }
        bytes memory readings = used(four, 2_000);
        IDeliveryDispute.DeviceRecord memory wrong = record(device, 0, 8_800, 4_000, 4_800, FALLBACK);
        post(wrong, readings);
        BaselineMath.Figures memory expected = BaselineMath.Figures(0, 4_000, 0, INSUFFICIENT);
        vm.expectEmit(address(delivery));
        emit IDeliveryDispute.ArithmeticProven(
            requestId, 0, device, IDeliveryDispute.Fault.Arithmetic, stranger, expected, 2 * uint256(ORACLE_BOND)
        );
        prove(wrong, readings);
    }

    function test_knownLimit_caisoWindowLongerThan20Hours_notJudgeable() public {
        // 4 h of adjustment lead + a 21 h window overlap the next day's: the used readings no
        // longer say which history days were averaged, so the chain refuses to judge.
        IFlexMarket.RequestParams memory p = defaultParams();
        p.powerW = 50_000;
        p.baselineMethod = 1;
        p.windowStart = uint40(start + 1 days);
        p.windowEnd = p.windowStart + 21 hours;
        p.gateClosure = uint40(block.timestamp + 1 hours);
        requestId = createRequest(p);
        vm.warp(p.gateClosure - 1);
        vm.prank(alice);
        market.bid(requestId, 50_000, 200_000, ids(device));
        clearRequest(requestId);
        start = p.windowStart;
        bytes memory readings = used(tenWeekdays(), 2_000);
        IDeliveryDispute.DeviceRecord memory r = record(device, 0, 1, 2, 3, OK);
        post(r, readings);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDeliveryDispute.RecordNotJudgeable.selector, requestId, uint8(1), uint256(21 hours)
            )
        );
        prove(r, readings);
    }

    function test_knownLimit_caisoOmittedDay_looksLikeMissingData() public {
        // The oracles drop the most recent weekday from the used readings and average the
        // other nine with an older one: the chain sees ten complete days and cannot know an
        // eligible day was left out (omission), so the record built on them is "correct".
        uint256[] memory shifted = new uint256[](10);
        for (uint256 i; i < 9; ++i) {
            shifted[i] = weekdaysBack[i + 1];
        }
        shifted[9] = weekdaysBack[9] + 1; // the next older weekday (the 10th is a Friday)
        assertEq((eventDay - shifted[9] + 3) % 7, 3, "a Thursday");
        bytes memory readings = used(shifted, 2_000);
        IDeliveryDispute.DeviceRecord memory r = record(device, 0, 8_800, 4_000, 4_800, OK);
        post(r, readings);
        vm.expectRevert(abi.encodeWithSelector(IDeliveryDispute.ArithmeticCorrect.selector, requestId, device));
        prove(r, readings);
    }
}
