// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Vm} from "./utils/Vm.sol";
import {MarketTestBase} from "./utils/MarketTestBase.sol";
import {FeeOnTransferToken} from "./utils/FeeOnTransferToken.sol";
import {CallbackToken, ReentrantOperator} from "./utils/CallbackToken.sol";
import {FlexMarket} from "../FlexMarket.sol";
import {IPoolRegistry} from "../interfaces/IPoolRegistry.sol";
import {IFlexMarket} from "../interfaces/IFlexMarket.sol";
import {IDeviceRegistry} from "../interfaces/IDeviceRegistry.sol";
import {IStaking} from "../interfaces/IStaking.sol";
import {IPoolRegistry} from "../interfaces/IPoolRegistry.sol";
import {IOracleCommittee} from "../interfaces/IOracleCommittee.sol";

/// @notice Unit tests of FlexMarket: every external function, every revert path with its
///         exact error, and the settlement arithmetic on hand-computed vectors.
contract FlexMarketTest is MarketTestBase {
    bytes32 internal constant ZONE_B = keccak256("NL-RTM-02");
    bytes32 internal constant DEVICES_ROOT = bytes32("devices");
    bytes32 internal constant READINGS_ROOT = bytes32("readings");
    uint256 internal constant NON_ORACLE_KEY = 0xBAD0;

    function setUp() public {
        setUpMarket();
    }

    // ─── Scenarios ────────────────────────────────────────────────────────────────────────

    function paramsWith(uint8 pricingRule, uint128 availabilityPrice)
        internal
        view
        returns (IFlexMarket.RequestParams memory p)
    {
        p = defaultParams();
        p.pricingRule = pricingRule;
        p.availabilityPricePerKWh = availabilityPrice;
    }

    /// @dev 100 kW requested; alice 60 kW at 0.10 (bid 0), bob 60 kW at 0.20 (bid 1),
    ///      carol 50 kW at 0.25 (bid 2). Merit order awards alice 60 kW, bob 40 kW (partial),
    ///      rejects carol.
    function threeBids(uint8 pricingRule) internal returns (uint256 requestId) {
        requestId = createRequest(paramsWith(pricingRule, 0));
        placeBid(alice, requestId, 60_000, P10, ids(aliceDevice));
        placeBid(bob, requestId, 60_000, P20, ids(bobDevice));
        placeBid(carol, requestId, 50_000, P25, ids(carolDevice));
    }

    /// @dev alice alone bids the full 100 kW at 0.20 (bond 1,000 FLEX) and is awarded.
    function singleBidCleared(uint128 availabilityPrice) internal returns (uint256 requestId) {
        requestId = createRequest(paramsWith(uint8(IFlexMarket.PricingRule.PayAsBid), availabilityPrice));
        placeBid(alice, requestId, 100_000, P20, ids(aliceDevice));
        clearRequest(requestId);
    }

    function reportedRequest() internal returns (uint256 requestId, uint256[] memory delivered) {
        requestId = singleBidCleared(0);
        delivered = wh(100_000);
        postReport(requestId, delivered, twoSigners());
    }

    /// @dev Escrow conservation over the parties a settlement can credit.
    function creditedSum(address[] memory accounts) internal view returns (uint256 sum) {
        for (uint256 i; i < accounts.length; ++i) {
            sum += claimableEur(accounts[i]);
        }
    }

    function parties() internal view returns (address[] memory list) {
        list = new address[](6);
        list[0] = gridOperator;
        list[1] = treasury;
        list[2] = alice;
        list[3] = bob;
        list[4] = carol;
        list[5] = dave;
    }

    function signWithKeys(uint256 requestId, uint16 round, uint256[] memory delivered, uint256[] memory keys)
        internal
        view
        returns (bytes[] memory sigs)
    {
        bytes32 digest = committee.reportDigest(
            address(market), requestId, round, keccak256(abi.encodePacked(delivered)), DEVICES_ROOT, READINGS_ROOT
        );
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

    function sigsFor(uint256 requestId, uint16 round, uint256[] memory delivered)
        internal
        view
        returns (bytes[] memory)
    {
        return signReport(requestId, round, delivered, DEVICES_ROOT, READINGS_ROOT, twoSigners());
    }

    function recoverSigner(bytes32 digest, bytes memory sig) internal pure returns (address) {
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := mload(add(sig, 0x20))
            s := mload(add(sig, 0x40))
            v := byte(0, mload(add(sig, 0x60)))
        }
        return ecrecover(digest, v, r, s);
    }

    function reportHash(uint256[] memory delivered) internal pure returns (IFlexMarket.Report memory) {
        return IFlexMarket.Report(keccak256(abi.encodePacked(delivered)), DEVICES_ROOT, READINGS_ROOT);
    }

    // ─── Constructor ──────────────────────────────────────────────────────────────────────

    function test_constructor_setsDependenciesAndDefaults() public view {
        assertEq(address(market.registry()), address(registry), "registry");
        assertEq(address(market.staking()), address(staking), "staking");
        assertEq(address(market.committee()), address(committee), "committee");
        assertEq(market.treasury(), treasury, "treasury");
        assertTrue(market.hasRole(market.DEFAULT_ADMIN_ROLE(), governance), "admin role");
        assertEq(market.bondPerKW(), 10e18, "bondPerKW");
        assertEq(market.minBidW(), 1_000, "minBidW");
        assertEq(market.minRequestW(), 1_000, "minRequestW");
        assertEq(market.protocolFeeBps(), 100, "protocolFeeBps");
        assertEq(market.deliveryThresholdBps(), 5_000, "deliveryThresholdBps");
        assertEq(market.maxBidsPerRequest(), 256, "maxBidsPerRequest");
        assertEq(market.disputeWindow(), DISPUTE_WINDOW, "disputeWindow (set by the fixture)");
        assertEq(market.reportTimeout(), 2 days, "reportTimeout");
        assertEq(market.requestCount(), 0, "requestCount");
    }

    function test_constructor_emitsTreasurySet() public {
        vm.expectEmit();
        emit IFlexMarket.TreasurySet(treasury);
        new FlexMarket(governance, registry, staking, committee, pools, treasury);
    }

    function test_constructor_revertsWhen_anyAddressIsZero() public {
        bytes memory err = abi.encodeWithSelector(IFlexMarket.ZeroAddress.selector);
        vm.expectRevert(err);
        new FlexMarket(address(0), registry, staking, committee, pools, treasury);
        vm.expectRevert(err);
        new FlexMarket(governance, IDeviceRegistry(address(0)), staking, committee, pools, treasury);
        vm.expectRevert(err);
        new FlexMarket(governance, registry, IStaking(address(0)), committee, pools, treasury);
        vm.expectRevert(err);
        new FlexMarket(governance, registry, staking, IOracleCommittee(address(0)), pools, treasury);
        vm.expectRevert(err);
        new FlexMarket(governance, registry, staking, committee, IPoolRegistry(address(0)), treasury);
        vm.expectRevert(err);
        new FlexMarket(governance, registry, staking, committee, pools, address(0));
    }

    // ─── createRequest ────────────────────────────────────────────────────────────────────

    function test_createRequest_escrowsMaxBudgetAndStoresRequest() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        uint256 operatorBefore = eur.balanceOf(gridOperator);
        vm.expectEmit(address(market));
        emit IFlexMarket.RequestCreated(1, gridOperator, ZONE, p, DEFAULT_ESCROW);
        uint256 requestId = createRequest(p);

        assertEq(requestId, 1, "first id");
        assertEq(market.requestCount(), 1, "requestCount");
        assertEq(eur.balanceOf(address(market)), DEFAULT_ESCROW, "escrow held");
        assertEq(eur.balanceOf(gridOperator), operatorBefore - DEFAULT_ESCROW, "escrow pulled");
        IFlexMarket.Request memory r = market.request(requestId);
        assertEq(r.operator, gridOperator, "operator");
        assertEq(uint256(r.status), uint256(IFlexMarket.RequestStatus.Open), "status");
        assertEq(r.zone, ZONE, "zone");
        assertEq(uint256(r.direction), uint256(p.direction), "direction");
        assertEq(r.powerW, p.powerW, "powerW");
        assertEq(r.windowStart, p.windowStart, "windowStart");
        assertEq(r.windowEnd, p.windowEnd, "windowEnd");
        assertEq(r.intervalSeconds, p.intervalSeconds, "interval");
        assertEq(r.priceCapPerKWh, p.priceCapPerKWh, "cap");
        assertEq(r.availabilityPricePerKWh, 0, "availability price");
        assertEq(r.gateClosure, p.gateClosure, "gate closure");
        assertEq(r.baselineMethod, p.baselineMethod, "baseline");
        assertEq(uint256(r.pricingRule), uint256(p.pricingRule), "pricing rule");
        assertEq(r.settlementToken, address(eur), "token");
        assertEq(r.escrow, DEFAULT_ESCROW, "escrow");
        assertEq(r.bidCount, 0, "bidCount");
        assertEq(r.awardedW, 0, "awardedW");
        assertEq(r.reportRound, 0, "round");
        assertEq(r.createdAt, block.timestamp, "createdAt");
        assertEq(r.disputeEndsAt, 0, "no dispute window yet");
    }

    function test_createRequest_recordsCreationTimePerRequest() public {
        uint256 first = createRequest(defaultParams());
        uint256 t1 = block.timestamp;
        vm.warp(t1 + 7 minutes);
        uint256 second = createRequest(defaultParams());
        assertEq(market.request(first).createdAt, t1, "first");
        assertEq(market.request(second).createdAt, t1 + 7 minutes, "second");
    }

    function test_createRequest_idsIncrement() public {
        assertEq(createRequest(defaultParams()), 1, "id 1");
        assertEq(createRequest(defaultParams()), 2, "id 2");
        assertEq(market.requestCount(), 2, "requestCount");
    }

    function test_createRequest_escrowIncludesAvailability() public {
        // + 100 kW x 1 h x 0.05 tEUR/kW/h = 5 tEUR
        uint256 requestId = createRequest(paramsWith(0, 50_000));
        assertEq(market.request(requestId).escrow, 35 * EUR, "escrow");
        assertEq(eur.balanceOf(address(market)), 35 * EUR, "held");
    }

    function test_createRequest_escrowRoundsDown() public {
        IFlexMarket.RequestParams memory p = paramsWith(0, 77_777);
        p.powerW = 1_001;
        p.windowEnd = p.windowStart + 900;
        uint256 requestId = createRequest(p);
        // floor(1001 W x 900 s / 3600) = 250 Wh x 0.30 = 75,000; floor(1001 x 900 x 77,777 / 3.6e6) = 19,463
        assertEq(market.request(requestId).escrow, 94_463, "escrow");
    }

    function test_createRequest_acceptsLongestWindowAndHalfHourIntervals() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.intervalSeconds = 1800;
        p.windowStart = uint40(block.timestamp - (block.timestamp % 1800) + 2 hours);
        p.windowEnd = p.windowStart + 96 * 1800;
        p.gateClosure = p.windowStart;
        p.direction = uint8(IFlexMarket.Direction.IncreaseConsumption);
        p.baselineMethod = 2;
        p.pricingRule = uint8(IFlexMarket.PricingRule.Uniform);
        uint256 requestId = createRequest(p);
        // 100 kW x 48 h x 0.30 = 1,440 tEUR
        assertEq(market.request(requestId).escrow, 1_440 * EUR, "escrow");
        assertEq(uint256(market.request(requestId).direction), 1, "direction");
    }

    function test_createRequest_revertsWhen_callerNotGridOperator() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, alice, market.GRID_OPERATOR_ROLE()
            )
        );
        vm.prank(alice);
        market.createRequest(p);
    }

    function test_createRequest_revertsWhen_settlementTokenZero() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.settlementToken = address(0);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.ZeroAddress.selector));
        createRequest(p);
    }

    function test_createRequest_revertsWhen_zoneZero() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.zone = bytes32(0);
        vm.expectRevert(
            abi.encodeWithSelector(IFlexMarket.ParameterOutOfBounds.selector, bytes32("zone"), 0, 1, type(uint256).max)
        );
        createRequest(p);
    }

    function test_createRequest_revertsWhen_powerBelowMinimum() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.powerW = 999;
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.PowerBelowMinimum.selector, 999, 1_000));
        createRequest(p);
    }

    function test_createRequest_revertsWhen_priceCapZero() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.priceCapPerKWh = 0;
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.ZeroPriceCap.selector));
        createRequest(p);
    }

    function test_createRequest_revertsWhen_baselineMethodUnknown() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.baselineMethod = 3;
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.UnknownBaselineMethod.selector, uint8(3)));
        createRequest(p);
    }

    function test_createRequest_revertsWhen_directionInvalid() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.direction = 2;
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidDirection.selector, uint8(2)));
        createRequest(p);
    }

    function test_createRequest_revertsWhen_pricingRuleInvalid() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.pricingRule = 2;
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidPricingRule.selector, uint8(2)));
        createRequest(p);
    }

    function test_createRequest_revertsWhen_intervalUnsupported() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.intervalSeconds = 600;
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidInterval.selector, 600));
        createRequest(p);
    }

    function test_createRequest_revertsWhen_windowEmpty() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.windowEnd = p.windowStart;
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidWindow.selector, p.windowStart, p.windowEnd, 900));
        createRequest(p);
    }

    function test_createRequest_revertsWhen_windowEndsBeforeStart() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.windowEnd = p.windowStart - 900;
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidWindow.selector, p.windowStart, p.windowEnd, 900));
        createRequest(p);
    }

    function test_createRequest_revertsWhen_windowStartOffGrid() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.windowStart += 300;
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidWindow.selector, p.windowStart, p.windowEnd, 900));
        createRequest(p);
    }

    function test_createRequest_revertsWhen_windowEndOffGrid() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.windowEnd += 1;
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidWindow.selector, p.windowStart, p.windowEnd, 900));
        createRequest(p);
    }

    function test_createRequest_revertsWhen_windowLongerThan96Intervals() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.windowEnd = p.windowStart + 97 * 900;
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidWindow.selector, p.windowStart, p.windowEnd, 900));
        createRequest(p);
    }

    function test_createRequest_revertsWhen_gateClosureNotInFuture() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.gateClosure = uint40(block.timestamp);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.InvalidGateClosure.selector, p.gateClosure, block.timestamp, p.windowStart
            )
        );
        createRequest(p);
    }

    function test_createRequest_revertsWhen_gateClosureAfterWindowStart() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.gateClosure = p.windowStart + 1;
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.InvalidGateClosure.selector, p.gateClosure, block.timestamp, p.windowStart
            )
        );
        createRequest(p);
    }

    function test_createRequest_revertsWhen_escrowExceedsUint128() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.priceCapPerKWh = type(uint128).max;
        // 100,000 Wh x cap / 1000
        uint256 escrow = uint256(type(uint128).max) * 100;
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.ParameterOutOfBounds.selector, bytes32("escrow"), escrow, 0, type(uint128).max
            )
        );
        createRequest(p);
    }

    function test_createRequest_revertsWhen_allowanceMissing() public {
        vm.prank(gridOperator);
        eur.approve(address(market), DEFAULT_ESCROW - 1);
        IFlexMarket.RequestParams memory p = defaultParams();
        vm.expectRevert(abi.encodeWithSignature("Error(string)", "allowance"));
        createRequest(p);
    }

    function test_createRequest_revertsWhen_feeOnTransferToken() public {
        FeeOnTransferToken fot = new FeeOnTransferToken(100); // 1% burnt per transfer
        fot.mint(gridOperator, 1_000 * EUR);
        vm.prank(gridOperator);
        fot.approve(address(market), type(uint256).max);
        IFlexMarket.RequestParams memory p = defaultParams();
        p.settlementToken = address(fot);
        vm.expectRevert(
            abi.encodeWithSelector(IFlexMarket.EscrowMismatch.selector, DEFAULT_ESCROW * 99 / 100, DEFAULT_ESCROW)
        );
        createRequest(p);
    }

    function test_createRequest_revertsWhen_settlementTokenHasNoCode() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        p.settlementToken = address(0xE0A);
        // the balance check calls a contract that is not there: a revert without data
        vm.expectRevert(bytes(""));
        createRequest(p);
    }

    // ─── cancelRequest ────────────────────────────────────────────────────────────────────

    function test_cancelRequest_refundsEscrowAndReleasesBonds() public {
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 60_000, P10, ids(aliceDevice));
        placeBid(bob, requestId, 60_000, P20, ids(bobDevice));
        assertEq(lockedOf(alice), 600 * FLEX, "alice bond locked");

        vm.expectEmit(address(market));
        emit IFlexMarket.RequestCancelled(requestId, DEFAULT_ESCROW);
        vm.prank(gridOperator);
        market.cancelRequest(requestId);

        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Cancelled), "status");
        assertEq(lockedOf(alice), 0, "alice bond released");
        assertEq(lockedOf(bob), 0, "bob bond released");
        assertEq(stakedOf(alice), PROVIDER_STAKE, "no slash");
        assertEq(claimableEur(gridOperator), DEFAULT_ESCROW, "refund claimable");
        assertEq(eur.balanceOf(address(market)), DEFAULT_ESCROW, "escrow still held until withdraw");
    }

    function test_cancelRequest_justBeforeGateClosure_succeeds() public {
        uint256 requestId = createRequest(defaultParams());
        vm.warp(market.request(requestId).gateClosure - 1);
        vm.prank(gridOperator);
        market.cancelRequest(requestId);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Cancelled), "status");
    }

    function test_cancelRequest_revertsWhen_unknownRequest() public {
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.UnknownRequest.selector, 7));
        vm.prank(gridOperator);
        market.cancelRequest(7);
    }

    function test_cancelRequest_revertsWhen_callerNotOperator() public {
        uint256 requestId = createRequest(defaultParams());
        address otherOperator = address(0xD51);
        vm.startPrank(governance);
        market.grantRole(market.GRID_OPERATOR_ROLE(), otherOperator);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.NotRequestOperator.selector, requestId, otherOperator));
        vm.prank(otherOperator);
        market.cancelRequest(requestId);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.NotRequestOperator.selector, requestId, alice));
        vm.prank(alice);
        market.cancelRequest(requestId);
    }

    function test_cancelRequest_revertsWhen_gateClosed() public {
        uint256 requestId = createRequest(defaultParams());
        uint40 gateClosure = market.request(requestId).gateClosure;
        vm.warp(gateClosure);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.GateClosed.selector, requestId, gateClosure));
        vm.prank(gridOperator);
        market.cancelRequest(requestId);
    }

    function test_cancelRequest_revertsWhen_alreadyCancelled() public {
        uint256 requestId = createRequest(defaultParams());
        vm.prank(gridOperator);
        market.cancelRequest(requestId);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.WrongStatus.selector,
                requestId,
                IFlexMarket.RequestStatus.Cancelled,
                IFlexMarket.RequestStatus.Open
            )
        );
        vm.prank(gridOperator);
        market.cancelRequest(requestId);
    }

    function test_cancelRequest_revertsWhen_cleared() public {
        uint256 requestId = singleBidCleared(0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.WrongStatus.selector,
                requestId,
                IFlexMarket.RequestStatus.Cleared,
                IFlexMarket.RequestStatus.Open
            )
        );
        vm.prank(gridOperator);
        market.cancelRequest(requestId);
    }

    // ─── bid ──────────────────────────────────────────────────────────────────────────────

    function test_bid_locksBondAndRecordsBid() public {
        uint256 requestId = createRequest(defaultParams());
        uint256[] memory devices = ids(aliceDevice);
        vm.expectEmit(address(market));
        emit IFlexMarket.BidPlaced(requestId, 0, alice, 60_000, P10, uint96(600 * FLEX), devices);
        uint256 bidIndex = placeBid(alice, requestId, 60_000, P10, devices);

        assertEq(bidIndex, 0, "bid index");
        IFlexMarket.Bid memory b = market.bidOf(requestId, 0);
        assertEq(b.bidder, alice, "bidder");
        assertEq(b.powerW, 60_000, "power");
        assertEq(b.awardedW, 0, "awarded");
        assertEq(b.pricePerKWh, P10, "price");
        assertEq(b.bond, 600 * FLEX, "bond = 60 kW x 10 FLEX");
        assertEq(b.placedAt, block.timestamp, "placed at the bid's block time");
        assertEq(lockedOf(alice), 600 * FLEX, "locked");
        assertEq(staking.freeStake(alice), PROVIDER_STAKE - 600 * FLEX, "free stake");
        assertEq(market.devicesHashOf(requestId, alice), keccak256(abi.encodePacked(devices)), "devices hash");
        assertEq(market.request(requestId).bidCount, 1, "bidCount");
    }

    function test_bid_indexesFollowBidOrder() public {
        uint256 requestId = createRequest(defaultParams());
        assertEq(placeBid(alice, requestId, 10_000, P10, ids(aliceDevice)), 0, "first");
        assertEq(placeBid(bob, requestId, 10_000, P10, ids(bobDevice)), 1, "second");
        assertEq(placeBid(carol, requestId, 10_000, P10, ids(carolDevice)), 2, "third");
        assertEq(market.request(requestId).bidCount, 3, "bidCount");
    }

    function test_bid_sumsCapacityOfSeveralDevices() public {
        uint256 second = registerDevice(alice, 0xD11, DEVICE_W, ZONE);
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 2 * DEVICE_W, P10, ids(aliceDevice, second));
        assertEq(market.bidOf(requestId, 0).powerW, 2 * DEVICE_W, "power over two devices");
    }

    function test_bid_atMinimumPowerAndAtCap_succeeds() public {
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 1_000, CAP, ids(aliceDevice));
        assertEq(market.bidOf(requestId, 0).bond, 10 * FLEX, "1 kW bond");
    }

    function test_bid_zeroBondPerKW_locksNothing() public {
        vm.prank(governance);
        market.setBondPerKW(0);
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 60_000, P10, ids(aliceDevice));
        assertEq(market.bidOf(requestId, 0).bond, 0, "bond");
        assertEq(lockedOf(alice), 0, "locked");
        clearRequest(requestId);
        reportAndFinalize(requestId, wh(0));
        assertEq(stakedOf(alice), PROVIDER_STAKE, "nothing to slash");
    }

    function test_bid_revertsWhen_unknownRequest() public {
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.UnknownRequest.selector, 3));
        placeBid(alice, 3, 60_000, P10, ids(aliceDevice));
    }

    function test_bid_revertsWhen_requestNotOpen() public {
        uint256 requestId = createRequest(defaultParams());
        vm.prank(gridOperator);
        market.cancelRequest(requestId);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.WrongStatus.selector,
                requestId,
                IFlexMarket.RequestStatus.Cancelled,
                IFlexMarket.RequestStatus.Open
            )
        );
        placeBid(alice, requestId, 60_000, P10, ids(aliceDevice));
    }

    function test_bid_revertsWhen_gateClosed() public {
        uint256 requestId = createRequest(defaultParams());
        uint40 gateClosure = market.request(requestId).gateClosure;
        vm.warp(gateClosure);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.GateClosed.selector, requestId, gateClosure));
        placeBid(alice, requestId, 60_000, P10, ids(aliceDevice));
    }

    function test_bid_revertsWhen_bidderAlreadyBid() public {
        uint256 second = registerDevice(alice, 0xD11, DEVICE_W, ZONE);
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 60_000, P10, ids(aliceDevice));
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.AlreadyBid.selector, requestId, alice));
        placeBid(alice, requestId, 60_000, P10, ids(second));
    }

    function test_bid_revertsWhen_tooManyBids() public {
        vm.prank(governance);
        market.setMaxBidsPerRequest(2);
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 10_000, P10, ids(aliceDevice));
        placeBid(bob, requestId, 10_000, P10, ids(bobDevice));
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.TooManyBids.selector, requestId, 2));
        placeBid(carol, requestId, 10_000, P10, ids(carolDevice));
    }

    function test_bid_revertsWhen_powerBelowMinimum() public {
        uint256 requestId = createRequest(defaultParams());
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.PowerBelowMinimum.selector, 999, 1_000));
        placeBid(alice, requestId, 999, P10, ids(aliceDevice));
    }

    function test_bid_revertsWhen_priceZero() public {
        uint256 requestId = createRequest(defaultParams());
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidBidPrice.selector, 0, CAP));
        placeBid(alice, requestId, 60_000, 0, ids(aliceDevice));
    }

    function test_bid_revertsWhen_priceAboveCap() public {
        uint256 requestId = createRequest(defaultParams());
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidBidPrice.selector, CAP + 1, CAP));
        placeBid(alice, requestId, 60_000, CAP + 1, ids(aliceDevice));
    }

    function test_bid_revertsWhen_noDevices() public {
        uint256 requestId = createRequest(defaultParams());
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidDeviceCount.selector, 0, 64));
        placeBid(alice, requestId, 60_000, P10, new uint256[](0));
    }

    function test_bid_revertsWhen_moreThan64Devices() public {
        uint256 requestId = createRequest(defaultParams());
        uint256[] memory many = new uint256[](65);
        for (uint256 i; i < 65; ++i) {
            many[i] = i + 1;
        }
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidDeviceCount.selector, 65, 64));
        placeBid(alice, requestId, 60_000, P10, many);
    }

    function test_bid_revertsWhen_powerExceedsCapacity() public {
        uint256 requestId = createRequest(defaultParams());
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.BidExceedsCapacity.selector, DEVICE_W + 1, DEVICE_W));
        placeBid(alice, requestId, DEVICE_W + 1, P10, ids(aliceDevice));
    }

    function test_bid_revertsWhen_devicesNotAscending() public {
        uint256 second = registerDevice(alice, 0xD11, DEVICE_W, ZONE);
        uint256 requestId = createRequest(defaultParams());
        vm.expectRevert(
            abi.encodeWithSelector(IDeviceRegistry.DevicesNotAscending.selector, 1, aliceDevice), address(registry)
        );
        placeBid(alice, requestId, 60_000, P10, ids(second, aliceDevice));
    }

    function test_bid_revertsWhen_deviceListedTwice() public {
        uint256 requestId = createRequest(defaultParams());
        vm.expectRevert(
            abi.encodeWithSelector(IDeviceRegistry.DevicesNotAscending.selector, 1, aliceDevice), address(registry)
        );
        placeBid(alice, requestId, 300_000, P10, ids(aliceDevice, aliceDevice));
    }

    function test_bid_revertsWhen_deviceUnknown() public {
        uint256 requestId = createRequest(defaultParams());
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.UnknownDevice.selector, 999), address(registry));
        placeBid(alice, requestId, 60_000, P10, ids(999));
    }

    function test_bid_revertsWhen_deviceNotOwned() public {
        uint256 requestId = createRequest(defaultParams());
        vm.expectRevert(
            abi.encodeWithSelector(IDeviceRegistry.DeviceNotOwned.selector, bobDevice, alice), address(registry)
        );
        placeBid(alice, requestId, 60_000, P10, ids(aliceDevice, bobDevice));
    }

    function test_bid_revertsWhen_deviceInactive() public {
        vm.prank(alice);
        registry.setActive(aliceDevice, false);
        uint256 requestId = createRequest(defaultParams());
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DeviceInactive.selector, aliceDevice), address(registry));
        placeBid(alice, requestId, 60_000, P10, ids(aliceDevice));
    }

    function test_bid_revertsWhen_deviceInOtherZone() public {
        uint256 elsewhere = registerDevice(alice, 0xD12, DEVICE_W, ZONE_B);
        uint256 requestId = createRequest(defaultParams());
        vm.expectRevert(
            abi.encodeWithSelector(IDeviceRegistry.DeviceWrongZone.selector, elsewhere, ZONE_B, ZONE), address(registry)
        );
        placeBid(alice, requestId, 60_000, P10, ids(aliceDevice, elsewhere));
    }

    /// @dev Regression (formerly FlexMarketKnownIssuesTest): the same 200 kW device backed a
    ///      bid of its first owner and, after a transfer, a second bid of its new owner, so
    ///      400 kW were offered on 200 kW of hardware. A device transferred at or after the
    ///      request was posted can no longer be offered in it.
    function test_bid_revertsWhen_deviceAlreadyOfferedInRequestByPreviousOwner() public {
        uint256 requestId = createRequest(defaultParams());
        uint256 createdAt = market.request(requestId).createdAt;
        placeBid(alice, requestId, DEVICE_W, P10, ids(aliceDevice));
        vm.warp(block.timestamp + 5 minutes);
        transferDevice(aliceDevice, alice, bob, 0xD0B0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDeviceRegistry.DeviceTransferredAfterRequest.selector, aliceDevice, block.timestamp, createdAt
            ),
            address(registry)
        );
        placeBid(bob, requestId, DEVICE_W, P10, ids(aliceDevice));
        assertEq(market.request(requestId).bidCount, 1, "only the first owner's bid");
        assertEq(lockedOf(bob), 0, "no bond locked for bob");
    }

    function test_bid_revertsWhen_deviceTransferredAfterRequestEvenIfUnoffered() public {
        uint256 requestId = createRequest(defaultParams());
        uint256 createdAt = market.request(requestId).createdAt;
        vm.warp(block.timestamp + 1);
        transferDevice(aliceDevice, alice, bob, 0xD0B0);
        // bob's own device is fine, the one he just received is not
        vm.expectRevert(
            abi.encodeWithSelector(
                IDeviceRegistry.DeviceTransferredAfterRequest.selector, aliceDevice, createdAt + 1, createdAt
            ),
            address(registry)
        );
        placeBid(bob, requestId, DEVICE_W, P10, ids(aliceDevice, bobDevice));
        placeBid(bob, requestId, DEVICE_W, P10, ids(bobDevice));
        assertEq(market.bidOf(requestId, 0).bidder, bob, "bid with his own device");
    }

    function test_bid_revertsWhen_deviceTransferredInRequestCreationBlock() public {
        transferDevice(aliceDevice, alice, bob, 0xD0B0);
        uint256 requestId = createRequest(defaultParams()); // same timestamp as the transfer
        vm.expectRevert(
            abi.encodeWithSelector(
                IDeviceRegistry.DeviceTransferredAfterRequest.selector, aliceDevice, block.timestamp, block.timestamp
            ),
            address(registry)
        );
        placeBid(bob, requestId, DEVICE_W, P10, ids(aliceDevice));
    }

    function test_bid_deviceTransferredBeforeRequest_accepted() public {
        transferDevice(aliceDevice, alice, bob, 0xD0B0);
        vm.warp(block.timestamp + 1);
        uint256 requestId = createRequest(defaultParams());
        placeBid(bob, requestId, 2 * DEVICE_W, P10, ids(aliceDevice, bobDevice));
        assertEq(market.bidOf(requestId, 0).powerW, 2 * DEVICE_W, "both devices count for bob");
        // the previous owner cannot offer it any more
        vm.expectRevert(
            abi.encodeWithSelector(IDeviceRegistry.DeviceNotOwned.selector, aliceDevice, alice), address(registry)
        );
        placeBid(alice, requestId, DEVICE_W, P10, ids(aliceDevice));
    }

    function test_bid_deviceTransferredAfterOneRequest_usableInTheNext() public {
        uint256 first = createRequest(defaultParams());
        vm.warp(block.timestamp + 1 minutes);
        transferDevice(aliceDevice, alice, bob, 0xD0B0);
        vm.warp(block.timestamp + 1 minutes);
        uint256 second = createRequest(defaultParams());
        vm.expectRevert(
            abi.encodeWithSelector(
                IDeviceRegistry.DeviceTransferredAfterRequest.selector,
                aliceDevice,
                block.timestamp - 1 minutes,
                market.request(first).createdAt
            ),
            address(registry)
        );
        placeBid(bob, first, DEVICE_W, P10, ids(aliceDevice));
        placeBid(bob, second, DEVICE_W, P10, ids(aliceDevice));
        assertEq(market.bidOf(second, 0).bidder, bob, "accepted in the later request");
    }

    function test_bid_revertsWhen_freeStakeBelowBond() public {
        address eve = address(0xE7E);
        fundAndStake(eve, 100 * FLEX);
        uint256 device = registerDevice(eve, 0xD5, DEVICE_W, ZONE);
        uint256 requestId = createRequest(defaultParams());
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, eve, 100 * FLEX, 600 * FLEX),
            address(staking)
        );
        placeBid(eve, requestId, 60_000, P10, ids(device));
    }

    function test_bid_revertsWhen_freeStakeTakenByEarlierBids() public {
        // alice staked 10,000 FLEX and 1,000 of it backs her bid on another request
        uint256 second = registerDevice(alice, 0xD11, 1_000_000, ZONE);
        uint256 first = createRequest(defaultParams());
        placeBid(alice, first, 100_000, P10, ids(aliceDevice));
        uint256 requestId = createRequest(defaultParams());
        vm.expectRevert(
            abi.encodeWithSelector(IStaking.InsufficientFreeStake.selector, alice, 9_000 * FLEX, 9_010 * FLEX),
            address(staking)
        );
        placeBid(alice, requestId, 901_000, P10, ids(second));
    }

    function test_bid_revertsWhen_bondOverflowsUint96() public {
        uint128 maxBond = market.MAX_BOND_PER_KW();
        vm.prank(governance);
        market.setBondPerKW(maxBond);
        uint256 big = registerDevice(alice, 0xD13, 1_000_000_000, ZONE);
        uint256 requestId = createRequest(defaultParams());
        // 100 MW x 1e24 / 1000 = 1e29 > type(uint96).max (about 7.9e28)
        vm.expectRevert(abi.encodeWithSelector(SafeCast.SafeCastOverflowedUintDowncast.selector, 96, 1e29));
        placeBid(alice, requestId, 100_000_000, P10, ids(big));
    }

    // ─── clear ────────────────────────────────────────────────────────────────────────────

    function test_clear_awardsMeritOrderAndEmitsDispatch() public {
        uint256 requestId = threeBids(uint8(IFlexMarket.PricingRule.PayAsBid));
        uint16[] memory merit = meritOrder(requestId);
        assertEq(merit[0], 0, "merit 0");
        assertEq(merit[1], 1, "merit 1");
        assertEq(merit[2], 2, "merit 2");
        vm.warp(market.request(requestId).gateClosure);

        vm.expectEmit(address(market));
        emit IFlexMarket.Awarded(requestId, 0, alice, 60_000, P10);
        vm.expectEmit(address(market));
        emit IFlexMarket.Awarded(requestId, 1, bob, 40_000, P20);
        vm.expectEmit(address(market));
        emit IFlexMarket.RequestCleared(requestId, 100_000, P20, 2);
        market.clear(requestId, merit);

        IFlexMarket.Request memory r = market.request(requestId);
        assertEq(uint256(r.status), uint256(IFlexMarket.RequestStatus.Cleared), "status");
        assertEq(r.awardedW, 100_000, "awardedW");
        assertEq(r.clearingPrice, P20, "clearing price = marginal bid");
        assertEq(market.bidOf(requestId, 0).awardedW, 60_000, "alice awarded fully");
        assertEq(market.bidOf(requestId, 1).awardedW, 40_000, "bob awarded partially");
        assertEq(market.bidOf(requestId, 2).awardedW, 0, "carol rejected");
    }

    function test_clear_partialAward_releasesExcessBond() public {
        uint256 requestId = threeBids(uint8(IFlexMarket.PricingRule.PayAsBid));
        assertEq(lockedOf(bob), 600 * FLEX, "bob bond before");
        clearRequest(requestId);
        // 40 of 60 kW awarded: 400 FLEX kept, 200 FLEX released
        assertEq(market.bidOf(requestId, 1).bond, 400 * FLEX, "kept bond");
        assertEq(lockedOf(bob), 400 * FLEX, "bob locked");
        assertEq(lockedOf(alice), 600 * FLEX, "alice keeps her full bond");
    }

    function test_clear_partialAward_keptBondRoundsDown() public {
        vm.startPrank(governance);
        market.setBondPerKW(7);
        market.setMinBidW(1); // a 1 W remainder is then not a sliver below the minimum
        vm.stopPrank();
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 99_999, P10, ids(aliceDevice)); // bond 699
        placeBid(bob, requestId, 3_000, P20, ids(bobDevice)); // bond 21, 1 W awarded
        clearRequest(requestId);
        assertEq(market.bidOf(requestId, 1).awardedW, 1, "1 W awarded");
        assertEq(market.bidOf(requestId, 1).bond, 0, "floor(21 x 1 / 3000) = 0");
        assertEq(lockedOf(bob), 0, "bob fully released");
    }

    function test_clear_neverAwardsARemainderBelowMinBid_andReleasesThatBidsBond() public {
        uint256 requestId = createRequest(defaultParams()); // 100 kW
        placeBid(alice, requestId, 99_998, P10, ids(aliceDevice));
        placeBid(bob, requestId, 3_000, P20, ids(bobDevice));
        uint256 bobBond = market.bidOf(requestId, 1).bond;
        assertEq(lockedOf(bob), bobBond, "bob bond before");
        clearRequest(requestId);
        assertEq(market.bidOf(requestId, 1).awardedW, 0, "2 W left: below minBidW, not awarded");
        assertEq(lockedOf(bob), 0, "bob released whole");
        IFlexMarket.Request memory r = market.request(requestId);
        assertEq(r.awardedW, 99_998, "the sliver stays unfilled");
        assertEq(r.clearingPrice, P10, "the passed-over bid sets no price");
    }

    function test_clear_aRemainderBelowMinBid_goesWholeToALaterBidThatFitsIt() public {
        vm.prank(governance);
        market.setMinBidW(500);
        uint256 requestId = createRequest(defaultParams()); // 100 kW
        placeBid(alice, requestId, 99_400, P10, ids(aliceDevice));
        placeBid(bob, requestId, 3_000, P20, ids(bobDevice));
        placeBid(carol, requestId, 500, P25, ids(carolDevice)); // under the 500 W minimum
        vm.prank(governance);
        market.setMinBidW(1_000); // raised after bidding: 600 W left is now a sliver
        clearRequest(requestId);
        assertEq(market.bidOf(requestId, 1).awardedW, 0, "600 W of 3 kW: passed over");
        assertEq(market.bidOf(requestId, 2).awardedW, 500, "carol's 500 W fits whole");
        assertEq(market.request(requestId).awardedW, 99_900, "100 W unfilled");
        assertEq(market.request(requestId).clearingPrice, P25, "marginal = carol");
    }

    function test_clear_rejectedBidBondsUnlocked() public {
        uint256 requestId = threeBids(uint8(IFlexMarket.PricingRule.PayAsBid));
        assertEq(lockedOf(carol), 500 * FLEX, "carol bond before");
        clearRequest(requestId);
        assertEq(lockedOf(carol), 0, "carol released at clearing");
        assertEq(market.bidOf(requestId, 2).bond, 500 * FLEX, "rejected bid keeps its bond figure");
        assertEq(stakedOf(carol), PROVIDER_STAKE, "no slash");
    }

    function test_clear_tieBrokenByBidTime() public {
        uint256 requestId = createRequest(defaultParams());
        placeBid(bob, requestId, 60_000, P20, ids(bobDevice));
        placeBid(alice, requestId, 60_000, P20, ids(aliceDevice));
        clearRequest(requestId);
        assertEq(market.bidOf(requestId, 0).awardedW, 60_000, "earlier bid first");
        assertEq(market.bidOf(requestId, 1).awardedW, 40_000, "later bid gets the rest");
    }

    function test_clear_noBids_settlesAtOnceWithFullRefund() public {
        uint256 requestId = createRequest(defaultParams());
        vm.warp(market.request(requestId).gateClosure);
        vm.expectEmit(address(market));
        emit IFlexMarket.RequestCleared(requestId, 0, 0, 0);
        vm.expectEmit(address(market));
        emit IFlexMarket.RequestSettled(requestId, 0, 0, DEFAULT_ESCROW, 0);
        market.clear(requestId, new uint16[](0));
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Settled), "settled");
        assertEq(claimableEur(gridOperator), DEFAULT_ESCROW, "full refund");
        vm.prank(gridOperator);
        assertEq(market.withdraw(address(eur)), DEFAULT_ESCROW, "withdrawn");
        assertEq(eur.balanceOf(address(market)), 0, "market empty");
    }

    function test_clear_offerBelowRequest_awardsEverything() public {
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 30_000, P20, ids(aliceDevice));
        placeBid(bob, requestId, 20_000, P10, ids(bobDevice));
        clearRequest(requestId);
        IFlexMarket.Request memory r = market.request(requestId);
        assertEq(r.awardedW, 50_000, "all offered power");
        assertEq(r.clearingPrice, P20, "highest awarded price");
        assertEq(lockedOf(alice), 300 * FLEX, "full bond kept");
    }

    function test_clear_atWindowStart_succeeds() public {
        uint256 requestId = threeBids(0);
        uint16[] memory merit = meritOrder(requestId);
        vm.warp(market.request(requestId).windowStart);
        market.clear(requestId, merit);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Cleared), "cleared");
    }

    function test_clear_anyoneMayCall() public {
        uint256 requestId = threeBids(0);
        uint16[] memory merit = meritOrder(requestId);
        vm.warp(market.request(requestId).gateClosure);
        vm.prank(address(0xCAFE));
        market.clear(requestId, merit);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Cleared), "cleared");
    }

    function test_clear_revertsWhen_unknownRequest() public {
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.UnknownRequest.selector, 5));
        market.clear(5, new uint16[](0));
    }

    function test_clear_revertsWhen_alreadyCleared() public {
        uint256 requestId = threeBids(0);
        clearRequest(requestId);
        uint16[] memory merit = meritOrder(requestId);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.WrongStatus.selector,
                requestId,
                IFlexMarket.RequestStatus.Cleared,
                IFlexMarket.RequestStatus.Open
            )
        );
        market.clear(requestId, merit);
    }

    function test_clear_revertsWhen_gateNotClosed() public {
        uint256 requestId = threeBids(0);
        uint16[] memory merit = meritOrder(requestId);
        uint40 gateClosure = market.request(requestId).gateClosure;
        vm.warp(gateClosure - 1);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.GateNotClosed.selector, requestId, gateClosure));
        market.clear(requestId, merit);
    }

    function test_clear_revertsWhen_windowStarted() public {
        uint256 requestId = threeBids(0);
        uint16[] memory merit = meritOrder(requestId);
        uint40 windowStart = market.request(requestId).windowStart;
        vm.warp(windowStart + 1);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.ClearingTooLate.selector, requestId, windowStart));
        market.clear(requestId, merit);
    }

    function test_clear_revertsWhen_meritOrderLengthWrong() public {
        uint256 requestId = threeBids(0);
        vm.warp(market.request(requestId).gateClosure);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidMeritOrder.selector, 2));
        market.clear(requestId, order(0, 1));
    }

    function test_clear_revertsWhen_meritOrderIndexOutOfRange() public {
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 60_000, P10, ids(aliceDevice));
        placeBid(bob, requestId, 60_000, P20, ids(bobDevice));
        vm.warp(market.request(requestId).gateClosure);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidMeritOrder.selector, 1));
        market.clear(requestId, order(0, 2));
    }

    function test_clear_revertsWhen_meritOrderNotByPrice() public {
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 60_000, P10, ids(aliceDevice));
        placeBid(bob, requestId, 60_000, P20, ids(bobDevice));
        vm.warp(market.request(requestId).gateClosure);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidMeritOrder.selector, 1));
        market.clear(requestId, order(1, 0));
    }

    function test_clear_revertsWhen_tieNotOrderedByBidTime() public {
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 60_000, P20, ids(aliceDevice));
        placeBid(bob, requestId, 60_000, P20, ids(bobDevice));
        vm.warp(market.request(requestId).gateClosure);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidMeritOrder.selector, 1));
        market.clear(requestId, order(1, 0));
    }

    function test_clear_revertsWhen_meritOrderRepeatsABid() public {
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 60_000, P20, ids(aliceDevice));
        placeBid(bob, requestId, 60_000, P20, ids(bobDevice));
        vm.warp(market.request(requestId).gateClosure);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.InvalidMeritOrder.selector, 1));
        market.clear(requestId, order(0, 0));
    }

    // ─── submitReport ─────────────────────────────────────────────────────────────────────

    function test_submitReport_storesReportAndOpensDisputeWindow() public {
        uint256 requestId = singleBidCleared(0);
        uint256[] memory delivered = wh(90_000);
        bytes[] memory sigs = sigsFor(requestId, 0, delivered);
        uint40 windowEnd = market.request(requestId).windowEnd;
        vm.warp(windowEnd);

        vm.expectEmit(address(market));
        emit IFlexMarket.ReportSubmitted(
            requestId, 0, reportHash(delivered), delivered, 3, uint256(windowEnd) + DISPUTE_WINDOW
        );
        market.submitReport(requestId, delivered, DEVICES_ROOT, READINGS_ROOT, sigs);

        IFlexMarket.Request memory r = market.request(requestId);
        assertEq(uint256(r.status), uint256(IFlexMarket.RequestStatus.Reported), "status");
        assertEq(r.disputeEndsAt, uint256(windowEnd) + DISPUTE_WINDOW, "disputeEndsAt");
        assertEq(r.signerBitmap, 3, "oracles 1 and 2");
        assertEq(r.reportRound, 0, "round");
        IFlexMarket.Report memory stored = market.reportOf(requestId);
        assertEq(stored.deliveredHash, keccak256(abi.encodePacked(delivered)), "delivered hash");
        assertEq(stored.devicesRoot, DEVICES_ROOT, "devices root");
        assertEq(stored.readingsRoot, READINGS_ROOT, "readings root");
    }

    function test_submitReport_threeSignatures_recordsAllSigners() public {
        uint256 requestId = singleBidCleared(0);
        postReport(requestId, wh(100_000), allSigners());
        assertEq(market.request(requestId).signerBitmap, 7, "oracles 1, 2 and 3");
    }

    function test_submitReport_anyoneMayPost() public {
        uint256 requestId = singleBidCleared(0);
        bytes[] memory sigs = sigsFor(requestId, 0, wh(100_000));
        vm.warp(market.request(requestId).windowEnd);
        vm.prank(address(0xCAFE));
        market.submitReport(requestId, wh(100_000), DEVICES_ROOT, READINGS_ROOT, sigs);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Reported), "reported");
    }

    function test_submitReport_sameReportAgain_isNoOp() public {
        (uint256 requestId, uint256[] memory delivered) = reportedRequest();
        IFlexMarket.Request memory before = market.request(requestId);
        bytes[] memory sigs = sigsFor(requestId, 0, delivered);
        vm.warp(block.timestamp + 1 hours);

        vm.recordLogs();
        market.submitReport(requestId, delivered, DEVICES_ROOT, READINGS_ROOT, sigs);
        // A retry needs no signatures at all: nothing is verified or written.
        market.submitReport(requestId, delivered, DEVICES_ROOT, READINGS_ROOT, new bytes[](0));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 0, "no event");

        IFlexMarket.Request memory afterRetry = market.request(requestId);
        assertEq(afterRetry.disputeEndsAt, before.disputeEndsAt, "dispute window not restarted");
        assertEq(afterRetry.signerBitmap, before.signerBitmap, "signers unchanged");
        assertEq(uint256(afterRetry.status), uint256(IFlexMarket.RequestStatus.Reported), "status");
    }

    function test_submitReport_revertsWhen_differentReportPending() public {
        (uint256 requestId,) = reportedRequest();
        uint256[] memory other = wh(10_000);
        bytes[] memory sigs = sigsFor(requestId, 0, other);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.ConflictingReport.selector, requestId, uint16(0)));
        market.submitReport(requestId, other, DEVICES_ROOT, READINGS_ROOT, sigs);
    }

    function test_submitReport_revertsWhen_sameFiguresOtherRoots() public {
        (uint256 requestId, uint256[] memory delivered) = reportedRequest();
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.ConflictingReport.selector, requestId, uint16(0)));
        market.submitReport(requestId, delivered, DEVICES_ROOT, bytes32("other readings"), new bytes[](0));
    }

    function test_submitReport_revertsWhen_unknownRequest() public {
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.UnknownRequest.selector, 9));
        market.submitReport(9, wh(1), DEVICES_ROOT, READINGS_ROOT, new bytes[](0));
    }

    function test_submitReport_revertsWhen_notCleared() public {
        uint256 requestId = createRequest(defaultParams());
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.WrongStatus.selector,
                requestId,
                IFlexMarket.RequestStatus.Open,
                IFlexMarket.RequestStatus.Cleared
            )
        );
        market.submitReport(requestId, new uint256[](0), DEVICES_ROOT, READINGS_ROOT, new bytes[](0));
    }

    function test_submitReport_revertsWhen_alreadySettled() public {
        uint256 requestId = singleBidCleared(0);
        uint256[] memory delivered = wh(100_000);
        reportAndFinalize(requestId, delivered);
        bytes[] memory sigs = sigsFor(requestId, 0, delivered);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.WrongStatus.selector,
                requestId,
                IFlexMarket.RequestStatus.Settled,
                IFlexMarket.RequestStatus.Cleared
            )
        );
        market.submitReport(requestId, delivered, DEVICES_ROOT, READINGS_ROOT, sigs);
    }

    function test_submitReport_revertsWhen_windowNotEnded() public {
        uint256 requestId = singleBidCleared(0);
        bytes[] memory sigs = sigsFor(requestId, 0, wh(1));
        uint40 windowEnd = market.request(requestId).windowEnd;
        vm.warp(windowEnd - 1);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.WindowNotEnded.selector, requestId, windowEnd));
        market.submitReport(requestId, wh(1), DEVICES_ROOT, READINGS_ROOT, sigs);
    }

    function test_submitReport_revertsWhen_deliveryLengthMismatch() public {
        uint256 requestId = singleBidCleared(0);
        bytes[] memory sigs = sigsFor(requestId, 0, wh(1, 2));
        vm.warp(market.request(requestId).windowEnd);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.DeliveryLengthMismatch.selector, 2, 1));
        market.submitReport(requestId, wh(1, 2), DEVICES_ROOT, READINGS_ROOT, sigs);
    }

    function test_submitReport_revertsWhen_belowThresholdSignatures() public {
        uint256 requestId = singleBidCleared(0);
        uint256[] memory one = new uint256[](1);
        one[0] = 0;
        bytes[] memory sigs = signReport(requestId, 0, wh(1), DEVICES_ROOT, READINGS_ROOT, one);
        vm.warp(market.request(requestId).windowEnd);
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.NotEnoughSignatures.selector, 1, 2), address(committee));
        market.submitReport(requestId, wh(1), DEVICES_ROOT, READINGS_ROOT, sigs);
    }

    function test_submitReport_revertsWhen_signatureWrongLength() public {
        uint256 requestId = singleBidCleared(0);
        bytes[] memory sigs = sigsFor(requestId, 0, wh(1));
        sigs[0] = new bytes(64);
        vm.warp(market.request(requestId).windowEnd);
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.MalformedSignature.selector, 0), address(committee));
        market.submitReport(requestId, wh(1), DEVICES_ROOT, READINGS_ROOT, sigs);
    }

    function test_submitReport_revertsWhen_signatureUnrecoverable() public {
        uint256 requestId = singleBidCleared(0);
        bytes[] memory sigs = sigsFor(requestId, 0, wh(1));
        sigs[1] = new bytes(65); // r = s = 0, v = 0
        vm.warp(market.request(requestId).windowEnd);
        vm.expectRevert(abi.encodeWithSelector(IOracleCommittee.MalformedSignature.selector, 1), address(committee));
        market.submitReport(requestId, wh(1), DEVICES_ROOT, READINGS_ROOT, sigs);
    }

    function test_submitReport_revertsWhen_signersNotAscending() public {
        uint256 requestId = singleBidCleared(0);
        bytes[] memory sigs = sigsFor(requestId, 0, wh(1));
        bytes32 digest = committee.reportDigest(
            address(market), requestId, 0, keccak256(abi.encodePacked(wh(1))), DEVICES_ROOT, READINGS_ROOT
        );
        address lower = recoverSigner(digest, sigs[0]);
        (sigs[0], sigs[1]) = (sigs[1], sigs[0]);
        vm.warp(market.request(requestId).windowEnd);
        vm.expectRevert(
            abi.encodeWithSelector(IOracleCommittee.SignersNotAscending.selector, 1, lower), address(committee)
        );
        market.submitReport(requestId, wh(1), DEVICES_ROOT, READINGS_ROOT, sigs);
    }

    function test_submitReport_revertsWhen_sameOracleSignsTwice() public {
        uint256 requestId = singleBidCleared(0);
        bytes[] memory sigs = sigsFor(requestId, 0, wh(1));
        bytes32 digest = committee.reportDigest(
            address(market), requestId, 0, keccak256(abi.encodePacked(wh(1))), DEVICES_ROOT, READINGS_ROOT
        );
        sigs[1] = sigs[0];
        vm.warp(market.request(requestId).windowEnd);
        vm.expectRevert(
            abi.encodeWithSelector(IOracleCommittee.SignersNotAscending.selector, 1, recoverSigner(digest, sigs[0])),
            address(committee)
        );
        market.submitReport(requestId, wh(1), DEVICES_ROOT, READINGS_ROOT, sigs);
    }

    function test_submitReport_revertsWhen_signerNotOracle() public {
        uint256 requestId = singleBidCleared(0);
        uint256[] memory keys = new uint256[](2);
        keys[0] = oracleKeys[0];
        keys[1] = NON_ORACLE_KEY;
        bytes[] memory sigs = signWithKeys(requestId, 0, wh(1), keys);
        address intruder = vm.addr(NON_ORACLE_KEY);
        uint256 position = intruder < oracles[0] ? 0 : 1;
        vm.warp(market.request(requestId).windowEnd);
        vm.expectRevert(
            abi.encodeWithSelector(IOracleCommittee.SignerNotOracle.selector, position, intruder), address(committee)
        );
        market.submitReport(requestId, wh(1), DEVICES_ROOT, READINGS_ROOT, sigs);
    }

    function test_submitReport_revertsWhen_signaturesForAnotherRequest() public {
        uint256 requestId = singleBidCleared(0);
        bytes[] memory sigs = sigsFor(requestId + 1, 0, wh(1));
        bytes32 digest = committee.reportDigest(
            address(market), requestId, 0, keccak256(abi.encodePacked(wh(1))), DEVICES_ROOT, READINGS_ROOT
        );
        vm.warp(market.request(requestId).windowEnd);
        vm.expectRevert(
            abi.encodeWithSelector(IOracleCommittee.SignerNotOracle.selector, 0, recoverSigner(digest, sigs[0])),
            address(committee)
        );
        market.submitReport(requestId, wh(1), DEVICES_ROOT, READINGS_ROOT, sigs);
    }

    // ─── voidReport ───────────────────────────────────────────────────────────────────────

    function test_voidReport_reopensRequestForNextRound() public {
        (uint256 requestId,) = reportedRequest();
        vm.expectEmit(address(market));
        emit IFlexMarket.ReportVoided(requestId, 0, 3);
        vm.prank(disputer);
        market.voidReport(requestId);

        IFlexMarket.Request memory r = market.request(requestId);
        assertEq(uint256(r.status), uint256(IFlexMarket.RequestStatus.Cleared), "back to cleared");
        assertEq(r.reportRound, 1, "round 1");
        assertEq(r.disputeEndsAt, block.timestamp, "disputeEndsAt = time of the void");
        assertEq(r.signerBitmap, 0, "signers reset");
        IFlexMarket.Report memory stored = market.reportOf(requestId);
        assertEq(stored.deliveredHash, bytes32(0), "report deleted");
        assertEq(stored.devicesRoot, bytes32(0), "devices root deleted");
        assertEq(stored.readingsRoot, bytes32(0), "readings root deleted");
    }

    function test_voidReport_thenRoundOneReport_roundZeroSignaturesRejected() public {
        (uint256 requestId, uint256[] memory delivered) = reportedRequest();
        bytes[] memory round0 = sigsFor(requestId, 0, delivered);
        vm.prank(disputer);
        market.voidReport(requestId);

        // The same report with its round-0 signatures no longer verifies.
        bytes32 round1Digest = committee.reportDigest(
            address(market), requestId, 1, keccak256(abi.encodePacked(delivered)), DEVICES_ROOT, READINGS_ROOT
        );
        vm.expectRevert(
            abi.encodeWithSelector(
                IOracleCommittee.SignerNotOracle.selector, 0, recoverSigner(round1Digest, round0[0])
            ),
            address(committee)
        );
        market.submitReport(requestId, delivered, DEVICES_ROOT, READINGS_ROOT, round0);

        // A corrected round-1 report goes through and settles.
        uint256[] memory corrected = wh(30_000);
        bytes[] memory round1 = sigsFor(requestId, 1, corrected);
        vm.expectEmit(address(market));
        emit IFlexMarket.ReportSubmitted(
            requestId, 1, reportHash(corrected), corrected, 3, block.timestamp + DISPUTE_WINDOW
        );
        market.submitReport(requestId, corrected, DEVICES_ROOT, READINGS_ROOT, round1);
        vm.warp(block.timestamp + DISPUTE_WINDOW);

        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.DeliveryHashMismatch.selector, requestId));
        market.finalize(requestId, delivered);
        market.finalize(requestId, corrected);
        // 30% delivered: no utilization, 70% of the 1,000 FLEX bond slashed
        assertEq(stakedOf(alice), PROVIDER_STAKE - 700 * FLEX, "slashed on the corrected report");
        assertEq(claimableEur(gridOperator), DEFAULT_ESCROW, "full refund");
    }

    function test_voidReport_revertsWhen_callerLacksDisputeRole() public {
        (uint256 requestId,) = reportedRequest();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, alice, market.DISPUTE_ROLE()
            )
        );
        vm.prank(alice);
        market.voidReport(requestId);
    }

    function test_voidReport_revertsWhen_unknownRequest() public {
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.UnknownRequest.selector, 4));
        vm.prank(disputer);
        market.voidReport(4);
    }

    function test_voidReport_revertsWhen_notReported() public {
        uint256 requestId = singleBidCleared(0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.WrongStatus.selector,
                requestId,
                IFlexMarket.RequestStatus.Cleared,
                IFlexMarket.RequestStatus.Reported
            )
        );
        vm.prank(disputer);
        market.voidReport(requestId);
    }

    function test_voidReport_revertsWhen_disputeWindowClosed() public {
        (uint256 requestId,) = reportedRequest();
        uint256 endsAt = market.request(requestId).disputeEndsAt;
        assertEq(endsAt, block.timestamp + DISPUTE_WINDOW, "one dispute window after the report");
        vm.warp(endsAt);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.DisputeWindowClosed.selector, requestId, endsAt));
        vm.prank(disputer);
        market.voidReport(requestId);
    }

    function test_voidReport_lastSecondOfWindow_succeeds() public {
        (uint256 requestId,) = reportedRequest();
        vm.warp(uint256(market.request(requestId).disputeEndsAt) - 1);
        vm.prank(disputer);
        market.voidReport(requestId);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Cleared), "voided");
    }

    // ─── extendDispute ────────────────────────────────────────────────────────────────────

    function test_extendDispute_raisesEnd_blocksFinalize_thenVoidStillPossible() public {
        (uint256 requestId, uint256[] memory delivered) = reportedRequest();
        uint256 until = uint256(market.request(requestId).disputeEndsAt) + 2 hours;
        vm.expectEmit(address(market));
        emit IFlexMarket.DisputeExtended(requestId, 0, until);
        vm.prank(disputer);
        market.extendDispute(requestId, until);
        assertEq(market.request(requestId).disputeEndsAt, until, "raised");

        vm.warp(until - 1);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.DisputeWindowOpen.selector, requestId, until));
        market.finalize(requestId, delivered);
        vm.prank(disputer);
        market.voidReport(requestId); // inside the extended window
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Cleared), "voided");
    }

    function test_extendDispute_neverLowers_noEvent() public {
        (uint256 requestId,) = reportedRequest();
        uint256 endsAt = market.request(requestId).disputeEndsAt;
        vm.recordLogs();
        vm.startPrank(disputer);
        market.extendDispute(requestId, endsAt - 1);
        market.extendDispute(requestId, endsAt);
        vm.stopPrank();
        assertEq(vm.getRecordedLogs().length, 0, "no event");
        assertEq(market.request(requestId).disputeEndsAt, endsAt, "unchanged");
    }

    function test_extendDispute_revertsWhen_callerLacksDisputeRole() public {
        (uint256 requestId,) = reportedRequest();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, alice, market.DISPUTE_ROLE()
            )
        );
        vm.prank(alice);
        market.extendDispute(requestId, block.timestamp + 30 days);
    }

    function test_extendDispute_revertsWhen_notReported() public {
        uint256 requestId = singleBidCleared(0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.WrongStatus.selector,
                requestId,
                IFlexMarket.RequestStatus.Cleared,
                IFlexMarket.RequestStatus.Reported
            )
        );
        vm.prank(disputer);
        market.extendDispute(requestId, block.timestamp + 30 days);
    }

    function test_extendDispute_revertsWhen_windowClosed() public {
        (uint256 requestId,) = reportedRequest();
        uint256 endsAt = market.request(requestId).disputeEndsAt;
        vm.warp(endsAt);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.DisputeWindowClosed.selector, requestId, endsAt));
        vm.prank(disputer);
        market.extendDispute(requestId, endsAt + 1 hours);
    }

    function test_extendDispute_revertsWhen_beyondUint40() public {
        (uint256 requestId,) = reportedRequest();
        uint256 endsAt = market.request(requestId).disputeEndsAt;
        uint256 tooFar = uint256(type(uint40).max) + 1;
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.ParameterOutOfBounds.selector, bytes32("disputeEndsAt"), tooFar, endsAt, type(uint40).max
            )
        );
        vm.prank(disputer);
        market.extendDispute(requestId, tooFar);
    }

    // ─── finalize: pricing ────────────────────────────────────────────────────────────────

    function test_finalize_payAsBid_paysEachBidItsOwnPrice() public {
        uint256 requestId = threeBids(uint8(IFlexMarket.PricingRule.PayAsBid));
        clearRequest(requestId);
        reportAndFinalize(requestId, wh(60_000, 40_000, 50_000));
        // alice 60 kWh x 0.10 = 6.00, bob 40 kWh x 0.20 = 8.00; 1% fee each
        assertEq(claimableEur(alice), 5_940_000, "alice");
        assertEq(claimableEur(bob), 7_920_000, "bob");
        assertEq(claimableEur(carol), 0, "carol rejected: her figure is ignored");
        assertEq(claimableEur(treasury), 140_000, "fees");
        assertEq(claimableEur(gridOperator), 16_000_000, "refund");
        assertEq(creditedSum(parties()), DEFAULT_ESCROW, "escrow conserved");
    }

    function test_finalize_uniform_paysClearingPriceToAll() public {
        uint256 requestId = threeBids(uint8(IFlexMarket.PricingRule.Uniform));
        clearRequest(requestId);
        reportAndFinalize(requestId, wh(60_000, 40_000, 50_000));
        // both paid the marginal 0.20: alice 12.00, bob 8.00
        assertEq(claimableEur(alice), 11_880_000, "alice");
        assertEq(claimableEur(bob), 7_920_000, "bob");
        assertEq(claimableEur(treasury), 200_000, "fees");
        assertEq(claimableEur(gridOperator), 10_000_000, "refund");
        assertEq(creditedSum(parties()), DEFAULT_ESCROW, "escrow conserved");
    }

    function test_finalize_emitsPerBidAndRequestSettlement() public {
        uint256 requestId = threeBids(uint8(IFlexMarket.PricingRule.PayAsBid));
        clearRequest(requestId);
        uint256[] memory delivered = wh(60_000, 20_000, 50_000);
        postReport(requestId, delivered, twoSigners());
        vm.warp(block.timestamp + DISPUTE_WINDOW);
        vm.expectEmit(address(market));
        emit IFlexMarket.BidSettled(requestId, 0, alice, 60_000, 6_000_000, 0, 60_000, 0);
        // bob delivers 20 of 40 kWh: exactly the 50% threshold, paid pro rata
        vm.expectEmit(address(market));
        emit IFlexMarket.BidSettled(requestId, 1, bob, 20_000, 4_000_000, 0, 40_000, 0);
        vm.expectEmit(address(market));
        emit IFlexMarket.RequestSettled(requestId, 9_900_000, 100_000, 20_000_000, 0);
        market.finalize(requestId, delivered);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Settled), "settled");
    }

    function test_finalize_releasesBondsOfDeliveringProviders() public {
        uint256 requestId = threeBids(0);
        clearRequest(requestId);
        reportAndFinalize(requestId, wh(60_000, 40_000, 0));
        assertEq(lockedOf(alice), 0, "alice");
        assertEq(lockedOf(bob), 0, "bob");
        assertEq(lockedOf(carol), 0, "carol");
        assertEq(stakedOf(alice), PROVIDER_STAKE, "alice not slashed");
        assertEq(stakedOf(bob), PROVIDER_STAKE, "bob not slashed");
    }

    // ─── finalize: delivery performance ───────────────────────────────────────────────────

    function test_finalize_belowThreshold_noUtilizationAndSlashByShortfall() public {
        uint256 requestId = singleBidCleared(0);
        uint256 treasuryFlex = flex.balanceOf(treasury);
        reportAndFinalize(requestId, wh(40_000));
        // 40% delivered: no pay, 60% of the 1,000 FLEX bond slashed to the treasury
        assertEq(claimableEur(alice), 0, "no utilization pay");
        assertEq(claimableEur(treasury), 0, "no fee");
        assertEq(claimableEur(gridOperator), DEFAULT_ESCROW, "full refund");
        assertEq(stakedOf(alice), PROVIDER_STAKE - 600 * FLEX, "slashed 600 FLEX");
        assertEq(lockedOf(alice), 0, "rest of the bond released");
        assertEq(flex.balanceOf(treasury), treasuryFlex + 600 * FLEX, "slash to treasury");
    }

    function test_finalize_belowThreshold_emitsSlash() public {
        uint256 requestId = singleBidCleared(0);
        postReport(requestId, wh(40_000), twoSigners());
        vm.warp(block.timestamp + DISPUTE_WINDOW);
        vm.expectEmit(address(market));
        emit IFlexMarket.BidSettled(requestId, 0, alice, 40_000, 0, 0, 0, 600 * FLEX);
        vm.expectEmit(address(market));
        emit IFlexMarket.RequestSettled(requestId, 0, 0, DEFAULT_ESCROW, 600 * FLEX);
        market.finalize(requestId, wh(40_000));
    }

    function test_finalize_atThreshold_paysProRataWithoutSlash() public {
        uint256 requestId = singleBidCleared(0);
        reportAndFinalize(requestId, wh(50_000));
        assertEq(claimableEur(alice), 9_900_000, "50 kWh x 0.20 less 1%");
        assertEq(claimableEur(gridOperator), 20_000_000, "refund");
        assertEq(stakedOf(alice), PROVIDER_STAKE, "no slash at exactly 50%");
    }

    function test_finalize_oneWhBelowThreshold_slashes() public {
        uint256 requestId = singleBidCleared(0);
        reportAndFinalize(requestId, wh(49_999));
        assertEq(claimableEur(alice), 0, "no pay");
        // floor(1,000 FLEX x 50,001 / 100,000)
        assertEq(stakedOf(alice), PROVIDER_STAKE - 500_010_000_000_000_000_000, "slash");
    }

    function test_finalize_zeroDelivery_slashesWholeBond() public {
        uint256 requestId = singleBidCleared(0);
        reportAndFinalize(requestId, wh(0));
        assertEq(stakedOf(alice), PROVIDER_STAKE - 1_000 * FLEX, "whole bond");
        assertEq(lockedOf(alice), 0, "lock gone");
        assertEq(claimableEur(gridOperator), DEFAULT_ESCROW, "full refund");
    }

    function test_finalize_overDelivery_cappedAtAwardedEnergy() public {
        uint256 requestId = singleBidCleared(0);
        reportAndFinalize(requestId, wh(150_000));
        assertEq(claimableEur(alice), 19_800_000, "paid for 100 kWh only");
        assertEq(claimableEur(gridOperator), 10_000_000, "refund");
    }

    function test_finalize_partialAward_slashesKeptBondOnly() public {
        uint256 requestId = threeBids(0);
        clearRequest(requestId);
        reportAndFinalize(requestId, wh(60_000, 0, 0));
        // bob was awarded 40 of his 60 kW; his kept bond is 400 FLEX, all of it slashed
        assertEq(stakedOf(bob), PROVIDER_STAKE - 400 * FLEX, "bob slashed on the awarded part only");
        assertEq(lockedOf(bob), 0, "bob lock gone");
        assertEq(stakedOf(carol), PROVIDER_STAKE, "rejected carol untouched");
    }

    function test_finalize_thresholdZero_paysAnyDelivery() public {
        vm.prank(governance);
        market.setDeliveryThresholdBps(0);
        uint256 requestId = singleBidCleared(0);
        reportAndFinalize(requestId, wh(1));
        assertEq(claimableEur(alice), 198, "1 Wh x 0.20 = 200, less 1% (2)");
        assertEq(stakedOf(alice), PROVIDER_STAKE, "no slash");
    }

    function test_finalize_thresholdFull_slashesAnyShortfall() public {
        vm.prank(governance);
        market.setDeliveryThresholdBps(10_000);
        uint256 requestId = singleBidCleared(0);
        reportAndFinalize(requestId, wh(99_999));
        assertEq(claimableEur(alice), 0, "no pay");
        assertEq(stakedOf(alice), PROVIDER_STAKE - 1e16, "1/100,000 of the bond");
    }

    // ─── finalize: availability, fee, refund ──────────────────────────────────────────────

    function test_finalize_availability_scaledByDeliveryRatio() public {
        uint256 requestId = singleBidCleared(50_000); // 0.05 tEUR per kW per hour
        assertEq(market.request(requestId).escrow, 35 * EUR, "escrow");
        reportAndFinalize(requestId, wh(80_000));
        // utilization 80 kWh x 0.20 = 16.00; availability 5.00 x 80% = 4.00; fee 1% of 20.00
        assertEq(claimableEur(alice), 19_800_000, "provider");
        assertEq(claimableEur(treasury), 200_000, "fee");
        assertEq(claimableEur(gridOperator), 15_000_000, "refund");
    }

    function test_finalize_availability_belowThreshold_stillPaidByRatio() public {
        uint256 requestId = singleBidCleared(50_000);
        reportAndFinalize(requestId, wh(40_000));
        // no utilization, availability 5.00 x 40% = 2.00, fee 0.02, slash 600 FLEX
        assertEq(claimableEur(alice), 1_980_000, "provider");
        assertEq(claimableEur(treasury), 20_000, "fee");
        assertEq(claimableEur(gridOperator), 33_000_000, "refund");
        assertEq(stakedOf(alice), PROVIDER_STAKE - 600 * FLEX, "slash");
    }

    function test_finalize_availability_overDeliveryCapped() public {
        uint256 requestId = singleBidCleared(50_000);
        reportAndFinalize(requestId, wh(1_000_000));
        assertEq(claimableEur(alice), 24_750_000, "20.00 + 5.00 less 1%");
        assertEq(claimableEur(gridOperator), 10_000_000, "refund of the unused cap");
    }

    function test_finalize_protocolFee_followsGovernance() public {
        vm.prank(governance);
        market.setProtocolFeeBps(250);
        uint256 requestId = singleBidCleared(0);
        reportAndFinalize(requestId, wh(100_000));
        assertEq(claimableEur(treasury), 500_000, "2.5% of 20.00");
        assertEq(claimableEur(alice), 19_500_000, "provider");
    }

    function test_finalize_zeroFee_paysGrossToProvider() public {
        vm.prank(governance);
        market.setProtocolFeeBps(0);
        uint256 requestId = singleBidCleared(0);
        reportAndFinalize(requestId, wh(100_000));
        assertEq(claimableEur(treasury), 0, "no fee");
        assertEq(claimableEur(alice), 20_000_000, "gross");
    }

    function test_finalize_feesGoToCurrentTreasury() public {
        address newTreasury = address(0x7EA6);
        vm.prank(governance);
        market.setTreasury(newTreasury);
        uint256 requestId = singleBidCleared(0);
        reportAndFinalize(requestId, wh(100_000));
        assertEq(claimableEur(newTreasury), 200_000, "new treasury");
        assertEq(claimableEur(treasury), 0, "old treasury");
    }

    function test_finalize_roundingRemainderGoesToRefund() public {
        IFlexMarket.RequestParams memory p = paramsWith(0, 77_777);
        p.powerW = 1_001;
        p.windowEnd = p.windowStart + 900;
        uint256 requestId = createRequest(p);
        placeBid(alice, requestId, 1_001, 123_457, ids(aliceDevice));
        clearRequest(requestId);
        reportAndFinalize(requestId, wh(200));
        // utilization floor(200 x 123,457 / 1000) = 24,691; availability floor(19,463 x 200 / 250) = 15,570
        // fee floor(40,261 / 100) = 402
        assertEq(claimableEur(alice), 39_859, "payout");
        assertEq(claimableEur(treasury), 402, "fee");
        assertEq(claimableEur(gridOperator), 54_202, "refund");
        assertEq(creditedSum(parties()), 94_463, "escrow to the base unit");
    }

    function test_finalize_escrowEqualsPayoutsFeesRefund() public {
        vm.prank(governance);
        market.setProtocolFeeBps(137);
        uint256 requestId = createRequest(paramsWith(uint8(IFlexMarket.PricingRule.Uniform), 33_333));
        placeBid(alice, requestId, 33_333, 111_111, ids(aliceDevice));
        placeBid(bob, requestId, 33_333, 222_222, ids(bobDevice));
        placeBid(carol, requestId, 33_333, 222_222, ids(carolDevice));
        placeBid(dave, requestId, 33_333, 299_999, ids(daveDevice));
        clearRequest(requestId);
        uint256 escrow = market.request(requestId).escrow;
        uint256[] memory delivered = new uint256[](4);
        delivered[0] = 33_333;
        delivered[1] = 20_001;
        delivered[2] = 10_000;
        delivered[3] = 7;
        reportAndFinalize(requestId, delivered);
        assertEq(creditedSum(parties()), escrow, "payouts + fees + refund == escrow");
        assertEq(eur.balanceOf(address(market)), escrow, "balance == claimables");
    }

    // ─── finalize: reverts ────────────────────────────────────────────────────────────────

    function test_finalize_revertsWhen_unknownRequest() public {
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.UnknownRequest.selector, 8));
        market.finalize(8, new uint256[](0));
    }

    function test_finalize_revertsWhen_notReported() public {
        uint256 requestId = singleBidCleared(0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.WrongStatus.selector,
                requestId,
                IFlexMarket.RequestStatus.Cleared,
                IFlexMarket.RequestStatus.Reported
            )
        );
        market.finalize(requestId, wh(100_000));
    }

    function test_finalize_revertsWhen_disputeWindowOpen() public {
        (uint256 requestId, uint256[] memory delivered) = reportedRequest();
        uint256 endsAt = market.request(requestId).disputeEndsAt;
        vm.warp(endsAt - 1);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.DisputeWindowOpen.selector, requestId, endsAt));
        market.finalize(requestId, delivered);
    }

    function test_finalize_atDisputeWindowEnd_succeeds() public {
        (uint256 requestId, uint256[] memory delivered) = reportedRequest();
        vm.warp(market.request(requestId).disputeEndsAt);
        market.finalize(requestId, delivered);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Settled), "settled");
    }

    function test_finalize_revertsWhen_figuresDifferFromReport() public {
        (uint256 requestId,) = reportedRequest();
        vm.warp(block.timestamp + DISPUTE_WINDOW);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.DeliveryHashMismatch.selector, requestId));
        market.finalize(requestId, wh(100_001));
    }

    function test_finalize_revertsWhen_alreadySettled() public {
        (uint256 requestId, uint256[] memory delivered) = reportedRequest();
        vm.warp(block.timestamp + DISPUTE_WINDOW);
        market.finalize(requestId, delivered);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.WrongStatus.selector,
                requestId,
                IFlexMarket.RequestStatus.Settled,
                IFlexMarket.RequestStatus.Reported
            )
        );
        market.finalize(requestId, delivered);
    }

    // ─── expire ───────────────────────────────────────────────────────────────────────────

    function test_expire_unclearedAfterWindowStart_refundsAndReleasesBonds() public {
        uint256 requestId = threeBids(0);
        vm.warp(uint256(market.request(requestId).windowStart) + 1);
        vm.expectEmit(address(market));
        emit IFlexMarket.RequestExpired(requestId, DEFAULT_ESCROW);
        market.expire(requestId);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Expired), "expired");
        assertEq(lockedOf(alice), 0, "alice released");
        assertEq(lockedOf(bob), 0, "bob released");
        assertEq(lockedOf(carol), 0, "carol released");
        assertEq(claimableEur(gridOperator), DEFAULT_ESCROW, "refund");
    }

    function test_expire_unreportedAfterTimeout_releasesAwardedBondsWithoutSlash() public {
        uint256 requestId = threeBids(0);
        clearRequest(requestId);
        assertEq(lockedOf(bob), 400 * FLEX, "bob kept bond");
        vm.warp(uint256(market.request(requestId).windowEnd) + 2 days);
        market.expire(requestId);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Expired), "expired");
        assertEq(lockedOf(alice), 0, "alice released");
        assertEq(lockedOf(bob), 0, "bob released");
        assertEq(stakedOf(alice), PROVIDER_STAKE, "alice not slashed");
        assertEq(stakedOf(bob), PROVIDER_STAKE, "bob not slashed");
        assertEq(claimableEur(gridOperator), DEFAULT_ESCROW, "refund");
        assertEq(claimableEur(alice), 0, "no pay");
    }

    function test_expire_afterEarlyVoid_usesReportTimeoutFromWindowEnd() public {
        (uint256 requestId,) = reportedRequest(); // reported at the window end
        uint256 windowEnd = market.request(requestId).windowEnd;
        vm.prank(disputer);
        market.voidReport(requestId); // voided at once: max(windowEnd, void time) = windowEnd
        uint256 expiresAt = windowEnd + 2 days;
        vm.warp(expiresAt - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.NotExpirable.selector, requestId, IFlexMarket.RequestStatus.Cleared, expiresAt
            )
        );
        market.expire(requestId);
        vm.warp(expiresAt);
        market.expire(requestId);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Expired), "expired");
        assertEq(lockedOf(alice), 0, "released");
        assertEq(stakedOf(alice), PROVIDER_STAKE, "not slashed");
        assertEq(claimableEur(gridOperator), DEFAULT_ESCROW, "refund");
    }

    /// @dev A report posted late, then voided just before the report timeout would have run
    ///      out: the committee gets a full reportTimeout from the void, not from the window end.
    function test_expire_afterLateVoid_waitsFullReportTimeoutFromVoid() public {
        uint256 requestId = singleBidCleared(0);
        uint256 windowEnd = market.request(requestId).windowEnd;
        uint256 timeout = market.reportTimeout();
        vm.warp(windowEnd + timeout - 2 hours); // the committee reports late
        postReport(requestId, wh(100_000), twoSigners());
        vm.warp(block.timestamp + 1 hours + 59 minutes); // one second before the old deadline
        uint256 voidedAt = block.timestamp;
        vm.prank(disputer);
        market.voidReport(requestId);
        assertEq(market.request(requestId).disputeEndsAt, voidedAt, "void time recorded");

        uint256 expiresAt = voidedAt + timeout;
        vm.warp(windowEnd + timeout); // the deadline counted from the window end has passed
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.NotExpirable.selector, requestId, IFlexMarket.RequestStatus.Cleared, expiresAt
            )
        );
        market.expire(requestId);
        vm.warp(expiresAt - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.NotExpirable.selector, requestId, IFlexMarket.RequestStatus.Cleared, expiresAt
            )
        );
        market.expire(requestId);

        // the committee can still post its round-1 report in that time
        uint256 reportedAt = block.timestamp;
        postReport(requestId, wh(90_000), twoSigners());
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Reported), "round 1 reported");
        assertEq(market.request(requestId).reportRound, 1, "round 1");
        assertEq(market.request(requestId).disputeEndsAt, reportedAt + DISPUTE_WINDOW, "fresh window");
    }

    function test_expire_afterLateVoid_expiresAtFullReportTimeout() public {
        uint256 requestId = singleBidCleared(0);
        uint256 windowEnd = market.request(requestId).windowEnd;
        uint256 timeout = market.reportTimeout();
        vm.warp(windowEnd + timeout - 1 hours);
        postReport(requestId, wh(100_000), twoSigners());
        vm.warp(block.timestamp + 1 hours - 1);
        vm.prank(disputer);
        market.voidReport(requestId);
        uint256 expiresAt = block.timestamp + timeout;
        vm.warp(expiresAt);
        vm.expectEmit(address(market));
        emit IFlexMarket.RequestExpired(requestId, DEFAULT_ESCROW);
        market.expire(requestId);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Expired), "expired");
        assertEq(lockedOf(alice), 0, "released");
        assertEq(stakedOf(alice), PROVIDER_STAKE, "not slashed");
    }

    function test_expire_followsReportTimeoutParameter() public {
        vm.prank(governance);
        market.setReportTimeout(1 hours);
        uint256 requestId = singleBidCleared(0);
        vm.warp(uint256(market.request(requestId).windowEnd) + 1 hours);
        market.expire(requestId);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Expired), "expired");
    }

    function test_expire_revertsWhen_openBeforeWindowStart() public {
        uint256 requestId = createRequest(defaultParams());
        uint256 expiresAt = uint256(market.request(requestId).windowStart) + 1;
        vm.warp(expiresAt - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.NotExpirable.selector, requestId, IFlexMarket.RequestStatus.Open, expiresAt
            )
        );
        market.expire(requestId);
    }

    function test_expire_revertsWhen_clearedBeforeReportTimeout() public {
        uint256 requestId = singleBidCleared(0);
        uint256 expiresAt = uint256(market.request(requestId).windowEnd) + 2 days;
        vm.warp(expiresAt - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlexMarket.NotExpirable.selector, requestId, IFlexMarket.RequestStatus.Cleared, expiresAt
            )
        );
        market.expire(requestId);
    }

    function test_expire_revertsWhen_reported() public {
        (uint256 requestId,) = reportedRequest();
        vm.warp(block.timestamp + 30 days);
        vm.expectRevert(
            abi.encodeWithSelector(IFlexMarket.NotExpirable.selector, requestId, IFlexMarket.RequestStatus.Reported, 0)
        );
        market.expire(requestId);
    }

    function test_expire_revertsWhen_settled() public {
        uint256 requestId = singleBidCleared(0);
        reportAndFinalize(requestId, wh(100_000));
        vm.expectRevert(
            abi.encodeWithSelector(IFlexMarket.NotExpirable.selector, requestId, IFlexMarket.RequestStatus.Settled, 0)
        );
        market.expire(requestId);
    }

    function test_expire_revertsWhen_cancelled() public {
        uint256 requestId = createRequest(defaultParams());
        vm.prank(gridOperator);
        market.cancelRequest(requestId);
        vm.warp(block.timestamp + 30 days);
        vm.expectRevert(
            abi.encodeWithSelector(IFlexMarket.NotExpirable.selector, requestId, IFlexMarket.RequestStatus.Cancelled, 0)
        );
        market.expire(requestId);
    }

    function test_expire_revertsWhen_alreadyExpired() public {
        uint256 requestId = createRequest(defaultParams());
        vm.warp(uint256(market.request(requestId).windowStart) + 1);
        market.expire(requestId);
        vm.expectRevert(
            abi.encodeWithSelector(IFlexMarket.NotExpirable.selector, requestId, IFlexMarket.RequestStatus.Expired, 0)
        );
        market.expire(requestId);
    }

    function test_expire_revertsWhen_unknownRequest() public {
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.UnknownRequest.selector, 6));
        market.expire(6);
    }

    // ─── withdraw ─────────────────────────────────────────────────────────────────────────

    function test_withdraw_paysClaimableAndZeroesIt() public {
        uint256 requestId = singleBidCleared(0);
        reportAndFinalize(requestId, wh(100_000));
        vm.expectEmit(address(market));
        emit IFlexMarket.Withdrawn(address(eur), alice, 19_800_000);
        vm.prank(alice);
        uint256 amount = market.withdraw(address(eur));
        assertEq(amount, 19_800_000, "returned amount");
        assertEq(eur.balanceOf(alice), 19_800_000, "received");
        assertEq(claimableEur(alice), 0, "zeroed");
        assertEq(eur.balanceOf(address(market)), 10_200_000, "refund + fee still held");
    }

    function test_withdraw_everyoneDrainsMarketExactly() public {
        uint256 requestId = threeBids(uint8(IFlexMarket.PricingRule.Uniform));
        clearRequest(requestId);
        reportAndFinalize(requestId, wh(55_555, 33_333, 1));
        address[] memory list = parties();
        for (uint256 i; i < list.length; ++i) {
            if (claimableEur(list[i]) == 0) continue;
            vm.prank(list[i]);
            market.withdraw(address(eur));
        }
        assertEq(eur.balanceOf(address(market)), 0, "nothing left behind");
    }

    function test_withdraw_revertsWhen_nothingClaimable() public {
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.NothingToWithdraw.selector, address(eur), alice));
        vm.prank(alice);
        market.withdraw(address(eur));
    }

    function test_withdraw_revertsWhen_calledTwice() public {
        uint256 requestId = createRequest(defaultParams());
        vm.prank(gridOperator);
        market.cancelRequest(requestId);
        vm.prank(gridOperator);
        market.withdraw(address(eur));
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.NothingToWithdraw.selector, address(eur), gridOperator));
        vm.prank(gridOperator);
        market.withdraw(address(eur));
    }

    // ─── Reentrancy through a callback token ──────────────────────────────────────────────

    function callbackSetup() internal returns (CallbackToken token, ReentrantOperator attacker) {
        token = new CallbackToken();
        attacker = new ReentrantOperator(market, token);
        vm.startPrank(governance);
        market.grantRole(market.GRID_OPERATOR_ROLE(), address(attacker));
        vm.stopPrank();
        token.mint(address(attacker), 1_000 * EUR);
        // An honest operator's escrow in the same token is what a double withdrawal would steal.
        token.mint(gridOperator, 1_000 * EUR);
        vm.prank(gridOperator);
        token.approve(address(market), type(uint256).max);
        IFlexMarket.RequestParams memory p = defaultParams();
        p.settlementToken = address(token);
        createRequest(p);
    }

    function test_withdraw_callbackToken_reentrantWithdrawHitsGuard() public {
        (CallbackToken token, ReentrantOperator attacker) = callbackSetup();
        IFlexMarket.RequestParams memory p = defaultParams();
        p.settlementToken = address(token);
        uint256 requestId = attacker.createRequest(p);
        attacker.cancelRequest(requestId);
        assertEq(market.claimable(address(token), address(attacker)), DEFAULT_ESCROW, "refund credited");
        assertEq(token.balanceOf(address(market)), 2 * DEFAULT_ESCROW, "two escrows held");

        // Swallowing the failed re-entry: the outer withdrawal pays exactly once.
        attacker.arm(abi.encodeCall(IFlexMarket.withdraw, (address(token))), false, false);
        attacker.withdraw();
        assertEq(attacker.reentries(), 1, "hook ran");
        assertEq(attacker.reentryOk(), false, "re-entry failed");
        assertEq(
            keccak256(attacker.reentryResult()),
            keccak256(abi.encodeWithSelector(ReentrancyGuard.ReentrancyGuardReentrantCall.selector)),
            "stopped by the guard, not by the zeroed balance"
        );
        assertEq(token.balanceOf(address(attacker)), 1_000 * EUR, "got back its escrow once");
        assertEq(token.balanceOf(address(market)), DEFAULT_ESCROW, "honest escrow untouched");
        assertEq(market.claimable(address(token), address(attacker)), 0, "claimable zeroed");
    }

    function test_withdraw_callbackToken_bubbledReentryReverts() public {
        (CallbackToken token, ReentrantOperator attacker) = callbackSetup();
        IFlexMarket.RequestParams memory p = defaultParams();
        p.settlementToken = address(token);
        uint256 requestId = attacker.createRequest(p);
        attacker.cancelRequest(requestId);
        attacker.arm(abi.encodeCall(IFlexMarket.withdraw, (address(token))), true, false);
        vm.expectRevert(abi.encodeWithSelector(ReentrancyGuard.ReentrancyGuardReentrantCall.selector));
        attacker.withdraw();
        assertEq(market.claimable(address(token), address(attacker)), DEFAULT_ESCROW, "still claimable");
    }

    function test_createRequest_callbackToken_reentrantCallsHitGuard() public {
        (CallbackToken token, ReentrantOperator attacker) = callbackSetup();
        IFlexMarket.RequestParams memory p = defaultParams();
        p.settlementToken = address(token);
        // From the escrow pull (tokensToSend) into createRequest, then into withdraw.
        attacker.arm(abi.encodeCall(IFlexMarket.createRequest, (p)), true, true);
        vm.expectRevert(abi.encodeWithSelector(ReentrancyGuard.ReentrancyGuardReentrantCall.selector));
        attacker.createRequest(p);
        attacker.arm(abi.encodeCall(IFlexMarket.withdraw, (address(token))), true, true);
        vm.expectRevert(abi.encodeWithSelector(ReentrancyGuard.ReentrancyGuardReentrantCall.selector));
        attacker.createRequest(p);
    }

    function test_createRequest_callbackToken_cancelDuringEscrowPullIsHarmless() public {
        (CallbackToken token, ReentrantOperator attacker) = callbackSetup();
        IFlexMarket.RequestParams memory p = defaultParams();
        p.settlementToken = address(token);
        // cancelRequest is not guarded: re-entering it while the escrow is pulled must still
        // leave exactly one escrow's worth claimable for exactly one escrow received.
        attacker.arm(abi.encodeCall(IFlexMarket.cancelRequest, (2)), true, true);
        uint256 requestId = attacker.createRequest(p);
        assertEq(requestId, 2, "id");
        assertEq(attacker.reentryOk(), true, "cancel went through");
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Cancelled), "cancelled");
        assertEq(market.claimable(address(token), address(attacker)), DEFAULT_ESCROW, "one refund");
        assertEq(token.balanceOf(address(market)), 2 * DEFAULT_ESCROW, "escrow received");
        attacker.withdraw();
        assertEq(token.balanceOf(address(market)), DEFAULT_ESCROW, "only the honest escrow left");
    }

    // ─── Governance ───────────────────────────────────────────────────────────────────────

    function expectOutOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max) internal {
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.ParameterOutOfBounds.selector, name, value, min, max));
    }

    function expectNotAdmin(address caller) internal {
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, bytes32(0))
        );
    }

    function test_setBondPerKW_setsWithinBounds() public {
        vm.startPrank(governance);
        vm.expectEmit(address(market));
        emit IFlexMarket.ParameterSet("bondPerKW", 0);
        market.setBondPerKW(0);
        market.setBondPerKW(1e24);
        assertEq(market.bondPerKW(), 1e24, "max");
        expectOutOfBounds("bondPerKW", 1e24 + 1, 0, 1e24);
        market.setBondPerKW(1e24 + 1);
        vm.stopPrank();
        expectNotAdmin(alice);
        vm.prank(alice);
        market.setBondPerKW(1);
    }

    function test_setMinBidW_setsWithinBounds() public {
        vm.startPrank(governance);
        vm.expectEmit(address(market));
        emit IFlexMarket.ParameterSet("minBidW", 5_000);
        market.setMinBidW(5_000);
        assertEq(market.minBidW(), 5_000, "set");
        market.setMinBidW(1);
        market.setMinBidW(1_000_000);
        expectOutOfBounds("minBidW", 0, 1, 1_000_000);
        market.setMinBidW(0);
        expectOutOfBounds("minBidW", 1_000_001, 1, 1_000_000);
        market.setMinBidW(1_000_001);
        vm.stopPrank();
        expectNotAdmin(alice);
        vm.prank(alice);
        market.setMinBidW(1);
    }

    function test_setMinBidW_appliesToNewBids() public {
        vm.prank(governance);
        market.setMinBidW(5_000);
        uint256 requestId = createRequest(defaultParams());
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.PowerBelowMinimum.selector, 4_999, 5_000));
        placeBid(alice, requestId, 4_999, P10, ids(aliceDevice));
    }

    function test_setMinRequestW_setsWithinBounds() public {
        vm.startPrank(governance);
        vm.expectEmit(address(market));
        emit IFlexMarket.ParameterSet("minRequestW", 200_000);
        market.setMinRequestW(200_000);
        assertEq(market.minRequestW(), 200_000, "set");
        market.setMinRequestW(1);
        market.setMinRequestW(100_000_000);
        expectOutOfBounds("minRequestW", 0, 1, 100_000_000);
        market.setMinRequestW(0);
        expectOutOfBounds("minRequestW", 100_000_001, 1, 100_000_000);
        market.setMinRequestW(100_000_001);
        market.setMinRequestW(200_000);
        vm.stopPrank();
        IFlexMarket.RequestParams memory p = defaultParams();
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.PowerBelowMinimum.selector, 100_000, 200_000));
        createRequest(p);
        expectNotAdmin(alice);
        vm.prank(alice);
        market.setMinRequestW(1);
    }

    function test_setProtocolFeeBps_setsWithinBounds() public {
        vm.startPrank(governance);
        vm.expectEmit(address(market));
        emit IFlexMarket.ParameterSet("protocolFeeBps", 1_000);
        market.setProtocolFeeBps(1_000);
        assertEq(market.protocolFeeBps(), 1_000, "max");
        market.setProtocolFeeBps(0);
        expectOutOfBounds("protocolFeeBps", 1_001, 0, 1_000);
        market.setProtocolFeeBps(1_001);
        vm.stopPrank();
        expectNotAdmin(alice);
        vm.prank(alice);
        market.setProtocolFeeBps(1);
    }

    function test_setDeliveryThresholdBps_setsWithinBounds() public {
        vm.startPrank(governance);
        vm.expectEmit(address(market));
        emit IFlexMarket.ParameterSet("deliveryThresholdBps", 6_000);
        market.setDeliveryThresholdBps(6_000);
        assertEq(market.deliveryThresholdBps(), 6_000, "set");
        market.setDeliveryThresholdBps(0);
        market.setDeliveryThresholdBps(10_000);
        expectOutOfBounds("deliveryThresholdBps", 10_001, 0, 10_000);
        market.setDeliveryThresholdBps(10_001);
        vm.stopPrank();
        expectNotAdmin(alice);
        vm.prank(alice);
        market.setDeliveryThresholdBps(1);
    }

    function test_setMaxBidsPerRequest_setsWithinBounds() public {
        vm.startPrank(governance);
        vm.expectEmit(address(market));
        emit IFlexMarket.ParameterSet("maxBidsPerRequest", 10);
        market.setMaxBidsPerRequest(10);
        assertEq(market.maxBidsPerRequest(), 10, "set");
        market.setMaxBidsPerRequest(1);
        market.setMaxBidsPerRequest(256);
        expectOutOfBounds("maxBidsPerRequest", 0, 1, 256);
        market.setMaxBidsPerRequest(0);
        expectOutOfBounds("maxBidsPerRequest", 257, 1, 256);
        market.setMaxBidsPerRequest(257);
        vm.stopPrank();
        expectNotAdmin(alice);
        vm.prank(alice);
        market.setMaxBidsPerRequest(1);
    }

    function test_setDisputeWindow_boundedByUnbondingPeriod() public {
        vm.startPrank(governance);
        vm.expectEmit(address(market));
        emit IFlexMarket.ParameterSet("disputeWindow", 60);
        market.setDisputeWindow(60);
        market.setDisputeWindow(UNBONDING);
        assertEq(market.disputeWindow(), UNBONDING, "max = unbonding period");
        expectOutOfBounds("disputeWindow", 59, 60, UNBONDING);
        market.setDisputeWindow(59);
        expectOutOfBounds("disputeWindow", UNBONDING + 1, 60, UNBONDING);
        market.setDisputeWindow(UNBONDING + 1);
        staking.setUnbondingPeriod(10 days);
        market.setDisputeWindow(10 days);
        assertEq(market.disputeWindow(), 10 days, "follows the unbonding period");
        vm.stopPrank();
        expectNotAdmin(alice);
        vm.prank(alice);
        market.setDisputeWindow(60);
    }

    /// @dev The dispute window of a pending report is the one announced in ReportSubmitted:
    ///      shortening the parameter afterwards does not let anyone finalize earlier.
    function test_setDisputeWindow_shorterDoesNotMovePendingReport() public {
        (uint256 requestId, uint256[] memory delivered) = reportedRequest();
        uint256 announced = block.timestamp + DISPUTE_WINDOW;
        assertEq(market.request(requestId).disputeEndsAt, announced, "announced end");
        vm.prank(governance);
        market.setDisputeWindow(1 hours);
        assertEq(market.request(requestId).disputeEndsAt, announced, "unchanged by the new parameter");

        vm.warp(block.timestamp + 1 hours);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.DisputeWindowOpen.selector, requestId, announced));
        market.finalize(requestId, delivered);
        vm.warp(announced - 1);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.DisputeWindowOpen.selector, requestId, announced));
        market.finalize(requestId, delivered);
        // still disputable until the announced end
        vm.warp(announced);
        market.finalize(requestId, delivered);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Settled), "settled at the announced time");
    }

    /// @dev Lengthening the parameter does not delay a pending report either, nor reopen it
    ///      to disputes after its announced end.
    function test_setDisputeWindow_longerDoesNotMovePendingReport() public {
        (uint256 requestId, uint256[] memory delivered) = reportedRequest();
        uint256 announced = block.timestamp + DISPUTE_WINDOW;
        vm.prank(governance);
        market.setDisputeWindow(UNBONDING);
        vm.warp(announced);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.DisputeWindowClosed.selector, requestId, announced));
        vm.prank(disputer);
        market.voidReport(requestId);
        market.finalize(requestId, delivered);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Settled), "settled at the announced time");
    }

    function test_setDisputeWindow_appliesToReportsPostedAfter() public {
        uint256 requestId = singleBidCleared(0);
        vm.prank(governance);
        market.setDisputeWindow(1 hours);
        uint256[] memory delivered = wh(100_000);
        postReport(requestId, delivered, twoSigners());
        uint256 endsAt = block.timestamp + 1 hours;
        assertEq(market.request(requestId).disputeEndsAt, endsAt, "new window");
        vm.warp(endsAt - 1);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.DisputeWindowOpen.selector, requestId, endsAt));
        market.finalize(requestId, delivered);
        vm.warp(endsAt);
        market.finalize(requestId, delivered);
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Settled), "settled");
    }

    function test_setReportTimeout_setsWithinBounds() public {
        vm.startPrank(governance);
        vm.expectEmit(address(market));
        emit IFlexMarket.ParameterSet("reportTimeout", 30 days);
        market.setReportTimeout(30 days);
        assertEq(market.reportTimeout(), 30 days, "max");
        market.setReportTimeout(60);
        expectOutOfBounds("reportTimeout", 59, 60, 30 days);
        market.setReportTimeout(59);
        expectOutOfBounds("reportTimeout", 30 days + 1, 60, 30 days);
        market.setReportTimeout(30 days + 1);
        vm.stopPrank();
        expectNotAdmin(alice);
        vm.prank(alice);
        market.setReportTimeout(60);
    }

    function test_setTreasury_setsAndRejectsZero() public {
        address newTreasury = address(0x7EA6);
        vm.startPrank(governance);
        vm.expectEmit(address(market));
        emit IFlexMarket.TreasurySet(newTreasury);
        market.setTreasury(newTreasury);
        assertEq(market.treasury(), newTreasury, "set");
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.ZeroAddress.selector));
        market.setTreasury(address(0));
        vm.stopPrank();
        expectNotAdmin(alice);
        vm.prank(alice);
        market.setTreasury(alice);
    }

    function test_roles_adminGrantsAndRevokesGridOperator() public {
        vm.startPrank(governance);
        market.revokeRole(market.GRID_OPERATOR_ROLE(), gridOperator);
        vm.stopPrank();
        IFlexMarket.RequestParams memory p = defaultParams();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, gridOperator, market.GRID_OPERATOR_ROLE()
            )
        );
        createRequest(p);
        bytes32 role = market.GRID_OPERATOR_ROLE();
        expectNotAdmin(alice);
        vm.prank(alice);
        market.grantRole(role, alice);
    }

    // ─── Views ────────────────────────────────────────────────────────────────────────────

    function test_request_revertsWhen_unknown() public {
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.UnknownRequest.selector, 0));
        market.request(0);
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.UnknownRequest.selector, 1));
        market.request(1);
    }

    function test_views_emptyForUnknownIds() public view {
        IFlexMarket.Bid memory b = market.bidOf(42, 0);
        assertEq(b.bidder, address(0), "no bid");
        assertEq(b.bond, 0, "no bond");
        assertEq(market.devicesHashOf(42, alice), bytes32(0), "no devices");
        assertEq(market.reportOf(42).deliveredHash, bytes32(0), "no report");
        assertEq(market.claimable(address(eur), alice), 0, "nothing claimable");
    }

    function test_views_constants() public view {
        assertEq(market.GRID_OPERATOR_ROLE(), keccak256("GRID_OPERATOR_ROLE"), "operator role");
        assertEq(market.DISPUTE_ROLE(), keccak256("DISPUTE_ROLE"), "dispute role");
        assertEq(market.BASELINE_METHOD_COUNT(), 3, "baselines");
        assertEq(market.MAX_DEVICES_PER_BID(), 64, "devices per bid");
        assertEq(market.MAX_BIDS_CAP(), 256, "bids cap");
        assertEq(market.MAX_WINDOW_INTERVALS(), 96, "intervals");
        assertEq(market.MAX_FEE_BPS(), 1_000, "fee cap");
        assertEq(market.MAX_BOND_PER_KW(), 1e24, "bond cap");
    }

    function test_devicesHashOf_commitsToBidDevices() public {
        uint256 second = registerDevice(alice, 0xD11, DEVICE_W, ZONE);
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 300_000, P10, ids(aliceDevice, second));
        assertEq(
            market.devicesHashOf(requestId, alice),
            keccak256(abi.encodePacked(aliceDevice, second)),
            "packed ascending ids"
        );
        assertEq(market.devicesHashOf(requestId, bob), bytes32(0), "bob did not bid");
    }
}
