// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Deployers} from "./utils/Deployers.sol";
import {IFlexMarket} from "../interfaces/IFlexMarket.sol";
import {IDeviceRegistry} from "../interfaces/IDeviceRegistry.sol";

/// @notice Fuzz tests of bidding bounds, device transfers, merit-order clearing, settlement
///         arithmetic and the report timing rules (dispute window, report timeout).
/// @dev Eight providers with one 1 MW device each are set up once; every run posts its own
///      request. Expected figures are recomputed here from the documented rules (not with
///      SettlementMath) so that the contract is checked against an independent model.
contract FlexMarketFuzzTest is Deployers {
    uint256 internal constant BIDDERS = 8;
    uint48 internal constant DEVICE_W = 1_000_000;
    uint256 internal constant BIDDER_STAKE = 20_000 * FLEX;
    uint256 internal constant BPS = 10_000;

    address[BIDDERS] internal bidders;
    uint256[BIDDERS] internal devices;

    function setUp() public {
        deployProtocol();
        for (uint256 i; i < BIDDERS; ++i) {
            bidders[i] = address(uint160(0xB1D000 + i));
            fundAndStake(bidders[i], BIDDER_STAKE);
            devices[i] = registerDevice(bidders[i], 0xDE0000 + i, DEVICE_W, ZONE);
        }
        // Room for the largest fuzzed escrows.
        eur.mint(gridOperator, 1e30);
    }

    // ─── bid ──────────────────────────────────────────────────────────────────────────────

    function testFuzz_bid_powerBounds(uint48 powerW) public {
        uint256 requestId = createRequest(defaultParams());
        if (powerW < market.minBidW()) {
            vm.expectRevert(abi.encodeWithSelector(IFlexMarket.PowerBelowMinimum.selector, powerW, 1_000));
        } else if (powerW > DEVICE_W) {
            vm.expectRevert(abi.encodeWithSelector(IFlexMarket.BidExceedsCapacity.selector, powerW, DEVICE_W));
        }
        placeBid(bidders[0], requestId, powerW, 100_000, ids(devices[0]));
        if (powerW >= 1_000 && powerW <= DEVICE_W) {
            uint256 bond = uint256(powerW) * 10e18 / 1000;
            assertEq(market.bidOf(requestId, 0).powerW, powerW, "power");
            assertEq(market.bidOf(requestId, 0).bond, bond, "bond");
            assertEq(staking.accountOf(bidders[0]).locked, bond, "locked");
        } else {
            assertEq(market.request(requestId).bidCount, 0, "no bid recorded");
            assertEq(staking.accountOf(bidders[0]).locked, 0, "nothing locked");
        }
    }

    function testFuzz_bid_priceBounds(uint96 price, uint128 cap) public {
        cap = uint128(bound(cap, 1, 1e12));
        IFlexMarket.RequestParams memory p = defaultParams();
        p.priceCapPerKWh = cap;
        uint256 requestId = createRequest(p);
        bool valid = price > 0 && price <= cap;
        if (!valid) vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidBidPrice.selector, price, cap));
        placeBid(bidders[0], requestId, 10_000, price, ids(devices[0]));
        assertEq(market.request(requestId).bidCount, valid ? 1 : 0, "bid count");
        if (valid) assertEq(market.bidOf(requestId, 0).pricePerKWh, price, "price stored");
    }

    function testFuzz_bid_bondScalesWithPower(uint48 powerW, uint128 bondPerKW) public {
        powerW = uint48(bound(powerW, 1_000, DEVICE_W));
        bondPerKW = uint128(bound(bondPerKW, 0, 2e19)); // the stake covers 1 MW at 20 FLEX/kW
        vm.prank(governance);
        market.setBondPerKW(bondPerKW);
        uint256 requestId = createRequest(defaultParams());
        placeBid(bidders[0], requestId, powerW, 100_000, ids(devices[0]));
        uint256 bond = uint256(powerW) * bondPerKW / 1000;
        assertEq(market.bidOf(requestId, 0).bond, bond, "bond");
        assertEq(staking.accountOf(bidders[0]).locked, bond, "locked");
        assertEq(staking.freeStake(bidders[0]), BIDDER_STAKE - bond, "free");
    }

    /// @dev A device moved to another owner can be offered by the new owner only in requests
    ///      posted strictly after the transfer.
    function testFuzz_bid_deviceTransferVsRequestCreation(uint256 transferOffset, bool transferFirst) public {
        transferOffset = bound(transferOffset, 0, 30 minutes);
        uint256 t0 = block.timestamp;
        uint256 requestId;
        uint256 transferAt;
        if (transferFirst) {
            transferAt = t0;
            transferDevice(devices[0], bidders[0], bidders[1], 0xD0B0);
            vm.warp(t0 + transferOffset);
            requestId = createRequest(defaultParams());
        } else {
            requestId = createRequest(defaultParams());
            transferAt = t0 + transferOffset;
            vm.warp(transferAt);
            transferDevice(devices[0], bidders[0], bidders[1], 0xD0B0);
        }
        uint256 createdAt = market.request(requestId).createdAt;
        bool accepted = transferAt < createdAt;
        if (!accepted) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IDeviceRegistry.DeviceTransferredAfterRequest.selector, devices[0], transferAt, createdAt
                ),
                address(registry)
            );
        }
        placeBid(bidders[1], requestId, DEVICE_W, 100_000, ids(devices[0]));
        assertEq(market.request(requestId).bidCount, accepted ? 1 : 0, "bid count");
    }

    // ─── Report timing ────────────────────────────────────────────────────────────────────

    /// @dev A cleared single-bid request on bidder 0 (100 kW at 0.20).
    function clearedRequest() internal returns (uint256 requestId) {
        requestId = createRequest(defaultParams());
        placeBid(bidders[0], requestId, 100_000, 200_000, ids(devices[0]));
        clearRequest(requestId);
    }

    /// @dev The dispute window announced with a report holds whatever the parameter becomes.
    function testFuzz_finalize_atAnnouncedDisputeEnd(uint64 newWindow, uint256 reportDelay) public {
        newWindow = uint64(bound(newWindow, 60, UNBONDING));
        reportDelay = bound(reportDelay, 0, 2 days - 1);
        uint256 requestId = clearedRequest();
        uint256[] memory delivered = new uint256[](1);
        delivered[0] = 100_000;
        bytes[] memory sigs = signReport(requestId, 0, delivered, "devices", "readings", twoSigners());
        vm.warp(uint256(market.request(requestId).windowEnd) + reportDelay);
        market.submitReport(requestId, delivered, "devices", "readings", sigs);
        uint256 announced = block.timestamp + DISPUTE_WINDOW;

        vm.prank(governance);
        market.setDisputeWindow(newWindow);
        assertEq(market.request(requestId).disputeEndsAt, announced, "fixed at submission");
        vm.warp(announced - 1);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.DisputeWindowOpen.selector, requestId, announced));
        market.finalize(requestId, delivered);
        vm.warp(announced);
        market.finalize(requestId, delivered);
        assertEq(uint256(market.request(requestId).status), uint256(IFlexMarket.RequestStatus.Settled), "settled");
    }

    /// @dev After a void, the report timeout runs from max(window end, time of the void).
    function testFuzz_expire_afterVoid_reportTimeoutFromVoid(uint256 reportDelay, uint256 voidDelay) public {
        uint256 timeout = market.reportTimeout();
        reportDelay = bound(reportDelay, 0, timeout - 1);
        voidDelay = bound(voidDelay, 0, DISPUTE_WINDOW - 1);
        uint256 requestId = clearedRequest();
        uint256 windowEnd = market.request(requestId).windowEnd;
        uint256[] memory delivered = new uint256[](1);
        delivered[0] = 100_000;
        bytes[] memory sigs = signReport(requestId, 0, delivered, "devices", "readings", twoSigners());
        vm.warp(windowEnd + reportDelay);
        market.submitReport(requestId, delivered, "devices", "readings", sigs);
        vm.warp(block.timestamp + voidDelay);
        bytes32 disputeRole = market.DISPUTE_ROLE();
        vm.startPrank(governance);
        market.grantRole(disputeRole, governance);
        market.voidReport(requestId);
        vm.stopPrank();
        uint256 voidedAt = block.timestamp;

        uint256 expiresAt = (voidedAt > windowEnd ? voidedAt : windowEnd) + timeout;
        assertGe(expiresAt, voidedAt + timeout, "a full timeout after the void");
        vm.warp(expiresAt - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.NotExpirable.selector, requestId, IFlexMarket.RequestStatus.Cleared, expiresAt
            )
        );
        market.expire(requestId);
        vm.warp(expiresAt);
        market.expire(requestId);
        assertEq(uint256(market.request(requestId).status), uint256(IFlexMarket.RequestStatus.Expired), "expired");
        assertEq(staking.accountOf(bidders[0]).locked, 0, "bond released");
        assertEq(staking.accountOf(bidders[0]).staked, BIDDER_STAKE, "not slashed");
    }

    // ─── clear ────────────────────────────────────────────────────────────────────────────

    struct Book {
        uint256 requestId;
        uint256 count;
        uint256 requestedW;
        uint48[BIDDERS] powers;
        uint96[BIDDERS] prices;
        uint96[BIDDERS] bonds;
    }

    /// @dev Half the prices come from five levels (many ties), half from the whole range.
    function fuzzPrice(uint256 raw, uint256 cap) internal pure returns (uint96) {
        if (raw & 1 == 1) return uint96(bound(raw >> 1, 1, cap));
        uint256 level = ((raw >> 1) % 5 + 1) * cap / 5;
        return uint96(level == 0 ? 1 : level);
    }

    function openBook(uint256 count, uint256 requestedW, uint256[BIDDERS] memory prices, uint48[BIDDERS] memory powers)
        internal
        returns (Book memory book)
    {
        book.count = bound(count, 0, BIDDERS);
        book.requestedW = bound(requestedW, 1_000, 4_000_000);
        IFlexMarket.RequestParams memory p = defaultParams();
        p.powerW = uint48(book.requestedW);
        book.requestId = createRequest(p);
        for (uint256 i; i < book.count; ++i) {
            book.powers[i] = uint48(bound(powers[i], 1_000, DEVICE_W));
            book.prices[i] = fuzzPrice(prices[i], p.priceCapPerKWh);
            placeBid(bidders[i], book.requestId, book.powers[i], book.prices[i], ids(devices[i]));
            book.bonds[i] = market.bidOf(book.requestId, i).bond;
        }
    }

    /// @dev True when bid `i` comes before bid `j` in merit order (price, then bid time).
    function before(Book memory book, uint256 i, uint256 j) internal pure returns (bool) {
        return book.prices[i] < book.prices[j] || (book.prices[i] == book.prices[j] && i < j);
    }

    /// @dev Independent model: each bid is awarded min(power, what the cheaper bids left).
    /// @dev Every bid offers at least minBidW here, so once a remainder below it is passed
    ///      over no later bid fits it whole: the model only needs the power offered ahead.
    function expectedAward(Book memory book, uint256 i) internal view returns (uint256) {
        uint256 ahead;
        for (uint256 j; j < book.count; ++j) {
            if (j != i && before(book, j, i)) ahead += book.powers[j];
        }
        if (ahead >= book.requestedW) return 0;
        uint256 left = book.requestedW - ahead;
        if (left < book.powers[i] && left < market.minBidW()) return 0; // no sliver awarded
        return left < book.powers[i] ? left : book.powers[i];
    }

    function testFuzz_clear_awardsCheapestFirst(
        uint8 count,
        uint48 requestedW,
        uint256[BIDDERS] memory prices,
        uint48[BIDDERS] memory powers
    ) public {
        Book memory book = openBook(count, requestedW, prices, powers);
        clearRequest(book.requestId);

        uint256 offered;
        uint256 awardedTotal;
        uint256 marginal;
        for (uint256 i; i < book.count; ++i) {
            uint256 awarded = checkAward(book, i);
            offered += book.powers[i];
            awardedTotal += awarded;
            if (awarded > 0 && book.prices[i] > marginal) marginal = book.prices[i];
        }
        uint256 fillable = offered < book.requestedW ? offered : book.requestedW;
        IFlexMarket.Request memory r = market.request(book.requestId);
        assertLe(awardedTotal, fillable, "never above min(requested, offered)");
        assertTrue(fillable - awardedTotal < market.minBidW(), "at most a sliver below minBidW unmet");
        assertEq(r.awardedW, awardedTotal, "request awardedW");
        assertEq(r.clearingPrice, marginal, "clearing price = dearest awarded bid");
        if (book.count == 0) {
            assertEq(uint256(r.status), uint256(IFlexMarket.RequestStatus.Settled), "no bids: settled");
            assertEq(market.claimable(address(eur), gridOperator), r.escrow, "no bids: full refund");
        } else {
            assertEq(uint256(r.status), uint256(IFlexMarket.RequestStatus.Cleared), "cleared");
        }
    }

    /// @dev Checks bid `i` after clearing against the model and its neighbours; returns its award.
    function checkAward(Book memory book, uint256 i) internal view returns (uint256 awarded) {
        awarded = market.bidOf(book.requestId, i).awardedW;
        assertEq(awarded, expectedAward(book, i), "award follows merit order");
        assertLe(awarded, book.powers[i], "never above the bid");
        // A dearer (or later, same-price) bid is never awarded while a cheaper one is short.
        for (uint256 j; j < book.count; ++j) {
            if (j == i || !before(book, i, j)) continue;
            if (market.bidOf(book.requestId, j).awardedW > 0) assertEq(awarded, book.powers[i], "cheaper bid full");
        }
        // Bonds: rejected released, partial scaled down, full kept.
        uint256 kept = awarded == 0 ? 0 : uint256(book.bonds[i]) * awarded / book.powers[i];
        assertEq(staking.accountOf(bidders[i]).locked, kept, "locked bond");
        if (awarded > 0) assertEq(market.bidOf(book.requestId, i).bond, kept, "kept bond stored");
    }

    function testFuzz_clear_rejectsAnyOtherOrder(
        uint8 count,
        uint256[BIDDERS] memory prices,
        uint48[BIDDERS] memory powers,
        uint256 swapA,
        uint256 swapB
    ) public {
        count = uint8(bound(count, 2, BIDDERS));
        Book memory book = openBook(count, 1_000_000, prices, powers);
        uint16[] memory merit = meritOrder(book.requestId);
        uint256 a = bound(swapA, 0, book.count - 2);
        uint256 b = bound(swapB, a + 1, book.count - 1);
        (merit[a], merit[b]) = (merit[b], merit[a]);
        vm.warp(market.request(book.requestId).gateClosure);
        // Keys are strictly ascending, so the first break is right after the first swapped slot.
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidMeritOrder.selector, a + 1));
        market.clear(book.requestId, merit);
    }

    // ─── settlement ───────────────────────────────────────────────────────────────────────

    struct SettlementCase {
        uint8 count;
        uint48 requestedW;
        uint8 intervals;
        bool halfHourIntervals;
        bool uniform;
        uint128 cap;
        uint128 availabilityPrice;
        uint16 feeBps;
        uint16 thresholdBps;
        uint256[BIDDERS] prices;
        uint48[BIDDERS] powers;
        uint64[BIDDERS] delivered;
    }

    struct Expected {
        uint256 escrow;
        uint256 gross;
        uint256 fees;
        uint256 slashed;
        uint256[BIDDERS] payout;
        uint256[BIDDERS] slash;
    }

    function postCase(SettlementCase memory c)
        internal
        returns (uint256 requestId, IFlexMarket.RequestParams memory p)
    {
        c.count = uint8(bound(c.count, 1, BIDDERS));
        p = defaultParams();
        p.powerW = uint48(bound(c.requestedW, 1_000, 3_000_000));
        p.intervalSeconds = c.halfHourIntervals ? 1800 : 900;
        p.windowStart = uint40(block.timestamp - (block.timestamp % 1800) + 2 hours);
        p.windowEnd = p.windowStart + uint40(bound(c.intervals, 1, 96)) * p.intervalSeconds;
        p.gateClosure = p.windowStart - 1 hours;
        p.priceCapPerKWh = uint128(bound(c.cap, 1, 1e9));
        p.availabilityPricePerKWh = c.availabilityPrice % 2 == 0 ? 0 : uint128(bound(c.availabilityPrice, 1, 1e9));
        p.pricingRule = c.uniform ? 1 : 0;
        vm.startPrank(governance);
        market.setProtocolFeeBps(uint16(bound(c.feeBps, 0, 1_000)));
        market.setDeliveryThresholdBps(uint16(bound(c.thresholdBps, 0, BPS)));
        vm.stopPrank();
        requestId = createRequest(p);
        for (uint256 i; i < c.count; ++i) {
            uint48 power = uint48(bound(c.powers[i], 1_000, DEVICE_W));
            placeBid(bidders[i], requestId, power, fuzzPrice(c.prices[i], p.priceCapPerKWh), ids(devices[i]));
        }
        clearRequest(requestId);
    }

    function deliveredFigures(SettlementCase memory c, uint256 requestId, uint256 duration)
        internal
        view
        returns (uint256[] memory delivered)
    {
        delivered = new uint256[](c.count);
        for (uint256 i; i < c.count; ++i) {
            uint256 awardedWh = uint256(market.bidOf(requestId, i).awardedW) * duration / 3600;
            // 0 .. 2x the awarded energy: below threshold, pro rata and capped all occur.
            delivered[i] = c.delivered[i] % (2 * awardedWh + 2);
        }
    }

    /// @dev The documented rules, recomputed: utilization on min(delivered, awarded) unless
    ///      below the threshold (then a slash of the bond by the shortfall), availability by
    ///      the delivery ratio, fee on the gross, floors everywhere.
    function expectSettlement(uint256 requestId, uint256[] memory delivered) internal view returns (Expected memory e) {
        IFlexMarket.Request memory r = market.request(requestId);
        uint256 duration = uint256(r.windowEnd) - r.windowStart;
        e.escrow = r.escrow;
        for (uint256 i; i < delivered.length; ++i) {
            IFlexMarket.Bid memory b = market.bidOf(requestId, i);
            if (b.awardedW == 0) continue;
            uint256 awardedWh = uint256(b.awardedW) * duration / 3600;
            if (awardedWh == 0) continue;
            uint256 credited = delivered[i] < awardedWh ? delivered[i] : awardedWh;
            uint256 price = r.pricingRule == IFlexMarket.PricingRule.Uniform ? r.clearingPrice : b.pricePerKWh;
            uint256 gross;
            if (credited * BPS >= awardedWh * market.deliveryThresholdBps()) {
                gross = credited * price / 1000;
            } else {
                e.slash[i] = uint256(b.bond) * (awardedWh - credited) / awardedWh;
            }
            uint256 fullAvailability = uint256(b.awardedW) * duration * r.availabilityPricePerKWh / 3_600_000;
            gross += fullAvailability * credited / awardedWh;
            uint256 fee = gross * market.protocolFeeBps() / BPS;
            e.payout[i] = gross - fee;
            e.gross += gross;
            e.fees += fee;
            e.slashed += e.slash[i];
        }
    }

    function testFuzz_settlement_conservesEscrow(SettlementCase memory c) public {
        (uint256 requestId, IFlexMarket.RequestParams memory p) = postCase(c);
        uint256[] memory delivered = deliveredFigures(c, requestId, uint256(p.windowEnd) - p.windowStart);
        Expected memory e = expectSettlement(requestId, delivered);
        uint256 treasuryFlex = flex.balanceOf(treasury);

        submitReport(requestId, delivered);
        vm.warp(block.timestamp + DISPUTE_WINDOW);
        vm.expectEmit(address(market));
        emit IFlexMarket.RequestSettled(requestId, e.gross - e.fees, e.fees, e.escrow - e.gross, e.slashed);
        market.finalize(requestId, delivered);

        uint256 claimables = market.claimable(address(eur), gridOperator) + market.claimable(address(eur), treasury);
        for (uint256 i; i < c.count; ++i) {
            address bidder = bidders[i];
            uint256 paid = market.claimable(address(eur), bidder);
            assertEq(paid, e.payout[i], "payout");
            claimables += paid;
            assertEq(staking.accountOf(bidder).locked, 0, "bond released");
            assertEq(staking.accountOf(bidder).staked, BIDDER_STAKE - e.slash[i], "slash");
        }
        assertEq(market.claimable(address(eur), treasury), e.fees, "fees");
        assertEq(market.claimable(address(eur), gridOperator), e.escrow - e.gross, "refund");
        assertEq(claimables, e.escrow, "payouts + fees + refund == escrow");
        assertEq(eur.balanceOf(address(market)), claimables, "market balance == claimables");
        assertEq(flex.balanceOf(treasury), treasuryFlex + e.slashed, "slashed FLEX to treasury");
        assertLe(e.gross, e.escrow, "never pays more than escrowed");
    }
}
