// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {SecurityBase} from "./SecurityBase.sol";
import {IFlexMarket} from "../../interfaces/IFlexMarket.sol";
import {IDeviceRegistry} from "../../interfaces/IDeviceRegistry.sol";
import {IDisputeResolver} from "../../interfaces/IDisputeResolver.sol";

/// @notice Issue 12 findings 1, 2 and 3 (on-chain part): no owner action between a reading and
///         its dispute changes who is right, a device cannot be pushed onto a victim, the
///         seller answers for what its key signed and its key attests nothing after the sale,
///         and a provitably equivocating device's owner pays with no report at all.
/// @dev Every attack is performed by alice, the owner of device `aliceDevice` (key 0xD1),
///      against an HONEST report: the oracles used exactly what her device signed.
contract OwnerActionsTest is SecurityBase {
    int64 internal constant FAKE_WH = 9_999;
    uint256 internal constant NEW_KEY = 0xD1D1;

    enum Action {
        RotateKey,
        Transfer,
        Deactivate,
        Update
    }

    uint256 internal requestId;

    function setUp() public {
        setUpMarket();
    }

    /// @dev A request whose report used alice's signed readings as they are.
    function postHonestReport() internal returns (uint256 id) {
        IFlexMarket.RequestParams memory p = defaultParams();
        id = createRequest(p);
        placeBid(alice, id, 50_000, P20, ids(aliceDevice));
        placeBid(bob, id, 50_000, P25, ids(bobDevice));
        clearRequest(id);
        firstStart = p.windowStart - 900;
        aliceUsed = packUsed(firstStart, 900, aliceSignedValues());
        postReportWithRoot(id, wh(45_000, 48_000), readingsLeaf(aliceDevice, aliceUsed), twoSigners());
    }

    /// @dev The second value alice's key signs for interval TAMPERED.
    function fakeUnit() internal view returns (IDisputeResolver.MeterUnit memory u) {
        int64[] memory values = aliceSignedValues();
        values[TAMPERED] = FAKE_WH;
        u = unit(aliceDevice, firstStart, values);
        u.sequence = 43;
        u = signSecp(u, ALICE_DEVICE_KEY);
    }

    /// @dev alice challenges the honest report with her second value (bond from her free stake).
    function aliceChallenges() internal returns (uint256 id) {
        IDisputeResolver.MeterUnit memory u = fakeUnit();
        vm.prank(alice);
        id = dispute.challenge(requestId, aliceDevice, aliceUsed, emptyProof, TAMPERED, u, TAMPERED);
    }

    function act(Action action) internal {
        if (action == Action.RotateKey) {
            IDeviceRegistry.DeviceKey memory key = secpKey(alice, NEW_KEY);
            vm.prank(alice);
            registry.rotateKey(aliceDevice, key);
        } else if (action == Action.Transfer) {
            transferDevice(aliceDevice, alice, dave, NEW_KEY);
        } else if (action == Action.Deactivate) {
            vm.prank(alice);
            registry.setActive(aliceDevice, false);
        } else {
            vm.prank(alice);
            registry.update(aliceDevice, 1_000, keccak256("elsewhere"));
        }
    }

    /// @dev Finding 1 and its siblings: challenge with a second value, then change the device;
    ///      anyone still rebuts with the honest unit (judged by the key of the interval), the
    ///      resolution is refused and no oracle is slashed; alice (owner at the interval) pays.
    function attackThenRebut(Action action) internal {
        requestId = postHonestReport();
        vm.warp(block.timestamp + 1 hours); // later than the readings: every new epoch is after them
        uint256 id = aliceChallenges();
        act(action);

        uint256 aliceBefore = stakedOf(alice);
        uint256 daveBefore = stakedOf(dave);
        vm.prank(stranger);
        uint256 penalty = dispute.rebut(id, aliceUnit(), TAMPERED); // the honest unit
        assertEq(penalty, dispute.equivocationPenalty(), "alice's equivocation penalty");
        assertEq(aliceBefore - stakedOf(alice), penalty + dispute.challengeBond(), "alice pays penalty and her bond");
        assertEq(stakedOf(dave), daveBefore, "a later owner is untouched");

        vm.warp(dispute.challengeOf(id).responseDeadline);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.ChallengeNotPending.selector, id, IDisputeResolver.ChallengeStatus.Rebutted
            )
        );
        dispute.resolve(id);
        assertEq(stakedOf(oracles[0]), ORACLE_BOND, "oracle 0 intact");
        assertEq(stakedOf(oracles[1]), ORACLE_BOND, "oracle 1 intact");
        assertEq(committee.activeOracleCount(), 3, "committee intact");
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Reported), "honest report stands");
    }

    function test_finding1_rotateKeyDuringChallenge_honestUnitStillRebuts() public {
        attackThenRebut(Action.RotateKey);
    }

    function test_finding1_transferDuringChallenge_honestUnitStillRebuts() public {
        attackThenRebut(Action.Transfer);
    }

    function test_finding1_deactivateDuringChallenge_honestUnitStillRebuts() public {
        attackThenRebut(Action.Deactivate);
    }

    function test_finding1_updateDuringChallenge_honestUnitStillRebuts() public {
        attackThenRebut(Action.Update);
    }

    /// @dev The other order: change the key first, then sign the "second value" with the new
    ///      key for an interval metered under the old one: refused, nothing opens.
    function test_finding1_newKeyCannotContradictReadingsOfTheOldKey() public {
        requestId = postHonestReport();
        vm.warp(block.timestamp + 1 hours);
        act(Action.RotateKey);
        int64[] memory values = aliceSignedValues();
        values[TAMPERED] = FAKE_WH;
        IDisputeResolver.MeterUnit memory u = signSecp(unit(aliceDevice, firstStart, values), NEW_KEY);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.UnitSignatureInvalid.selector, aliceDevice, IDeviceRegistry.KeyType.Secp256k1
            )
        );
        vm.prank(alice);
        dispute.challenge(requestId, aliceDevice, aliceUsed, emptyProof, TAMPERED, u, TAMPERED);
    }

    // ─── Finding 2: transfers ─────────────────────────────────────────────────────────────

    /// @dev The old attack: push the device to a victim, equivocate, challenge and rebut
    ///      oneself; the victim used to be slashed. Now the push is only an offer.
    function test_finding2_unsolicitedPush_victimUntouched() public {
        address victim = carol; // staked provider with free stake
        requestId = postHonestReport();
        vm.prank(alice);
        registry.transfer(aliceDevice, victim);
        uint256 id = aliceChallenges();
        uint256 victimBefore = stakedOf(victim);
        uint256 aliceBefore = stakedOf(alice);
        vm.prank(alice);
        dispute.rebut(id, aliceUnit(), TAMPERED);
        assertEq(stakedOf(victim), victimBefore, "victim untouched");
        assertEq(registry.device(aliceDevice).owner, alice, "still alice's device");
        assertEq(
            aliceBefore - stakedOf(alice),
            dispute.equivocationPenalty() + dispute.challengeBond(),
            "alice pays (and keeps only her rebutter shares)"
        );
        assertEq(dispute.challengeOf(id).deviceOwner, alice, "owner at the interval");
    }

    /// @dev Seller equivocates on an interval it owned, after the buyer accepted: seller pays.
    function test_finding2_sellerEquivocatesOnPreTransferInterval_sellerPays() public {
        requestId = postHonestReport();
        vm.warp(block.timestamp + 1 hours);
        transferDevice(aliceDevice, alice, dave, NEW_KEY);
        uint256 daveBefore = stakedOf(dave);
        uint256 aliceBefore = stakedOf(alice);
        // through a challenge and its rebuttal ...
        uint256 id = aliceChallenges();
        assertEq(dispute.challengeOf(id).deviceOwner, alice, "owner at the interval");
        vm.prank(stranger);
        dispute.rebut(id, aliceUnit(), TAMPERED);
        assertEq(stakedOf(dave), daveBefore, "buyer untouched");
        assertEq(aliceBefore - stakedOf(alice), dispute.equivocationPenalty() + dispute.challengeBond(), "seller");
    }

    function test_finding2_sellerEquivocation_provenDirectly_sellerPays() public {
        vm.warp(T0 + 3 hours);
        firstStart = T0;
        transferDevice(aliceDevice, alice, dave, NEW_KEY);
        uint256 daveBefore = stakedOf(dave);
        uint256 aliceBefore = stakedOf(alice);
        vm.prank(stranger);
        uint256 penalty = dispute.proveEquivocation(aliceUnit(), TAMPERED, fakeUnit(), TAMPERED);
        assertEq(penalty, dispute.equivocationPenalty(), "penalty");
        assertEq(aliceBefore - stakedOf(alice), penalty, "seller pays");
        assertEq(stakedOf(dave), daveBefore, "buyer untouched");
    }

    /// @dev After the sale the seller's key attests nothing: not whole units after the
    ///      acceptance, nor units that straddle it.
    function test_finding2_sellersOldKey_cannotSignPostTransferIntervals() public {
        vm.warp(T0);
        transferDevice(aliceDevice, alice, dave, NEW_KEY); // accepted at T0
        vm.warp(T0 + 6 hours);
        firstStart = T0; // after the acceptance
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.UnitSignatureInvalid.selector, aliceDevice, IDeviceRegistry.KeyType.Secp256k1
            )
        );
        dispute.proveEquivocation(aliceUnit(), TAMPERED, fakeUnit(), TAMPERED);
        // a unit that begins before and ends after the acceptance is signed by no single key
        firstStart = T0 - 900;
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.UnitSpansDeviceEpochs.selector, aliceDevice, T0 - 900, T0 + 1_800, T0
            )
        );
        dispute.proveEquivocation(aliceUnit(), TAMPERED, fakeUnit(), TAMPERED);
        // the buyer's key does sign them
        int64[] memory a = aliceSignedValues();
        int64[] memory b = aliceSignedValues();
        b[TAMPERED] = FAKE_WH;
        IDisputeResolver.MeterUnit memory ua = signSecp(unit(aliceDevice, T0, a), NEW_KEY);
        IDisputeResolver.MeterUnit memory ub = signSecp(unit(aliceDevice, T0, b), NEW_KEY);
        uint256 daveBefore = stakedOf(dave);
        dispute.proveEquivocation(ua, TAMPERED, ub, TAMPERED);
        assertEq(daveBefore - stakedOf(dave), dispute.equivocationPenalty(), "the buyer answers for its own key");
    }

    // ─── Finding 3 (on-chain part): equivocation proven without a report ────────────────

    /// @dev Split views: the request expires without a report, yet two signed values for one
    ///      interval slash the owner (issue 12: "an expiry is not a free exit").
    function test_proveEquivocation_afterExpiry_slashesOwner_paysProver() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        uint256 id = createRequest(p);
        placeBid(alice, id, 50_000, P20, ids(aliceDevice));
        clearRequest(id);
        firstStart = p.windowStart;
        vm.warp(p.windowEnd + market.reportTimeout() + 1 days);
        market.expire(id);
        assertEq(statusOf(id), uint256(IFlexMarket.RequestStatus.Expired), "expired without a report");

        uint256 aliceBefore = stakedOf(alice);
        uint256 treasuryBefore = flex.balanceOf(treasury);
        uint256 penalty = dispute.equivocationPenalty();
        vm.expectEmit(true, true, true, true, address(dispute));
        emit IDisputeResolver.EquivocationProven(aliceDevice, uint64(firstStart + 900), alice, stranger, penalty);
        vm.prank(stranger);
        assertEq(dispute.proveEquivocation(aliceUnit(), TAMPERED, fakeUnit(), TAMPERED), penalty, "penalty");
        assertEq(aliceBefore - stakedOf(alice), penalty, "owner slashed");
        assertEq(flex.balanceOf(stranger), penalty / 2, "prover's share");
        assertEq(flex.balanceOf(treasury) - treasuryBefore, penalty - penalty / 2, "treasury's share");
        assertTrue(dispute.equivocated(aliceDevice), "marked");
    }

    function test_proveEquivocation_replay_refused() public {
        vm.warp(T0 + 3 hours);
        firstStart = T0;
        dispute.proveEquivocation(aliceUnit(), TAMPERED, fakeUnit(), TAMPERED);
        IDisputeResolver.MeterUnit memory again = fakeUnit();
        again.sequence = 44;
        again = signSecp(again, ALICE_DEVICE_KEY);
        vm.expectRevert(abi.encodeWithSelector(IDisputeResolver.DeviceEquivocated.selector, aliceDevice));
        dispute.proveEquivocation(aliceUnit(), TAMPERED, again, TAMPERED);
        // nor can its units back a challenge any more
        requestId = postHonestReport();
        vm.expectRevert(abi.encodeWithSelector(IDisputeResolver.DeviceEquivocated.selector, aliceDevice));
        aliceChallenges();
    }

    function test_proveEquivocation_equalValues_refused() public {
        vm.warp(T0 + 3 hours);
        firstStart = T0;
        IDisputeResolver.MeterUnit memory resent = aliceUnit();
        resent.sequence = 77; // the same reading sent again
        resent = signSecp(resent, ALICE_DEVICE_KEY);
        vm.expectRevert(abi.encodeWithSelector(IDisputeResolver.ValuesAgree.selector, aliceDevice, T0 + 900, SIGNED_WH));
        dispute.proveEquivocation(aliceUnit(), TAMPERED, resent, TAMPERED);
    }

    function test_proveEquivocation_wrongEpochKeys_refused() public {
        vm.warp(T0 + 1 hours);
        act(Action.RotateKey); // at T0 + 1 h
        vm.warp(T0 + 5 hours);
        // new key, interval before the rotation
        firstStart = T0;
        int64[] memory b = aliceSignedValues();
        b[TAMPERED] = FAKE_WH;
        IDisputeResolver.MeterUnit memory byNew = signSecp(unit(aliceDevice, T0, b), NEW_KEY);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.UnitSignatureInvalid.selector, aliceDevice, IDeviceRegistry.KeyType.Secp256k1
            )
        );
        dispute.proveEquivocation(aliceUnit(), TAMPERED, byNew, TAMPERED);
        // old key, interval after the rotation
        firstStart = T0 + 2 hours;
        vm.expectRevert(
            abi.encodeWithSelector(
                IDisputeResolver.UnitSignatureInvalid.selector, aliceDevice, IDeviceRegistry.KeyType.Secp256k1
            )
        );
        dispute.proveEquivocation(aliceUnit(), TAMPERED, fakeUnit(), TAMPERED);
        // each key for its own epoch works
        firstStart = T0;
        dispute.proveEquivocation(aliceUnit(), TAMPERED, fakeUnit(), TAMPERED);
    }

    function test_proveEquivocation_shapeChecks() public {
        vm.warp(T0 + 3 hours);
        firstStart = T0;
        IDisputeResolver.MeterUnit memory other = fakeUnit();
        // another interval length: not the same interval
        other.intervalSeconds = 1_800;
        vm.expectRevert(abi.encodeWithSelector(IDisputeResolver.IntervalLengthMismatch.selector, 900, 1_800));
        dispute.proveEquivocation(aliceUnit(), TAMPERED, other, TAMPERED);
        // another interval of the unit
        vm.expectRevert(abi.encodeWithSelector(IDisputeResolver.UnitIntervalMismatch.selector, T0 + 1_800, T0 + 900));
        dispute.proveEquivocation(aliceUnit(), TAMPERED, fakeUnit(), TAMPERED + 1);
        // another device's unit
        IDisputeResolver.MeterUnit memory bobs = signSecp(unit(bobDevice, T0, aliceSignedValues()), 0xD2);
        vm.expectRevert(abi.encodeWithSelector(IDisputeResolver.UnitDeviceMismatch.selector, bobDevice, aliceDevice));
        dispute.proveEquivocation(aliceUnit(), TAMPERED, bobs, TAMPERED);
        // an interval that has not ended: nothing metered it yet
        vm.warp(T0 + 1_000);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeResolver.UnitNotEnded.selector, aliceDevice, T0 + 2_700, T0 + 1_000)
        );
        dispute.proveEquivocation(aliceUnit(), TAMPERED, fakeUnit(), TAMPERED);
        // before the device existed
        firstStart = T0 - 2 days;
        vm.warp(T0 + 3 hours);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDeviceRegistry.DeviceNotYetRegistered.selector, aliceDevice, T0 - 2 days, T0 - 1 days
            )
        );
        dispute.proveEquivocation(aliceUnit(), TAMPERED, fakeUnit(), TAMPERED);
    }
}
