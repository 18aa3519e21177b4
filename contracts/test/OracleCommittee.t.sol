// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Deployers} from "./utils/Deployers.sol";
import {Vm} from "./utils/Vm.sol";
import {OracleCommittee} from "../OracleCommittee.sol";
import {IOracleCommittee} from "../interfaces/IOracleCommittee.sol";
import {IStaking} from "../interfaces/IStaking.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract OracleCommitteeTest is Deployers {
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    uint256 internal constant NEW_ORACLE_KEY = 0xD00D;
    uint256 internal constant OUTSIDER_KEY = 0xBAD;

    address internal disputer = address(0xD15);
    address internal challenger = address(0xC4A1);
    address internal outsider = address(0x0BAD);
    address internal newOracle;

    bytes32 internal adminRole;
    bytes32 internal disputeRole;

    uint256 internal constant REQUEST_ID = 7;
    uint16 internal constant ROUND = 0;
    bytes32 internal constant DELIVERED = keccak256("delivered");
    bytes32 internal constant DEVICES = bytes32("devices");
    bytes32 internal constant READINGS = bytes32("readings");

    function setUp() public {
        deployProtocol();
        adminRole = committee.DEFAULT_ADMIN_ROLE();
        disputeRole = committee.DISPUTE_ROLE();
        vm.prank(governance);
        committee.grantRole(disputeRole, disputer);
        newOracle = vm.addr(NEW_ORACLE_KEY);
    }

    // ─── Helpers ──────────────────────────────────────────────────────────────────────────

    function _digest() internal view returns (bytes32) {
        return committee.reportDigest(address(market), REQUEST_ID, ROUND, DELIVERED, DEVICES, READINGS);
    }

    /// @dev Signs `digest` with every key, sorted by signer address.
    function _sign(uint256[] memory keys, bytes32 digest) internal pure returns (bytes[] memory sigs) {
        uint256 n = keys.length;
        for (uint256 i; i < n; ++i) {
            for (uint256 j = i + 1; j < n; ++j) {
                if (vm.addr(keys[j]) < vm.addr(keys[i])) (keys[i], keys[j]) = (keys[j], keys[i]);
            }
        }
        sigs = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(keys[i], digest);
            sigs[i] = abi.encodePacked(r, s, v);
        }
    }

    function _keys(uint256 a, uint256 b) internal pure returns (uint256[] memory k) {
        k = new uint256[](2);
        (k[0], k[1]) = (a, b);
    }

    function _keys(uint256 a, uint256 b, uint256 c) internal pure returns (uint256[] memory k) {
        k = new uint256[](3);
        (k[0], k[1], k[2]) = (a, b, c);
    }

    /// @dev Calls verifyReport with the fixed report fields; the caller pranks the market first
    ///      (compute signatures before the prank: any external call would consume it).
    function _verify(bytes[] memory sigs) internal view returns (uint64) {
        return committee.verifyReport(REQUEST_ID, ROUND, DELIVERED, DEVICES, READINGS, sigs);
    }

    function _recover(bytes32 digest, bytes memory sig) internal pure returns (address) {
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
            v := byte(0, mload(add(sig, 96)))
        }
        return ecrecover(digest, v, r, s);
    }

    function _unauthorized(address account, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, account, role);
    }

    function _invalidThreshold(uint256 k, uint256 n) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IOracleCommittee.InvalidThreshold.selector, k, n);
    }

    function _add(address oracle, uint8 k) internal {
        vm.prank(governance);
        committee.addOracle(oracle, k);
    }

    function _remove(address oracle, uint8 k) internal {
        vm.prank(governance);
        committee.removeOracle(oracle, k);
    }

    function _release(address oracle) internal {
        vm.prank(outsider); // anyone may release
        committee.releaseOracleBond(oracle);
    }

    /// @dev Smallest strict majority of n (0 for an empty committee).
    function _majority(uint256 n) internal pure returns (uint8) {
        return n == 0 ? 0 : uint8(n / 2 + 1);
    }

    function _bondStillLocked(address oracle, uint256 releaseAt) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IOracleCommittee.BondStillLocked.selector, oracle, releaseAt);
    }

    function _noBond(address oracle) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IOracleCommittee.NoBondToRelease.selector, oracle);
    }

    /// @dev A fresh committee sharing the fixture's staking (and its roles), no bond.
    function _emptyCommittee() internal returns (OracleCommittee c) {
        c = new OracleCommittee(governance, staking, 0);
    }

    /// @dev Signs the fixed report for `c` with `keys`, sorted by signer address.
    function _signFor(OracleCommittee c, uint256[] memory keys) internal view returns (bytes[] memory) {
        return _sign(keys, c.reportDigest(address(market), REQUEST_ID, ROUND, DELIVERED, DEVICES, READINGS));
    }

    function _keys(uint256 a) internal pure returns (uint256[] memory k) {
        k = new uint256[](1);
        k[0] = a;
    }

    function _setThreshold(uint8 k) internal {
        vm.prank(governance);
        committee.setThreshold(k);
    }

    /// @dev Index (0..2) of the fixture oracle with the lowest / highest address.
    function _sortedOracleKeys() internal view returns (uint256[3] memory sorted) {
        sorted = oracleKeys;
        for (uint256 i; i < 3; ++i) {
            for (uint256 j = i + 1; j < 3; ++j) {
                if (vm.addr(sorted[j]) < vm.addr(sorted[i])) (sorted[i], sorted[j]) = (sorted[j], sorted[i]);
            }
        }
    }

    // ─── Fixture and constructor ──────────────────────────────────────────────────────────

    function test_fixture_threeOraclesThresholdTwo() public view {
        assertEq(uint256(committee.threshold()), 2, "threshold");
        assertEq(uint256(committee.activeOracleCount()), 3, "active");
        assertEq(uint256(committee.oracleIdCount()), 3, "ids");
        assertEq(uint256(committee.oracleBond()), ORACLE_BOND, "bond");
        for (uint256 i; i < 3; ++i) {
            IOracleCommittee.Oracle memory o = committee.oracleOf(oracles[i]);
            assertEq(uint256(o.id), i + 1, "id");
            assertEq(o.active, true, "active");
            assertEq(uint256(o.bond), ORACLE_BOND, "bond");
            assertEq(uint256(o.bondReleaseAt), 0, "no release time while seated");
            assertEq(committee.oracleById(uint8(i + 1)), oracles[i], "by id");
            assertEq(uint256(staking.accountOf(oracles[i]).locked), ORACLE_BOND, "bond locked");
        }
        assertEq(address(committee.staking()), address(staking), "staking");
        assertEq(uint256(committee.MAX_ORACLE_IDS()), 64, "max ids");
    }

    function test_constructor_emitsBondAndGrantsAdmin() public {
        vm.expectEmit(false, false, false, true);
        emit IOracleCommittee.OracleBondSet(5 * FLEX);
        OracleCommittee c = new OracleCommittee(governance, staking, uint128(5 * FLEX));
        assertTrue(c.hasRole(c.DEFAULT_ADMIN_ROLE(), governance), "admin");
        assertEq(uint256(c.threshold()), 0, "no threshold");
        assertEq(uint256(c.activeOracleCount()), 0, "no oracles");
    }

    // ─── addOracle ────────────────────────────────────────────────────────────────────────

    function test_addOracle_locksBondSeatsAndSetsThreshold() public {
        fundAndStake(newOracle, ORACLE_BOND + 5 * FLEX);
        vm.expectEmit(true, true, false, true, address(committee));
        emit IOracleCommittee.OracleAdded(newOracle, 4, ORACLE_BOND);
        vm.expectEmit(false, false, false, true, address(committee));
        emit IOracleCommittee.ThresholdSet(3);
        vm.expectEmit(true, true, false, true, address(staking));
        emit IStaking.StakeLocked(newOracle, address(committee), ORACLE_BOND);
        _add(newOracle, 3);

        IOracleCommittee.Oracle memory o = committee.oracleOf(newOracle);
        assertEq(uint256(o.id), 4, "id");
        assertEq(o.active, true, "active");
        assertEq(uint256(o.bond), ORACLE_BOND, "bond");
        assertEq(uint256(o.bondReleaseAt), 0, "no release time");
        assertEq(committee.oracleById(4), newOracle, "by id");
        assertEq(uint256(committee.activeOracleCount()), 4, "count");
        assertEq(uint256(committee.threshold()), 3, "3 of 4");
        assertEq(uint256(staking.accountOf(newOracle).locked), ORACLE_BOND, "locked");
        assertEq(staking.freeStake(newOracle), 5 * FLEX, "rest free");
    }

    function test_addOracle_largerMajorityAccepted() public {
        fundAndStake(newOracle, ORACLE_BOND);
        _add(newOracle, 4); // 4 of 4 is a strict majority too
        assertEq(uint256(committee.threshold()), 4, "4 of 4");
    }

    function test_addOracle_insufficientStake_reverts() public {
        fundAndStake(newOracle, ORACLE_BOND - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, newOracle, ORACLE_BOND - 1, ORACLE_BOND)
        );
        _add(newOracle, 3);
        assertEq(uint256(committee.oracleIdCount()), 3, "no id consumed");
        assertEq(uint256(committee.activeOracleCount()), 3, "count");
        assertEq(uint256(committee.threshold()), 2, "threshold rolled back");
    }

    function test_addOracle_zeroBond_locksNothing() public {
        vm.startPrank(governance);
        committee.setOracleBond(0);
        committee.addOracle(newOracle, 3);
        vm.stopPrank();
        assertEq(uint256(committee.oracleOf(newOracle).bond), 0, "bond");
        assertEq(uint256(staking.accountOf(newOracle).locked), 0, "nothing locked");
    }

    function test_addOracle_zeroAddress_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.ZeroAddress.selector));
        _add(address(0), 3);
        // without a bond to lock, address(0) is still refused (it could never sign)
        vm.prank(governance);
        committee.setOracleBond(0);
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.ZeroAddress.selector));
        _add(address(0), 3);
        // checked before the threshold
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.ZeroAddress.selector));
        _add(address(0), 0);
        assertEq(uint256(committee.oracleIdCount()), 3, "no id consumed");
        assertEq(uint256(committee.activeOracleCount()), 3, "no seat taken");
        assertEq(uint256(committee.oracleOf(address(0)).id), 0, "address(0) unknown");
    }

    function test_addOracle_thresholdNotMajorityOfNewSize_reverts() public {
        fundAndStake(newOracle, ORACLE_BOND);
        vm.expectRevert(_invalidThreshold(2, 4)); // 2 of 4 is not a strict majority
        _add(newOracle, 2);
        vm.expectRevert(_invalidThreshold(5, 4));
        _add(newOracle, 5);
        vm.expectRevert(_invalidThreshold(0, 4));
        _add(newOracle, 0);
        assertEq(uint256(committee.activeOracleCount()), 3, "nothing added");
        assertEq(uint256(committee.threshold()), 2, "threshold kept");
        _add(newOracle, 3);
        assertEq(uint256(committee.activeOracleCount()), 4, "added with a majority of 4");
    }

    function test_addOracle_activeOracle_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.OracleAlreadyKnown.selector, oracles[1]));
        _add(oracles[1], 3);
    }

    function test_addOracle_removedOracle_reverts() public {
        _remove(oracles[2], 2);
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.OracleAlreadyKnown.selector, oracles[2]));
        _add(oracles[2], 2);
    }

    function test_addOracle_outsider_reverts() public {
        vm.expectRevert(_unauthorized(outsider, adminRole));
        vm.prank(outsider);
        committee.addOracle(newOracle, 3);
        vm.expectRevert(_unauthorized(disputer, adminRole));
        vm.prank(disputer);
        committee.addOracle(newOracle, 3);
    }

    function test_addOracle_idsNeverReused() public {
        _remove(oracles[2], 2);
        fundAndStake(newOracle, ORACLE_BOND);
        _add(newOracle, 2);
        assertEq(uint256(committee.oracleOf(newOracle).id), 4, "fresh id");
        assertEq(committee.oracleById(3), oracles[2], "old id still names the removed oracle");
        assertEq(uint256(committee.oracleOf(oracles[2]).id), 3, "removed oracle keeps its id");
        assertEq(uint256(committee.oracleIdCount()), 4, "id count");
    }

    function test_addOracle_idsExhausted_reverts() public {
        vm.prank(governance);
        committee.setOracleBond(0);
        uint256[] memory keys = new uint256[](64);
        for (uint256 i; i < 3; ++i) keys[i] = oracleKeys[i];
        for (uint256 n = 3; n < 64; ++n) {
            keys[n] = 0x1000 + n;
            _add(vm.addr(keys[n]), _majority(n + 1));
            assertEq(uint256(committee.oracleOf(vm.addr(keys[n])).id), n + 1, "sequential id");
        }
        assertEq(uint256(committee.oracleIdCount()), 64, "all ids used");
        assertEq(uint256(committee.activeOracleCount()), 64, "all active");
        assertEq(uint256(committee.threshold()), 33, "33 of 64");

        // checked before the threshold
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.OracleIdsExhausted.selector, 64));
        _add(address(0x1234), 33);

        // all 64 signers set every bit, including bit 63 for id 64
        bytes[] memory sigs = _sign(keys, _digest());
        vm.prank(address(market));
        assertEq(uint256(_verify(sigs)), uint256(type(uint64).max), "full bitmap");

        // removing an oracle does not free its id
        _remove(vm.addr(keys[63]), 32);
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.OracleIdsExhausted.selector, 64));
        _add(address(0x1234), 33);
    }

    // ─── Growing and shrinking ────────────────────────────────────────────────────────────

    /// @dev The old dead end (one oracle at k = 1 could neither grow nor shrink) is gone:
    ///      the threshold moves with the size in the same call.
    function test_committee_growsOneToTwo_andShrinksTwoToOne() public {
        OracleCommittee c = _emptyCommittee();
        vm.startPrank(governance);
        c.addOracle(oracles[0], 1);
        vm.stopPrank();
        assertEq(uint256(c.threshold()), 1, "1 of 1");
        bytes[] memory one = _signFor(c, _keys(oracleKeys[0]));
        vm.prank(address(market));
        assertEq(uint256(c.verifyReport(REQUEST_ID, ROUND, DELIVERED, DEVICES, READINGS, one)), 0x1, "1 of 1 signs");

        // 1 -> 2: k must become 2 in the same call
        vm.startPrank(governance);
        vm.expectRevert(_invalidThreshold(1, 2));
        c.addOracle(oracles[1], 1);
        vm.expectEmit(false, false, false, true, address(c));
        emit IOracleCommittee.ThresholdSet(2);
        c.addOracle(oracles[1], 2);
        vm.stopPrank();
        assertEq(uint256(c.activeOracleCount()), 2, "two oracles");
        assertEq(uint256(c.threshold()), 2, "2 of 2");
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.NotEnoughSignatures.selector, 1, 2));
        vm.prank(address(market));
        c.verifyReport(REQUEST_ID, ROUND, DELIVERED, DEVICES, READINGS, one);
        bytes[] memory two = _signFor(c, _keys(oracleKeys[0], oracleKeys[1]));
        vm.prank(address(market));
        assertEq(uint256(c.verifyReport(REQUEST_ID, ROUND, DELIVERED, DEVICES, READINGS, two)), 0x3, "2 of 2 sign");

        // 2 -> 1: k must become 1 in the same call
        vm.startPrank(governance);
        vm.expectRevert(_invalidThreshold(2, 1));
        c.removeOracle(oracles[1], 2);
        vm.expectEmit(false, false, false, true, address(c));
        emit IOracleCommittee.ThresholdSet(1);
        c.removeOracle(oracles[1], 1);
        vm.stopPrank();
        assertEq(uint256(c.activeOracleCount()), 1, "one oracle");
        assertEq(uint256(c.threshold()), 1, "1 of 1 again");
        vm.prank(address(market));
        assertEq(uint256(c.verifyReport(REQUEST_ID, ROUND, DELIVERED, DEVICES, READINGS, one)), 0x1, "signs alone");

        // and it can grow again with a fresh seat
        vm.startPrank(governance);
        c.addOracle(oracles[2], 2);
        vm.stopPrank();
        assertEq(uint256(c.activeOracleCount()), 2, "grown again");
        assertEq(uint256(c.oracleOf(oracles[2]).id), 3, "fresh id");
    }

    function test_committee_growsFromEmptyAndShrinksToEmpty() public {
        OracleCommittee c = _emptyCommittee();
        vm.startPrank(governance);
        vm.expectRevert(_invalidThreshold(0, 1));
        c.addOracle(oracles[0], 0);
        vm.expectRevert(_invalidThreshold(2, 1));
        c.addOracle(oracles[0], 2);
        c.addOracle(oracles[0], 1);
        vm.expectRevert(_invalidThreshold(1, 0));
        c.removeOracle(oracles[0], 1);
        c.removeOracle(oracles[0], 0);
        vm.stopPrank();
        assertEq(uint256(c.activeOracleCount()), 0, "empty");
        assertEq(uint256(c.threshold()), 0, "0 of 0");
    }

    function test_committee_fixtureBuiltOneByOne() public {
        // the fixture seats with k = 1, 2, 2: each step a strict majority of the new size
        OracleCommittee c = _emptyCommittee();
        uint8[3] memory k = [uint8(1), 2, 2];
        vm.startPrank(governance);
        for (uint256 i; i < 3; ++i) {
            c.addOracle(oracles[i], k[i]);
            assertEq(uint256(c.threshold()), k[i], "threshold after each seat");
            assertEq(uint256(c.activeOracleCount()), i + 1, "count after each seat");
        }
        vm.stopPrank();
    }

    // ─── removeOracle ─────────────────────────────────────────────────────────────────────

    function test_removeOracle_unseatsAndKeepsBondLocked() public {
        uint256 releaseAt = block.timestamp + UNBONDING;
        vm.recordLogs();
        vm.expectEmit(true, true, false, true, address(committee));
        emit IOracleCommittee.OracleRemoved(oracles[2], 3, releaseAt);
        vm.expectEmit(false, false, false, true, address(committee));
        emit IOracleCommittee.ThresholdSet(2);
        _remove(oracles[2], 2);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            assertTrue(logs[i].emitter != address(staking), "staking untouched: nothing unlocked");
        }

        IOracleCommittee.Oracle memory o = committee.oracleOf(oracles[2]);
        assertEq(o.active, false, "inactive");
        assertEq(uint256(o.bond), ORACLE_BOND, "bond kept");
        assertEq(uint256(o.bondReleaseAt), releaseAt, "release time");
        assertEq(uint256(o.id), 3, "id kept");
        assertEq(uint256(committee.activeOracleCount()), 2, "count");
        assertEq(uint256(committee.threshold()), 2, "2 of 2");
        assertEq(uint256(staking.accountOf(oracles[2]).locked), ORACLE_BOND, "still locked");
        assertEq(staking.freeStake(oracles[2]), 0, "nothing free");

        // the bond cannot leave through unstaking while it is locked
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, oracles[2], 0, ORACLE_BOND));
        vm.prank(oracles[2]);
        staking.requestUnstake(ORACLE_BOND);
    }

    function test_removeOracle_releaseTimeFollowsUnbondingPeriodAtRemoval() public {
        vm.prank(governance);
        staking.setUnbondingPeriod(10 days);
        uint256 removedAt = block.timestamp;
        _remove(oracles[0], 2);
        assertEq(uint256(committee.oracleOf(oracles[0]).bondReleaseAt), removedAt + 10 days, "10 days");
        // a later change of the period does not move it
        vm.prank(governance);
        staking.setUnbondingPeriod(UNBONDING);
        assertEq(uint256(committee.oracleOf(oracles[0]).bondReleaseAt), removedAt + 10 days, "unchanged");
        vm.warp(removedAt + 10 days - 1);
        vm.expectRevert(_bondStillLocked(oracles[0], removedAt + 10 days));
        _release(oracles[0]);
        vm.warp(removedAt + 10 days);
        _release(oracles[0]);
        assertEq(uint256(staking.accountOf(oracles[0]).locked), 0, "released");
    }

    function test_removeOracle_thresholdNotMajorityOfNewSize_reverts() public {
        vm.expectRevert(_invalidThreshold(1, 2)); // 1 of 2 is not a strict majority
        _remove(oracles[0], 1);
        vm.expectRevert(_invalidThreshold(3, 2));
        _remove(oracles[0], 3);
        vm.expectRevert(_invalidThreshold(0, 2));
        _remove(oracles[0], 0);
        assertEq(uint256(committee.activeOracleCount()), 3, "nobody removed");
        assertEq(committee.oracleOf(oracles[0]).active, true, "still seated");
        _remove(oracles[0], 2);
        assertEq(uint256(committee.activeOracleCount()), 2, "removed with 2 of 2");
    }

    function test_removeOracle_downToOne() public {
        _remove(oracles[0], 2);
        vm.expectRevert(_invalidThreshold(2, 1));
        _remove(oracles[1], 2);
        _remove(oracles[1], 1);
        assertEq(uint256(committee.threshold()), 1, "1 of 1");
        bytes[] memory sigs = _sign(_keys(oracleKeys[2]), _digest());
        vm.prank(address(market));
        assertEq(uint256(_verify(sigs)), 0x4, "the last oracle signs alone");
    }

    function test_removeOracle_unknown_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.NotActiveOracle.selector, outsider));
        _remove(outsider, 2);
    }

    function test_removeOracle_twice_reverts() public {
        _remove(oracles[0], 2);
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.NotActiveOracle.selector, oracles[0]));
        _remove(oracles[0], 1);
    }

    function test_removeOracle_slashedOracle_reverts() public {
        vm.prank(disputer);
        committee.slashSigners(0x1, address(0), 0);
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.NotActiveOracle.selector, oracles[0]));
        _remove(oracles[0], 2);
    }

    function test_removeOracle_outsider_reverts() public {
        vm.expectRevert(_unauthorized(outsider, adminRole));
        vm.prank(outsider);
        committee.removeOracle(oracles[0], 2);
        // an oracle cannot unseat itself either
        vm.expectRevert(_unauthorized(oracles[0], adminRole));
        vm.prank(oracles[0]);
        committee.removeOracle(oracles[0], 2);
    }

    function test_removeOracle_lastOracle_thresholdZero() public {
        OracleCommittee c = _emptyCommittee();
        vm.startPrank(governance);
        c.addOracle(oracles[0], 1);
        c.removeOracle(oracles[0], 0);
        vm.stopPrank();
        assertEq(uint256(c.activeOracleCount()), 0, "empty");
        assertEq(uint256(c.threshold()), 0, "no threshold");
    }

    // ─── releaseOracleBond ────────────────────────────────────────────────────────────────

    function test_releaseOracleBond_afterDelay_unlocksAndOracleCanLeave() public {
        _remove(oracles[2], 2);
        uint256 releaseAt = committee.oracleOf(oracles[2]).bondReleaseAt;
        vm.warp(releaseAt);
        vm.expectEmit(true, false, false, true, address(committee));
        emit IOracleCommittee.OracleBondReleased(oracles[2], ORACLE_BOND);
        vm.expectEmit(true, true, false, true, address(staking));
        emit IStaking.StakeUnlocked(oracles[2], address(committee), ORACLE_BOND);
        _release(oracles[2]); // by an outsider: anyone may release

        IOracleCommittee.Oracle memory o = committee.oracleOf(oracles[2]);
        assertEq(uint256(o.bond), 0, "bond cleared");
        assertEq(o.active, false, "still unseated");
        assertEq(uint256(staking.accountOf(oracles[2]).locked), 0, "unlocked");
        assertEq(uint256(staking.accountOf(oracles[2]).staked), ORACLE_BOND, "stake intact");

        // the former oracle can now unbond and leave
        vm.prank(oracles[2]);
        staking.requestUnstake(ORACLE_BOND);
        vm.warp(block.timestamp + UNBONDING);
        vm.prank(oracles[2]);
        staking.withdraw();
        assertEq(flex.balanceOf(oracles[2]), ORACLE_BOND, "bond back");
    }

    function test_releaseOracleBond_releasesBondSeatedWith() public {
        vm.prank(governance);
        committee.setOracleBond(uint128(ORACLE_BOND * 2));
        _remove(oracles[0], 2);
        vm.warp(block.timestamp + UNBONDING);
        vm.expectEmit(true, false, false, true, address(committee));
        emit IOracleCommittee.OracleBondReleased(oracles[0], ORACLE_BOND);
        _release(oracles[0]);
        assertEq(uint256(staking.accountOf(oracles[0]).locked), 0, "the seated bond is unlocked, not the new one");
    }

    function test_releaseOracleBond_beforeReleaseTime_reverts() public {
        _remove(oracles[1], 2);
        uint256 releaseAt = block.timestamp + UNBONDING;
        vm.expectRevert(_bondStillLocked(oracles[1], releaseAt));
        _release(oracles[1]);
        vm.warp(releaseAt - 1);
        vm.expectRevert(_bondStillLocked(oracles[1], releaseAt));
        _release(oracles[1]);
        assertEq(uint256(staking.accountOf(oracles[1]).locked), ORACLE_BOND, "still locked");
        assertEq(uint256(committee.oracleOf(oracles[1]).bond), ORACLE_BOND, "bond kept");
    }

    function test_releaseOracleBond_activeOracle_reverts() public {
        vm.expectRevert(_noBond(oracles[0]));
        _release(oracles[0]);
        vm.warp(block.timestamp + 365 days);
        vm.expectRevert(_noBond(oracles[0]));
        _release(oracles[0]);
        assertEq(uint256(staking.accountOf(oracles[0]).locked), ORACLE_BOND, "seat bond untouched");
    }

    function test_releaseOracleBond_unknownAccount_reverts() public {
        vm.expectRevert(_noBond(outsider));
        _release(outsider);
        vm.expectRevert(_noBond(address(0)));
        _release(address(0));
    }

    function test_releaseOracleBond_twice_reverts() public {
        _remove(oracles[0], 2);
        vm.warp(block.timestamp + UNBONDING);
        _release(oracles[0]);
        vm.expectRevert(_noBond(oracles[0]));
        _release(oracles[0]);
    }

    function test_releaseOracleBond_afterSlash_reverts() public {
        _remove(oracles[0], 2);
        vm.prank(disputer);
        committee.slashSigners(0x1, address(0), 0);
        vm.warp(block.timestamp + UNBONDING);
        vm.expectRevert(_noBond(oracles[0]));
        _release(oracles[0]);
    }

    function test_releaseOracleBond_zeroBondSeat_reverts() public {
        vm.startPrank(governance);
        committee.setOracleBond(0);
        committee.addOracle(newOracle, 3);
        committee.removeOracle(newOracle, 2);
        vm.stopPrank();
        vm.warp(block.timestamp + UNBONDING);
        vm.expectRevert(_noBond(newOracle));
        _release(newOracle);
    }

    function test_releaseOracleBond_withoutLockerRole_reverts() public {
        _remove(oracles[0], 2);
        bytes32 lockerRole = staking.LOCKER_ROLE();
        vm.prank(governance);
        staking.revokeRole(lockerRole, address(committee));
        vm.warp(block.timestamp + UNBONDING);
        vm.expectRevert(_unauthorized(address(committee), lockerRole));
        _release(oracles[0]);
        assertEq(uint256(committee.oracleOf(oracles[0]).bond), ORACLE_BOND, "rolled back");
    }

    // ─── setThreshold ─────────────────────────────────────────────────────────────────────

    function test_setThreshold_strictMajority_accepted() public {
        vm.expectEmit(false, false, false, true, address(committee));
        emit IOracleCommittee.ThresholdSet(3);
        _setThreshold(3);
        assertEq(uint256(committee.threshold()), 3, "3 of 3");
        _setThreshold(2);
        assertEq(uint256(committee.threshold()), 2, "2 of 3");
    }

    function test_setThreshold_notMajority_reverts() public {
        vm.expectRevert(_invalidThreshold(1, 3));
        _setThreshold(1);
    }

    function test_setThreshold_zero_reverts() public {
        vm.expectRevert(_invalidThreshold(0, 3));
        _setThreshold(0);
    }

    function test_setThreshold_aboveOracleCount_reverts() public {
        vm.expectRevert(_invalidThreshold(4, 3));
        _setThreshold(4);
    }

    function test_setThreshold_halfOfEven_reverts() public {
        fundAndStake(newOracle, ORACLE_BOND);
        _add(newOracle, 3);
        vm.expectRevert(_invalidThreshold(2, 4));
        _setThreshold(2);
    }

    function test_setThreshold_emptyCommittee() public {
        OracleCommittee c = _emptyCommittee();
        vm.startPrank(governance);
        c.setThreshold(0); // 0 of 0 is the only valid setting
        vm.expectRevert(_invalidThreshold(1, 0));
        c.setThreshold(1);
        vm.stopPrank();
    }

    function test_setThreshold_outsider_reverts() public {
        vm.expectRevert(_unauthorized(outsider, adminRole));
        vm.prank(outsider);
        committee.setThreshold(3);
    }

    /// @dev setThreshold alone still cannot leave a strict majority; size changes go through
    ///      addOracle / removeOracle, which set k with the new size (see Growing and shrinking).
    function test_setThreshold_singleOracle_onlyOne() public {
        OracleCommittee c = _emptyCommittee();
        vm.startPrank(governance);
        c.addOracle(oracles[0], 1);
        vm.expectRevert(_invalidThreshold(2, 1));
        c.setThreshold(2);
        vm.expectRevert(_invalidThreshold(0, 1));
        c.setThreshold(0);
        c.setThreshold(1);
        vm.stopPrank();
        assertEq(uint256(c.threshold()), 1, "1 of 1");
    }

    function test_setThreshold_afterSlashBelowThreshold_canLowerK() public {
        vm.prank(disputer);
        committee.slashSigners(0x3, address(0), 0);
        assertEq(uint256(committee.activeOracleCount()), 1, "one left");
        assertEq(uint256(committee.threshold()), 2, "k above n after the slash");
        _setThreshold(1);
        bytes[] memory sigs = _sign(_keys(oracleKeys[2]), _digest());
        vm.prank(address(market));
        assertEq(uint256(_verify(sigs)), 0x4, "the honest oracle signs alone");
    }

    // ─── setOracleBond ────────────────────────────────────────────────────────────────────

    function test_setOracleBond_appliesToNewSeatsOnly() public {
        vm.expectEmit(false, false, false, true, address(committee));
        emit IOracleCommittee.OracleBondSet(50 * FLEX);
        vm.prank(governance);
        committee.setOracleBond(uint128(50 * FLEX));
        assertEq(uint256(committee.oracleBond()), 50 * FLEX, "bond");
        assertEq(uint256(committee.oracleOf(oracles[0]).bond), ORACLE_BOND, "seated oracles keep theirs");

        fundAndStake(newOracle, 50 * FLEX);
        _add(newOracle, 3);
        assertEq(uint256(committee.oracleOf(newOracle).bond), 50 * FLEX, "new seat");
        assertEq(uint256(staking.accountOf(newOracle).locked), 50 * FLEX, "locked");
    }

    function test_setOracleBond_outsider_reverts() public {
        vm.expectRevert(_unauthorized(outsider, adminRole));
        vm.prank(outsider);
        committee.setOracleBond(0);
    }

    // ─── verifyReport ─────────────────────────────────────────────────────────────────────

    function test_verifyReport_twoOfThree_returnsBitmap() public {
        bytes32 d = _digest();
        bytes[] memory s12 = _sign(_keys(oracleKeys[0], oracleKeys[1]), d);
        bytes[] memory s13 = _sign(_keys(oracleKeys[0], oracleKeys[2]), d);
        bytes[] memory s23 = _sign(_keys(oracleKeys[1], oracleKeys[2]), d);
        bytes[] memory s123 = _sign(_keys(oracleKeys[0], oracleKeys[1], oracleKeys[2]), d);
        vm.prank(address(market));
        assertEq(uint256(_verify(s12)), 0x3, "ids 1,2");
        vm.prank(address(market));
        assertEq(uint256(_verify(s13)), 0x5, "ids 1,3");
        vm.prank(address(market));
        assertEq(uint256(_verify(s23)), 0x6, "ids 2,3");
        vm.prank(address(market));
        assertEq(uint256(_verify(s123)), 0x7, "all three");
    }

    function test_verifyReport_fixtureSignReportHelper_matches() public {
        uint256[] memory delivered = new uint256[](2);
        delivered[0] = 100;
        delivered[1] = 200;
        bytes[] memory sigs = signReport(REQUEST_ID, 3, delivered, DEVICES, READINGS, twoSigners());
        vm.prank(address(market));
        uint64 bitmap =
            committee.verifyReport(REQUEST_ID, 3, keccak256(abi.encodePacked(delivered)), DEVICES, READINGS, sigs);
        assertEq(uint256(bitmap), 0x3, "bitmap");
    }

    function test_verifyReport_reportDigestIsEip712() public view {
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("GridFlex OracleCommittee"),
                keccak256("1"),
                block.chainid,
                address(committee)
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "Report(address market,uint256 requestId,uint16 round,bytes32 deliveredHash,bytes32 devicesRoot,bytes32 readingsRoot)"
                ),
                address(market),
                REQUEST_ID,
                ROUND,
                DELIVERED,
                DEVICES,
                READINGS
            )
        );
        assertEq(_digest(), keccak256(abi.encodePacked("\x19\x01", domain, structHash)), "digest");
    }

    function test_verifyReport_tooFewSignatures_reverts() public {
        bytes[] memory one = new bytes[](1);
        one[0] = _sign(_keys(oracleKeys[0], oracleKeys[1]), _digest())[0];
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.NotEnoughSignatures.selector, 1, 2));
        vm.prank(address(market));
        _verify(one);
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.NotEnoughSignatures.selector, 0, 2));
        vm.prank(address(market));
        _verify(new bytes[](0));
    }

    /// @dev k = 0 only for an empty committee (never seated, or every oracle removed): then
    ///      no report verifies, whatever is presented.
    function test_verifyReport_emptyCommittee_reverts() public {
        OracleCommittee c = _emptyCommittee();
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.NotEnoughSignatures.selector, 0, 0));
        vm.prank(address(market));
        c.verifyReport(REQUEST_ID, ROUND, DELIVERED, DEVICES, READINGS, new bytes[](0));

        vm.startPrank(governance);
        c.addOracle(oracles[0], 1);
        c.removeOracle(oracles[0], 0);
        vm.stopPrank();
        bytes[] memory sigs = _signFor(c, _keys(oracleKeys[0]));
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.NotEnoughSignatures.selector, 1, 0));
        vm.prank(address(market));
        c.verifyReport(REQUEST_ID, ROUND, DELIVERED, DEVICES, READINGS, sigs);
    }

    function test_verifyReport_descendingSigners_reverts() public {
        bytes[] memory sigs = _sign(_keys(oracleKeys[0], oracleKeys[1]), _digest());
        (sigs[0], sigs[1]) = (sigs[1], sigs[0]);
        address lower = _recover(_digest(), sigs[1]);
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.SignersNotAscending.selector, 1, lower));
        vm.prank(address(market));
        _verify(sigs);
    }

    function test_verifyReport_duplicateSigner_reverts() public {
        bytes[] memory sigs = _sign(_keys(oracleKeys[0], oracleKeys[1]), _digest());
        sigs[1] = sigs[0];
        vm.expectRevert(
            abi.encodeWithSelector(IOracleCommittee.SignersNotAscending.selector, 1, _recover(_digest(), sigs[0]))
        );
        vm.prank(address(market));
        _verify(sigs);
    }

    function test_verifyReport_duplicateSignerMalleated_reverts() public {
        // the high-s twin of a signature recovers the same signer but is rejected as malformed
        uint256[3] memory sorted = _sortedOracleKeys();
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(sorted[0], _digest());
        bytes[] memory sigs = new bytes[](2);
        sigs[0] = abi.encodePacked(r, s, v);
        sigs[1] = abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.MalformedSignature.selector, 1));
        vm.prank(address(market));
        _verify(sigs);
    }

    function test_verifyReport_nonOracleSigner_reverts() public {
        address stranger = vm.addr(OUTSIDER_KEY);
        bytes[] memory sigs = _sign(_keys(oracleKeys[0], OUTSIDER_KEY), _digest());
        uint256 idx = _recover(_digest(), sigs[0]) == stranger ? 0 : 1;
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.SignerNotOracle.selector, idx, stranger));
        vm.prank(address(market));
        _verify(sigs);
    }

    function test_verifyReport_removedOracle_reverts() public {
        _remove(oracles[2], 2);
        bytes[] memory sigs = _sign(_keys(oracleKeys[1], oracleKeys[2]), _digest());
        uint256 idx = _recover(_digest(), sigs[0]) == oracles[2] ? 0 : 1;
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.SignerNotOracle.selector, idx, oracles[2]));
        vm.prank(address(market));
        _verify(sigs);
    }

    function test_verifyReport_wrongLength_reverts() public {
        bytes[] memory sigs = _sign(_keys(oracleKeys[0], oracleKeys[1]), _digest());
        bytes memory sig = sigs[1];
        bytes32 r;
        bytes32 s;
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
        }
        sigs[1] = abi.encodePacked(r, s); // 64-byte compact form
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.MalformedSignature.selector, 1));
        vm.prank(address(market));
        _verify(sigs);

        sigs[1] = abi.encodePacked(sig, uint8(0)); // 66 bytes
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.MalformedSignature.selector, 1));
        vm.prank(address(market));
        _verify(sigs);

        sigs[0] = "";
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.MalformedSignature.selector, 0));
        vm.prank(address(market));
        _verify(sigs);
    }

    function test_verifyReport_highS_reverts() public {
        bytes[] memory sigs = _sign(_keys(oracleKeys[0], oracleKeys[1]), _digest());
        bytes memory sig = sigs[0];
        bytes32 r;
        bytes32 s;
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
        }
        uint8 v = uint8(sig[64]);
        sigs[0] = abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.MalformedSignature.selector, 0));
        vm.prank(address(market));
        _verify(sigs);
    }

    function test_verifyReport_invalidV_reverts() public {
        bytes[] memory sigs = _sign(_keys(oracleKeys[0], oracleKeys[1]), _digest());
        sigs[1][64] = bytes1(uint8(29));
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.MalformedSignature.selector, 1));
        vm.prank(address(market));
        _verify(sigs);
    }

    function test_verifyReport_zeroSignature_reverts() public {
        bytes[] memory sigs = _sign(_keys(oracleKeys[0], oracleKeys[1]), _digest());
        sigs[0] = new bytes(65);
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.MalformedSignature.selector, 0));
        vm.prank(address(market));
        _verify(sigs);
    }

    // ─── Replay protection ────────────────────────────────────────────────────────────────

    /// @dev Signatures over `signed` presented for `presented` recover to someone who is not an
    ///      oracle; index 0 always passes the ascending check, so the error names that signer.
    function _expectReplayRejected(bytes[] memory sigs, bytes32 presented) internal {
        address recovered = _recover(presented, sigs[0]);
        for (uint256 i; i < 3; ++i) assertTrue(recovered != oracles[i], "recovers to a non-oracle");
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.SignerNotOracle.selector, 0, recovered));
    }

    function test_verifyReport_otherRound_reverts() public {
        bytes[] memory sigs = _sign(_keys(oracleKeys[0], oracleKeys[1]), _digest()); // round 0
        _expectReplayRejected(
            sigs, committee.reportDigest(address(market), REQUEST_ID, 1, DELIVERED, DEVICES, READINGS)
        );
        vm.prank(address(market));
        committee.verifyReport(REQUEST_ID, 1, DELIVERED, DEVICES, READINGS, sigs);
    }

    function test_verifyReport_otherRequestId_reverts() public {
        bytes[] memory sigs = _sign(_keys(oracleKeys[0], oracleKeys[1]), _digest());
        _expectReplayRejected(
            sigs, committee.reportDigest(address(market), REQUEST_ID + 1, ROUND, DELIVERED, DEVICES, READINGS)
        );
        vm.prank(address(market));
        committee.verifyReport(REQUEST_ID + 1, ROUND, DELIVERED, DEVICES, READINGS, sigs);
    }

    function test_verifyReport_otherContent_reverts() public {
        bytes[] memory sigs = _sign(_keys(oracleKeys[0], oracleKeys[1]), _digest());
        bytes32 otherDelivered = keccak256("other");
        _expectReplayRejected(
            sigs, committee.reportDigest(address(market), REQUEST_ID, ROUND, otherDelivered, DEVICES, READINGS)
        );
        vm.prank(address(market));
        committee.verifyReport(REQUEST_ID, ROUND, otherDelivered, DEVICES, READINGS, sigs);

        _expectReplayRejected(
            sigs, committee.reportDigest(address(market), REQUEST_ID, ROUND, DELIVERED, bytes32("x"), READINGS)
        );
        vm.prank(address(market));
        committee.verifyReport(REQUEST_ID, ROUND, DELIVERED, bytes32("x"), READINGS, sigs);

        _expectReplayRejected(
            sigs, committee.reportDigest(address(market), REQUEST_ID, ROUND, DELIVERED, DEVICES, bytes32("x"))
        );
        vm.prank(address(market));
        committee.verifyReport(REQUEST_ID, ROUND, DELIVERED, DEVICES, bytes32("x"), sigs);
    }

    function test_verifyReport_otherMarket_reverts() public {
        address otherMarket = address(0x3A7);
        bytes[] memory sigs = _sign(_keys(oracleKeys[0], oracleKeys[1]), _digest()); // for `market`
        _expectReplayRejected(
            sigs, committee.reportDigest(otherMarket, REQUEST_ID, ROUND, DELIVERED, DEVICES, READINGS)
        );
        vm.prank(otherMarket);
        committee.verifyReport(REQUEST_ID, ROUND, DELIVERED, DEVICES, READINGS, sigs);
    }

    function test_verifyReport_otherChainId_reverts() public {
        bytes[] memory sigs = _sign(_keys(oracleKeys[0], oracleKeys[1]), _digest());
        vm.chainId(block.chainid + 1);
        _expectReplayRejected(sigs, _digest());
        vm.prank(address(market));
        committee.verifyReport(REQUEST_ID, ROUND, DELIVERED, DEVICES, READINGS, sigs);
    }

    function test_verifyReport_otherCommittee_reverts() public {
        OracleCommittee other = _emptyCommittee();
        vm.startPrank(governance);
        for (uint256 i; i < 3; ++i) other.addOracle(oracles[i], _majority(i + 1));
        vm.stopPrank();
        bytes[] memory sigs = _sign(_keys(oracleKeys[0], oracleKeys[1]), _digest()); // for `committee`
        _expectReplayRejected(
            sigs, other.reportDigest(address(market), REQUEST_ID, ROUND, DELIVERED, DEVICES, READINGS)
        );
        vm.prank(address(market));
        other.verifyReport(REQUEST_ID, ROUND, DELIVERED, DEVICES, READINGS, sigs);

        // signed for `other`, they verify there
        bytes[] memory own = _sign(
            _keys(oracleKeys[0], oracleKeys[1]),
            other.reportDigest(address(market), REQUEST_ID, ROUND, DELIVERED, DEVICES, READINGS)
        );
        vm.prank(address(market));
        assertEq(uint256(other.verifyReport(REQUEST_ID, ROUND, DELIVERED, DEVICES, READINGS, own)), 0x3, "own domain");
    }

    // ─── slashSigners ─────────────────────────────────────────────────────────────────────

    function test_slashSigners_slashesBondsAndUnseats() public {
        uint256 treasuryBefore = flex.balanceOf(treasury);
        vm.expectEmit(true, true, false, true, address(committee));
        emit IOracleCommittee.OracleRemoved(oracles[0], 1, block.timestamp);
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.Slashed(oracles[0], address(committee), challenger, ORACLE_BOND, ORACLE_BOND / 2, ORACLE_BOND / 2);
        vm.expectEmit(true, true, false, true, address(committee));
        emit IOracleCommittee.OracleRemoved(oracles[2], 3, block.timestamp);
        vm.expectEmit(true, true, true, true, address(staking));
        emit IStaking.Slashed(oracles[2], address(committee), challenger, ORACLE_BOND, ORACLE_BOND / 2, ORACLE_BOND / 2);
        vm.expectEmit(false, true, false, true, address(committee));
        emit IOracleCommittee.OraclesSlashed(0x5, challenger, 2 * ORACLE_BOND);
        vm.prank(disputer);
        uint256 total = committee.slashSigners(0x5, challenger, 5_000);

        assertEq(total, 2 * ORACLE_BOND, "total");
        assertEq(flex.balanceOf(challenger), ORACLE_BOND, "beneficiary share");
        assertEq(flex.balanceOf(treasury) - treasuryBefore, ORACLE_BOND, "treasury share");
        for (uint256 i; i < 3; i += 2) {
            IOracleCommittee.Oracle memory o = committee.oracleOf(oracles[i]);
            assertEq(o.active, false, "unseated");
            assertEq(uint256(o.bond), 0, "bond gone");
            IStaking.Account memory a = staking.accountOf(oracles[i]);
            assertEq(uint256(a.staked), 0, "stake slashed");
            assertEq(uint256(a.locked), 0, "lock released");
        }
        assertEq(committee.oracleOf(oracles[1]).active, true, "non-signer untouched");
        assertEq(uint256(staking.accountOf(oracles[1]).locked), ORACLE_BOND, "non-signer bond");
        assertEq(uint256(committee.activeOracleCount()), 1, "count");
        assertEq(uint256(committee.threshold()), 2, "threshold left as is");
    }

    function test_slashSigners_slashedOracleCannotSign() public {
        vm.prank(disputer);
        committee.slashSigners(0x1, address(0), 0);
        bytes[] memory sigs = _sign(_keys(oracleKeys[0], oracleKeys[1]), _digest());
        uint256 idx = _recover(_digest(), sigs[0]) == oracles[0] ? 0 : 1;
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.SignerNotOracle.selector, idx, oracles[0]));
        vm.prank(address(market));
        _verify(sigs);
        // the two honest oracles still reach the threshold
        bytes[] memory honest = _sign(_keys(oracleKeys[1], oracleKeys[2]), _digest());
        vm.prank(address(market));
        assertEq(uint256(_verify(honest)), 0x6, "honest pair");
    }

    function test_slashSigners_onlyBondIsSlashed() public {
        fundAndStake(oracles[0], 500 * FLEX); // extra free stake
        vm.prank(oracles[0]);
        staking.requestUnstake(200 * FLEX);
        vm.prank(disputer);
        uint256 total = committee.slashSigners(0x1, address(0), 0);
        assertEq(total, ORACLE_BOND, "bond only");
        IStaking.Account memory a = staking.accountOf(oracles[0]);
        assertEq(uint256(a.staked), 300 * FLEX, "free stake kept");
        assertEq(uint256(a.unbonding), 200 * FLEX, "unbonding kept");
        assertEq(uint256(a.locked), 0, "no lock left");
    }

    function test_slashSigners_noBeneficiary_allToTreasury() public {
        uint256 treasuryBefore = flex.balanceOf(treasury);
        vm.prank(disputer);
        committee.slashSigners(0x2, address(0), 10_000);
        assertEq(flex.balanceOf(treasury) - treasuryBefore, ORACLE_BOND, "treasury");
    }

    function test_slashSigners_twice_secondIsNoop() public {
        vm.prank(disputer);
        committee.slashSigners(0x3, challenger, 5_000);
        vm.expectEmit(false, true, false, true, address(committee));
        emit IOracleCommittee.OraclesSlashed(0x3, challenger, 0);
        vm.prank(disputer);
        assertEq(committee.slashSigners(0x3, challenger, 5_000), 0, "nothing left");
        assertEq(uint256(committee.activeOracleCount()), 1, "count not decremented twice");
    }

    function test_slashSigners_unknownIdBitsIgnored() public {
        vm.prank(disputer);
        uint256 total = committee.slashSigners(uint64(1) << 10 | uint64(1) << 63, challenger, 5_000);
        assertEq(total, 0, "nothing");
        assertEq(uint256(committee.activeOracleCount()), 3, "nobody unseated");
    }

    function test_slashSigners_seatedBondIsSlashed() public {
        vm.prank(governance);
        committee.setOracleBond(uint128(ORACLE_BOND * 5));
        vm.prank(disputer);
        assertEq(committee.slashSigners(0x1, address(0), 0), ORACLE_BOND, "bond at seating time");
    }

    /// @dev Regression: removing an oracle used to unlock its bond at once, so a dispute over
    ///      a report it had signed slashed nothing. The bond now stays locked and slashable
    ///      until its release time.
    function test_slashSigners_removedOracle_doesNotEscapeSlash() public {
        _remove(oracles[2], 2);
        uint256 releaseAt = committee.oracleOf(oracles[2]).bondReleaseAt;
        vm.warp(releaseAt - 1); // the last second of the release delay
        uint256 treasuryBefore = flex.balanceOf(treasury);

        vm.recordLogs();
        vm.prank(disputer);
        uint256 total = committee.slashSigners(0x4, challenger, 5_000);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            assertTrue(
                logs[i].topics[0] != IOracleCommittee.OracleRemoved.selector,
                "no second OracleRemoved: already unseated"
            );
        }

        assertEq(total, ORACLE_BOND, "the removed oracle's bond is slashed");
        assertEq(flex.balanceOf(challenger), ORACLE_BOND / 2, "beneficiary share");
        assertEq(flex.balanceOf(treasury) - treasuryBefore, ORACLE_BOND / 2, "treasury share");
        IStaking.Account memory a = staking.accountOf(oracles[2]);
        assertEq(uint256(a.staked), 0, "stake slashed");
        assertEq(uint256(a.locked), 0, "lock consumed");
        assertEq(uint256(committee.oracleOf(oracles[2]).bond), 0, "bond gone");
        assertEq(uint256(committee.activeOracleCount()), 2, "count not decremented again");
        assertEq(uint256(committee.threshold()), 2, "threshold unchanged");

        // nothing left to release afterwards
        vm.warp(releaseAt);
        vm.expectRevert(_noBond(oracles[2]));
        _release(oracles[2]);
    }

    function test_slashSigners_removedOracleRightAfterRemoval_slashed() public {
        _remove(oracles[0], 2);
        vm.prank(disputer);
        assertEq(committee.slashSigners(0x7, challenger, 0), 3 * ORACLE_BOND, "removed and seated signers alike");
        assertEq(uint256(committee.activeOracleCount()), 0, "the two seated ones unseated");
    }

    /// @dev After the release delay the former oracle's stake is free again: by design a
    ///      dispute can no longer reach it (the delay is at least the dispute window).
    function test_slashSigners_removedOracleAfterRelease_slashesNothing() public {
        _remove(oracles[2], 2);
        vm.warp(block.timestamp + UNBONDING);
        _release(oracles[2]);
        vm.prank(disputer);
        assertEq(committee.slashSigners(0x4, challenger, 5_000), 0, "nothing left to slash");
        assertEq(uint256(staking.accountOf(oracles[2]).staked), ORACLE_BOND, "stake intact");
    }

    function test_slashSigners_belowThreshold_governanceCanReseat() public {
        vm.prank(disputer);
        committee.slashSigners(0x3, address(0), 0);
        assertEq(uint256(committee.activeOracleCount()), 1, "one left");
        // k stays 2 > n: re-seating with k = 2 makes it a strict majority again
        fundAndStake(newOracle, ORACLE_BOND);
        _add(newOracle, 2);
        assertEq(uint256(committee.activeOracleCount()), 2, "re-seated");
        bytes[] memory sigs = _sign(_keys(oracleKeys[2], NEW_ORACLE_KEY), _digest());
        vm.prank(address(market));
        uint64 bitmap = _verify(sigs);
        assertEq(uint256(bitmap), 0x4 | 0x8, "ids 3 and 4");
    }

    function test_slashSigners_shareAboveBps_reverts() public {
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.ParameterOutOfBounds.selector, bytes32("beneficiaryShareBps"), 10_001, 0, 10_000)
        );
        vm.prank(disputer);
        committee.slashSigners(0x1, challenger, 10_001);
        assertEq(committee.oracleOf(oracles[0]).active, true, "rolled back");
    }

    function test_slashSigners_outsider_reverts() public {
        vm.expectRevert(_unauthorized(outsider, disputeRole));
        vm.prank(outsider);
        committee.slashSigners(0x1, outsider, 10_000);
        // admin does not hold the dispute role
        vm.expectRevert(_unauthorized(governance, disputeRole));
        vm.prank(governance);
        committee.slashSigners(0x1, governance, 10_000);
        // nor does the market in the fixture
        vm.expectRevert(_unauthorized(address(market), disputeRole));
        vm.prank(address(market));
        committee.slashSigners(0x1, address(0), 0);
    }

    function test_slashSigners_withoutSlasherRole_reverts() public {
        bytes32 slasherRole = staking.SLASHER_ROLE();
        vm.prank(governance);
        staking.revokeRole(slasherRole, address(committee));
        vm.expectRevert(_unauthorized(address(committee), slasherRole));
        vm.prank(disputer);
        committee.slashSigners(0x1, address(0), 0);
    }

    // ─── Fuzz ─────────────────────────────────────────────────────────────────────────────

    function testFuzz_setThreshold_strictMajority(uint8 n, uint8 k) public {
        n = uint8(bound(n, 0, 64));
        OracleCommittee c = _emptyCommittee();
        vm.startPrank(governance);
        for (uint256 i; i < n; ++i) c.addOracle(address(uint160(0x1000 + i)), _majority(i + 1));
        bool valid = (n == 0 && k == 0) || (k > 0 && k <= n && 2 * uint256(k) > n);
        if (!valid) vm.expectRevert(_invalidThreshold(k, n));
        c.setThreshold(k);
        vm.stopPrank();
        if (valid) assertEq(uint256(c.threshold()), k, "threshold");
    }

    function testFuzz_addOracle_strictMajorityOfNewSize(uint8 n, uint8 k) public {
        n = uint8(bound(n, 0, 63));
        OracleCommittee c = _emptyCommittee();
        vm.startPrank(governance);
        for (uint256 i; i < n; ++i) c.addOracle(address(uint160(0x1000 + i)), _majority(i + 1));
        uint256 size = uint256(n) + 1;
        bool valid = k > 0 && k <= size && 2 * uint256(k) > size;
        if (!valid) vm.expectRevert(_invalidThreshold(k, size));
        c.addOracle(newOracle, k);
        vm.stopPrank();
        assertEq(uint256(c.activeOracleCount()), valid ? size : n, "count");
        assertEq(uint256(c.threshold()), valid ? k : _majority(n), "threshold");
    }

    function testFuzz_removeOracle_strictMajorityOfNewSize(uint8 n, uint8 k) public {
        n = uint8(bound(n, 1, 64));
        OracleCommittee c = _emptyCommittee();
        vm.startPrank(governance);
        for (uint256 i; i < n; ++i) c.addOracle(address(uint160(0x1000 + i)), _majority(i + 1));
        uint256 size = uint256(n) - 1;
        bool valid = (size == 0 && k == 0) || (k > 0 && k <= size && 2 * uint256(k) > size);
        if (!valid) vm.expectRevert(_invalidThreshold(k, size));
        c.removeOracle(address(uint160(0x1000)), k);
        vm.stopPrank();
        assertEq(uint256(c.activeOracleCount()), valid ? size : n, "count");
        assertEq(uint256(c.threshold()), valid ? k : _majority(n), "threshold");
    }

    function testFuzz_releaseOracleBond_onlyAfterReleaseTime(uint64 unbonding, uint256 wait) public {
        unbonding = uint64(bound(unbonding, DISPUTE_WINDOW, 60 days));
        wait = bound(wait, 0, 120 days);
        vm.prank(governance);
        staking.setUnbondingPeriod(unbonding);
        _remove(oracles[1], 2);
        uint256 releaseAt = block.timestamp + unbonding;
        assertEq(uint256(committee.oracleOf(oracles[1]).bondReleaseAt), releaseAt, "release time");
        vm.warp(block.timestamp + wait);
        if (block.timestamp < releaseAt) vm.expectRevert(_bondStillLocked(oracles[1], releaseAt));
        _release(oracles[1]);
        uint256 locked = staking.accountOf(oracles[1]).locked;
        assertEq(locked, block.timestamp < releaseAt ? ORACLE_BOND : 0, "locked until the release time");
    }

    function testFuzz_verifyReport_signerSubsetBitmap(uint8 mask, uint16 round, uint256 requestId) public {
        mask = uint8(bound(mask, 0, 7));
        uint256 count;
        for (uint256 i; i < 3; ++i) if (mask & (1 << i) != 0) ++count;
        uint256[] memory keys = new uint256[](count);
        uint256 j;
        for (uint256 i; i < 3; ++i) if (mask & (1 << i) != 0) keys[j++] = oracleKeys[i];
        bytes32 digest = committee.reportDigest(address(market), requestId, round, DELIVERED, DEVICES, READINGS);
        bytes[] memory sigs = _sign(keys, digest);
        if (count < 2) vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.NotEnoughSignatures.selector, count, 2));
        vm.prank(address(market));
        uint64 bitmap = committee.verifyReport(requestId, round, DELIVERED, DEVICES, READINGS, sigs);
        if (count >= 2) assertEq(uint256(bitmap), mask, "bitmap is the signer set");
    }

    function testFuzz_verifyReport_otherRoundRejected(uint16 signedRound, uint16 presentedRound) public {
        vm.assume(signedRound != presentedRound);
        bytes32 signed = committee.reportDigest(address(market), REQUEST_ID, signedRound, DELIVERED, DEVICES, READINGS);
        bytes[] memory sigs = _sign(_keys(oracleKeys[0], oracleKeys[1]), signed);
        _expectReplayRejected(
            sigs, committee.reportDigest(address(market), REQUEST_ID, presentedRound, DELIVERED, DEVICES, READINGS)
        );
        vm.prank(address(market));
        committee.verifyReport(REQUEST_ID, presentedRound, DELIVERED, DEVICES, READINGS, sigs);
    }

    function testFuzz_slashSigners_neverExceedsBonds(uint64 bitmap, uint16 bps) public {
        bps = uint16(bound(bps, 0, 10_000));
        uint256 expected;
        uint256 unseated;
        for (uint256 i; i < 3; ++i) {
            if ((bitmap >> i) & 1 != 0) {
                expected += ORACLE_BOND;
                ++unseated;
            }
        }
        uint256 stakingBefore = flex.balanceOf(address(staking));
        vm.prank(disputer);
        uint256 total = committee.slashSigners(bitmap, challenger, bps);
        assertEq(total, expected, "sum of the signers' bonds");
        assertEq(stakingBefore - flex.balanceOf(address(staking)), total, "tokens left staking");
        assertEq(uint256(committee.activeOracleCount()), 3 - unseated, "signers unseated");
        assertLe(flex.balanceOf(challenger), total * bps / 10_000, "beneficiary at most its share");
    }
}
