// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Deployers} from "../utils/Deployers.sol";
import {MarketHandler} from "./MarketHandler.sol";
import {IFlexMarket} from "../../interfaces/IFlexMarket.sol";
import {IStaking} from "../../interfaces/IStaking.sol";

/// @notice Invariants of FlexMarket and Staking under random life cycles driven by
///         MarketHandler (forge calls only the handler's actions, see `targetSelectors`).
contract FlexMarketInvariantTest is Deployers {
    /// @dev forge's selector filter for invariant targets (forge-std's layout).
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    uint256 internal constant ACTORS = 5;
    uint256 internal constant ACTOR_STAKE = 5_000 * FLEX;
    uint16 internal constant MAX_BIDS = 3;

    MarketHandler internal handler;
    address internal disputer = address(0xD15);

    function setUp() public {
        deployProtocol();
        vm.startPrank(governance);
        market.grantRole(market.DISPUTE_ROLE(), disputer);
        eur.mint(gridOperator, 1e30);

        uint256[] memory keys = new uint256[](3);
        for (uint256 i; i < 3; ++i) {
            keys[i] = oracleKeys[i];
        }
        // Few slots, so that full requests and displacing bids are common.
        market.setMaxBidsPerRequest(MAX_BIDS);
        vm.stopPrank();
        handler = new MarketHandler(market, committee, eur, gridOperator, disputer, ZONE, keys);
        for (uint256 i; i < ACTORS; ++i) {
            address actor = address(uint160(0xAC7000 + i));
            fundAndStake(actor, ACTOR_STAKE);
            handler.addActor(actor, registerDevice(actor, 0xDE7000 + i, handler.DEVICE_W(), ZONE));
        }
        // FLEX the handler hands out for stake top-ups.
        vm.prank(governance);
        flex.transfer(address(handler), 1_000_000 * FLEX);
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory selectors = new bytes4[](15);
        selectors[0] = MarketHandler.createRequest.selector;
        selectors[1] = MarketHandler.cancel.selector;
        selectors[2] = MarketHandler.bid.selector;
        selectors[3] = MarketHandler.clear.selector;
        selectors[4] = MarketHandler.report.selector;
        selectors[5] = MarketHandler.voidReport.selector;
        selectors[6] = MarketHandler.finalize.selector;
        selectors[7] = MarketHandler.expire.selector;
        selectors[8] = MarketHandler.withdraw.selector;
        selectors[9] = MarketHandler.stake.selector;
        selectors[10] = MarketHandler.unstake.selector;
        selectors[11] = MarketHandler.warp.selector;
        // Three entries for one action: most calls push a live request along its life cycle.
        selectors[12] = MarketHandler.advance.selector;
        selectors[13] = MarketHandler.advanceAgain.selector;
        selectors[14] = MarketHandler.advanceOnceMore.selector;
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector(address(handler), selectors);
    }

    // ─── Accounts ─────────────────────────────────────────────────────────────────────────

    /// @dev Every account that ever held stake: the providers and the oracles.
    function stakers() internal view returns (address[] memory list) {
        uint256 actors = handler.actorCount();
        uint256 n = handler.oracleCount();
        list = new address[](actors + n);
        for (uint256 i; i < actors; ++i) {
            list[i] = handler.actorAt(i);
        }
        for (uint256 i; i < n; ++i) {
            list[actors + i] = handler.oracleAt(i);
        }
    }

    function isOpen(IFlexMarket.RequestStatus s) internal pure returns (bool) {
        return s == IFlexMarket.RequestStatus.Open || s == IFlexMarket.RequestStatus.Cleared
            || s == IFlexMarket.RequestStatus.Reported;
    }

    // ─── Invariants ───────────────────────────────────────────────────────────────────────

    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_flexConservation() public view {
        address[] memory list = stakers();
        uint256 sum;
        for (uint256 i; i < list.length; ++i) {
            IStaking.Account memory a = staking.accountOf(list[i]);
            sum += uint256(a.staked) + a.unbonding;
        }
        assertEq(flex.balanceOf(address(staking)), sum, "staking FLEX == sum(staked + unbonding)");
    }

    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_stakedCoversLocked() public view {
        address[] memory list = stakers();
        for (uint256 i; i < list.length; ++i) {
            IStaking.Account memory a = staking.accountOf(list[i]);
            assertGe(a.staked, a.locked, "staked >= locked");
        }
    }

    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_settlementTokenConservation() public view {
        uint256 openEscrow;
        uint256 n = handler.requestTotal();
        for (uint256 i; i < n; ++i) {
            IFlexMarket.Request memory r = market.request(handler.requestAt(i));
            if (isOpen(r.status)) openEscrow += r.escrow;
        }
        assertEq(
            eur.balanceOf(address(market)), openEscrow + handler.totalClaimable(), "eur == open escrows + claimables"
        );
    }

    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_closedRequestsCreditTheirEscrow() public view {
        uint256 n = handler.requestTotal();
        for (uint256 i; i < n; ++i) {
            uint256 requestId = handler.requestAt(i);
            IFlexMarket.Request memory r = market.request(requestId);
            assertEq(handler.closed(requestId), !isOpen(r.status), "closed exactly when final");
            if (handler.closed(requestId)) {
                assertEq(handler.creditedAtClose(requestId), r.escrow, "payouts + fees + refund == escrow");
            }
        }
    }

    /// @notice Issue 12 finding 4: no device (one per actor here) backs two live bids in
    ///         requests whose windows overlap. Live: the request is open and still clearable,
    ///         or the bid was awarded and the request is cleared or reported, before the
    ///         window ends.
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_noDeviceInTwoOverlappingLiveBids() public view {
        uint256 n = handler.requestTotal();
        for (uint256 i; i < n; ++i) {
            uint256 a = handler.requestAt(i);
            IFlexMarket.Request memory ra = market.request(a);
            for (uint256 j = i + 1; j < n; ++j) {
                uint256 b = handler.requestAt(j);
                IFlexMarket.Request memory rb = market.request(b);
                if (!(ra.windowStart < rb.windowEnd && rb.windowStart < ra.windowEnd)) continue;
                for (uint256 x; x < ra.bidCount; ++x) {
                    address bidder = market.bidOf(a, x).bidder;
                    if (!isLive(ra, market.bidOf(a, x))) continue;
                    for (uint256 y; y < rb.bidCount; ++y) {
                        IFlexMarket.Bid memory other = market.bidOf(b, y);
                        assertTrue(!(other.bidder == bidder && isLive(rb, other)), "one device, two overlapping live bids");
                    }
                }
            }
        }
    }

    function isLive(IFlexMarket.Request memory r, IFlexMarket.Bid memory b) internal view returns (bool) {
        if (block.timestamp >= r.windowEnd) return false;
        if (r.status == IFlexMarket.RequestStatus.Open) return block.timestamp <= r.windowStart;
        return (r.status == IFlexMarket.RequestStatus.Cleared || r.status == IFlexMarket.RequestStatus.Reported)
            && b.awardedW > 0;
    }

    /// @notice Locks are exactly the bonds of live bids (all bids while open, awarded bids
    ///         once cleared) plus the oracle seats: no bond is leaked or released twice.
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_locksMatchLiveBonds() public view {
        uint256 actors = handler.actorCount();
        uint256[] memory expected = new uint256[](actors);
        uint256 n = handler.requestTotal();
        for (uint256 i; i < n; ++i) {
            uint256 requestId = handler.requestAt(i);
            IFlexMarket.Request memory r = market.request(requestId);
            if (!isOpen(r.status)) continue;
            for (uint256 b; b < r.bidCount; ++b) {
                IFlexMarket.Bid memory bid_ = market.bidOf(requestId, b);
                if (r.status != IFlexMarket.RequestStatus.Open && bid_.awardedW == 0) continue;
                for (uint256 a; a < actors; ++a) {
                    if (handler.actorAt(a) == bid_.bidder) expected[a] += bid_.bond;
                }
            }
        }
        for (uint256 a; a < actors; ++a) {
            assertEq(staking.accountOf(handler.actorAt(a)).locked, expected[a], "provider locks == live bonds");
        }
        for (uint256 o; o < handler.oracleCount(); ++o) {
            assertEq(staking.accountOf(handler.oracleAt(o)).locked, ORACLE_BOND, "oracle seat bond");
        }
    }
}
