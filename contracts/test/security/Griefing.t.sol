// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {SecurityBase} from "./SecurityBase.sol";
import {IFlexMarket} from "../../interfaces/IFlexMarket.sol";
import {IStaking} from "../../interfaces/IStaking.sol";
import {IDeviceRegistry} from "../../interfaces/IDeviceRegistry.sol";
import {IDisputeResolver} from "../../interfaces/IDisputeResolver.sol";
import {IOracleCommittee} from "../../interfaces/IOracleCommittee.sol";

/// @notice Griefing: spam bids, dust requests, dust stake, huge lists. Every refusal names its
///         custom error; every bound that keeps a request settleable is measured.
contract GriefingTest is SecurityBase {
    /// @dev EIP-7825 (Osaka): the most gas one transaction may use.
    uint256 internal constant TX_GAS_CAP = 16_777_216;
    /// @dev Head room for what an in-test measurement leaves out: 21,000 intrinsic gas and
    ///      the calldata of 256 delivery figures (EIP-7623 floor included).
    uint256 internal constant TX_OVERHEAD = 200_000;
    uint256 internal constant ONE_KW_BOND = 10 * FLEX; // 1 kW at the default bond per kW

    function setUp() public {
        setUpMarket();
    }

    // ─── Helpers ──────────────────────────────────────────────────────────────────────────

    /// @dev `count` fresh accounts, each with the least stake one minimal bid needs and one
    ///      1 kW device, each bidding 1 kW at `price`: the cheapest way to fill bid slots.
    function spamBids(uint256 requestId, uint256 count, uint96 price) internal returns (address[] memory spammers) {
        spammers = new address[](count);
        for (uint256 i; i < count; ++i) {
            address who = address(uint160(0x100000 + i));
            spammers[i] = who;
            fundAndStake(who, ONE_KW_BOND);
            uint256 device = registerDevice(who, 0xF00000 + i, 1_000, ZONE);
            placeBid(who, requestId, 1_000, price, ids(device));
        }
    }

    /// @dev Storage of the protocol goes cold, so the next call is measured as in its own
    ///      transaction.
    function coolProtocol() internal {
        vm.cool(address(market));
        vm.cool(address(staking));
        vm.cool(address(flex));
        vm.cool(address(registry));
        vm.cool(address(committee));
    }

    // ─── Spam bids ────────────────────────────────────────────────────────────────────────

    /// @dev A full request refuses a bid that is not cheaper than its worst one (here all
    ///      three are at the cap, so a bid at the cap cannot get in).
    function test_spamBids_capPerRequest_refusesTheNextBid_notCheaper() public {
        vm.prank(governance);
        market.setMaxBidsPerRequest(3);
        uint256 requestId = createRequest(defaultParams());
        spamBids(requestId, 3, CAP);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.TooManyBids.selector, requestId, 3));
        placeBid(alice, requestId, 50_000, CAP, ids(aliceDevice));
    }

    // ─── Bid-slot griefing: a full request still takes a better bid ──────────────────────

    /// @dev Issue 12 finding 6: 256 sybil bids at the cap fill the request; on b0384e6 the
    ///      cheaper real bid below reverted TooManyBids. Now it displaces the worst sybil
    ///      (the latest at the highest price), the sybil's bond is free, and clearing awards
    ///      the real bid first.
    function test_slotGriefing_256Sybils_cheaperRealBidDisplacesTheWorst_andWins() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.powerW = 50_000;
        uint256 requestId = createRequest(p);
        uint256 maxBids = market.MAX_BIDS_CAP();
        address[] memory sybils = spamBids(requestId, maxBids, CAP);
        address worst = sybils[maxBids - 1]; // equal prices: the latest placed is the worst
        assertEq(lockedOf(worst), ONE_KW_BOND, "sybil bond locked");

        vm.expectEmit(true, true, true, true, address(market));
        emit IFlexMarket.BidDisplaced(requestId, maxBids - 1, worst, alice);
        coolProtocol();
        vm.prank(alice);
        uint256 before = gasleft();
        uint256 index = market.bid(requestId, 50_000, P10, ids(aliceDevice));
        uint256 displaceGas = before - gasleft();
        // Scanning 256 cold slots for the worst bid, plus the bid itself: measured ~0.8M.
        assertLe(displaceGas, 1_500_000, "displacing bid over 256 slots");

        assertEq(index, maxBids - 1, "the freed slot");
        assertEq(market.request(requestId).bidCount, maxBids, "bid count stays at the cap");
        assertEq(market.bidOf(requestId, index).bidder, alice, "alice holds the slot");
        assertEq(market.bidOf(requestId, index).sequence, maxBids, "alice's bid is the 257th placed");
        assertEq(lockedOf(worst), 0, "displaced bond released");
        assertEq(staking.freeStake(worst), ONE_KW_BOND, "displaced bidder's stake is free");
        assertEq(market.devicesHashOf(requestId, worst), bytes32(0), "displaced bidder may bid again");

        vm.warp(p.gateClosure);
        uint16[] memory order = meritOrder(requestId);
        assertEq(order[0], index, "alice first in merit order");
        market.clear(requestId, order);
        assertEq(market.bidOf(requestId, index).awardedW, 50_000, "alice awarded in full");
        assertEq(market.bidOf(requestId, 0).awardedW, 0, "no sybil awarded");
        assertEq(lockedOf(sybils[0]), 0, "sybils released at clearing");
    }

    /// @dev The displaced bid is the highest-priced one, not the latest nor slot 0.
    function test_slotGriefing_displacesTheHighestPrice_thenTheLatestAmongEquals() public {
        vm.prank(governance);
        market.setMaxBidsPerRequest(3);
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 10_000, P25, ids(aliceDevice)); // slot 0: the worst price
        placeBid(bob, requestId, 10_000, P20, ids(bobDevice)); // slot 1
        placeBid(carol, requestId, 10_000, P20, ids(carolDevice)); // slot 2
        vm.expectEmit(true, true, true, true, address(market));
        emit IFlexMarket.BidDisplaced(requestId, 0, alice, dave);
        assertEq(placeBid(dave, requestId, 10_000, P20, ids(daveDevice)), 0, "alice's slot (P25)");
        // Now P20 x3: the latest placed at the highest price is dave's (sequence 3).
        vm.expectEmit(true, true, true, true, address(market));
        emit IFlexMarket.BidDisplaced(requestId, 0, dave, alice);
        assertEq(placeBid(alice, requestId, 10_000, P10, ids(aliceDevice)), 0, "dave's slot");
        assertEq(lockedOf(dave), 0, "dave released");
        // The merit order follows sequence, not slot: bob (1) before carol (2).
        clearRequest(requestId);
        assertEq(market.bidOf(requestId, 0).awardedW, 10_000, "alice");
        assertEq(market.bidOf(requestId, 1).awardedW, 10_000, "bob");
        assertEq(market.bidOf(requestId, 2).awardedW, 10_000, "carol");
    }

    /// @dev No churn for free: a bid at the worst price does not displace it.
    function test_slotGriefing_equalPriceDisplacementRefused() public {
        vm.prank(governance);
        market.setMaxBidsPerRequest(2);
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 10_000, P10, ids(aliceDevice));
        placeBid(bob, requestId, 10_000, P20, ids(bobDevice));
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.TooManyBids.selector, requestId, 2));
        placeBid(carol, requestId, 10_000, P20, ids(carolDevice));
        assertEq(market.bidOf(requestId, 1).bidder, bob, "bob keeps his slot");
        assertEq(lockedOf(carol), 0, "nothing locked for carol");
    }

    /// @dev After gate closure nobody can bid, so nobody can evict a bid either.
    function test_slotGriefing_noDisplacementAfterGateClosure() public {
        vm.prank(governance);
        market.setMaxBidsPerRequest(2);
        IFlexMarket.RequestParams memory p = defaultParams();
        uint256 requestId = createRequest(p);
        placeBid(alice, requestId, 10_000, P20, ids(aliceDevice));
        placeBid(bob, requestId, 10_000, P25, ids(bobDevice));
        vm.warp(p.gateClosure);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.GateClosed.selector, requestId, p.gateClosure));
        placeBid(carol, requestId, 10_000, P10, ids(carolDevice));
        clearRequest(requestId);
        assertEq(market.bidOf(requestId, 1).bidder, bob, "bob still there");
        assertEq(market.bidOf(requestId, 1).awardedW, 10_000, "and awarded");
    }

    /// @dev A displaced bidder may come back cheaper, and then displaces the new worst.
    function test_slotGriefing_displacedBidderRebidsCheaper() public {
        vm.prank(governance);
        market.setMaxBidsPerRequest(2);
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 10_000, P20, ids(aliceDevice));
        placeBid(bob, requestId, 10_000, P25, ids(bobDevice));
        placeBid(carol, requestId, 10_000, P10, ids(carolDevice)); // displaces bob (P25)
        assertEq(lockedOf(bob), 0, "bob released");
        // Bob comes back below the worst (alice, P20), with the same device.
        vm.expectEmit(true, true, true, true, address(market));
        emit IFlexMarket.BidDisplaced(requestId, 0, alice, bob);
        assertEq(placeBid(bob, requestId, 10_000, P10, ids(bobDevice)), 0, "alice's slot");
        assertEq(lockedOf(bob), 100 * FLEX, "bob's new bond");
        assertEq(lockedOf(alice), 0, "alice released");
        // Among equal prices the earlier (carol, sequence 2) ranks first.
        uint16[] memory order = meritOrder(requestId);
        assertEq(order[0], 1, "carol first");
        assertEq(order[1], 0, "bob second");
    }

    /// @dev The merit order is checked by (price, sequence): slot order is refused when it
    ///      differs from placement order.
    function test_slotGriefing_meritOrderBySequence_notSlot() public {
        vm.prank(governance);
        market.setMaxBidsPerRequest(2);
        IFlexMarket.RequestParams memory p = defaultParams();
        uint256 requestId = createRequest(p);
        placeBid(alice, requestId, 10_000, P10, ids(aliceDevice)); // slot 0, sequence 0
        placeBid(bob, requestId, 10_000, P20, ids(bobDevice)); // slot 1, sequence 1
        placeBid(carol, requestId, 10_000, P10, ids(carolDevice)); // slot 1, sequence 2
        vm.warp(p.gateClosure);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidMeritOrder.selector, 1));
        market.clear(requestId, order(1, 0)); // carol before alice: later at the same price
        market.clear(requestId, order(0, 1));
        assertEq(market.request(requestId).awardedW, 20_000, "both awarded");
    }

    function test_spamBids_defaultCapIs256_andTheWorstSettlementFitsOneTransaction() public {
        // 256 bids, all awarded, all delivering 40%: utilization zero, availability paid
        // (a fresh claimable slot per bidder) and 60% of every bond slashed (a FLEX transfer
        // per bidder): the most work finalize can be made to do.
        IFlexMarket.RequestParams memory p = defaultParams();
        p.powerW = 256_000;
        p.availabilityPricePerKWh = 100_000;
        uint256 requestId = createRequest(p);
        uint256 maxBids = market.MAX_BIDS_CAP();
        assertEq(market.maxBidsPerRequest(), maxBids, "default is the hard cap");
        spamBids(requestId, maxBids, P10);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.TooManyBids.selector, requestId, maxBids));
        placeBid(alice, requestId, 50_000, P10, ids(aliceDevice));

        vm.warp(p.gateClosure);
        uint16[] memory order = meritOrder(requestId);
        coolProtocol();
        uint256 before = gasleft();
        market.clear(requestId, order);
        uint256 clearGas = before - gasleft();
        assertLe(clearGas + TX_OVERHEAD, TX_GAS_CAP, "clear of 256 bids fits a transaction");
        assertEq(market.request(requestId).awardedW, 256_000, "all awarded");

        uint256[] memory delivered = new uint256[](maxBids);
        for (uint256 i; i < maxBids; ++i) {
            delivered[i] = 400; // of 1,000 Wh awarded
        }
        postReport(requestId, delivered, twoSigners());
        vm.warp(block.timestamp + market.disputeWindow());
        coolProtocol();
        before = gasleft();
        market.finalize(requestId, delivered);
        uint256 finalizeGas = before - gasleft();
        // Measured 15.03M: within the cap with about 1.5M to spare.
        assertLe(finalizeGas + TX_OVERHEAD, TX_GAS_CAP, "finalize of 256 bids fits a transaction");
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Settled), "settled");
    }

    function test_spamBids_eachSlotNeedsTheBondForOneKW_andOneBidPerBidder() public {
        uint256 requestId = createRequest(defaultParams());
        address spammer = address(0x5A3);
        uint256 device = registerDevice(spammer, 0x5A3D, 1_000, ZONE);
        // No stake: no bid.
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, spammer, 0, ONE_KW_BOND));
        placeBid(spammer, requestId, 1_000, CAP, ids(device));
        // One base unit short of the bond: no bid.
        fundAndStake(spammer, ONE_KW_BOND - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, spammer, ONE_KW_BOND - 1, ONE_KW_BOND)
        );
        placeBid(spammer, requestId, 1_000, CAP, ids(device));
        // Below the minimum power: no bid, whatever the stake.
        fundAndStake(spammer, 1);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.PowerBelowMinimum.selector, 999, 1_000));
        placeBid(spammer, requestId, 999, CAP, ids(device));
        // Exactly the bond: one bid, and one only.
        placeBid(spammer, requestId, 1_000, CAP, ids(device));
        assertEq(lockedOf(spammer), ONE_KW_BOND, "bond locked");
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.AlreadyBid.selector, requestId, spammer));
        placeBid(spammer, requestId, 1_000, CAP, ids(device));
    }

    function test_spamBids_lockedBondsCannotLeave_andAwardedSpamIsSlashed() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.powerW = 2_000;
        uint256 requestId = createRequest(p);
        address[] memory spammers = spamBids(requestId, 3, P10);
        // A slot's bond is locked: the spammer cannot unstake it while the bid stands.
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, spammers[0], 0, ONE_KW_BOND));
        vm.prank(spammers[0]);
        staking.requestUnstake(ONE_KW_BOND);

        clearRequest(requestId);
        // Two awarded (2 kW), the third released at clearing.
        assertEq(lockedOf(spammers[2]), 0, "rejected slot released");
        uint256 treasuryBefore = flex.balanceOf(treasury);
        reportAndFinalize(requestId, wh(0, 0, 0));
        // Awarded and silent: each loses its whole bond.
        assertEq(stakedOf(spammers[0]), 0, "spammer 0 slashed");
        assertEq(stakedOf(spammers[1]), 0, "spammer 1 slashed");
        assertEq(flex.balanceOf(treasury) - treasuryBefore, 2 * ONE_KW_BOND, "slashes to the treasury");
    }

    // ─── Dust requests ────────────────────────────────────────────────────────────────────

    function test_dustRequest_belowMinimumPower_refused() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.powerW = 999;
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.PowerBelowMinimum.selector, 999, 1_000));
        createRequest(p);
    }

    function test_dustRequest_zeroPriceCap_refused() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.priceCapPerKWh = 0;
        vm.expectRevert(IFlexMarket.ZeroPriceCap.selector);
        createRequest(p);
    }

    function test_dustRequest_emptyOrOverlongWindow_refused() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.windowEnd = p.windowStart;
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidWindow.selector, p.windowStart, p.windowEnd, 900));
        createRequest(p);
        p.windowEnd = p.windowStart + 97 * 900;
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidWindow.selector, p.windowStart, p.windowEnd, 900));
        createRequest(p);
    }

    function test_dustRequest_escrowBelowTokenMinimum_refused() public {
        // 1 kW for 15 minutes at 1 base unit per kWh escrows nothing (0.25 rounds down).
        IFlexMarket.RequestParams memory p = defaultParams();
        p.powerW = 1_000;
        p.windowEnd = p.windowStart + 900;
        p.priceCapPerKWh = 1;
        vm.expectEmit(true, true, true, true, address(market));
        emit IFlexMarket.MinEscrowSet(address(eur), 1 * EUR);
        vm.prank(governance);
        market.setMinEscrow(address(eur), 1 * EUR);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.EscrowBelowMinimum.selector, address(eur), 0, 1 * EUR));
        createRequest(p);
        // 4 kW for 15 minutes at 1 tEUR per kWh escrows exactly the minimum.
        p.powerW = 4_000;
        p.priceCapPerKWh = uint128(1 * EUR);
        uint256 requestId = createRequest(p);
        assertEq(market.request(requestId).escrow, 1 * EUR, "at the minimum");
    }

    function test_dustRequest_minimumIsPerToken_andOffByDefault() public {
        assertEq(market.minEscrowOf(address(eur)), 0, "no minimum by default");
        vm.prank(governance);
        market.setMinEscrow(address(flex), 1_000 * FLEX);
        // tEUR is unaffected by FLEX's minimum.
        IFlexMarket.RequestParams memory p = defaultParams();
        p.priceCapPerKWh = 1;
        uint256 requestId = createRequest(p);
        assertEq(market.request(requestId).escrow, 100, "100 kWh at 1 base unit");
    }

    function test_setMinEscrow_boundsAndRole() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, market.DEFAULT_ADMIN_ROLE()
            )
        );
        vm.prank(stranger);
        market.setMinEscrow(address(eur), 1);
        vm.startPrank(governance);
        vm.expectRevert(IFlexMarket.ZeroAddress.selector);
        market.setMinEscrow(address(0), 1);
        uint256 tooBig = uint256(type(uint128).max) + 1;
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.ParameterOutOfBounds.selector, bytes32("minEscrow"), tooBig, 0, type(uint128).max
            )
        );
        market.setMinEscrow(address(eur), tooBig);
        market.setMinEscrow(address(eur), type(uint128).max);
        market.setMinEscrow(address(eur), 0);
        vm.stopPrank();
        assertEq(market.minEscrowOf(address(eur)), 0, "lifted again");
    }

    function test_dustRequest_minimumPowerIsBoundedGovernance() public {
        vm.startPrank(governance);
        vm.expectRevert(
            abi.encodeWithSelector(IFlexMarket.ParameterOutOfBounds.selector, bytes32("minRequestW"), 0, 1, 100_000_000)
        );
        market.setMinRequestW(0);
        vm.expectRevert(
            abi.encodeWithSelector(IFlexMarket.ParameterOutOfBounds.selector, bytes32("minBidW"), 0, 1, 1_000_000)
        );
        market.setMinBidW(0);
        vm.stopPrank();
    }

    // ─── Dust stake ───────────────────────────────────────────────────────────────────────

    function test_dustStake_zeroRefused_andOneUnitBacksNoBid() public {
        address duster = address(0xD057);
        vm.expectRevert(IStaking.ZeroAmount.selector);
        vm.prank(duster);
        staking.stake(0);
        fundAndStake(duster, 1);
        uint256 device = registerDevice(duster, 0xD05D, 1_000, ZONE);
        uint256 requestId = createRequest(defaultParams());
        vm.expectRevert(abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, duster, 1, ONE_KW_BOND));
        placeBid(duster, requestId, 1_000, CAP, ids(device));
        vm.expectRevert(IStaking.ZeroAmount.selector);
        vm.prank(duster);
        staking.requestUnstake(0);
    }

    // ─── Huge lists ───────────────────────────────────────────────────────────────────────

    function test_hugeDeviceList_65Refused_64BoundedGas() public {
        address fleet = address(0xF1EE7);
        fundAndStake(fleet, 1_000 * FLEX);
        uint256[] memory devices = new uint256[](65);
        for (uint256 i; i < 65; ++i) {
            devices[i] = registerDevice(fleet, 0xF1E000 + i, 1_000, ZONE);
        }
        uint256 requestId = createRequest(defaultParams());
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidDeviceCount.selector, 65, 64));
        placeBid(fleet, requestId, 64_000, CAP, devices);

        uint256[] memory sixtyFour = new uint256[](64);
        for (uint256 i; i < 64; ++i) {
            sixtyFour[i] = devices[i];
        }
        coolProtocol();
        vm.prank(fleet);
        uint256 before = gasleft();
        market.bid(requestId, 64_000, CAP, sixtyFour);
        // Two cold slots per device in the registry, a fresh commitment slot per device in
        // the market (issue 12 finding 4: ~24k each) plus the bid: measured ~1.93M, far
        // below the transaction cap.
        assertLe(before - gasleft(), 2_200_000, "64-device bid gas");
    }

    function test_hugeDeviceList_repeatedDeviceRefused() public {
        uint256 requestId = createRequest(defaultParams());
        uint256[] memory twice = ids(aliceDevice, aliceDevice);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DevicesNotAscending.selector, 1, aliceDevice));
        placeBid(alice, requestId, 1_000, CAP, twice);
    }

    function test_hugeSignatureList_extraSignaturesRefused() public {
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 50_000, P20, ids(aliceDevice));
        clearRequest(requestId);
        // All three oracles plus the first one again: the fourth cannot be ascending.
        bytes[] memory three = signReport(requestId, 0, wh(50_000), "devices", "readings", allSigners());
        bytes[] memory four = new bytes[](4);
        for (uint256 i; i < 3; ++i) {
            four[i] = three[i];
        }
        four[3] = three[0];
        warpTo(market.request(requestId).windowEnd);
        bytes32 digest = committee.reportDigest(
            address(market), requestId, 0, keccak256(abi.encodePacked(wh(50_000))), "devices", "readings"
        );
        vm.expectRevert(
            abi.encodeWithSelector(IOracleCommittee.SignersNotAscending.selector, 3, recovered(digest, three[0])),
            address(committee)
        );
        market.submitReport(requestId, wh(50_000), "devices", "readings", four);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Cleared), "nothing posted");
    }

    // ─── Challenge spam ───────────────────────────────────────────────────────────────────

    /// @dev Challenges no longer queue (a decoy blocked the real one); each costs a bond and
    ///      the dispute end moves at most two response windows past the original end.
    function test_challengeSpam_eachChallengeBonded_extensionBounded() public {
        uint256 requestId = postTamperedReport();
        uint256 originalEnd = market.request(requestId).disputeEndsAt;
        vm.warp(originalEnd - 1); // late, so the end must move
        challengeAlice(requestId);
        IDisputeResolver.MeterUnit memory u = aliceUnit();
        // No free stake, no challenge.
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, stranger, 0, dispute.challengeBond())
        );
        vm.prank(stranger);
        dispute.challenge(requestId, aliceDevice, aliceUsed, emptyProof, TAMPERED, u, TAMPERED);
        // With it, the duplicate is open too and locks the stranger's bond.
        stakeForChallenges(stranger, 1);
        vm.prank(stranger);
        dispute.challenge(requestId, aliceDevice, aliceUsed, emptyProof, TAMPERED, u, TAMPERED);
        assertEq(lockedOf(stranger), dispute.challengeBond(), "bond locked");
        // Each challenge extends the dispute by two response windows, no more.
        assertEq(
            market.request(requestId).disputeEndsAt, block.timestamp + 2 * dispute.responseWindow(), "extension bounded"
        );
        assertLe(market.request(requestId).disputeEndsAt, originalEnd + 2 * dispute.responseWindow(), "total bound");
    }
}
