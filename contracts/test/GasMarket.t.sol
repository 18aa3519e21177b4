// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {GasBase} from "./Gas.t.sol";
import {IFlexMarket} from "../interfaces/IFlexMarket.sol";

/// @notice Gas of `bid` with the per-device live commitments of issue 12 finding 4 (1, 5 and
///         64 devices; fresh devices, and devices whose last commitment has ended) and of a
///         bid that displaces the worst of 256 (finding 6). Same conventions as Gas.t.sol:
///         `setUp` builds the state, the measured call finds it cold.
abstract contract GasMarketBidBase is GasBase {
    address internal bidder = address(0xB1D5);
    uint256 internal requestId;
    uint256[] internal devices;

    /// @dev A request someone else already bid on, and `count` devices of `bidder`; with
    ///      `reused`, the devices backed a bid in an earlier request whose window has ended
    ///      (the steady state of a device that bids request after request).
    function setUpBid(uint256 count, bool reused) internal {
        deployProtocol();
        fundAndStake(bidder, 10_000 * FLEX);
        for (uint256 i; i < count; ++i) {
            devices.push(registerDevice(bidder, 0xD1 + i, 10_000, ZONE));
        }
        if (reused) {
            IFlexMarket.RequestParams memory earlier = defaultParams();
            uint256 earlierId = createRequest(earlier);
            placeBid(bidder, earlierId, uint48(count) * 1_000, 120_000, devices);
            vm.warp(earlier.windowEnd);
            vm.prank(gridOperator);
            market.expire(earlierId);
        }
        requestId = createRequest(defaultParams());
        fundAndStake(provider(0), 1_000 * FLEX);
        placeBid(provider(0), requestId, 10_000, 150_000, ids(registerDevice(provider(0), 0xD0, 10_000, ZONE)));
    }

    function measureBid(string memory name) internal returns (uint256 used) {
        uint256[] memory deviceIds = devices;
        vm.startPrank(bidder);
        vm.startSnapshotGas(GROUP, name);
        market.bid(requestId, uint48(deviceIds.length) * 1_000, 120_000, deviceIds);
        used = vm.stopSnapshotGas();
        vm.stopPrank();
        assertEq(market.request(requestId).bidCount, 2, "second bid");
    }
}

contract GasMarketBidOneDeviceTest is GasMarketBidBase {
    function setUp() public {
        setUpBid(1, false);
    }

    function test_gas_bid_oneDevice() public {
        // Measured 150.1k: one fresh commitment slot (~22k) included.
        assertLe(measureBid("bid_1device"), 160_000, "bid_1device");
    }
}

contract GasMarketBidFiveDevicesReusedTest is GasMarketBidBase {
    function setUp() public {
        setUpBid(5, true);
    }

    function test_gas_bid_fiveDevices_commitmentSlotsReused() public {
        // Measured 191.9k (263.6k with fresh devices): each device's ended commitment is
        // overwritten in place, ~9.6k per device over the bid without commitments (143.7k).
        assertLe(measureBid("bid_5devices_reused"), 200_000, "bid_5devices_reused");
    }
}

contract GasMarketBidSixtyFourDevicesTest is GasMarketBidBase {
    function setUp() public {
        setUpBid(64, false);
    }

    function test_gas_bid_sixtyFourDevices() public {
        // Measured 1.94M: 64 fresh commitment slots; within the 16.78M transaction cap.
        assertLe(measureBid("bid_64devices"), 2_100_000, "bid_64devices");
    }
}

contract GasMarketDisplaceTest is GasBase {
    address internal bidder = address(0xB1D5);
    uint256 internal requestId;
    uint256 internal device;

    /// @dev A request holding MAX_BIDS_CAP bids of 1 kW at the cap.
    function setUp() public {
        deployProtocol();
        requestId = createRequest(defaultParams());
        uint256 maxBids = market.MAX_BIDS_CAP();
        for (uint256 i; i < maxBids; ++i) {
            address who = address(uint160(0x100000 + i));
            fundAndStake(who, 10 * FLEX);
            placeBid(who, requestId, 1_000, 300_000, ids(registerDevice(who, 0xF00000 + i, 1_000, ZONE)));
        }
        fundAndStake(bidder, 1_000 * FLEX);
        device = registerDevice(bidder, 0xD1, 10_000, ZONE);
    }

    function test_gas_bid_displacesTheWorstOf256() public {
        vm.startPrank(bidder);
        vm.startSnapshotGas(GROUP, "bid_displace_256bids");
        market.bid(requestId, 10_000, 100_000, ids(device));
        uint256 used = vm.stopSnapshotGas();
        vm.stopPrank();
        // Measured 724.9k: 256 cold slots scanned for the worst bid, paid by this bid only.
        assertLe(used, 800_000, "bid_displace_256bids");
        assertEq(market.request(requestId).bidCount, 256, "still at the cap");
    }
}
