// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Deployers} from "./utils/Deployers.sol";
import {Staking, IDisputeWindowSource} from "../Staking.sol";
import {IStaking} from "../interfaces/IStaking.sol";
import {IFlexMarket} from "../interfaces/IFlexMarket.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

/// @notice A stand-in market exposing only the dispute window.
contract MockDisputeWindowSource {
    uint64 public disputeWindow;

    constructor(uint64 window) {
        disputeWindow = window;
    }

    function set(uint64 window) external {
        disputeWindow = window;
    }
}

contract StakingTest is Deployers {
    address internal alice = address(0xA11);
    address internal bob = address(0xB0B);
    address internal locker = address(0x10CC);
    address internal slasher = address(0x5A5);
    address internal challenger = address(0xC4A1);
    address internal outsider = address(0x0BAD);

    bytes32 internal lockerRole;
    bytes32 internal slasherRole;
    bytes32 internal adminRole;

    function setUp() public {
        deployProtocol();
        lockerRole = staking.LOCKER_ROLE();
        slasherRole = staking.SLASHER_ROLE();
        adminRole = staking.DEFAULT_ADMIN_ROLE();
        vm.startPrank(governance);
        staking.grantRole(lockerRole, locker);
        staking.grantRole(slasherRole, slasher);
        vm.stopPrank();
    }

    // ─── Helpers ──────────────────────────────────────────────────────────────────────────

    function _fund(address account, uint256 amount) internal {
        vm.prank(governance);
        flex.transfer(account, amount);
        vm.prank(account);
        flex.approve(address(staking), type(uint256).max);
    }

    function _lock(address account, uint256 amount) internal {
        vm.prank(locker);
        staking.lock(account, amount);
    }

    function _slash(address account, uint256 amount, address beneficiary, uint16 bps) internal returns (uint256) {
        vm.prank(slasher);
        return staking.slash(account, amount, beneficiary, bps);
    }

    function _unstake(address account, uint256 amount) internal {
        vm.prank(account);
        staking.requestUnstake(amount);
    }

    function _assertAccount(address account, uint256 staked, uint256 locked, uint256 unbonding) internal view {
        IStaking.Account memory a = staking.accountOf(account);
        assertEq(uint256(a.staked), staked, "staked");
        assertEq(uint256(a.locked), locked, "locked");
        assertEq(uint256(a.unbonding), unbonding, "unbonding");
        assertEq(staking.freeStake(account), staked - locked, "free");
    }

    function _unauthorized(address account, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, account, role);
    }

    function _outOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IStaking.ParameterOutOfBounds.selector, name, value, min, max);
    }

    // ─── Constructor ──────────────────────────────────────────────────────────────────────

    function test_constructor_setsStateAndEmits() public {
        vm.expectEmit(false, false, false, true);
        emit IStaking.TreasurySet(treasury);
        vm.expectEmit(false, false, false, true);
        emit IStaking.UnbondingPeriodSet(2 days);
        Staking s = new Staking(flex, governance, treasury, 2 days);
        assertEq(address(s.token()), address(flex), "token");
        assertEq(s.treasury(), treasury, "treasury");
        assertEq(uint256(s.unbondingPeriod()), 2 days, "unbonding");
        assertTrue(s.hasRole(s.DEFAULT_ADMIN_ROLE(), governance), "admin");
        assertEq(address(s.disputeWindowSource()), address(0), "no source yet");
    }

    function test_constructor_zeroToken_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.ZeroAddress.selector));
        new Staking(IERC20(address(0)), governance, treasury, UNBONDING);
    }

    function test_constructor_zeroAdmin_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.ZeroAddress.selector));
        new Staking(flex, address(0), treasury, UNBONDING);
    }

    function test_constructor_zeroTreasury_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.ZeroAddress.selector));
        new Staking(flex, governance, address(0), UNBONDING);
    }

    function test_constructor_unbondingTooShort_reverts() public {
        vm.expectRevert(_outOfBounds("unbondingPeriod", 59, 60, 60 days));
        new Staking(flex, governance, treasury, 59);
    }

    function test_constructor_unbondingTooLong_reverts() public {
        vm.expectRevert(_outOfBounds("unbondingPeriod", 60 days + 1, 60, 60 days));
        new Staking(flex, governance, treasury, 60 days + 1);
    }

    function test_constructor_unbondingBounds_accepted() public {
        assertEq(uint256(new Staking(flex, governance, treasury, 60).unbondingPeriod()), 60, "min");
        assertEq(uint256(new Staking(flex, governance, treasury, 60 days).unbondingPeriod()), 60 days, "max");
    }

    // ─── stake ────────────────────────────────────────────────────────────────────────────

    function test_stake_pullsTokensAndEmits() public {
        _fund(alice, 1_000 * FLEX);
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.Staked(alice, 600 * FLEX);
        vm.prank(alice);
        staking.stake(600 * FLEX);
        _assertAccount(alice, 600 * FLEX, 0, 0);
        assertEq(flex.balanceOf(alice), 400 * FLEX, "wallet");
        assertEq(flex.balanceOf(address(staking)), 3 * ORACLE_BOND + 600 * FLEX, "contract");

        vm.prank(alice);
        staking.stake(400 * FLEX);
        _assertAccount(alice, 1_000 * FLEX, 0, 0);
    }

    function test_stake_zero_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.ZeroAmount.selector));
        vm.prank(alice);
        staking.stake(0);
    }

    function test_stake_aboveUint128_reverts() public {
        uint256 tooMuch = uint256(type(uint128).max) + 1;
        vm.expectRevert(_outOfBounds("amount", tooMuch, 1, type(uint128).max));
        vm.prank(alice);
        staking.stake(tooMuch);
    }

    function test_stake_withoutAllowance_reverts() public {
        vm.prank(governance);
        flex.transfer(alice, 10 * FLEX);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(staking), 0, 10 * FLEX)
        );
        vm.prank(alice);
        staking.stake(10 * FLEX);
        _assertAccount(alice, 0, 0, 0);
    }

    // ─── requestUnstake / withdraw ────────────────────────────────────────────────────────

    function test_requestUnstake_movesToUnbonding() public {
        fundAndStake(alice, 1_000 * FLEX);
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.UnstakeRequested(alice, 400 * FLEX, block.timestamp + UNBONDING);
        _unstake(alice, 400 * FLEX);
        _assertAccount(alice, 600 * FLEX, 0, 400 * FLEX);
        assertEq(uint256(staking.accountOf(alice).unbondingReleaseAt), block.timestamp + UNBONDING, "releaseAt");
        assertEq(flex.balanceOf(alice), 0, "nothing paid out yet");
    }

    function test_requestUnstake_zero_reverts() public {
        fundAndStake(alice, 1_000 * FLEX);
        vm.expectRevert(abi.encodeWithSelector(IStaking.ZeroAmount.selector));
        _unstake(alice, 0);
    }

    function test_requestUnstake_moreThanFree_reverts() public {
        fundAndStake(alice, 1_000 * FLEX);
        _lock(alice, 700 * FLEX);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, alice, 300 * FLEX, 300 * FLEX + 1)
        );
        _unstake(alice, 300 * FLEX + 1);
        _unstake(alice, 300 * FLEX); // exactly the free part is fine
        _assertAccount(alice, 700 * FLEX, 700 * FLEX, 300 * FLEX);
    }

    function test_requestUnstake_noStake_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, alice, 0, 1));
        _unstake(alice, 1);
    }

    function test_requestUnstake_restartsClockForAllUnbonding() public {
        fundAndStake(alice, 1_000 * FLEX);
        _unstake(alice, 100 * FLEX);
        uint256 firstRelease = block.timestamp + UNBONDING;
        vm.warp(block.timestamp + 1 days);
        _unstake(alice, 100 * FLEX);
        uint256 secondRelease = block.timestamp + UNBONDING;
        assertEq(uint256(staking.accountOf(alice).unbondingReleaseAt), secondRelease, "clock restarted");
        vm.warp(firstRelease);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StillUnbonding.selector, alice, secondRelease, firstRelease));
        vm.prank(alice);
        staking.withdraw();
        vm.warp(secondRelease);
        vm.prank(alice);
        staking.withdraw();
        assertEq(flex.balanceOf(alice), 200 * FLEX, "both tranches");
    }

    function test_withdraw_afterUnbonding_paysOut() public {
        fundAndStake(alice, 1_000 * FLEX);
        _unstake(alice, 400 * FLEX);
        vm.warp(block.timestamp + UNBONDING);
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.Withdrawn(alice, 400 * FLEX);
        vm.prank(alice);
        staking.withdraw();
        assertEq(flex.balanceOf(alice), 400 * FLEX, "paid");
        _assertAccount(alice, 600 * FLEX, 0, 0);
    }

    function test_withdraw_beforeRelease_reverts() public {
        fundAndStake(alice, 1_000 * FLEX);
        _unstake(alice, 400 * FLEX);
        uint256 releaseAt = block.timestamp + UNBONDING;
        vm.warp(releaseAt - 1);
        vm.expectRevert(abi.encodeWithSelector(IStaking.StillUnbonding.selector, alice, releaseAt, releaseAt - 1));
        vm.prank(alice);
        staking.withdraw();
    }

    function test_withdraw_nothingUnbonding_reverts() public {
        fundAndStake(alice, 1_000 * FLEX);
        vm.expectRevert(abi.encodeWithSelector(IStaking.NothingToWithdraw.selector, alice));
        vm.prank(alice);
        staking.withdraw();
    }

    function test_withdraw_twice_reverts() public {
        fundAndStake(alice, 1_000 * FLEX);
        _unstake(alice, 1_000 * FLEX);
        vm.warp(block.timestamp + UNBONDING);
        vm.prank(alice);
        staking.withdraw();
        vm.expectRevert(abi.encodeWithSelector(IStaking.NothingToWithdraw.selector, alice));
        vm.prank(alice);
        staking.withdraw();
    }

    function test_withdraw_periodChangeDoesNotMovePendingRelease() public {
        fundAndStake(alice, 1_000 * FLEX);
        _unstake(alice, 100 * FLEX);
        uint256 releaseAt = block.timestamp + UNBONDING;
        vm.prank(governance);
        staking.setUnbondingPeriod(10 days);
        assertEq(uint256(staking.accountOf(alice).unbondingReleaseAt), releaseAt, "pending release unchanged");
        vm.warp(releaseAt);
        vm.prank(alice);
        staking.withdraw();
        assertEq(flex.balanceOf(alice), 100 * FLEX, "paid at the old release time");
    }

    // ─── lock / unlock ────────────────────────────────────────────────────────────────────

    function test_lock_byLocker_locksFreeStake() public {
        fundAndStake(alice, 1_000 * FLEX);
        vm.expectEmit(true, true, false, true, address(staking));
        emit IStaking.StakeLocked(alice, locker, 600 * FLEX);
        _lock(alice, 600 * FLEX);
        _assertAccount(alice, 1_000 * FLEX, 600 * FLEX, 0);
    }

    function test_lock_moreThanFree_reverts() public {
        fundAndStake(alice, 1_000 * FLEX);
        _lock(alice, 600 * FLEX);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, alice, 400 * FLEX, 400 * FLEX + 1)
        );
        vm.prank(locker);
        staking.lock(alice, 400 * FLEX + 1);
    }

    function test_lock_unbondingStakeNotLockable_reverts() public {
        fundAndStake(alice, 1_000 * FLEX);
        _unstake(alice, 1_000 * FLEX);
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, alice, 0, 1));
        vm.prank(locker);
        staking.lock(alice, 1);
    }

    function test_lock_outsider_reverts() public {
        fundAndStake(alice, 1_000 * FLEX);
        vm.expectRevert(_unauthorized(outsider, lockerRole));
        vm.prank(outsider);
        staking.lock(alice, 1);
        // the slasher role alone does not allow locking
        vm.expectRevert(_unauthorized(slasher, lockerRole));
        vm.prank(slasher);
        staking.lock(alice, 1);
        // nor does the admin role
        vm.expectRevert(_unauthorized(governance, lockerRole));
        vm.prank(governance);
        staking.lock(alice, 1);
    }

    function test_unlock_byLocker_releases() public {
        fundAndStake(alice, 1_000 * FLEX);
        _lock(alice, 600 * FLEX);
        vm.expectEmit(true, true, false, true, address(staking));
        emit IStaking.StakeUnlocked(alice, locker, 250 * FLEX);
        vm.prank(locker);
        staking.unlock(alice, 250 * FLEX);
        _assertAccount(alice, 1_000 * FLEX, 350 * FLEX, 0);
    }

    function test_unlock_moreThanLocked_reverts() public {
        fundAndStake(alice, 1_000 * FLEX);
        _lock(alice, 600 * FLEX);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.InsufficientLockedStake.selector, alice, 600 * FLEX, 600 * FLEX + 1)
        );
        vm.prank(locker);
        staking.unlock(alice, 600 * FLEX + 1);
    }

    function test_unlock_outsider_reverts() public {
        fundAndStake(alice, 1_000 * FLEX);
        _lock(alice, 600 * FLEX);
        vm.expectRevert(_unauthorized(outsider, lockerRole));
        vm.prank(outsider);
        staking.unlock(alice, 1);
        vm.expectRevert(_unauthorized(alice, lockerRole));
        vm.prank(alice);
        staking.unlock(alice, 600 * FLEX);
    }

    function test_lock_lockedStakeCannotBeUnstaked() public {
        fundAndStake(alice, 1_000 * FLEX);
        _lock(alice, 1_000 * FLEX);
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, alice, 0, 1));
        _unstake(alice, 1);
    }

    // ─── slash ────────────────────────────────────────────────────────────────────────────

    function test_slash_outsider_reverts() public {
        fundAndStake(alice, 1_000 * FLEX);
        vm.expectRevert(_unauthorized(outsider, slasherRole));
        vm.prank(outsider);
        staking.slash(alice, 1, outsider, 10_000);
        vm.expectRevert(_unauthorized(locker, slasherRole));
        vm.prank(locker);
        staking.slash(alice, 1, address(0), 0);
        vm.expectRevert(_unauthorized(governance, slasherRole));
        vm.prank(governance);
        staking.slash(alice, 1, address(0), 0);
    }

    function test_slash_takesLockedFirst() public {
        fundAndStake(alice, 1_000 * FLEX);
        _lock(alice, 400 * FLEX);
        _unstake(alice, 100 * FLEX);
        // staked 900 (locked 400, free 500), unbonding 100
        uint256 taken = _slash(alice, 300 * FLEX, address(0), 0);
        assertEq(taken, 300 * FLEX, "taken");
        _assertAccount(alice, 600 * FLEX, 100 * FLEX, 100 * FLEX);
    }

    function test_slashUnlocked_takesFreeThenUnbonding_neverLocked() public {
        fundAndStake(alice, 1_000 * FLEX);
        _lock(alice, 400 * FLEX);
        _unstake(alice, 100 * FLEX);
        // staked 900 (locked 400, free 500), unbonding 100
        uint256 before = flex.balanceOf(challenger);
        vm.prank(slasher);
        uint256 taken = staking.slashUnlocked(alice, 550 * FLEX, challenger, 5_000);
        assertEq(taken, 550 * FLEX, "taken");
        _assertAccount(alice, 400 * FLEX, 400 * FLEX, 50 * FLEX);
        assertEq(flex.balanceOf(challenger) - before, 275 * FLEX, "beneficiary half");
        // Capped at free + unbonding: the lock stays whole and can still be released.
        vm.prank(slasher);
        taken = staking.slashUnlocked(alice, 10_000 * FLEX, address(0), 0);
        assertEq(taken, 50 * FLEX, "only unbonding left");
        _assertAccount(alice, 400 * FLEX, 400 * FLEX, 0);
        vm.prank(locker);
        staking.unlock(alice, 400 * FLEX);
    }

    function test_slashUnlocked_outsiderOrBadShare_reverts() public {
        fundAndStake(alice, 1_000 * FLEX);
        vm.expectRevert(_unauthorized(outsider, slasherRole));
        vm.prank(outsider);
        staking.slashUnlocked(alice, 1, outsider, 10_000);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStaking.ParameterOutOfBounds.selector, bytes32("beneficiaryShareBps"), 10_001, 0, 10_000
            )
        );
        vm.prank(slasher);
        staking.slashUnlocked(alice, 1, outsider, 10_001);
    }

    function test_slashUnlocked_nothingFree_returnsZero() public {
        fundAndStake(alice, 1_000 * FLEX);
        _lock(alice, 1_000 * FLEX);
        vm.prank(slasher);
        assertEq(staking.slashUnlocked(alice, 1, challenger, 5_000), 0, "nothing taken");
        _assertAccount(alice, 1_000 * FLEX, 1_000 * FLEX, 0);
    }

    function test_slash_thenFreeStake() public {
        fundAndStake(alice, 1_000 * FLEX);
        _lock(alice, 400 * FLEX);
        _unstake(alice, 100 * FLEX);
        uint256 taken = _slash(alice, 700 * FLEX, address(0), 0);
        assertEq(taken, 700 * FLEX, "taken");
        // all 400 locked, then 300 of the 500 free; unbonding untouched
        _assertAccount(alice, 200 * FLEX, 0, 100 * FLEX);
    }

    function test_slash_thenUnbondingStake() public {
        fundAndStake(alice, 1_000 * FLEX);
        _lock(alice, 400 * FLEX);
        _unstake(alice, 300 * FLEX);
        // staked 700 (locked 400), unbonding 300
        uint256 taken = _slash(alice, 900 * FLEX, address(0), 0);
        assertEq(taken, 900 * FLEX, "taken");
        _assertAccount(alice, 0, 0, 100 * FLEX);
    }

    function test_slash_withdrawalRacingDispute_reachesUnbonding() public {
        // alice's bond backed disputed work; she unstakes everything as soon as it is free
        fundAndStake(alice, 1_000 * FLEX);
        _lock(alice, 1_000 * FLEX);
        vm.prank(locker);
        staking.unlock(alice, 1_000 * FLEX);
        _unstake(alice, 1_000 * FLEX);
        _assertAccount(alice, 0, 0, 1_000 * FLEX);
        uint256 releaseAt = block.timestamp + UNBONDING;

        // the dispute lands within the dispute window, before unbonding ends
        vm.warp(block.timestamp + DISPUTE_WINDOW);
        uint256 taken = _slash(alice, 600 * FLEX, challenger, 5_000);
        assertEq(taken, 600 * FLEX, "unbonding stake slashed");
        _assertAccount(alice, 0, 0, 400 * FLEX);

        vm.warp(releaseAt);
        vm.prank(alice);
        staking.withdraw();
        assertEq(flex.balanceOf(alice), 400 * FLEX, "only the rest comes out");
        assertEq(flex.balanceOf(challenger), 300 * FLEX, "challenger share");
        assertEq(flex.balanceOf(treasury), 300 * FLEX, "treasury share");
    }

    function test_slash_unbondingFullyTaken_withdrawReverts() public {
        fundAndStake(alice, 500 * FLEX);
        _unstake(alice, 500 * FLEX);
        _slash(alice, 500 * FLEX, address(0), 0);
        vm.warp(block.timestamp + UNBONDING);
        vm.expectRevert(abi.encodeWithSelector(IStaking.NothingToWithdraw.selector, alice));
        vm.prank(alice);
        staking.withdraw();
    }

    function test_slash_cappedAtHoldings() public {
        fundAndStake(alice, 1_000 * FLEX);
        _lock(alice, 200 * FLEX);
        _unstake(alice, 300 * FLEX);
        uint256 treasuryBefore = flex.balanceOf(treasury);
        uint256 taken = _slash(alice, 5_000 * FLEX, address(0), 0);
        assertEq(taken, 1_000 * FLEX, "capped at staked + unbonding");
        _assertAccount(alice, 0, 0, 0);
        assertEq(flex.balanceOf(treasury) - treasuryBefore, 1_000 * FLEX, "treasury got it all");
        assertEq(flex.balanceOf(address(staking)), 3 * ORACLE_BOND, "other stakers untouched");

        assertEq(_slash(alice, type(uint256).max, address(0), 0), 0, "nothing left");
    }

    function test_slash_maxAmount_doesNotOverflow() public {
        fundAndStake(alice, 1_000 * FLEX);
        _unstake(alice, 100 * FLEX);
        assertEq(_slash(alice, type(uint256).max, challenger, 10_000), 1_000 * FLEX, "all");
        assertEq(flex.balanceOf(challenger), 1_000 * FLEX, "challenger");
    }

    function test_slash_emptyAccount_returnsZeroWithoutTransfers() public {
        uint256 treasuryBefore = flex.balanceOf(treasury);
        uint256 stakingBefore = flex.balanceOf(address(staking));
        assertEq(_slash(bob, 100 * FLEX, challenger, 5_000), 0, "nothing to take");
        assertEq(flex.balanceOf(treasury), treasuryBefore, "treasury");
        assertEq(flex.balanceOf(challenger), 0, "challenger");
        assertEq(flex.balanceOf(address(staking)), stakingBefore, "staking");
    }

    function test_slash_zeroAmount_noop() public {
        fundAndStake(alice, 1_000 * FLEX);
        _lock(alice, 100 * FLEX);
        assertEq(_slash(alice, 0, challenger, 5_000), 0, "zero");
        _assertAccount(alice, 1_000 * FLEX, 100 * FLEX, 0);
    }

    function test_slash_beneficiarySplit_andEmits() public {
        fundAndStake(alice, 1_000 * FLEX);
        _lock(alice, 1_000 * FLEX);
        uint256 treasuryBefore = flex.balanceOf(treasury);
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.Slashed(alice, slasher, challenger, 800 * FLEX, 200 * FLEX, 600 * FLEX);
        _slash(alice, 800 * FLEX, challenger, 2_500);
        assertEq(flex.balanceOf(challenger), 200 * FLEX, "25% to the challenger");
        assertEq(flex.balanceOf(treasury) - treasuryBefore, 600 * FLEX, "rest to the treasury");
        _assertAccount(alice, 200 * FLEX, 200 * FLEX, 0);
    }

    function test_slash_zeroBeneficiary_allToTreasury() public {
        fundAndStake(alice, 1_000 * FLEX);
        uint256 treasuryBefore = flex.balanceOf(treasury);
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.Slashed(alice, slasher, address(0), 100 * FLEX, 0, 100 * FLEX);
        _slash(alice, 100 * FLEX, address(0), 10_000);
        assertEq(flex.balanceOf(treasury) - treasuryBefore, 100 * FLEX, "treasury");
        assertEq(flex.balanceOf(address(0)), 0, "nothing burnt");
    }

    function test_slash_fullShare_allToBeneficiary() public {
        fundAndStake(alice, 1_000 * FLEX);
        uint256 treasuryBefore = flex.balanceOf(treasury);
        _slash(alice, 100 * FLEX, challenger, 10_000);
        assertEq(flex.balanceOf(challenger), 100 * FLEX, "challenger");
        assertEq(flex.balanceOf(treasury), treasuryBefore, "treasury");
    }

    function test_slash_shareRoundsDownForBeneficiary() public {
        fundAndStake(alice, 3);
        uint256 treasuryBefore = flex.balanceOf(treasury);
        _slash(alice, 3, challenger, 5_000);
        assertEq(flex.balanceOf(challenger), 1, "floor(1.5)");
        assertEq(flex.balanceOf(treasury) - treasuryBefore, 2, "remainder");
    }

    function test_slash_shareAboveBps_reverts() public {
        fundAndStake(alice, 1_000 * FLEX);
        vm.expectRevert(_outOfBounds("beneficiaryShareBps", 10_001, 0, 10_000));
        vm.prank(slasher);
        staking.slash(alice, 1, challenger, 10_001);
        vm.expectRevert(_outOfBounds("beneficiaryShareBps", type(uint16).max, 0, 10_000));
        vm.prank(slasher);
        staking.slash(alice, 1, challenger, type(uint16).max);
    }

    function test_slash_otherAccountsUntouched() public {
        fundAndStake(alice, 1_000 * FLEX);
        fundAndStake(bob, 500 * FLEX);
        _lock(bob, 100 * FLEX);
        _slash(alice, 5_000 * FLEX, address(0), 0);
        _assertAccount(bob, 500 * FLEX, 100 * FLEX, 0);
        vm.prank(bob);
        staking.requestUnstake(400 * FLEX);
        vm.warp(block.timestamp + UNBONDING);
        vm.prank(bob);
        staking.withdraw();
        assertEq(flex.balanceOf(bob), 400 * FLEX, "bob withdraws in full");
    }

    function test_slash_goesToNewTreasury() public {
        address newTreasury = address(0x7EA6);
        vm.prank(governance);
        staking.setTreasury(newTreasury);
        fundAndStake(alice, 1_000 * FLEX);
        _slash(alice, 100 * FLEX, address(0), 0);
        assertEq(flex.balanceOf(newTreasury), 100 * FLEX, "new treasury");
    }

    // ─── Governance ───────────────────────────────────────────────────────────────────────

    function test_setUnbondingPeriod_byAdmin() public {
        vm.expectEmit(false, false, false, true, address(staking));
        emit IStaking.UnbondingPeriodSet(7 days);
        vm.prank(governance);
        staking.setUnbondingPeriod(7 days);
        assertEq(uint256(staking.unbondingPeriod()), 7 days, "period");
        fundAndStake(alice, 10 * FLEX);
        _unstake(alice, 10 * FLEX);
        assertEq(uint256(staking.accountOf(alice).unbondingReleaseAt), block.timestamp + 7 days, "new period used");
    }

    function test_setUnbondingPeriod_outsider_reverts() public {
        vm.expectRevert(_unauthorized(outsider, adminRole));
        vm.prank(outsider);
        staking.setUnbondingPeriod(7 days);
    }

    function test_setUnbondingPeriod_belowDisputeWindow_reverts() public {
        assertEq(uint256(market.disputeWindow()), DISPUTE_WINDOW, "fixture window");
        vm.expectRevert(_outOfBounds("unbondingPeriod", DISPUTE_WINDOW - 1, DISPUTE_WINDOW, 60 days));
        vm.prank(governance);
        staking.setUnbondingPeriod(DISPUTE_WINDOW - 1);
        vm.prank(governance);
        staking.setUnbondingPeriod(DISPUTE_WINDOW); // equal is fine
        assertEq(uint256(staking.unbondingPeriod()), DISPUTE_WINDOW, "period");
    }

    function test_setUnbondingPeriod_tooShort_reverts() public {
        MockDisputeWindowSource source = new MockDisputeWindowSource(0);
        vm.startPrank(governance);
        staking.setDisputeWindowSource(IDisputeWindowSource(address(source)));
        vm.expectRevert(_outOfBounds("unbondingPeriod", 59, 60, 60 days));
        staking.setUnbondingPeriod(59);
        staking.setUnbondingPeriod(60);
        vm.stopPrank();
        assertEq(uint256(staking.unbondingPeriod()), 60, "floor");
    }

    function test_setUnbondingPeriod_tooLong_reverts() public {
        vm.expectRevert(_outOfBounds("unbondingPeriod", 60 days + 1, DISPUTE_WINDOW, 60 days));
        vm.prank(governance);
        staking.setUnbondingPeriod(60 days + 1);
    }

    function test_setDisputeWindowSource_byAdmin() public {
        MockDisputeWindowSource source = new MockDisputeWindowSource(2 days);
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.DisputeWindowSourceSet(address(source));
        vm.prank(governance);
        staking.setDisputeWindowSource(IDisputeWindowSource(address(source)));
        assertEq(address(staking.disputeWindowSource()), address(source), "source");
        vm.expectRevert(_outOfBounds("unbondingPeriod", 2 days - 1, 2 days, 60 days));
        vm.prank(governance);
        staking.setUnbondingPeriod(2 days - 1);
    }

    function test_setDisputeWindowSource_windowAboveUnbonding_reverts() public {
        MockDisputeWindowSource source = new MockDisputeWindowSource(UNBONDING + 1);
        vm.expectRevert(_outOfBounds("unbondingPeriod", UNBONDING, UNBONDING + 1, 60 days));
        vm.prank(governance);
        staking.setDisputeWindowSource(IDisputeWindowSource(address(source)));
    }

    function test_setDisputeWindowSource_replacingEmitsEachTime() public {
        MockDisputeWindowSource first = new MockDisputeWindowSource(1 hours);
        MockDisputeWindowSource second = new MockDisputeWindowSource(2 hours);
        vm.startPrank(governance);
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.DisputeWindowSourceSet(address(first));
        staking.setDisputeWindowSource(IDisputeWindowSource(address(first)));
        vm.expectEmit(true, false, false, true, address(staking));
        emit IStaking.DisputeWindowSourceSet(address(second));
        staking.setDisputeWindowSource(IDisputeWindowSource(address(second)));
        vm.stopPrank();
        assertEq(address(staking.disputeWindowSource()), address(second), "latest source");
    }

    function test_setDisputeWindowSource_fixtureEmitted() public {
        // deployProtocol wires the market as the source; a fresh deployment shows the event
        Staking s = new Staking(flex, governance, treasury, UNBONDING);
        vm.expectEmit(true, false, false, true, address(s));
        emit IStaking.DisputeWindowSourceSet(address(market));
        vm.prank(governance);
        s.setDisputeWindowSource(IDisputeWindowSource(address(market)));
        assertEq(address(staking.disputeWindowSource()), address(market), "fixture source is the market");
    }

    function test_setDisputeWindowSource_zero_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.ZeroAddress.selector));
        vm.prank(governance);
        staking.setDisputeWindowSource(IDisputeWindowSource(address(0)));
    }

    function test_setDisputeWindowSource_outsider_reverts() public {
        MockDisputeWindowSource source = new MockDisputeWindowSource(1 hours);
        vm.expectRevert(_unauthorized(outsider, adminRole));
        vm.prank(outsider);
        staking.setDisputeWindowSource(IDisputeWindowSource(address(source)));
    }

    function test_disputeWindow_cannotExceedUnbonding_eitherWay() public {
        // the market bounds its window by the unbonding period, and staking the reverse
        vm.prank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.ParameterOutOfBounds.selector, bytes32("disputeWindow"), UNBONDING + 1, 60, UNBONDING
            )
        );
        market.setDisputeWindow(UNBONDING + 1);
        vm.prank(governance);
        market.setDisputeWindow(UNBONDING);
        vm.expectRevert(_outOfBounds("unbondingPeriod", UNBONDING - 1, UNBONDING, 60 days));
        vm.prank(governance);
        staking.setUnbondingPeriod(UNBONDING - 1);
    }

    function test_setTreasury_byAdmin() public {
        address newTreasury = address(0x7EA6);
        vm.expectEmit(false, false, false, true, address(staking));
        emit IStaking.TreasurySet(newTreasury);
        vm.prank(governance);
        staking.setTreasury(newTreasury);
        assertEq(staking.treasury(), newTreasury, "treasury");
    }

    function test_setTreasury_zero_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IStaking.ZeroAddress.selector));
        vm.prank(governance);
        staking.setTreasury(address(0));
    }

    function test_setTreasury_outsider_reverts() public {
        vm.expectRevert(_unauthorized(outsider, adminRole));
        vm.prank(outsider);
        staking.setTreasury(outsider);
    }

    function test_grantRole_outsider_reverts() public {
        vm.expectRevert(_unauthorized(outsider, adminRole));
        vm.prank(outsider);
        staking.grantRole(slasherRole, outsider);
    }

    // ─── Fuzz ─────────────────────────────────────────────────────────────────────────────

    function testFuzz_stakeUnstake_conservesTokens(uint256 amount, uint256 unstakeAmount, uint256 wait) public {
        amount = bound(amount, 1, 100_000_000 * FLEX);
        unstakeAmount = bound(unstakeAmount, 1, amount);
        wait = bound(wait, 0, 2 * UNBONDING);
        uint256 stakingBefore = flex.balanceOf(address(staking));
        _fund(alice, amount);
        vm.prank(alice);
        staking.stake(amount);
        _unstake(alice, unstakeAmount);
        uint256 releaseAt = block.timestamp + UNBONDING;
        vm.warp(block.timestamp + wait);
        if (block.timestamp < releaseAt) {
            vm.expectRevert(abi.encodeWithSelector(IStaking.StillUnbonding.selector, alice, releaseAt, block.timestamp));
            vm.prank(alice);
            staking.withdraw();
            _assertAccount(alice, amount - unstakeAmount, 0, unstakeAmount);
            assertEq(flex.balanceOf(alice), 0, "nothing out early");
        } else {
            vm.prank(alice);
            staking.withdraw();
            _assertAccount(alice, amount - unstakeAmount, 0, 0);
            assertEq(flex.balanceOf(alice), unstakeAmount, "withdrawn");
        }
        IStaking.Account memory a = staking.accountOf(alice);
        assertEq(
            flex.balanceOf(address(staking)), stakingBefore + a.staked + a.unbonding, "contract holds what it owes"
        );
        assertEq(flex.balanceOf(alice) + a.staked + a.unbonding, amount, "alice's tokens conserved");
    }

    function testFuzz_slash_neverExceedsHoldings(
        uint256 stakeAmount,
        uint256 lockAmount,
        uint256 unstakeAmount,
        uint256 slashAmount,
        uint16 bps
    ) public {
        stakeAmount = bound(stakeAmount, 1, 100_000_000 * FLEX);
        lockAmount = bound(lockAmount, 0, stakeAmount);
        unstakeAmount = bound(unstakeAmount, 0, stakeAmount - lockAmount);
        bps = uint16(bound(bps, 0, 10_000));
        fundAndStake(alice, stakeAmount);
        if (lockAmount > 0) _lock(alice, lockAmount);
        if (unstakeAmount > 0) _unstake(alice, unstakeAmount);

        uint256 stakingBefore = flex.balanceOf(address(staking));
        uint256 treasuryBefore = flex.balanceOf(treasury);
        uint256 taken = _slash(alice, slashAmount, challenger, bps);

        uint256 expected = slashAmount < stakeAmount ? slashAmount : stakeAmount;
        assertEq(taken, expected, "takes min(amount, holdings)");
        IStaking.Account memory a = staking.accountOf(alice);
        assertEq(uint256(a.staked) + a.unbonding, stakeAmount - taken, "holdings reduced by what was taken");
        assertLe(a.locked, a.staked, "locked within staked");
        // order: locked, then free, then unbonding
        uint256 stakedBefore = stakeAmount - unstakeAmount;
        uint256 fromStaked = taken < stakedBefore ? taken : stakedBefore;
        assertEq(uint256(a.locked), lockAmount > fromStaked ? lockAmount - fromStaked : 0, "locked first");
        assertEq(uint256(a.unbonding), unstakeAmount - (taken - fromStaked), "unbonding last");
        // tokens conserved
        assertEq(stakingBefore - flex.balanceOf(address(staking)), taken, "left the contract");
        assertEq(flex.balanceOf(challenger), taken * bps / 10_000, "beneficiary share");
        assertEq(flex.balanceOf(challenger) + flex.balanceOf(treasury) - treasuryBefore, taken, "paid out in full");
    }

    function testFuzz_lockUnlock_roundTrip(uint256 stakeAmount, uint256 lockAmount, uint256 unlockAmount) public {
        stakeAmount = bound(stakeAmount, 1, 100_000_000 * FLEX);
        lockAmount = bound(lockAmount, 0, stakeAmount);
        unlockAmount = bound(unlockAmount, 0, stakeAmount);
        fundAndStake(alice, stakeAmount);
        _lock(alice, lockAmount);
        if (unlockAmount > lockAmount) {
            vm.expectRevert(
                abi.encodeWithSelector(IStaking.InsufficientLockedStake.selector, alice, lockAmount, unlockAmount)
            );
        }
        vm.prank(locker);
        staking.unlock(alice, unlockAmount);
        uint256 lockedAfter = unlockAmount > lockAmount ? lockAmount : lockAmount - unlockAmount;
        _assertAccount(alice, stakeAmount, lockedAfter, 0);
    }
}
