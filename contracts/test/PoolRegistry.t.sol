// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {DeliveryFixtures} from "./utils/DeliveryFixtures.sol";
import {TestMerkle} from "./utils/TestMerkle.sol";
import {IFlexMarket} from "../interfaces/IFlexMarket.sol";
import {IDeviceRegistry} from "../interfaces/IDeviceRegistry.sol";
import {IPoolRegistry} from "../interfaces/IPoolRegistry.sol";
import {IDeliveryDispute} from "../interfaces/IDeliveryDispute.sol";

/// @notice Pools: enrolment with consent, leaving with notice, commission notice, pool bids
///         backed by membership, and members' Merkle-proven claims, with the attacks of a
///         hostile member, pool operator or outsider.
contract PoolRegistryTest is DeliveryFixtures {
    address internal aggregator = address(0xA66);
    address internal alice = address(0xA11CE0);
    uint256 internal constant MEMBER_KEYS = 0x4E4B000;
    uint256 internal constant MEMBERS = 3;
    uint256 internal constant DEVICES_PER_MEMBER = 2;
    uint48 internal constant MEMBER_DEVICE_W = 10_000;
    uint16 internal constant COMMISSION = 2_000;
    uint96 internal constant P20 = 200_000;
    uint96 internal constant P25 = 250_000;

    uint256 internal poolId;
    uint256 internal aliceDevice;
    uint256[][] internal memberDevices;

    function setUp() public {
        deployWithDelivery();
        vm.warp(T0 - 1 days);
        fundAndStake(aggregator, 10_000 * FLEX);
        fundAndStake(alice, 10_000 * FLEX);
        aliceDevice = registerDevice(alice, 0xD1, 200_000, ZONE);
        vm.prank(aggregator);
        poolId = pools.createPool(COMMISSION, "Zuid VPP");
        for (uint256 m; m < MEMBERS; ++m) {
            uint256[] memory devices = new uint256[](DEVICES_PER_MEMBER);
            for (uint256 d; d < DEVICES_PER_MEMBER; ++d) {
                devices[d] = registerDevice(memberAddr(m), 0xE000 + m * 16 + d, MEMBER_DEVICE_W, ZONE);
            }
            memberDevices.push(devices);
            enrollDevices(aggregator, poolId, MEMBER_KEYS + m, devices);
        }
        vm.warp(T0);
    }

    function memberAddr(uint256 m) internal pure returns (address) {
        return vm.addr(MEMBER_KEYS + m);
    }

    // ─── Enrolment ────────────────────────────────────────────────────────────────────────

    function test_enroll_keepsCapacityPerZone_andMarksDevicesPooled() public view {
        assertEq(pools.capacityOf(poolId, ZONE), MEMBERS * DEVICES_PER_MEMBER * MEMBER_DEVICE_W, "zone capacity");
        assertEq(pools.capacityOf(poolId, keccak256("elsewhere")), 0, "other zone");
        IPoolRegistry.Membership memory m = pools.membershipOf(memberDevices[0][0]);
        assertEq(m.poolId, poolId, "member of the pool");
        assertEq(m.joinedAt, T0 - 1 days, "joined at");
        assertTrue(registry.isPooled(memberDevices[0][0]), "pooled flag");
        assertTrue(!registry.isPooled(aliceDevice), "alice's device is not pooled");
    }

    function test_enroll_withoutTheOwnersConsent_refused() public {
        uint256 device = registerDevice(memberAddr(0), 0xE100, MEMBER_DEVICE_W, ZONE);
        uint256 deadline = block.timestamp + 1 days;
        // The operator signs the consent itself, with some key of its own.
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(0xBAD, pools.consentDigest(poolId, memberAddr(0), ids(device), 1, deadline));
        bytes memory forged = abi.encodePacked(r, s, v);
        vm.prank(aggregator);
        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.InvalidConsent.selector, memberAddr(0), vm.addr(0xBAD)));
        pools.enroll(poolId, memberAddr(0), ids(device), 1, deadline, forged);
        // The owner's consent for another device does not cover this one.
        bytes memory other = signConsent(MEMBER_KEYS, poolId, ids(memberDevices[0][0]), 1, deadline);
        vm.prank(aggregator);
        vm.expectPartialRevert(IPoolRegistry.InvalidConsent.selector);
        pools.enroll(poolId, memberAddr(0), ids(device), 1, deadline, other);
        // A device of someone else under the owner's valid consent.
        bytes memory foreign = signConsent(MEMBER_KEYS, poolId, ids(aliceDevice), 1, deadline);
        vm.prank(aggregator);
        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.DeviceNotOwnedBy.selector, aliceDevice, memberAddr(0)));
        pools.enroll(poolId, memberAddr(0), ids(aliceDevice), 1, deadline, foreign);
        assertTrue(!registry.isPooled(device), "nothing changed");
    }

    function test_enroll_consentForAnotherPoolOrExpired_refused() public {
        uint256 device = registerDevice(memberAddr(0), 0xE100, MEMBER_DEVICE_W, ZONE);
        vm.prank(address(0x0B2));
        uint256 otherPool = pools.createPool(100, "other");
        uint256 deadline = block.timestamp + 1 days;
        bytes memory forOther = signConsent(MEMBER_KEYS, otherPool, ids(device), 1, deadline);
        vm.prank(aggregator);
        vm.expectPartialRevert(IPoolRegistry.InvalidConsent.selector);
        pools.enroll(poolId, memberAddr(0), ids(device), 1, deadline, forOther);
        bytes memory late = signConsent(MEMBER_KEYS, poolId, ids(device), 1, deadline);
        vm.warp(deadline + 1);
        vm.prank(aggregator);
        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.ConsentExpired.selector, deadline));
        pools.enroll(poolId, memberAddr(0), ids(device), 1, deadline, late);
    }

    function test_enroll_twice_refused() public {
        // The same consent again: its nonce is used.
        uint256[] memory devices = memberDevices[0];
        uint256 deadline = block.timestamp + 1 days;
        bytes memory replay = signConsent(MEMBER_KEYS, poolId, devices, 0, deadline);
        vm.prank(aggregator);
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, memberAddr(0), 1));
        pools.enroll(poolId, memberAddr(0), devices, 0, deadline, replay);
        // A fresh consent for a device already in a pool, this one or another.
        bytes memory fresh = signConsent(MEMBER_KEYS, poolId, devices, 1, deadline);
        vm.prank(aggregator);
        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.AlreadyInPool.selector, devices[0], poolId));
        pools.enroll(poolId, memberAddr(0), devices, 1, deadline, fresh);
        vm.prank(address(0x0B2));
        uint256 otherPool = pools.createPool(100, "other");
        bytes memory toOther = signConsent(MEMBER_KEYS, otherPool, devices, 1, deadline);
        vm.prank(address(0x0B2));
        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.AlreadyInPool.selector, devices[0], poolId));
        pools.enroll(otherPool, memberAddr(0), devices, 1, deadline, toOther);
        assertEq(pools.capacityOf(poolId, ZONE), 60_000, "capacity counted once");
    }

    function test_enroll_whileCommittedToAnIndividualBid_refused() public {
        uint256 device = registerDevice(memberAddr(0), 0xE100, MEMBER_DEVICE_W, ZONE);
        fundAndStake(memberAddr(0), 1_000 * FLEX);
        uint256 requestId = createRequest(defaultParams());
        placeBid(memberAddr(0), requestId, 5_000, P20, ids(device));
        uint256 deadline = block.timestamp + 1 days;
        bytes memory consent = signConsent(MEMBER_KEYS, poolId, ids(device), 1, deadline);
        vm.prank(aggregator);
        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.DeviceCommitted.selector, device, requestId));
        pools.enroll(poolId, memberAddr(0), ids(device), 1, deadline, consent);
    }

    function test_pooledDevice_cannotBidAlone_changeCapacityOrZone_orBeTransferred() public {
        uint256 device = memberDevices[0][0];
        address owner = memberAddr(0);
        fundAndStake(owner, 1_000 * FLEX);
        uint256 requestId = createRequest(defaultParams());
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DeviceInPool.selector, device));
        market.bid(requestId, 5_000, P20, ids(device));
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DeviceInPool.selector, device));
        registry.update(device, 50_000, ZONE);
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DeviceInPool.selector, device));
        registry.transfer(device, alice);
    }

    // ─── Pool bids ────────────────────────────────────────────────────────────────────────

    function test_bidAsPool_bondsTheOperator_andRecordsCommissionAndCapacity() public {
        uint256 requestId = createRequest(defaultParams());
        uint256 lockedBefore = staking.accountOf(aggregator).locked;
        vm.prank(aggregator);
        uint256 bidIndex = market.bidAsPool(requestId, poolId, 50_000, P20);
        IFlexMarket.Bid memory b = market.bidOf(requestId, bidIndex);
        assertEq(b.bidder, aggregator, "the operator bids");
        assertEq(staking.accountOf(aggregator).locked - lockedBefore, b.bond, "operator's stake bonds it");
        IFlexMarket.PoolBid memory pb = market.poolBidOf(requestId, bidIndex);
        assertEq(pb.poolId, poolId, "pool");
        assertEq(pb.commissionBps, COMMISSION, "commission");
        assertEq(pb.capacityW, 60_000, "capacity at bid time");
    }

    function test_bidAsPool_byAnotherAccount_aboveCapacity_orTwice_refused() public {
        uint256 requestId = createRequest(defaultParams());
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.NotPoolOperator.selector, poolId, alice));
        market.bidAsPool(requestId, poolId, 50_000, P20);
        vm.prank(aggregator);
        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.PoolCapacityExceeded.selector, poolId, 60_001, 60_000));
        market.bidAsPool(requestId, poolId, 60_001, P20);
        vm.prank(aggregator);
        market.bidAsPool(requestId, poolId, 30_000, P20);
        uint256 key = uint256(keccak256(abi.encode(poolId, ZONE)));
        vm.prank(aggregator);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.DeviceOvercommitted.selector, key, requestId));
        market.bidAsPool(requestId, poolId, 30_000, P20);
        // An overlapping request in the same zone: the same members cannot back both.
        uint256 overlapping = createRequest(defaultParams());
        vm.prank(aggregator);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.DeviceOvercommitted.selector, key, requestId));
        market.bidAsPool(overlapping, poolId, 30_000, P20);
    }

    function test_bidAsPool_inTheSecondOfAJoin_refused() public {
        uint256 requestId = createRequest(defaultParams());
        uint256 device = registerDevice(memberAddr(0), 0xE100, MEMBER_DEVICE_W, ZONE);
        enrollDevices(aggregator, poolId, MEMBER_KEYS, ids(device));
        vm.prank(aggregator);
        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.PoolChangedThisBlock.selector, poolId, ZONE));
        market.bidAsPool(requestId, poolId, 50_000, P20);
        vm.warp(block.timestamp + 1);
        vm.prank(aggregator);
        market.bidAsPool(requestId, poolId, 70_000, P20);
    }

    // ─── Fraud proofs on pool records ─────────────────────────────────────────────────────

    /// @notice A report that credits a pool bid with a device that does not back it (not a
    ///         member, or asked to leave before the bid) is voided by an arithmetic proof.
    function test_arithmeticProof_recordOfANonMemberUnderAPoolBid_voidsTheReport() public {
        proveNotBacking(aliceDevice, false);
    }

    function test_arithmeticProof_recordOfALeavingMemberUnderALaterPoolBid_voidsTheReport() public {
        proveNotBacking(memberDevices[2][1], true);
    }

    function test_arithmeticProof_recordOfABackingMember_isNotAStructuralFault() public {
        uint256 requestId = createRequest(defaultParams());
        vm.prank(aggregator);
        market.bidAsPool(requestId, poolId, 50_000, P20);
        clearRequest(requestId);
        IDeliveryDispute.DeviceRecord memory member = record(memberDevices[0][0], 0, 50_000, 0, 50_000, OK);
        (bytes32 root, bytes32[] memory proof,) =
            pairTree(recordLeaf(member), recordLeaf(record(memberDevices[0][1], 0, 0, 0, 0, OK)));
        postRoots(requestId, one(50_000), root, bytes32("readings"));
        // A member's record is judged on its readings: without a readings proof, no void.
        vm.prank(disputer());
        vm.expectPartialRevert(IDeliveryDispute.ReadingsProofInvalid.selector);
        delivery.challengeArithmetic(requestId, member, proof, "", new bytes32[](0), new uint256[](0));
    }

    function proveNotBacking(uint256 device, bool leaveFirst) internal {
        if (leaveFirst) {
            vm.prank(registry.device(device).owner);
            pools.requestLeave(ids(device));
            vm.warp(block.timestamp + 1);
        }
        uint256 requestId = createRequest(defaultParams());
        vm.prank(aggregator);
        market.bidAsPool(requestId, poolId, 50_000, P20);
        clearRequest(requestId);
        IDeliveryDispute.DeviceRecord memory bad = record(device, 0, 50_000, 0, 50_000, OK);
        (bytes32 root, bytes32[] memory proof,) =
            pairTree(recordLeaf(bad), recordLeaf(record(memberDevices[0][0], 0, 0, 0, 0, OK)));
        postRoots(requestId, one(50_000), root, bytes32("readings"));
        vm.prank(disputer());
        delivery.challengeArithmetic(requestId, bad, proof, "", new bytes32[](0), new uint256[](0));
        assertEq(uint256(market.request(requestId).status), uint256(IFlexMarket.RequestStatus.Cleared), "voided");
    }

    function disputer() internal pure returns (address) {
        return address(0xD15);
    }

    // ─── Commission ───────────────────────────────────────────────────────────────────────

    function test_commission_changeAppliesOnlyAfterItsNotice() public {
        vm.prank(aggregator);
        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.CommissionTooHigh.selector, 5_001, 5_000));
        pools.setCommission(poolId, 5_001);
        vm.prank(aggregator);
        pools.setCommission(poolId, 4_000);
        assertEq(pools.commissionAt(poolId, block.timestamp), COMMISSION, "old rate now");
        assertEq(pools.commissionAt(poolId, block.timestamp + 7 days), 4_000, "new rate after the notice");
        // A bid inside the notice period takes the old rate.
        uint256 requestId = createRequest(defaultParams());
        vm.prank(aggregator);
        uint256 bidIndex = market.bidAsPool(requestId, poolId, 50_000, P20);
        assertEq(market.poolBidOf(requestId, bidIndex).commissionBps, COMMISSION, "inside the notice");
        vm.warp(block.timestamp + 7 days);
        uint256 later = createRequest(defaultParams());
        vm.prank(aggregator);
        bidIndex = market.bidAsPool(later, poolId, 50_000, P20);
        assertEq(market.poolBidOf(later, bidIndex).commissionBps, 4_000, "after the notice");
    }

    // ─── Leaving ──────────────────────────────────────────────────────────────────────────

    function test_leave_waitsForThePoolsCommitments_thenFreesTheDevice() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.windowStart += 3 days;
        p.windowEnd += 3 days;
        uint256 requestId = createRequest(p);
        vm.prank(aggregator);
        market.bidAsPool(requestId, poolId, 50_000, P20);
        uint256 device = memberDevices[1][0];
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.NotOwnerOrOperator.selector, device, alice));
        pools.requestLeave(ids(device));
        vm.prank(memberAddr(1));
        pools.requestLeave(ids(device));
        IPoolRegistry.Membership memory m = pools.membershipOf(device);
        assertEq(m.leaveAt, p.windowEnd, "stays until the pool's bid's window ends (not only 1 day)");
        assertEq(pools.capacityOf(poolId, ZONE), 50_000, "no longer backs new bids");
        vm.prank(memberAddr(1));
        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.AlreadyLeaving.selector, device, p.windowEnd));
        pools.requestLeave(ids(device));
        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.LeaveNotDue.selector, device, p.windowEnd));
        pools.completeLeave(ids(device));
        vm.warp(p.windowEnd);
        pools.completeLeave(ids(device));
        assertTrue(!registry.isPooled(device), "free");
        assertEq(pools.membershipOf(device).poolId, 0, "no membership");
        assertEq(pools.pastMemberships(device).length, 1, "history kept");
        // It may now bid alone.
        fundAndStake(memberAddr(1), 1_000 * FLEX);
        uint256 next = createRequest(defaultParams());
        placeBid(memberAddr(1), next, 5_000, P20, ids(device));
    }

    // ─── Settlement and claims ────────────────────────────────────────────────────────────

    struct Served {
        uint256 requestId;
        uint256 poolBid;
        uint256 aliceBid;
        IDeliveryDispute.DeviceRecord[] records;
        bytes32[] leaves;
        bytes32 root;
    }

    Served internal served;

    /// @dev The pool (50 kW) and alice (50 kW) serve a 100 kW request; the report's records
    ///      give pool devices 0..5 deliveries of 4,000..9,000 Wh (bid total 39,000 Wh) and alice
    ///      50,000 Wh; the request is finalized.
    function serveAndSettle() internal {
        served.requestId = createRequest(defaultParams());
        vm.prank(aggregator);
        served.poolBid = market.bidAsPool(served.requestId, poolId, 50_000, P20);
        served.aliceBid = placeBid(alice, served.requestId, 50_000, P25, ids(aliceDevice));
        clearRequest(served.requestId);
        uint256 k;
        for (uint256 m; m < MEMBERS; ++m) {
            for (uint256 d; d < DEVICES_PER_MEMBER; ++d) {
                int256 wh_ = int256((k + 4) * 1_000);
                served.records.push(record(memberDevices[m][d], uint16(served.poolBid), 10_000, 10_000 - wh_, wh_, OK));
                ++k;
            }
        }
        served.records.push(record(aliceDevice, uint16(served.aliceBid), 80_000, 30_000, 50_000, OK));
        for (uint256 i; i < served.records.length; ++i) {
            served.leaves.push(recordLeaf(served.records[i]));
        }
        served.root = TestMerkle.root(served.leaves);
        uint256[] memory delivered = wh2(served.poolBid, 39_000, served.aliceBid, 50_000);
        postRoots(served.requestId, delivered, served.root, bytes32("readings"));
        vm.warp(block.timestamp + market.disputeWindow());
        market.finalize(served.requestId, delivered);
    }

    function wh2(uint256 i, uint256 a, uint256 j, uint256 b) internal pure returns (uint256[] memory out) {
        out = new uint256[](2);
        out[i] = a;
        out[j] = b;
    }

    function claimAs(address who, uint256[] memory recordIdx) internal returns (uint256 amount) {
        IDeliveryDispute.DeviceRecord[] memory records = new IDeliveryDispute.DeviceRecord[](recordIdx.length);
        bytes32[][] memory proofs = new bytes32[][](recordIdx.length);
        for (uint256 i; i < recordIdx.length; ++i) {
            records[i] = served.records[recordIdx[i]];
            proofs[i] = TestMerkle.proof(served.leaves, recordIdx[i]);
        }
        vm.prank(who);
        amount = pools.claim(served.requestId, records, proofs);
    }

    function test_claims_commission_andDust_addUpToTheBidPayout() public {
        serveAndSettle();
        // 50 kW for 1 h awarded at 0.20 EUR/kWh, 39 kWh delivered: 39 x 0.20 = 7.80 EUR,
        // less the 1% protocol fee (0.078) = 7.722 EUR, all sent to PoolRegistry.
        uint256 payout = eur.balanceOf(address(pools));
        assertEq(payout, 7_722_000, "bid payout: 39 kWh x 0.20 EUR - 1% fee");
        IPoolRegistry.PoolPayout memory p = pools.payoutOf(served.requestId, served.poolBid);
        uint256 commission = payout * COMMISSION / 10_000;
        assertEq(p.memberPot, payout - commission, "member pot = payout - commission");
        assertEq(pools.withdrawable(address(eur), aggregator), commission, "commission to the operator");
        assertEq(p.deliveredWh, 39_000, "split by the bid's delivery");

        uint256 claimedTotal = 0;
        for (uint256 m; m < MEMBERS; ++m) {
            uint256[] memory both = new uint256[](2);
            (both[0], both[1]) = (2 * m, 2 * m + 1);
            uint256 before = eur.balanceOf(memberAddr(m));
            uint256 amount = claimAs(memberAddr(m), both);
            uint256 expected =
                p.memberPot * ((2 * m + 4) * 1_000) / 39_000 + p.memberPot * ((2 * m + 5) * 1_000) / 39_000;
            assertEq(amount, expected, "share = pot * device delivered / bid delivered, rounded down");
            assertEq(eur.balanceOf(memberAddr(m)) - before, amount, "paid to the owner");
            claimedTotal += amount;
        }
        uint256 dust = p.memberPot - claimedTotal;
        assertLe(dust, 5, "dust: under one base unit per paid device");
        assertEq(claimedTotal + commission + dust, payout, "claims + commission + dust = bid payout");
        vm.prank(aggregator);
        pools.withdraw(address(eur));
        assertEq(eur.balanceOf(address(pools)), dust, "only the dust stays");
    }

    function test_sweep_afterTheClaimPeriod_movesUnclaimedSharesAndDustToTheOperator() public {
        serveAndSettle();
        uint256 settledAt = block.timestamp;
        uint256 endsAt = settledAt + pools.CLAIM_PERIOD();
        claimAs(memberAddr(0), ids(0)); // one device of six claims; five shares stay unclaimed
        IPoolRegistry.PoolPayout memory p = pools.payoutOf(served.requestId, served.poolBid);
        uint256 left = p.memberPot - p.claimed;
        uint256 commission = pools.withdrawable(address(eur), aggregator);

        vm.warp(endsAt); // the last second of the claim period: still the members'
        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.ClaimPeriodNotOver.selector, served.requestId, endsAt));
        pools.sweepUnclaimed(served.requestId, served.poolBid);
        claimAs(memberAddr(0), ids(1)); // a member may still claim at the very end

        vm.warp(endsAt + 1);
        p = pools.payoutOf(served.requestId, served.poolBid);
        left = p.memberPot - p.claimed;
        vm.expectEmit(address(pools));
        emit IPoolRegistry.UnclaimedSwept(served.requestId, served.poolBid, poolId, aggregator, left);
        vm.prank(alice); // anyone may sweep; the operator is credited
        assertEq(pools.sweepUnclaimed(served.requestId, served.poolBid), left, "swept amount");
        assertEq(pools.withdrawable(address(eur), aggregator), commission + left, "credited to the operator");
        assertTrue(left > 0, "four devices' shares and the dust were left");

        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.ClaimPeriodOver.selector, served.requestId, endsAt));
        claimAs(memberAddr(1), ids(2));
        vm.expectRevert(
            abi.encodeWithSelector(IPoolRegistry.NothingToSweep.selector, served.requestId, served.poolBid)
        );
        pools.sweepUnclaimed(served.requestId, served.poolBid);
        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.NotPoolPayout.selector, served.requestId, served.aliceBid));
        pools.sweepUnclaimed(served.requestId, served.aliceBid);

        // Conservation: the pot went to members and then to the operator, nothing else.
        uint256 balance = eur.balanceOf(address(pools));
        vm.prank(aggregator);
        pools.withdraw(address(eur));
        assertEq(eur.balanceOf(address(pools)), 0, "nothing stays in PoolRegistry");
        assertEq(balance, commission + left, "the operator took commission + sweep");
    }

    function test_claim_twice_forAnotherOwner_orAnIndividualBid_refused() public {
        serveAndSettle();
        claimAs(memberAddr(0), ids(0));
        uint256 device = served.records[0].deviceId;
        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.AlreadyClaimed.selector, served.requestId, device));
        claimAs(memberAddr(0), ids(0));
        // The operator (or anyone) claiming a member's device.
        uint256 other = served.records[2].deviceId;
        vm.expectRevert(
            abi.encodeWithSelector(IPoolRegistry.NotDeviceOwnerAt.selector, other, aggregator, memberAddr(1))
        );
        claimAs(aggregator, ids(2));
        // alice's individual bid is paid by the market, not here.
        vm.expectRevert(abi.encodeWithSelector(IPoolRegistry.NotPoolPayout.selector, served.requestId, served.aliceBid));
        claimAs(alice, ids(6));
        assertTrue(!pools.claimed(served.requestId, other), "nothing claimed for device 2");
    }

    function test_claim_withAMadeUpRecord_refused() public {
        serveAndSettle();
        IDeliveryDispute.DeviceRecord[] memory records = new IDeliveryDispute.DeviceRecord[](1);
        bytes32[][] memory proofs = new bytes32[][](1);
        records[0] = served.records[0];
        records[0].deliveredWh = 39_000; // the whole bid's delivery
        proofs[0] = TestMerkle.proof(served.leaves, 0);
        vm.prank(memberAddr(0));
        vm.expectRevert(
            abi.encodeWithSelector(IPoolRegistry.InvalidRecordProof.selector, served.requestId, records[0].deviceId)
        );
        pools.claim(served.requestId, records, proofs);
    }

    function test_claim_withAProofOfAVoidedRound_refused() public {
        served.requestId = createRequest(defaultParams());
        vm.prank(aggregator);
        served.poolBid = market.bidAsPool(served.requestId, poolId, 50_000, P20);
        clearRequest(served.requestId);
        // Round 0 gives member 0's first device the whole delivery; it is voided.
        IDeliveryDispute.DeviceRecord memory inflated = record(memberDevices[0][0], 0, 50_000, 0, 50_000, OK);
        IDeliveryDispute.DeviceRecord memory honest = record(memberDevices[0][0], 0, 50_000, 40_000, 10_000, OK);
        IDeliveryDispute.DeviceRecord memory second = record(memberDevices[0][1], 0, 50_000, 10_000, 40_000, OK);
        (bytes32 voidedRoot, bytes32[] memory voidedProof,) = pairTree(recordLeaf(inflated), recordLeaf(second));
        postRoots(served.requestId, one(50_000), voidedRoot, bytes32("readings"));
        vm.prank(address(delivery));
        market.voidReport(served.requestId);
        (bytes32 root,,) = pairTree(recordLeaf(honest), recordLeaf(second));
        postRoots(served.requestId, one(50_000), root, bytes32("readings"));
        vm.warp(block.timestamp + market.disputeWindow());
        market.finalize(served.requestId, one(50_000));

        IDeliveryDispute.DeviceRecord[] memory records = new IDeliveryDispute.DeviceRecord[](1);
        bytes32[][] memory proofs = new bytes32[][](1);
        (records[0], proofs[0]) = (inflated, voidedProof);
        vm.prank(memberAddr(0));
        vm.expectRevert(
            abi.encodeWithSelector(IPoolRegistry.InvalidRecordProof.selector, served.requestId, inflated.deviceId)
        );
        pools.claim(served.requestId, records, proofs);
    }

    function test_claims_neverExceedThePot_evenUnderAWrongBidTotal() public {
        served.requestId = createRequest(defaultParams());
        vm.prank(aggregator);
        served.poolBid = market.bidAsPool(served.requestId, poolId, 50_000, P20);
        clearRequest(served.requestId);
        // A wrong report: the bid total (10,000 Wh) is below its records' sum (2 x 10,000 Wh).
        IDeliveryDispute.DeviceRecord memory a = record(memberDevices[0][0], 0, 20_000, 10_000, 10_000, OK);
        IDeliveryDispute.DeviceRecord memory b = record(memberDevices[0][1], 0, 20_000, 10_000, 10_000, OK);
        (bytes32 root, bytes32[] memory proofA, bytes32[] memory proofB) = pairTree(recordLeaf(a), recordLeaf(b));
        postRoots(served.requestId, one(30_000), root, bytes32("readings"));
        vm.warp(block.timestamp + market.disputeWindow());
        market.finalize(served.requestId, one(30_000));
        IPoolRegistry.PoolPayout memory p = pools.payoutOf(served.requestId, 0);
        assertEq(p.deliveredWh, 30_000, "as reported");
        IDeliveryDispute.DeviceRecord[] memory records = new IDeliveryDispute.DeviceRecord[](1);
        bytes32[][] memory proofs = new bytes32[][](1);
        (records[0], proofs[0]) = (a, proofA);
        vm.prank(memberAddr(0));
        pools.claim(served.requestId, records, proofs);
        (records[0], proofs[0]) = (b, proofB);
        vm.prank(memberAddr(0));
        pools.claim(served.requestId, records, proofs);
        assertLe(pools.payoutOf(served.requestId, 0).claimed, p.memberPot, "never above the pot");
    }
}
