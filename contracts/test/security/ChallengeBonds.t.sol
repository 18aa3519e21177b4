// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {SecurityBase} from "./SecurityBase.sol";
import {IFlexMarket} from "../../interfaces/IFlexMarket.sol";
import {IStaking} from "../../interfaces/IStaking.sol";
import {IDisputeResolver} from "../../interfaces/IDisputeResolver.sol";

/// @notice Issue 12 finding 5: challenges used to be free and serialized (one pending per
///         request), so an owner with no free stake delayed a settlement by ~2 response windows
///         per device (16 devices: 32 hours) and a decoy challenge blocked an honest one. Now
///         each challenge locks a bond (lost when rebutted), challenges run concurrently and
///         are opened only before the report's original dispute end, so the total delay is
///         at most 2 x responseWindow whatever their number.
contract ChallengeBondsTest is SecurityBase {
    uint256 internal constant DEVICES = 16;
    int64 internal constant HONEST_WH = 1_000;
    int64 internal constant FAKE_WH = 7_777;

    address internal mallory = address(0x3A11);
    uint256[] internal malloryDevices;
    bytes32[] internal leaves;
    bytes internal honestUsed;

    function setUp() public {
        setUpMarket();
        vm.warp(T0 - 1 days); // registered before the readings
        for (uint256 i; i < DEVICES; ++i) {
            malloryDevices.push(registerDevice(mallory, malloryKey(i), 1_000, ZONE));
        }
        vm.warp(T0);
    }

    function malloryKey(uint256 i) internal pure returns (uint256) {
        return 0x3A110000 + i;
    }

    function honestValues() internal pure returns (int64[] memory values) {
        values = new int64[](3);
        values[0] = HONEST_WH;
        values[1] = HONEST_WH;
        values[2] = HONEST_WH;
    }

    /// @dev Merkle proof of leaf `index` in the balanced tree over `leaves` (power of two).
    function proofOf(uint256 index) internal view returns (bytes32[] memory proof) {
        bytes32[] memory level = leaves;
        uint256 depth = 0;
        for (uint256 n = level.length; n > 1; n /= 2) {
            ++depth;
        }
        proof = new bytes32[](depth);
        for (uint256 d; d < depth; ++d) {
            proof[d] = level[index ^ 1];
            bytes32[] memory up = new bytes32[](level.length / 2);
            for (uint256 i; i < up.length; ++i) {
                up[i] = hashPair(level[2 * i], level[2 * i + 1]);
            }
            level = up;
            index /= 2;
        }
    }

    function rootOfLeaves() internal view returns (bytes32) {
        return rootOf(leaves[0], proofOf(0));
    }

    /// @dev A report whose leaves are mallory's 16 devices (honest readings) plus, when
    ///      `tamperAlice`, alice's reading TAMPERED altered; 32 leaves in all (padding).
    function postReport(bool tamperAlice) internal returns (uint256 requestId) {
        IFlexMarket.RequestParams memory p = defaultParams();
        requestId = createRequest(p);
        placeBid(alice, requestId, 50_000, P20, ids(aliceDevice));
        placeBid(bob, requestId, 50_000, P25, ids(bobDevice));
        clearRequest(requestId);
        firstStart = p.windowStart - 900;
        honestUsed = packUsed(firstStart, 900, honestValues());
        for (uint256 i; i < DEVICES; ++i) {
            leaves.push(readingsLeaf(malloryDevices[i], honestUsed));
        }
        int64[] memory alices = aliceSignedValues();
        if (tamperAlice) alices[TAMPERED] = REPORTED_WH;
        aliceUsed = packUsed(firstStart, 900, alices);
        leaves.push(readingsLeaf(aliceDevice, aliceUsed));
        while (leaves.length < 32) {
            leaves.push(keccak256(abi.encode("padding", leaves.length)));
        }
        postReportWithRoot(requestId, wh(45_000, 48_000), rootOfLeaves(), twoSigners());
    }

    function malloryUnit(uint256 i, int64 value) internal view returns (IDisputeResolver.MeterUnit memory u) {
        int64[] memory values = honestValues();
        values[TAMPERED] = value;
        u = unit(malloryDevices[i], firstStart, values);
        if (value != HONEST_WH) u.sequence = 43;
        u = signSecp(u, malloryKey(i));
    }

    function malloryChallenges(uint256 requestId, uint256 i, int64 value) internal returns (uint256) {
        IDisputeResolver.MeterUnit memory u = malloryUnit(i, value);
        bytes32[] memory proof = proofOf(i);
        vm.prank(mallory);
        return dispute.challenge(requestId, malloryDevices[i], honestUsed, proof, TAMPERED, u, TAMPERED);
    }

    function challengeAliceAs(address who, uint256 requestId) internal returns (uint256) {
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        bytes32[] memory proof = proofOf(DEVICES);
        vm.prank(who);
        return dispute.challenge(requestId, aliceDevice, aliceUsed, proof, TAMPERED, u, TAMPERED);
    }

    /// @dev The issue's attack: one challenge per device, each with a second value. It now
    ///      costs 16 bonds (all lost) and delays the report by at most 2W in total.
    function test_sixteenDeviceDelay_costs16Bonds_delayBoundedBy2W() public {
        uint256 requestId = postReport(false);
        uint256 originalEnd = market.request(requestId).disputeEndsAt;
        uint256 window = dispute.responseWindow();
        uint256 bond = dispute.challengeBond();
        // Without free stake mallory cannot open a single challenge.
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, mallory, 0, bond));
        malloryChallenges(requestId, 0, FAKE_WH);

        fundAndStake(mallory, DEVICES * bond); // exactly 16 bonds
        // One challenge a minute, ending one second before the original end.
        vm.warp(originalEnd - DEVICES * 1 minutes);
        uint256[] memory challenges = new uint256[](DEVICES);
        for (uint256 i; i < DEVICES; ++i) {
            vm.warp(block.timestamp + 1 minutes - (i == DEVICES - 1 ? 1 : 0));
            challenges[i] = malloryChallenges(requestId, i, FAKE_WH);
        }
        assertEq(dispute.pendingChallengeCount(requestId), DEVICES, "all pending at once");
        assertEq(lockedOf(mallory), DEVICES * bond, "16 bonds locked");
        uint256 endsAt = market.request(requestId).disputeEndsAt;
        assertLe(endsAt, originalEnd + 2 * window, "total delay at most 2W");
        assertEq(endsAt, originalEnd - 1 + 2 * window, "the last challenge's t + 2W");
        // A seventeenth costs a seventeenth bond she does not have.
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, mallory, 0, bond));
        malloryChallenges(requestId, 0, FAKE_WH - 1);

        // Every one is rebutted with the device's honest unit: mallory loses every bond.
        address watcher = stranger;
        for (uint256 i; i < DEVICES; ++i) {
            IDisputeResolver.MeterUnit memory honest = malloryUnit(i, HONEST_WH);
            vm.prank(watcher);
            dispute.rebut(challenges[i], honest, TAMPERED);
        }
        assertEq(stakedOf(mallory), 0, "all 16 bonds slashed");
        assertEq(lockedOf(mallory), 0, "nothing left locked");
        assertEq(flex.balanceOf(watcher), DEVICES * (bond / 2), "the rebutter's share");
        vm.warp(endsAt);
        market.finalize(requestId, wh(45_000, 48_000));
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Settled), "settled by original end + 2W");
    }

    /// @dev Serialization let a decoy block the real challenge (ChallengePending). Now both
    ///      run: the decoy is rebutted, the honest one voids the tampered report.
    function test_decoyChallenge_cannotBlockAnHonestOne() public {
        uint256 requestId = postReport(true);
        fundAndStake(mallory, dispute.challengeBond());
        uint256 decoy = malloryChallenges(requestId, 3, FAKE_WH);
        stakeForChallenges(challenger, 1);
        uint256 honest = challengeAliceAs(challenger, requestId);
        assertEq(dispute.pendingChallengeCount(requestId), 2, "both pending");

        dispute.rebut(decoy, malloryUnit(3, HONEST_WH), TAMPERED);
        vm.warp(dispute.challengeOf(honest).responseDeadline);
        uint256 slashed = dispute.resolve(honest);
        assertEq(slashed, 2 * uint256(ORACLE_BOND), "signers slashed");
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Cleared), "tampered report voided");
        assertEq(lockedOf(challenger), 0, "honest challenger's bond released");
        assertEq(stakedOf(challenger), dispute.challengeBond(), "and kept");
    }

    /// @dev Two upheld challenges against one round: the first voids it, the second is moot:
    ///      its bond comes back and nobody is voided or slashed twice.
    function test_secondChallengeOfAVoidedRound_isMoot() public {
        uint256 requestId = postReport(true);
        address second = address(0x5EC0);
        stakeForChallenges(challenger, 1);
        stakeForChallenges(second, 1);
        uint256 first = challengeAliceAs(challenger, requestId);
        uint256 other = challengeAliceAs(second, requestId);
        vm.warp(dispute.challengeOf(other).responseDeadline);
        dispute.resolve(first);
        uint256 treasuryBefore = flex.balanceOf(treasury);
        vm.expectEmit(true, true, true, true, address(dispute));
        emit IDisputeResolver.ChallengeMooted(other, requestId, 0, dispute.challengeBond());
        assertEq(dispute.resolve(other), 0, "nothing slashed");
        assertEq(uint256(dispute.challengeOf(other).status), uint256(IDisputeResolver.ChallengeStatus.Moot), "moot");
        assertEq(lockedOf(second), 0, "bond released");
        assertEq(stakedOf(second), dispute.challengeBond(), "bond kept");
        assertEq(flex.balanceOf(treasury), treasuryBefore, "no second slash");
        IFlexMarket.Request memory r = market.request(requestId);
        assertEq(r.reportRound, 1, "voided once");
        assertEq(dispute.pendingChallengeCount(requestId), 0, "none pending");
    }

    /// @dev A challenge extends the end; a later one cannot ride on the extension.
    function test_challengeAfterTheOriginalEnd_refused() public {
        uint256 requestId = postReport(true);
        uint256 originalEnd = market.request(requestId).disputeEndsAt;
        fundAndStake(mallory, dispute.challengeBond());
        vm.warp(originalEnd - 1);
        malloryChallenges(requestId, 0, FAKE_WH);
        assertEq(dispute.originalDisputeEndsAt(requestId, 0), originalEnd, "recorded at the first challenge");
        vm.warp(originalEnd);
        assertTrue(market.request(requestId).disputeEndsAt > block.timestamp, "extended end still open");
        stakeForChallenges(challenger, 1);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeResolver.ChallengeWindowClosed.selector, requestId, 0, originalEnd)
        );
        challengeAliceAs(challenger, requestId);
    }

    /// @dev After a void the next round has its own original end.
    function test_nextRound_hasItsOwnOriginalEnd() public {
        uint256 requestId = postReport(true);
        stakeForChallenges(challenger, 2);
        uint256 first = challengeAliceAs(challenger, requestId);
        vm.warp(dispute.challengeOf(first).responseDeadline);
        dispute.resolve(first);
        // governance seats a new oracle beside the honest one (k = 2 of 2); they repost
        uint256 newKey = 0xA11CE2;
        fundAndStake(vm.addr(newKey), ORACLE_BOND);
        vm.prank(governance);
        committee.addOracle(vm.addr(newKey), 2);
        oracleKeys[0] = newKey;
        uint256[] memory signers = new uint256[](2);
        signers[0] = 0;
        signers[1] = 2;
        postReportWithRoot(requestId, wh(45_000, 48_000), rootOfLeaves(), signers);
        uint256 roundOneEnd = market.request(requestId).disputeEndsAt;
        challengeAliceAs(challenger, requestId);
        assertEq(dispute.originalDisputeEndsAt(requestId, 1), roundOneEnd, "round 1's own end");
        assertEq(dispute.originalDisputeEndsAt(requestId, 0), 0, "round 0 superseded");
    }
}
