// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {SecurityBase} from "./SecurityBase.sol";
import {IFlexMarket} from "../../interfaces/IFlexMarket.sol";
import {IStaking} from "../../interfaces/IStaking.sol";
import {IOracleCommittee} from "../../interfaces/IOracleCommittee.sol";
import {IDisputeResolver} from "../../interfaces/IDisputeResolver.sol";

/// @notice Stake withdrawal racing a dispute: an oracle that signed a report, or a device
///         owner whose bid or device is at stake, tries to get its stake out while the report
///         is inside its dispute window or under challenge. Either the exit is refused or the
///         stake stays reachable and the slash lands. The fixture: unbonding 3 days, dispute
///         window 1 day, response window 1 hour.
contract DisputeRaceTest is SecurityBase {
    function setUp() public {
        setUpMarket();
    }

    function oracleAccount(uint256 i) internal view returns (IStaking.Account memory) {
        return staking.accountOf(oracles[i]);
    }

    // ─── Oracles ──────────────────────────────────────────────────────────────────────────

    function test_signerOracle_cannotUnstakeItsBond_duringTheWindow_andIsSlashed() public {
        uint256 requestId = postTamperedReport();
        // Everything the oracle staked is its seat's bond: none of it is free.
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, oracles[0], 0, ORACLE_BOND));
        vm.prank(oracles[0]);
        staking.requestUnstake(ORACLE_BOND);

        uint256 id = challengeAlice(requestId);
        // Still refused while the challenge is pending.
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, oracles[0], 0, 1));
        vm.prank(oracles[0]);
        staking.requestUnstake(1);
        vm.warp(dispute.challengeOf(id).responseDeadline);
        uint256 slashed = dispute.resolve(id);
        assertEq(slashed, 2 * ORACLE_BOND, "both signers lose their whole bond");
        assertEq(oracleAccount(0).staked, 0, "oracle 0 emptied");
        assertEq(oracleAccount(1).staked, 0, "oracle 1 emptied");
        assertEq(oracleAccount(2).staked, ORACLE_BOND, "the non-signer keeps its bond");
    }

    function test_signerOracle_surplusMayLeave_theBondMayNot() public {
        // Stake above the seat's bond is not at risk and may unbond; the bond stays locked.
        fundAndStake(oracles[0], 500 * FLEX);
        uint256 requestId = postTamperedReport();
        vm.prank(oracles[0]);
        staking.requestUnstake(500 * FLEX);
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, oracles[0], 0, 1));
        vm.prank(oracles[0]);
        staking.requestUnstake(1);
        uint256 id = challengeAlice(requestId);
        vm.warp(dispute.challengeOf(id).responseDeadline);
        dispute.resolve(id);
        assertEq(oracleAccount(0).staked, 0, "bond slashed");
        assertEq(oracleAccount(0).unbonding, 500 * FLEX, "the surplus was never at stake");
    }

    function test_removedSignerOracle_bondHeldPastTheWindow_andStillSlashed() public {
        uint256 requestId = postTamperedReport();
        // Governance unseats oracle 0 right after it signed (k = 2 of the remaining 2).
        vm.prank(governance);
        committee.removeOracle(oracles[0], 2);
        uint64 releaseAt = committee.oracleOf(oracles[0]).bondReleaseAt;
        assertEq(releaseAt, block.timestamp + UNBONDING, "held one unbonding period");
        assertGe(releaseAt, market.request(requestId).disputeEndsAt, "held past the dispute end");
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.BondStillLocked.selector, oracles[0], releaseAt));
        committee.releaseOracleBond(oracles[0]);

        // The latest possible challenge, resolved at the end of its resolution period.
        vm.warp(market.request(requestId).disputeEndsAt - 1);
        uint256 id = challengeAlice(requestId);
        vm.warp(market.request(requestId).disputeEndsAt - 1);
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.BondStillLocked.selector, oracles[0], releaseAt));
        committee.releaseOracleBond(oracles[0]);
        uint256 slashed = dispute.resolve(id);
        assertEq(slashed, 2 * ORACLE_BOND, "the removed signer is slashed too");
        assertEq(oracleAccount(0).staked, 0, "removed oracle emptied");
    }

    /// @notice Known limit (SECURITY.md): the committee holds a removed oracle's bond for one
    ///         unbonding period from removal, without knowing of challenges. A challenge
    ///         extends a report's dispute end by up to two response windows, so when
    ///         governance sets unbondingPeriod < disputeWindow + 2 x responseWindow, a bond
    ///         released between the original and the extended end escapes the slash. The
    ///         deployed defaults (14 days >= 1 day + 2 hours) keep it out of reach.
    function test_knownLimit_removedOracleReleasedBeforeAnExtendedResolution_escapes() public {
        vm.prank(governance);
        staking.setUnbondingPeriod(DISPUTE_WINDOW); // the smallest the bounds allow
        uint256 requestId = postTamperedReport();
        vm.prank(governance);
        committee.removeOracle(oracles[0], 2);
        vm.warp(market.request(requestId).disputeEndsAt - 1);
        uint256 id = challengeAlice(requestId);
        // The original dispute end passes: the removed oracle's bond is released and unbonds.
        vm.warp(committee.oracleOf(oracles[0]).bondReleaseAt);
        committee.releaseOracleBond(oracles[0]);
        vm.prank(oracles[0]);
        staking.requestUnstake(ORACLE_BOND);
        vm.warp(dispute.challengeOf(id).responseDeadline);
        uint256 slashed = dispute.resolve(id);
        assertEq(slashed, ORACLE_BOND, "only the seated signer's bond is slashed");
        assertEq(oracleAccount(0).unbonding, ORACLE_BOND, "the released bond escaped");
    }

    // ─── Device owners: bids ──────────────────────────────────────────────────────────────

    function test_bidder_cannotUnstakeTheBond_beforeSettlement_andIsSlashed() public {
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 50_000, P20, ids(aliceDevice));
        clearRequest(requestId);
        uint256 bond = lockedOf(alice);
        uint256 free = PROVIDER_STAKE - bond;
        // alice unstakes all she can: the bond stays.
        vm.prank(alice);
        staking.requestUnstake(free);
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, alice, 0, 1));
        vm.prank(alice);
        staking.requestUnstake(1);
        // She even hands the device on: the bond is hers, not the device's.
        transferDevice(aliceDevice, alice, bob, 0xB0B1);

        postReport(requestId, wh(0), twoSigners()); // she delivered nothing
        vm.warp(block.timestamp + market.disputeWindow() - 1);
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, alice, 0, 1));
        vm.prank(alice);
        staking.requestUnstake(1);
        vm.warp(block.timestamp + 1);
        market.finalize(requestId, wh(0));
        assertEq(stakedOf(alice), 0, "whole bond slashed");
        assertEq(lockedOf(alice), 0, "lock released with the slash");
        assertEq(staking.accountOf(alice).unbonding, free, "only the free part was ever leaving");
    }

    function test_bidder_bondHeldWhileAChallengeExtendsTheWindow() public {
        uint256 requestId = postTamperedReport();
        uint256 bobBond = lockedOf(bob);
        vm.warp(market.request(requestId).disputeEndsAt - 1);
        uint256 id = challengeAlice(requestId);
        // Past the original end: the report cannot finalize, bonds stay locked.
        vm.warp(block.timestamp + 2);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.DisputeWindowOpen.selector, requestId, market.request(requestId).disputeEndsAt
            )
        );
        market.finalize(requestId, wh(45_000, 48_000));
        assertEq(lockedOf(bob), bobBond, "bond still locked");
        vm.warp(dispute.challengeOf(id).responseDeadline);
        dispute.resolve(id);
        assertEq(lockedOf(bob), bobBond, "voided, not settled: the bond waits for the next round");
    }

    // ─── Device owners: equivocation ──────────────────────────────────────────────────────

    function test_equivocatingOwner_unstakedBeforeChallenging_isStillSlashed() public {
        uint256 requestId = postTamperedReport();
        // alice unbonds all her free stake, then (through a friend) challenges the report with
        // a unit contradicting another unit her device also signed.
        uint256 free = staking.freeStake(alice);
        vm.prank(alice);
        staking.requestUnstake(free);
        uint256 id = challengeAlice(requestId);
        // She cannot withdraw before the unbonding period, which outlasts the response window.
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.StillUnbonding.selector, alice, staking.accountOf(alice).unbondingReleaseAt, block.timestamp
            )
        );
        vm.prank(alice);
        staking.withdraw();
        // The rebuttal shows the used value signed by her device: the penalty reaches unbonding.
        int64[] memory reported = aliceSignedValues();
        reported[TAMPERED] = REPORTED_WH;
        IDisputeResolver.MeterUnit memory other = unit(aliceDevice, firstStart, reported);
        other.sequence = 43;
        other = signSecp(other, ALICE_DEVICE_KEY);
        vm.warp(dispute.challengeOf(id).responseDeadline - 1);
        vm.prank(stranger);
        uint256 penalty = dispute.rebut(id, other, TAMPERED);
        assertEq(penalty, dispute.equivocationPenalty(), "full penalty");
        assertEq(staking.accountOf(alice).unbonding, free - penalty, "taken from unbonding stake");
        uint256 bond = dispute.challengeBond();
        assertEq(flex.balanceOf(stranger), penalty / 2 + bond / 2, "rebutter paid its share of penalty and bond");
    }

    function test_equivocatingOwner_deviceTransferredAfterChallenge_ownerAtChallengeTimePays() public {
        uint256 requestId = postTamperedReport();
        uint256 id = challengeAlice(requestId);
        transferDevice(aliceDevice, alice, dave, 0xDA7E); // hand the device to someone else mid-challenge
        int64[] memory reported = aliceSignedValues();
        reported[TAMPERED] = REPORTED_WH;
        IDisputeResolver.MeterUnit memory other = unit(aliceDevice, firstStart, reported);
        other.sequence = 43;
        other = signSecp(other, ALICE_DEVICE_KEY);
        uint256 daveBefore = stakedOf(dave);
        uint256 aliceBefore = stakedOf(alice);
        dispute.rebut(id, other, TAMPERED);
        assertEq(stakedOf(dave), daveBefore, "the new owner is not punished");
        assertEq(aliceBefore - stakedOf(alice), dispute.equivocationPenalty(), "the owner who signed pays");
    }

    /// @notice Known limit (DisputeResolver NatSpec, SECURITY.md): an owner with no free or
    ///         unbonding stake has nothing to slash; the challenge is still dismissed and the
    ///         device can never back another one.
    function test_knownLimit_equivocatingOwnerWithNoStake_paysNothing_butIsSpent() public {
        // alice keeps only what her bid's bond needs, and withdraws the rest beforehand.
        uint256 bond = 50 * uint256(market.bondPerKW()); // 50 kW
        vm.prank(alice);
        staking.requestUnstake(PROVIDER_STAKE - bond);
        vm.warp(block.timestamp + UNBONDING);
        vm.prank(alice);
        staking.withdraw();
        uint256 requestId = postTamperedReport();
        assertEq(staking.freeStake(alice), 0, "nothing free: the bond is locked");
        uint256 id = challengeAlice(requestId);

        int64[] memory reported = aliceSignedValues();
        reported[TAMPERED] = REPORTED_WH;
        IDisputeResolver.MeterUnit memory other = unit(aliceDevice, firstStart, reported);
        other.sequence = 43;
        other = signSecp(other, ALICE_DEVICE_KEY);
        uint256 penalty = dispute.rebut(id, other, TAMPERED);
        assertEq(penalty, 0, "nothing to take: the locked bond is never touched by a rebuttal");
        assertEq(lockedOf(alice), bond, "bond intact, settlement unaffected");
        // The report stands and the device can never back another challenge.
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        vm.expectRevert(abi.encodeWithSelector(IDisputeResolver.DeviceEquivocated.selector, aliceDevice));
        dispute.challenge(requestId, aliceDevice, aliceUsed, emptyProof, TAMPERED, u, TAMPERED);
    }
}
