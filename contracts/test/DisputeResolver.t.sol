// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {MarketTestBase} from "./utils/MarketTestBase.sol";
import {DisputeFixtures} from "./utils/DisputeFixtures.sol";
import {DisputeResolver} from "../DisputeResolver.sol";
import {IDisputeResolver} from "../interfaces/IDisputeResolver.sol";
import {IFlexMarket} from "../interfaces/IFlexMarket.sol";
import {IDeviceRegistry} from "../interfaces/IDeviceRegistry.sol";
import {IOracleCommittee} from "../interfaces/IOracleCommittee.sol";

/// @notice Fraud proofs end to end on the wired protocol: alice (secp256k1 device) and bob
///         (secp256k1 + P-256 devices) deliver; oracles 0 and 1 sign a report whose used
///         readings were tampered; anyone proves it with the device's signed unit.
contract DisputeResolverTest is MarketTestBase, DisputeFixtures {
    uint256 internal constant ALICE_DEVICE_KEY = 0xD1; // setUpMarket: addProvider(alice, 0xD1)
    uint256 internal constant P256_DEVICE_KEY = 0xE256;
    uint256 internal constant HISTORY = 4; // intervals of baseline history before the window
    uint256 internal constant READINGS = 8; // history + the 4 event intervals
    uint256 internal constant TAMPERED = 5; // alice's used reading that was altered
    uint256 internal constant P256_TAMPERED = 2; // the P-256 device's altered reading

    address internal challenger = address(0xC4A1);

    uint256 internal requestId;
    uint256 internal p256Device;
    uint256 internal firstStart; // first used interval: window start - HISTORY intervals

    int64[] internal aliceSigned;
    int64[] internal p256Signed;
    bytes internal aliceUsed;
    bytes internal p256Used;
    bytes32[] internal aliceProof;
    bytes32[] internal p256Proof;
    bytes32 internal readingsRoot;

    function setUp() public {
        setUpMarket();
        IDeviceRegistry.DeviceKey memory key = p256Key(bob, P256_DEVICE_KEY);
        vm.prank(bob);
        p256Device = registry.register(uint8(IDeviceRegistry.DeviceKind.HeatPump), 50_000, ZONE, key);

        IFlexMarket.RequestParams memory p = defaultParams();
        requestId = createRequest(p);
        placeBid(alice, requestId, 50_000, P20, ids(aliceDevice));
        placeBid(bob, requestId, 50_000, P25, ids(bobDevice, p256Device));
        clearRequest(requestId);
        firstStart = p.windowStart - HISTORY * 900;

        // What the devices signed: history then event intervals (the P-256 one exports once).
        int64[8] memory a = [int64(12_000), 12_500, 11_800, 12_100, 2_000, 1_500, 2_200, 1_900];
        int64[8] memory b = [int64(3_000), 3_100, -1_500, 2_900, 400, 350, 300, 380];
        for (uint256 i; i < READINGS; ++i) {
            aliceSigned.push(a[i]);
            p256Signed.push(b[i]);
        }
        // What a malicious oracle put in the report: alice's 1,500 Wh became 500 Wh (more
        // delivery), the P-256 device's export became an import.
        int64[] memory aliceReported = aliceSigned;
        aliceReported[TAMPERED] = 500;
        int64[] memory p256Reported = p256Signed;
        p256Reported[P256_TAMPERED] = 1_500;
        aliceUsed = packUsed(firstStart, 900, aliceReported);
        p256Used = packUsed(firstStart, 900, p256Reported);

        // Four leaves: alice, the P-256 device, bob's other device, and one more device.
        bytes32 la = readingsLeaf(aliceDevice, aliceUsed);
        bytes32 lp = readingsLeaf(p256Device, p256Used);
        bytes32 lb = readingsLeaf(bobDevice, packUsed(firstStart, 900, aliceSigned));
        bytes32 ld = readingsLeaf(999, hex"00");
        aliceProof.push(lp);
        aliceProof.push(hashPair(lb, ld));
        p256Proof.push(la);
        p256Proof.push(hashPair(lb, ld));
        readingsRoot = hashPair(hashPair(la, lp), hashPair(lb, ld));

        postReportWithRoot(requestId, wh(45_000, 48_000), readingsRoot, twoSigners());
        // Challenges lock a bond of free stake.
        stakeForChallenges(challenger, 4);
        stakeForChallenges(address(this), 4);
    }

    // ─── Helpers ──────────────────────────────────────────────────────────────────────────

    function aliceUnit() internal view returns (IDisputeResolver.MeterUnit memory) {
        return signSecp(unit(aliceDevice, firstStart, aliceSigned), ALICE_DEVICE_KEY);
    }

    function p256Unit() internal view returns (IDisputeResolver.MeterUnit memory) {
        return signP256(unit(p256Device, firstStart, p256Signed), P256_DEVICE_KEY, false);
    }

    function challengeAlice(IDisputeResolver.MeterUnit memory u, uint256 usedIndex, uint256 unitIndex)
        internal
        returns (uint256)
    {
        vm.prank(challenger);
        return dispute.challenge(requestId, aliceDevice, aliceUsed, aliceProof, usedIndex, u, unitIndex);
    }

    function expectChallengeRevert(
        bytes memory err,
        IDisputeResolver.MeterUnit memory u,
        uint256 usedIndex,
        uint256 unitIndex
    ) internal {
        vm.expectRevert(err);
        challengeAlice(u, usedIndex, unitIndex);
    }

    /// @dev Challenges, lets the response window pass unrebutted, resolves.
    function challengeAndResolveAlice(IDisputeResolver.MeterUnit memory u, uint256 usedIndex, uint256 unitIndex)
        internal
        returns (uint256)
    {
        uint256 id = challengeAlice(u, usedIndex, unitIndex);
        vm.warp(dispute.challengeOf(id).responseDeadline);
        return dispute.resolve(id);
    }

    function c0OriginalEnd() internal view returns (uint256) {
        return dispute.originalDisputeEndsAt(requestId, 0);
    }

    function flexOf(address account) internal view returns (uint256) {
        return flex.balanceOf(account);
    }

    // ─── Success ──────────────────────────────────────────────────────────────────────────

    function test_challenge_opensPendingChallenge_extendsDispute_slashesNothing() public {
        vm.warp(market.request(requestId).disputeEndsAt - 10); // late: the end must move
        uint256 window = dispute.responseWindow();
        uint256 deadline = block.timestamp + window;
        uint256 until = deadline + window;
        uint256 treasuryBefore = flexOf(treasury);

        vm.expectEmit(true, true, true, true, address(market));
        emit IFlexMarket.DisputeExtended(requestId, 0, until);
        vm.expectEmit(true, true, true, true, address(dispute));
        emit IDisputeResolver.ChallengeOpened(
            1, requestId, aliceDevice, 0, uint64(firstStart + TAMPERED * 900), 500, 1_500, challenger, deadline, until
        );
        uint256 id = challengeAlice(aliceUnit(), TAMPERED, TAMPERED);

        assertEq(id, 1, "first id");
        assertEq(dispute.challengeCount(), 1, "count");
        assertEq(dispute.pendingChallengeCount(requestId), 1, "pending");
        assertEq(lockedOf(challenger), dispute.challengeBond(), "bond locked");
        assertEq(c0OriginalEnd(), until - 2 * window + 10, "original end recorded");
        IDisputeResolver.Challenge memory c = dispute.challengeOf(id);
        assertEq(uint256(c.status), uint256(IDisputeResolver.ChallengeStatus.Pending), "status");
        assertEq(c.requestId, requestId, "request");
        assertEq(c.deviceId, aliceDevice, "device");
        assertEq(c.challenger, challenger, "challenger");
        assertEq(c.responseDeadline, deadline, "deadline");
        assertEq(c.round, 0, "round");
        assertEq(c.deviceOwner, alice, "owner");
        assertEq(c.signerBitmap, 3, "signers");
        assertEq(c.intervalStart, firstStart + TAMPERED * 900, "interval");
        assertTrue(c.usedEnergyWh == 500, "used");
        assertTrue(c.signedEnergyWh == 1_500, "signed");
        // Nothing voided or slashed yet; the report cannot finalize before the extended end.
        IFlexMarket.Request memory r = market.request(requestId);
        assertEq(uint256(r.status), uint256(IFlexMarket.RequestStatus.Reported), "still reported");
        assertEq(r.disputeEndsAt, until, "extended");
        assertEq(stakedOf(oracles[0]), ORACLE_BOND, "signer intact");
        assertEq(flexOf(treasury), treasuryBefore, "nothing paid");
        vm.warp(until - 1);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.DisputeWindowOpen.selector, requestId, until));
        market.finalize(requestId, wh(45_000, 48_000));
    }

    function test_challenge_earlyInLongWindow_neverLowersDisputeEnd() public {
        uint256 endsAt = market.request(requestId).disputeEndsAt; // 1 day > 2 response windows
        uint256 id = challengeAlice(aliceUnit(), TAMPERED, TAMPERED);
        assertEq(market.request(requestId).disputeEndsAt, endsAt, "unchanged");
        // Resolution stays possible until the original end.
        vm.warp(endsAt - 1);
        dispute.resolve(id);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Cleared), "voided");
    }

    function test_challengeThenResolve_secp256k1Device_voidsReportAndSlashesSigners() public {
        uint256 challengerBefore = flexOf(challenger);
        uint256 treasuryBefore = flexOf(treasury);
        uint256 slashed = 2 * uint256(ORACLE_BOND);

        uint256 id = challengeAlice(aliceUnit(), TAMPERED, TAMPERED);
        vm.warp(dispute.challengeOf(id).responseDeadline);
        address resolver = address(0x7E5);
        vm.expectEmit(true, true, true, true, address(market));
        emit IFlexMarket.ReportVoided(requestId, 0, 3);
        vm.expectEmit(true, true, true, true, address(dispute));
        emit IDisputeResolver.ChallengeResolved(id, requestId, 0, challenger, slashed);
        vm.prank(resolver); // anyone may resolve; the challenger is paid
        uint256 total = dispute.resolve(id);
        assertEq(uint256(dispute.challengeOf(id).status), uint256(IDisputeResolver.ChallengeStatus.Resolved), "done");
        assertEq(dispute.pendingChallengeCount(requestId), 0, "none pending");
        assertEq(flexOf(resolver), 0, "resolver not paid");

        assertEq(total, slashed, "slashed total");
        IFlexMarket.Request memory r = market.request(requestId);
        assertEq(uint256(r.status), uint256(IFlexMarket.RequestStatus.Cleared), "back to Cleared");
        assertEq(r.reportRound, 1, "next round");
        assertEq(r.signerBitmap, 0, "signers cleared");
        assertEq(market.reportOf(requestId).readingsRoot, bytes32(0), "report deleted");
        // The two signers lost their whole bond and their seats; the third kept both.
        for (uint256 i; i < 2; ++i) {
            IOracleCommittee.Oracle memory o = committee.oracleOf(oracles[i]);
            assertEq(o.active, false, "signer unseated");
            assertEq(o.bond, 0, "signer bond slashed");
            assertEq(stakedOf(oracles[i]), 0, "signer stake slashed to the unit");
            assertEq(lockedOf(oracles[i]), 0, "signer lock released");
        }
        assertEq(committee.oracleOf(oracles[2]).active, true, "non-signer seated");
        assertEq(stakedOf(oracles[2]), ORACLE_BOND, "non-signer stake intact");
        assertEq(committee.activeOracleCount(), 1, "one oracle left");
        // 50% to the challenger, the rest to the treasury, to the base unit.
        assertEq(flexOf(challenger) - challengerBefore, slashed / 2, "challenger share");
        assertEq(flexOf(treasury) - treasuryBefore, slashed - slashed / 2, "treasury share");
        assertEq(flexOf(address(dispute)), 0, "resolver holds nothing");
    }

    function test_challenge_p256Device_lowS() public {
        IDisputeResolver.MeterUnit memory u = p256Unit();
        vm.prank(challenger);
        uint256 id = dispute.challenge(requestId, p256Device, p256Used, p256Proof, P256_TAMPERED, u, P256_TAMPERED);
        IDisputeResolver.Challenge memory c = dispute.challengeOf(id);
        assertTrue(c.usedEnergyWh == 1_500, "used");
        assertTrue(c.signedEnergyWh == -1_500, "signed");
        assertEq(c.deviceOwner, bob, "owner");
        vm.warp(c.responseDeadline);
        dispute.resolve(id);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Cleared), "voided");
        assertEq(flexOf(challenger), ORACLE_BOND, "challenger got half of two bonds");
    }

    function test_challenge_unitStartingEarlier_usesUnitIndex() public {
        // A day-long unit that starts 8 intervals before the used readings.
        int64[] memory values = new int64[](16);
        for (uint256 i; i < 8; ++i) {
            values[i] = 9_000;
            values[i + 8] = aliceSigned[i];
        }
        IDisputeResolver.MeterUnit memory u =
            signSecp(unit(aliceDevice, firstStart - 8 * 900, values), ALICE_DEVICE_KEY);
        challengeAndResolveAlice(u, TAMPERED, TAMPERED + 8);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Cleared), "voided");
    }

    function test_challenge_isPermissionless_andAnyoneIsPaid() public {
        address stranger = address(0x57A);
        stakeForChallenges(stranger, 1);
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        vm.prank(stranger);
        uint256 id = dispute.challenge(requestId, aliceDevice, aliceUsed, aliceProof, TAMPERED, u, TAMPERED);
        vm.warp(block.timestamp + dispute.responseWindow());
        dispute.resolve(id);
        assertEq(flexOf(stranger), ORACLE_BOND, "stranger paid");
    }

    function test_challengerShare_governanceSplit() public {
        vm.prank(governance);
        dispute.setChallengerShareBps(2_500);
        uint256 treasuryBefore = flexOf(treasury);
        challengeAndResolveAlice(aliceUnit(), TAMPERED, TAMPERED);
        uint256 slashed = 2 * uint256(ORACLE_BOND);
        assertEq(flexOf(challenger), slashed * 2_500 / 10_000, "challenger quarter");
        assertEq(flexOf(treasury) - treasuryBefore, slashed - slashed * 2_500 / 10_000, "treasury rest");
    }

    function test_voidedRequest_acceptsCorrectedRound1Report_andFinalizes() public {
        challengeAndResolveAlice(aliceUnit(), TAMPERED, TAMPERED);

        // Governance re-seats: a new bonded oracle joins the honest one, k = 2 of 2.
        uint256 newKey = 0xA11CE2;
        address newOracle = vm.addr(newKey);
        fundAndStake(newOracle, ORACLE_BOND);
        vm.prank(governance);
        committee.addOracle(newOracle, 2);
        oracleKeys[0] = newKey; // signer index 0 is now the new oracle
        uint256[] memory signers = new uint256[](2);
        signers[0] = 0;
        signers[1] = 2;

        // A round-0 signature no longer counts: the slashed oracles are unseated.
        uint256[] memory delivered = wh(40_000, 48_000);
        bytes32 honestRoot = keccak256("honest readings");
        bytes[] memory stale = signReport(requestId, 0, delivered, bytes32("devices"), honestRoot, signers);
        vm.expectRevert();
        market.submitReport(requestId, delivered, bytes32("devices"), honestRoot, stale);

        postReportWithRoot(requestId, delivered, honestRoot, signers);
        IFlexMarket.Request memory r = market.request(requestId);
        assertEq(uint256(r.status), uint256(IFlexMarket.RequestStatus.Reported), "round 1 reported");
        assertEq(r.reportRound, 1, "round 1");
        // The void did not consume the new report's window: it is a full dispute window.
        assertEq(r.disputeEndsAt, block.timestamp + DISPUTE_WINDOW, "fresh window");

        // The old proof does not apply to the corrected report.
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeResolver.ReadingsProofInvalid.selector, requestId, aliceDevice, honestRoot)
        );
        challengeAlice(aliceUnit(), TAMPERED, TAMPERED);

        vm.warp(r.disputeEndsAt);
        market.finalize(requestId, delivered);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Settled), "settled");
    }

    // ─── Rebuttal (device equivocation) ───────────────────────────────────────────────────

    /// @dev The unit alice's device also signed: the value the report used (500 Wh).
    function aliceUsedUnit() internal view returns (IDisputeResolver.MeterUnit memory) {
        int64[] memory values = aliceSigned;
        values[TAMPERED] = 500;
        return signSecp(unit(aliceDevice, firstStart, values), ALICE_DEVICE_KEY);
    }

    function test_rebut_equivocation_dismissesChallenge_slashesOwner_reportStands() public {
        fundAndStake(alice, 2_000 * FLEX); // free stake beyond her bid bond
        uint256 lockedBefore = lockedOf(alice);
        uint256 stakedBefore = stakedOf(alice);
        uint256 treasuryBefore = flexOf(treasury);
        vm.warp(market.request(requestId).disputeEndsAt - 10);
        uint256 id = challengeAlice(aliceUnit(), TAMPERED, TAMPERED);
        uint256 extendedEnd = market.request(requestId).disputeEndsAt;

        address rebutter = oracles[0]; // an accused oracle defends the report
        uint256 rebutterBefore = flexOf(rebutter);
        uint256 penalty = dispute.equivocationPenalty();
        IDisputeResolver.MeterUnit memory a = aliceUsedUnit();
        vm.expectEmit(true, true, true, true, address(dispute));
        emit IDisputeResolver.ChallengeRebutted(
            id, requestId, aliceDevice, rebutter, alice, penalty, challenger, dispute.challengeBond()
        );
        vm.prank(rebutter);
        uint256 taken = dispute.rebut(id, a, TAMPERED);

        assertEq(taken, penalty, "penalty");
        assertEq(uint256(dispute.challengeOf(id).status), uint256(IDisputeResolver.ChallengeStatus.Rebutted), "st");
        assertEq(dispute.pendingChallengeCount(requestId), 0, "none pending");
        assertTrue(dispute.equivocated(aliceDevice), "device marked");
        assertEq(stakedOf(alice), stakedBefore - penalty, "owner slashed");
        assertEq(lockedOf(alice), lockedBefore, "bid bond untouched");
        uint256 bond = dispute.challengeBond();
        assertEq(flexOf(rebutter) - rebutterBefore, penalty / 2 + bond / 2, "rebutter share of penalty and bond");
        assertEq(flexOf(treasury) - treasuryBefore, penalty - penalty / 2 + bond - bond / 2, "treasury share");
        assertEq(stakedOf(challenger), 4 * bond - bond, "challenger lost its bond");
        assertEq(lockedOf(challenger), 0, "and nothing stays locked");
        // The honest signers keep their bonds and seats; the report stands until the end.
        assertEq(stakedOf(oracles[0]), ORACLE_BOND, "oracle 0 intact");
        assertEq(stakedOf(oracles[1]), ORACLE_BOND, "oracle 1 intact");
        assertEq(committee.activeOracleCount(), 3, "all seated");
        IFlexMarket.Request memory r = market.request(requestId);
        assertEq(uint256(r.status), uint256(IFlexMarket.RequestStatus.Reported), "reported");
        assertEq(r.disputeEndsAt, extendedEnd, "end left extended");
        vm.warp(extendedEnd - 1);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.DisputeWindowOpen.selector, requestId, extendedEnd));
        market.finalize(requestId, wh(45_000, 48_000));
        vm.warp(extendedEnd);
        market.finalize(requestId, wh(45_000, 48_000)); // bid bond unlock works: nothing locked was taken
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Settled), "settled");
        // The rebutted challenge cannot be resolved.
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.ChallengeNotPending.selector, id, IDisputeResolver.ChallengeStatus.Rebutted
            )
        );
        dispute.resolve(id);
    }

    function test_rebut_ownerWithOnlyLockedStake_takesNothing_settlementUnaffected() public {
        uint256 locked = lockedOf(alice);
        uint256 free = stakedOf(alice) - locked;
        uint256 id = challengeAlice(aliceUnit(), TAMPERED, TAMPERED);
        uint256 taken = dispute.rebut(id, aliceUsedUnit(), TAMPERED);
        assertEq(taken, free < dispute.equivocationPenalty() ? free : dispute.equivocationPenalty(), "free only");
        assertEq(lockedOf(alice), locked, "lock intact");
        vm.warp(market.request(requestId).disputeEndsAt);
        market.finalize(requestId, wh(45_000, 48_000));
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Settled), "settled");
    }

    function test_rebut_thenOtherDeviceMayChallenge_equivocatedDeviceMayNot() public {
        uint256 id = challengeAlice(aliceUnit(), TAMPERED, TAMPERED);
        dispute.rebut(id, aliceUsedUnit(), TAMPERED);
        expectChallengeRevert(
            abi.encodeWithSelector(IDisputeResolver.DeviceEquivocated.selector, aliceDevice),
            aliceUnit(),
            TAMPERED,
            TAMPERED
        );
        IDisputeResolver.MeterUnit memory u = p256Unit();
        uint256 second = dispute.challenge(requestId, p256Device, p256Used, p256Proof, P256_TAMPERED, u, P256_TAMPERED);
        assertEq(second, 2, "second challenge");
        assertEq(dispute.pendingChallengeCount(requestId), 1, "pending");
    }

    // ─── Reverts: the two phases ──────────────────────────────────────────────────────────

    /// @dev Issue 12 finding 5: one pending challenge per request let a decoy block the real
    ///      one (ChallengePending); now both are open at once and each is judged on its own.
    function test_challenge_severalPendingAtOnce() public {
        challengeAlice(aliceUnit(), TAMPERED, TAMPERED);
        IDisputeResolver.MeterUnit memory u = p256Unit();
        uint256 second = dispute.challenge(requestId, p256Device, p256Used, p256Proof, P256_TAMPERED, u, P256_TAMPERED);
        assertEq(second, 2, "second challenge opened");
        assertEq(dispute.pendingChallengeCount(requestId), 2, "two pending");
        assertEq(lockedOf(address(this)), dispute.challengeBond(), "each challenger locked a bond");
    }

    function test_revert_resolve_responseWindowOpen() public {
        uint256 id = challengeAlice(aliceUnit(), TAMPERED, TAMPERED);
        uint256 deadline = dispute.challengeOf(id).responseDeadline;
        vm.warp(deadline - 1);
        vm.expectRevert(abi.encodeWithSelector(IDisputeResolver.ResponseWindowOpen.selector, id, deadline));
        dispute.resolve(id);
    }

    function test_revert_rebut_responseWindowClosed() public {
        uint256 id = challengeAlice(aliceUnit(), TAMPERED, TAMPERED);
        uint256 deadline = dispute.challengeOf(id).responseDeadline;
        IDisputeResolver.MeterUnit memory a = aliceUsedUnit();
        vm.warp(deadline);
        vm.expectRevert(abi.encodeWithSelector(IDisputeResolver.ResponseWindowClosed.selector, id, deadline));
        dispute.rebut(id, a, TAMPERED);
        vm.warp(deadline - 1);
        dispute.rebut(id, a, TAMPERED); // the last second still counts
    }

    function test_revert_rebutOrResolve_notPending() public {
        IDisputeResolver.MeterUnit memory a = aliceUsedUnit();
        bytes memory unknown = abi.encodeWithSelector(
            IDisputeResolver.ChallengeNotPending.selector, 7, IDisputeResolver.ChallengeStatus.None
        );
        vm.expectRevert(unknown);
        dispute.rebut(7, a, TAMPERED);
        vm.expectRevert(unknown);
        dispute.resolve(7);

        challengeAndResolveAlice(aliceUnit(), TAMPERED, TAMPERED);
        uint256 id = 1;
        bytes memory resolved = abi.encodeWithSelector(
            IDisputeResolver.ChallengeNotPending.selector, id, IDisputeResolver.ChallengeStatus.Resolved
        );
        vm.expectRevert(resolved);
        dispute.resolve(id);
        vm.expectRevert(resolved);
        dispute.rebut(id, a, TAMPERED);
    }

    function test_revert_rebut_twice() public {
        uint256 id = challengeAlice(aliceUnit(), TAMPERED, TAMPERED);
        IDisputeResolver.MeterUnit memory a = aliceUsedUnit();
        dispute.rebut(id, a, TAMPERED);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.ChallengeNotPending.selector, id, IDisputeResolver.ChallengeStatus.Rebutted
            )
        );
        dispute.rebut(id, a, TAMPERED);
    }

    function test_revert_rebut_valueMismatch() public {
        uint256 id = challengeAlice(aliceUnit(), TAMPERED, TAMPERED);
        IDisputeResolver.MeterUnit memory b = aliceUnit(); // the challenge's own unit: 1,500 Wh
        vm.expectRevert(abi.encodeWithSelector(IDisputeResolver.RebuttalValueMismatch.selector, id, 1_500, 500));
        dispute.rebut(id, b, TAMPERED);
    }

    function test_revert_rebut_unitChecks() public {
        uint256 id = challengeAlice(aliceUnit(), TAMPERED, TAMPERED);
        uint256 interval = firstStart + TAMPERED * 900;
        IDisputeResolver.MeterUnit memory a = aliceUsedUnit();
        // Another interval of the same unit.
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeResolver.UnitIntervalMismatch.selector, interval - 900, interval)
        );
        dispute.rebut(id, a, TAMPERED - 1);
        // Signed by another key (an oracle cannot forge the device's second value).
        int64[] memory values = aliceSigned;
        values[TAMPERED] = 500;
        IDisputeResolver.MeterUnit memory forged = signSecp(unit(aliceDevice, firstStart, values), 0xBAD);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.UnitSignatureInvalid.selector, aliceDevice, IDeviceRegistry.KeyType.Secp256k1
            )
        );
        dispute.rebut(id, forged, TAMPERED);
        // Another device's unit.
        IDisputeResolver.MeterUnit memory other = signP256(unit(p256Device, firstStart, values), P256_DEVICE_KEY, false);
        vm.expectRevert(abi.encodeWithSelector(IDisputeResolver.UnitDeviceMismatch.selector, p256Device, aliceDevice));
        dispute.rebut(id, other, TAMPERED);
    }

    /// @dev Too late to void (the report is final once its extended end passed): the
    ///      challenge is moot and its bond released, rather than locked forever.
    function test_resolve_afterExtendedEnd_isMoot_bondReleased() public {
        vm.warp(market.request(requestId).disputeEndsAt - 10);
        uint256 id = challengeAlice(aliceUnit(), TAMPERED, TAMPERED);
        uint256 endsAt = market.request(requestId).disputeEndsAt;
        vm.warp(endsAt);
        vm.expectEmit(true, true, true, true, address(dispute));
        emit IDisputeResolver.ChallengeMooted(id, requestId, 0, dispute.challengeBond());
        assertEq(dispute.resolve(id), 0, "nothing slashed");
        assertEq(uint256(dispute.challengeOf(id).status), uint256(IDisputeResolver.ChallengeStatus.Moot), "moot");
        assertEq(lockedOf(challenger), 0, "bond released");
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Reported), "report stands");
        assertEq(stakedOf(oracles[0]), ORACLE_BOND, "signer intact");
    }

    // ─── Reverts: the request ─────────────────────────────────────────────────────────────

    function test_revert_unknownRequest() public {
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.UnknownRequest.selector, 999));
        dispute.challenge(999, aliceDevice, aliceUsed, aliceProof, TAMPERED, u, TAMPERED);
    }

    function test_revert_notDisputable_beforeAnyReport() public {
        uint256 other = createRequest(defaultParams());
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeResolver.NotDisputable.selector, other, IFlexMarket.RequestStatus.Open, 0)
        );
        dispute.challenge(other, aliceDevice, aliceUsed, aliceProof, TAMPERED, u, TAMPERED);
    }

    function test_revert_notDisputable_windowEnded() public {
        uint256 endsAt = market.request(requestId).disputeEndsAt;
        vm.warp(endsAt);
        expectChallengeRevert(
            abi.encodeWithSelector(
                IDisputeResolver.NotDisputable.selector, requestId, IFlexMarket.RequestStatus.Reported, endsAt
            ),
            aliceUnit(),
            TAMPERED,
            TAMPERED
        );
        // One second earlier it would have succeeded.
        vm.warp(endsAt - 1);
        challengeAlice(aliceUnit(), TAMPERED, TAMPERED);
    }

    function test_revert_notDisputable_replayAfterVoid() public {
        challengeAndResolveAlice(aliceUnit(), TAMPERED, TAMPERED);
        expectChallengeRevert(
            abi.encodeWithSelector(
                IDisputeResolver.NotDisputable.selector, requestId, IFlexMarket.RequestStatus.Cleared, block.timestamp
            ),
            aliceUnit(),
            TAMPERED,
            TAMPERED
        );
        // The P-256 proof against the same (voided) report is a replay too.
        IDisputeResolver.MeterUnit memory u = p256Unit();
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.NotDisputable.selector, requestId, IFlexMarket.RequestStatus.Cleared, block.timestamp
            )
        );
        dispute.challenge(requestId, p256Device, p256Used, p256Proof, P256_TAMPERED, u, P256_TAMPERED);
    }

    function test_revert_notDisputable_afterSettlement() public {
        vm.warp(market.request(requestId).disputeEndsAt);
        market.finalize(requestId, wh(45_000, 48_000));
        uint256 endsAt = market.request(requestId).disputeEndsAt;
        expectChallengeRevert(
            abi.encodeWithSelector(
                IDisputeResolver.NotDisputable.selector, requestId, IFlexMarket.RequestStatus.Settled, endsAt
            ),
            aliceUnit(),
            TAMPERED,
            TAMPERED
        );
    }

    // ─── Reverts: the used reading ────────────────────────────────────────────────────────

    function test_revert_readingsProofInvalid_alteredReadings() public {
        bytes memory forged = packUsed(firstStart, 900, aliceSigned); // not what the report holds
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeResolver.ReadingsProofInvalid.selector, requestId, aliceDevice, readingsRoot)
        );
        dispute.challenge(requestId, aliceDevice, forged, aliceProof, TAMPERED, u, TAMPERED);
    }

    function test_revert_readingsProofInvalid_wrongProof() public {
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeResolver.ReadingsProofInvalid.selector, requestId, aliceDevice, readingsRoot)
        );
        dispute.challenge(requestId, aliceDevice, aliceUsed, p256Proof, TAMPERED, u, TAMPERED);
        bytes32[] memory none = new bytes32[](0);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeResolver.ReadingsProofInvalid.selector, requestId, aliceDevice, readingsRoot)
        );
        dispute.challenge(requestId, aliceDevice, aliceUsed, none, TAMPERED, u, TAMPERED);
    }

    function test_revert_readingsProofInvalid_otherDevicesReadings() public {
        // Alice's leaf claimed for bob's device: the leaf binds the device id.
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        u.deviceId = bobDevice;
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeResolver.ReadingsProofInvalid.selector, requestId, bobDevice, readingsRoot)
        );
        dispute.challenge(requestId, bobDevice, aliceUsed, aliceProof, TAMPERED, u, TAMPERED);
    }

    function test_revert_usedIndexOutOfRange() public {
        expectChallengeRevert(
            abi.encodeWithSelector(IDisputeResolver.UsedIndexOutOfRange.selector, READINGS, READINGS),
            aliceUnit(),
            READINGS,
            TAMPERED
        );
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeResolver.UsedIndexOutOfRange.selector, type(uint256).max, READINGS)
        );
        challengeAlice(u, type(uint256).max, TAMPERED);
    }

    // ─── Reverts: the signed unit ─────────────────────────────────────────────────────────

    function test_revert_unitDeviceMismatch() public {
        IDisputeResolver.MeterUnit memory u = signSecp(unit(bobDevice, firstStart, aliceSigned), 0xD2);
        expectChallengeRevert(
            abi.encodeWithSelector(IDisputeResolver.UnitDeviceMismatch.selector, bobDevice, aliceDevice),
            u,
            TAMPERED,
            TAMPERED
        );
    }

    function test_revert_unitMalformed() public {
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        u.intervalSeconds = 0;
        expectChallengeRevert(
            abi.encodeWithSelector(IDisputeResolver.UnitMalformed.selector, aliceDevice, 0, 64), u, TAMPERED, TAMPERED
        );
        u = aliceUnit();
        u.energyWh = bytes.concat(u.energyWh, hex"01"); // a partial int64
        expectChallengeRevert(
            abi.encodeWithSelector(IDisputeResolver.UnitMalformed.selector, aliceDevice, 900, 65), u, TAMPERED, TAMPERED
        );
        u = aliceUnit();
        u.firstIntervalStart += 60; // off the 15-minute grid
        expectChallengeRevert(
            abi.encodeWithSelector(IDisputeResolver.UnitMalformed.selector, aliceDevice, 900, 64), u, TAMPERED, TAMPERED
        );
        u = aliceUnit();
        u.energyWh = new bytes(97 * 8); // more than a day of readings
        expectChallengeRevert(
            abi.encodeWithSelector(IDisputeResolver.UnitMalformed.selector, aliceDevice, 900, 97 * 8),
            u,
            TAMPERED,
            TAMPERED
        );
        u = aliceUnit();
        u.energyWh = "";
        expectChallengeRevert(
            abi.encodeWithSelector(IDisputeResolver.UnitMalformed.selector, aliceDevice, 900, 0), u, TAMPERED, TAMPERED
        );
    }

    function test_revert_unitIndexOutOfRange() public {
        expectChallengeRevert(
            abi.encodeWithSelector(IDisputeResolver.UnitIndexOutOfRange.selector, READINGS, READINGS),
            aliceUnit(),
            TAMPERED,
            READINGS
        );
    }

    function test_revert_unitIntervalMismatch() public {
        expectChallengeRevert(
            abi.encodeWithSelector(
                IDisputeResolver.UnitIntervalMismatch.selector, firstStart + 4 * 900, firstStart + TAMPERED * 900
            ),
            aliceUnit(),
            TAMPERED,
            4
        );
        // Same index, but the unit starts one interval later.
        IDisputeResolver.MeterUnit memory u =
            signSecp(unit(aliceDevice, firstStart + 900, aliceSigned), ALICE_DEVICE_KEY);
        expectChallengeRevert(
            abi.encodeWithSelector(
                IDisputeResolver.UnitIntervalMismatch.selector,
                firstStart + (TAMPERED + 1) * 900,
                firstStart + TAMPERED * 900
            ),
            u,
            TAMPERED,
            TAMPERED
        );
    }

    function test_revert_unitSignatureInvalid_wrongKey() public {
        bytes memory err = abi.encodeWithSelector(
            IDisputeResolver.UnitSignatureInvalid.selector, aliceDevice, IDeviceRegistry.KeyType.Secp256k1
        );
        expectChallengeRevert(err, signSecp(unit(aliceDevice, firstStart, aliceSigned), 0xBAD), TAMPERED, TAMPERED);
        // A valid signature over other values does not cover these.
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        u.sequence += 1;
        expectChallengeRevert(err, u, TAMPERED, TAMPERED);
    }

    function test_revert_unitSignatureInvalid_malformedSignatures() public {
        bytes memory err = abi.encodeWithSelector(
            IDisputeResolver.UnitSignatureInvalid.selector, aliceDevice, IDeviceRegistry.KeyType.Secp256k1
        );
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        u.signature = "";
        expectChallengeRevert(err, u, TAMPERED, TAMPERED);
        u = aliceUnit();
        u.signature = bytes.concat(u.signature, hex"00"); // 66 bytes
        expectChallengeRevert(err, u, TAMPERED, TAMPERED);
        // High-s (malleated) secp256k1 signature.
        u = aliceUnit();
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_DEVICE_KEY, meterDigest(u, block.chainid, address(registry)));
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        u.signature = abi.encodePacked(r, bytes32(n - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        expectChallengeRevert(err, u, TAMPERED, TAMPERED);
    }

    function test_revert_unitSignatureInvalid_p256HighSAndWrongShape() public {
        bytes memory err = abi.encodeWithSelector(
            IDisputeResolver.UnitSignatureInvalid.selector, p256Device, IDeviceRegistry.KeyType.P256
        );
        IDisputeResolver.MeterUnit memory high =
            signP256(unit(p256Device, firstStart, p256Signed), P256_DEVICE_KEY, true);
        vm.expectRevert(err);
        dispute.challenge(requestId, p256Device, p256Used, p256Proof, P256_TAMPERED, high, P256_TAMPERED);
        // A secp256k1-shaped signature for a P-256 device.
        IDisputeResolver.MeterUnit memory secp = signSecp(unit(p256Device, firstStart, p256Signed), P256_DEVICE_KEY);
        vm.expectRevert(err);
        dispute.challenge(requestId, p256Device, p256Used, p256Proof, P256_TAMPERED, secp, P256_TAMPERED);
        // Another P-256 key.
        IDisputeResolver.MeterUnit memory other = signP256(unit(p256Device, firstStart, p256Signed), 0xE257, false);
        vm.expectRevert(err);
        dispute.challenge(requestId, p256Device, p256Used, p256Proof, P256_TAMPERED, other, P256_TAMPERED);
    }

    function test_revert_unitSignatureInvalid_otherChainReplay() public {
        IDisputeResolver.MeterUnit memory u = signSecpFor(
            unit(aliceDevice, firstStart, aliceSigned), ALICE_DEVICE_KEY, block.chainid + 1, address(registry)
        );
        expectChallengeRevert(
            abi.encodeWithSelector(
                IDisputeResolver.UnitSignatureInvalid.selector, aliceDevice, IDeviceRegistry.KeyType.Secp256k1
            ),
            u,
            TAMPERED,
            TAMPERED
        );
    }

    function test_revert_unitSignatureInvalid_otherRegistryOrResolverDomain() public {
        bytes memory err = abi.encodeWithSelector(
            IDisputeResolver.UnitSignatureInvalid.selector, aliceDevice, IDeviceRegistry.KeyType.Secp256k1
        );
        // Signed for another deployment's registry.
        expectChallengeRevert(
            err,
            signSecpFor(unit(aliceDevice, firstStart, aliceSigned), ALICE_DEVICE_KEY, block.chainid, address(0xBEEF)),
            TAMPERED,
            TAMPERED
        );
        // Signed under the resolver's own address: the domain is the registry's, not its.
        expectChallengeRevert(
            err,
            signSecpFor(unit(aliceDevice, firstStart, aliceSigned), ALICE_DEVICE_KEY, block.chainid, address(dispute)),
            TAMPERED,
            TAMPERED
        );
    }

    function test_chainFork_rebuildsDomain_andOldUnitsFail() public {
        bytes32 before = dispute.meterDomainSeparator();
        IDisputeResolver.MeterUnit memory u = aliceUnit(); // signed for the current chain
        vm.chainId(block.chainid + 7);
        assertTrue(dispute.meterDomainSeparator() != before, "domain follows the chain id");
        expectChallengeRevert(
            abi.encodeWithSelector(
                IDisputeResolver.UnitSignatureInvalid.selector, aliceDevice, IDeviceRegistry.KeyType.Secp256k1
            ),
            u,
            TAMPERED,
            TAMPERED
        );
        // A unit signed for the new chain id verifies.
        challengeAlice(aliceUnit(), TAMPERED, TAMPERED);
    }

    /// @dev A unit is judged by the key in force at its intervals: after a rotation the old
    ///      key's units of earlier intervals still count (this used to revert: issue 12
    ///      finding 1), and the new key cannot sign for intervals before the rotation.
    function test_afterKeyRotation_oldUnitsStillCount_newKeyCannotSignThePast() public {
        IDisputeResolver.MeterUnit memory old = aliceUnit();
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, 0xD1D1);
        vm.prank(alice);
        registry.rotateKey(aliceDevice, key);
        IDisputeResolver.MeterUnit memory byNewKey = signSecp(unit(aliceDevice, firstStart, aliceSigned), 0xD1D1);
        expectChallengeRevert(
            abi.encodeWithSelector(
                IDisputeResolver.UnitSignatureInvalid.selector, aliceDevice, IDeviceRegistry.KeyType.Secp256k1
            ),
            byNewKey,
            TAMPERED,
            TAMPERED
        );
        uint256 id = challengeAlice(old, TAMPERED, TAMPERED);
        assertEq(dispute.challengeOf(id).deviceOwner, alice, "judged by the epoch of the interval");
    }

    function test_revert_valuesAgree() public {
        expectChallengeRevert(
            abi.encodeWithSelector(IDisputeResolver.ValuesAgree.selector, aliceDevice, firstStart + 900, int64(12_500)),
            aliceUnit(),
            1,
            1
        );
    }

    function test_revert_unknownDevice() public {
        // A leaf for a device id the registry never saw: the registry's error surfaces.
        bytes memory used = packUsed(firstStart, 900, aliceSigned);
        bytes32 leaf = readingsLeaf(777, used);
        bytes32[] memory proof = new bytes32[](0);
        uint256 other = createRequest(defaultParams());
        placeBid(carol, other, 50_000, P20, ids(carolDevice));
        clearRequest(other);
        postReportWithRoot(other, wh(10_000), leaf, twoSigners());
        IDisputeResolver.MeterUnit memory u = unit(777, firstStart, aliceSigned);
        u.signature = new bytes(65);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.UnknownDevice.selector, 777));
        dispute.challenge(other, 777, used, proof, 0, u, 0);
    }

    // ─── Governance, wiring, views ────────────────────────────────────────────────────────

    function test_setChallengerShareBps_boundsAndRole() public {
        assertEq(dispute.challengerShareBps(), 5_000, "default 50%");
        uint256 lo = dispute.MIN_CHALLENGER_SHARE_BPS();
        uint256 hi = dispute.MAX_CHALLENGER_SHARE_BPS();
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.ParameterOutOfBounds.selector, bytes32("challengerShareBps"), hi + 1, lo, hi
            )
        );
        vm.prank(governance);
        dispute.setChallengerShareBps(uint16(hi + 1));
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.ParameterOutOfBounds.selector, bytes32("challengerShareBps"), lo - 1, lo, hi
            )
        );
        vm.prank(governance);
        dispute.setChallengerShareBps(uint16(lo - 1));
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, challenger, dispute.DEFAULT_ADMIN_ROLE()
            )
        );
        vm.prank(challenger);
        dispute.setChallengerShareBps(2_000);
        vm.expectEmit(address(dispute));
        emit IDisputeResolver.ChallengerShareSet(lo);
        vm.prank(governance);
        dispute.setChallengerShareBps(uint16(lo));
        assertEq(dispute.challengerShareBps(), lo, "set");
    }

    function test_setResponseWindow_boundsAndRole() public {
        assertEq(dispute.responseWindow(), 1 hours, "default");
        uint64 lo = dispute.MIN_RESPONSE_WINDOW();
        uint64 hi = dispute.MAX_RESPONSE_WINDOW();
        vm.startPrank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.ParameterOutOfBounds.selector, bytes32("responseWindow"), lo - 1, lo, hi
            )
        );
        dispute.setResponseWindow(lo - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.ParameterOutOfBounds.selector, bytes32("responseWindow"), hi + 1, lo, hi
            )
        );
        dispute.setResponseWindow(hi + 1);
        vm.expectEmit(true, true, true, true, address(dispute));
        emit IDisputeResolver.ResponseWindowSet(lo);
        dispute.setResponseWindow(lo);
        vm.stopPrank();
        assertEq(dispute.responseWindow(), lo, "set");
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, challenger, dispute.DEFAULT_ADMIN_ROLE()
            )
        );
        vm.prank(challenger);
        dispute.setResponseWindow(hi);
    }

    function test_setChallengeBond_boundsAndRole() public {
        assertEq(dispute.challengeBond(), 100 * FLEX, "default");
        uint256 lo = dispute.MIN_CHALLENGE_BOND();
        uint256 hi = dispute.MAX_CHALLENGE_BOND();
        vm.startPrank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.ParameterOutOfBounds.selector, bytes32("challengeBond"), lo - 1, lo, hi
            )
        );
        dispute.setChallengeBond(lo - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.ParameterOutOfBounds.selector, bytes32("challengeBond"), hi + 1, lo, hi
            )
        );
        dispute.setChallengeBond(hi + 1);
        vm.expectEmit(true, true, true, true, address(dispute));
        emit IDisputeResolver.ChallengeBondSet(lo);
        dispute.setChallengeBond(lo);
        vm.stopPrank();
        assertEq(dispute.challengeBond(), lo, "set");
        // a challenge locks the bond in force when it is opened, and releases exactly that
        uint256 id = challengeAlice(aliceUnit(), TAMPERED, TAMPERED);
        assertEq(uint256(dispute.challengeOf(id).bond), lo, "bond recorded");
        vm.prank(governance);
        dispute.setChallengeBond(hi);
        vm.warp(dispute.challengeOf(id).responseDeadline);
        dispute.resolve(id);
        assertEq(lockedOf(challenger), 0, "released what was locked");
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, challenger, dispute.DEFAULT_ADMIN_ROLE()
            )
        );
        vm.prank(challenger);
        dispute.setChallengeBond(lo);
    }

    function test_setEquivocationPenalty_boundsAndRole() public {
        assertEq(dispute.equivocationPenalty(), 1_000 * FLEX, "default");
        uint256 lo = dispute.MIN_EQUIVOCATION_PENALTY();
        uint256 hi = dispute.MAX_EQUIVOCATION_PENALTY();
        vm.startPrank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.ParameterOutOfBounds.selector, bytes32("equivocationPenalty"), lo - 1, lo, hi
            )
        );
        dispute.setEquivocationPenalty(lo - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.ParameterOutOfBounds.selector, bytes32("equivocationPenalty"), hi + 1, lo, hi
            )
        );
        dispute.setEquivocationPenalty(hi + 1);
        vm.expectEmit(true, true, true, true, address(dispute));
        emit IDisputeResolver.EquivocationPenaltySet(hi);
        dispute.setEquivocationPenalty(hi);
        vm.stopPrank();
        assertEq(dispute.equivocationPenalty(), hi, "set");
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, challenger, dispute.DEFAULT_ADMIN_ROLE()
            )
        );
        vm.prank(challenger);
        dispute.setEquivocationPenalty(lo);
    }

    function test_constructor_wiringAndZeroAddresses() public {
        assertEq(address(dispute.market()), address(market), "market");
        assertEq(address(dispute.committee()), address(committee), "committee");
        assertEq(address(dispute.registry()), address(registry), "registry");
        assertEq(address(dispute.staking()), address(staking), "staking");
        assertTrue(staking.hasRole(staking.SLASHER_ROLE(), address(dispute)), "slasher");
        assertTrue(market.hasRole(market.DISPUTE_ROLE(), address(dispute)), "market role");
        assertTrue(committee.hasRole(committee.DISPUTE_ROLE(), address(dispute)), "committee role");
        assertTrue(dispute.hasRole(dispute.DEFAULT_ADMIN_ROLE(), governance), "admin");
        bytes4 zero = IDisputeResolver.ZeroAddress.selector;
        vm.expectRevert(zero);
        new DisputeResolver(address(0), market, committee, registry);
        vm.expectRevert(zero);
        new DisputeResolver(governance, IFlexMarket(address(0)), committee, registry);
        vm.expectRevert(zero);
        new DisputeResolver(governance, market, IOracleCommittee(address(0)), registry);
        vm.expectRevert(zero);
        new DisputeResolver(governance, market, committee, IDeviceRegistry(address(0)));
    }

    function test_unitDigest_matchesIndependentEip712() public view {
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        assertEq(dispute.unitDigest(u), meterDigest(u, block.chainid, address(registry)), "digest");
        assertEq(
            dispute.METER_READINGS_TYPEHASH(),
            keccak256(
                "MeterReadings(uint256 deviceId,uint64 firstIntervalStart,uint32 intervalSeconds,uint64 sequence,bytes energyWh)"
            ),
            "typehash"
        );
    }

    function test_resolverWithoutRoles_cannotVoid() public {
        DisputeResolver unwired = new DisputeResolver(governance, market, committee, registry);
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(unwired), market.DISPUTE_ROLE()
            )
        );
        unwired.challenge(requestId, aliceDevice, aliceUsed, aliceProof, TAMPERED, u, TAMPERED);
    }
}
