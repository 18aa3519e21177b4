// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Deployers} from "./utils/Deployers.sol";
import {IFlexMarket} from "../interfaces/IFlexMarket.sol";

contract FlexMarketSmokeTest is Deployers {
    address internal alice = address(0xA11);

    function setUp() public {
        deployProtocol();
    }

    function test_lifecycle_paysProviderAndConservesEscrow() public {
        fundAndStake(alice, 10_000 * FLEX);
        uint256 d1 = registerDevice(alice, 0xD1, 60_000, ZONE);
        uint256 d2 = registerDevice(alice, 0xD2, 60_000, ZONE);
        uint256 requestId = createRequest(defaultParams());
        placeBid(alice, requestId, 100_000, 200_000, ids(d1, d2));
        clearRequest(requestId);
        uint256[] memory delivered = new uint256[](1);
        delivered[0] = 100_000;
        submitReport(requestId, delivered);
        vm.warp(block.timestamp + DISPUTE_WINDOW);
        market.finalize(requestId, delivered);
        // 100 kWh at 0.20 = 20 tEUR gross, 1% fee
        assertEq(market.claimable(address(eur), alice), 19_800_000, "provider payout");
        assertEq(market.claimable(address(eur), treasury), 200_000, "fee");
        assertEq(market.claimable(address(eur), gridOperator), 10_000_000, "refund");
        assertEq(staking.accountOf(alice).locked, 0, "bond released");
        IFlexMarket.Request memory r = market.request(requestId);
        assertEq(uint256(r.status), uint256(IFlexMarket.RequestStatus.Settled), "status");
    }
}
