// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MarketTestBase} from "./utils/MarketTestBase.sol";
import {IFlexMarket} from "../interfaces/IFlexMarket.sol";

/// @notice Issue 12 finding 4 (the same delivery paid twice): a device backs at most one live
///         bid among requests whose delivery windows overlap. On b0384e6 every second bid
///         below was accepted, so one device at full capacity was awarded, measured and paid
///         in two requests for the same kWh.
contract FlexMarketCommitmentsTest is MarketTestBase {
    function setUp() public {
        setUpMarket();
    }

    /// @dev `defaultParams()` with its window `shift` seconds later (same gate closure).
    function shifted(uint256 shift) internal view returns (IFlexMarket.RequestParams memory p) {
        p = defaultParams();
        p.windowStart += uint40(shift);
        p.windowEnd += uint40(shift);
    }

    function overcommitted(uint256 deviceId, uint256 otherRequestId) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IFlexMarket.DeviceOvercommitted.selector, deviceId, otherRequestId);
    }

    // ─── The attack ───────────────────────────────────────────────────────────────────────

    function test_overcommit_fullCapacityInTwoOverlappingRequests_secondBidReverts() public {
        uint256 first = createRequest(defaultParams());
        uint256 second = createRequest(shifted(30 minutes));
        placeBid(alice, first, DEVICE_W, P10, ids(aliceDevice));
        vm.expectRevert(overcommitted(aliceDevice, first));
        placeBid(alice, second, DEVICE_W, P10, ids(aliceDevice));
        // Not even a part of it: the device's delivery is measured once, in one request.
        vm.expectRevert(overcommitted(aliceDevice, first));
        placeBid(alice, second, 1_000, P10, ids(aliceDevice));
        assertEq(market.request(second).bidCount, 0, "nothing placed");
        assertEq(lockedOf(alice), 2_000 * FLEX, "one bond only");
        IFlexMarket.RequestParams memory p = defaultParams();
        assertEq(market.overlappingCommitment(aliceDevice, p.windowStart, p.windowEnd), first, "view agrees");
    }

    /// @dev A bid listing a committed device among free ones is refused as a whole.
    function test_overcommit_oneCommittedDeviceAmongOthers_reverts() public {
        uint256 first = createRequest(defaultParams());
        uint256 second = createRequest(defaultParams());
        uint256 spare = registerDevice(alice, 0xA2, DEVICE_W, ZONE);
        placeBid(alice, first, 10_000, P10, ids(aliceDevice));
        vm.expectRevert(overcommitted(aliceDevice, first));
        placeBid(alice, second, 10_000, P10, aliceDevice < spare ? ids(aliceDevice, spare) : ids(spare, aliceDevice));
        placeBid(alice, second, 10_000, P10, ids(spare));
        assertEq(market.request(second).bidCount, 1, "the free device bids");
    }

    function test_overcommit_windowsTouchingButNotOverlapping_bothAccepted() public {
        uint256 first = createRequest(defaultParams());
        uint256 after_ = createRequest(shifted(1 hours)); // starts when the first ends
        IFlexMarket.RequestParams memory p = defaultParams();
        p.windowStart -= 1 hours; // ends when the first starts
        p.windowEnd -= 1 hours;
        p.gateClosure = p.windowStart;
        uint256 before_ = createRequest(p);
        placeBid(alice, first, DEVICE_W, P10, ids(aliceDevice));
        placeBid(alice, after_, DEVICE_W, P10, ids(aliceDevice));
        placeBid(alice, before_, DEVICE_W, P10, ids(aliceDevice));
        assertEq(lockedOf(alice), 3 * 2_000 * FLEX, "three bonds");
    }

    // ─── What frees a device ──────────────────────────────────────────────────────────────

    function test_overcommit_bidLostAtClearing_freesTheDevice() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        uint256 first = createRequest(p);
        placeBid(alice, first, 100_000, P25, ids(aliceDevice));
        placeBid(bob, first, 100_000, P10, ids(bobDevice));
        clearRequest(first); // bob awarded, alice not
        assertEq(market.bidOf(first, 0).awardedW, 0, "alice lost");

        IFlexMarket.RequestParams memory q = defaultParams();
        q.windowStart = p.windowStart + 30 minutes;
        q.windowEnd = p.windowEnd + 30 minutes;
        q.gateClosure = p.windowStart;
        uint256 second = createRequest(q);
        placeBid(alice, second, DEVICE_W, P10, ids(aliceDevice));
        vm.expectRevert(overcommitted(bobDevice, first));
        placeBid(bob, second, DEVICE_W, P10, ids(bobDevice));
    }

    function test_overcommit_cancelledRequest_freesTheDevice() public {
        uint256 first = createRequest(defaultParams());
        placeBid(alice, first, DEVICE_W, P10, ids(aliceDevice));
        vm.prank(gridOperator);
        market.cancelRequest(first);
        uint256 second = createRequest(shifted(15 minutes));
        placeBid(alice, second, DEVICE_W, P10, ids(aliceDevice));
        assertEq(lockedOf(alice), 2_000 * FLEX, "only the live bond");
    }

    function test_overcommit_displacedBid_freesItsDevices() public {
        vm.prank(governance);
        market.setMaxBidsPerRequest(1);
        uint256 first = createRequest(defaultParams());
        placeBid(alice, first, 50_000, P20, ids(aliceDevice));
        placeBid(bob, first, 50_000, P10, ids(bobDevice)); // displaces alice
        uint16 cap = market.MAX_BIDS_CAP();
        vm.prank(governance);
        market.setMaxBidsPerRequest(cap);
        uint256 second = createRequest(shifted(30 minutes));
        placeBid(alice, second, DEVICE_W, P10, ids(aliceDevice));
        vm.expectRevert(overcommitted(bobDevice, first));
        placeBid(bob, second, DEVICE_W, P10, ids(bobDevice));
    }

    /// @dev Never cleared by its window start, the request can only expire: its bids no
    ///      longer hold their devices, even before anyone calls `expire`.
    function test_overcommit_requestPastItsWindowStartUncleared_freesTheDevice() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        uint256 first = createRequest(p);
        placeBid(alice, first, DEVICE_W, P10, ids(aliceDevice));
        vm.warp(p.windowStart + 1);
        IFlexMarket.RequestParams memory q = defaultParams(); // starts two hours from now
        q.windowStart = p.windowEnd - 15 minutes; // overlaps the first's last quarter hour
        q.windowEnd = q.windowStart + 1 hours;
        q.gateClosure = q.windowStart;
        uint256 second = createRequest(q);
        placeBid(alice, second, DEVICE_W, P10, ids(aliceDevice));
        assertEq(market.request(second).bidCount, 1, "placed");
    }

    /// @dev Awarded and being delivered/reported: held until the window ends; a request
    ///      whose window has ended never overlaps one that can still take bids.
    function test_overcommit_awardedBidHoldsTheDevice_untilItsWindowEnds() public {
        IFlexMarket.RequestParams memory p = defaultParams();
        uint256 first = createRequest(p);
        placeBid(alice, first, 100_000, P10, ids(aliceDevice));
        clearRequest(first);
        IFlexMarket.RequestParams memory q = defaultParams();
        q.windowStart = p.windowEnd - 15 minutes;
        q.windowEnd = q.windowStart + 1 hours;
        q.gateClosure = p.windowStart;
        uint256 second = createRequest(q);
        vm.expectRevert(overcommitted(aliceDevice, first));
        placeBid(alice, second, DEVICE_W, P10, ids(aliceDevice));
        assertEq(market.overlappingCommitment(aliceDevice, q.windowStart, q.windowEnd), first, "view agrees");
        assertEq(market.overlappingCommitment(aliceDevice, p.windowEnd, p.windowEnd + 1), 0, "after the window");
    }

    // ─── The bounded list ─────────────────────────────────────────────────────────────────

    function test_commitments_boundedPerDevice_deadEntriesMakeRoom() public {
        uint256 max = market.MAX_LIVE_COMMITMENTS_PER_DEVICE();
        uint256[] memory requestIds = new uint256[](max + 1);
        for (uint256 i; i <= max; ++i) {
            requestIds[i] = createRequest(shifted(i * 1 hours));
        }
        for (uint256 i; i < max; ++i) {
            placeBid(alice, requestIds[i], 1_000, P10, ids(aliceDevice));
        }
        vm.expectRevert(abi.encodeWithSelector(IFlexMarket.DeviceCommitmentsFull.selector, aliceDevice, max));
        placeBid(alice, requestIds[max], 1_000, P10, ids(aliceDevice));
        // One of them cancelled: the full list is checked and its dead entry pruned.
        vm.prank(gridOperator);
        market.cancelRequest(requestIds[3]);
        placeBid(alice, requestIds[max], 1_000, P10, ids(aliceDevice));
        assertEq(market.request(requestIds[max]).bidCount, 1, "room made");
        // Compacted: every live one is still held, the cancelled one is gone.
        for (uint256 i; i <= max; ++i) {
            IFlexMarket.RequestParams memory p = shifted(i * 1 hours);
            uint256 expected = i == 3 ? 0 : requestIds[i];
            assertEq(market.overlappingCommitment(aliceDevice, p.windowStart, p.windowEnd), expected, "held");
        }
    }

    // ─── Property ─────────────────────────────────────────────────────────────────────────

    /// @dev Two requests with random windows (quarter hours): the second bid with the same
    ///      device reverts exactly when the windows overlap.
    function testFuzz_overcommit_revertsExactlyWhenWindowsOverlap(uint8 startA, uint8 lenA, uint8 startB, uint8 lenB)
        public
    {
        uint256 base = block.timestamp - (block.timestamp % 900) + 2 hours;
        IFlexMarket.RequestParams memory a = defaultParams();
        a.windowStart = uint40(base + uint256(startA % 16) * 900);
        a.windowEnd = a.windowStart + uint40(bound(lenA, 1, 8) * 900);
        IFlexMarket.RequestParams memory b = defaultParams();
        b.windowStart = uint40(base + uint256(startB % 16) * 900);
        b.windowEnd = b.windowStart + uint40(bound(lenB, 1, 8) * 900);
        uint256 first = createRequest(a);
        uint256 second = createRequest(b);
        placeBid(alice, first, 10_000, P10, ids(aliceDevice));
        bool overlap = a.windowStart < b.windowEnd && b.windowStart < a.windowEnd;
        if (overlap) vm.expectRevert(overcommitted(aliceDevice, first));
        placeBid(alice, second, 10_000, P10, ids(aliceDevice));
        assertEq(market.request(second).bidCount, overlap ? 0 : 1, "placed iff disjoint");
    }
}
