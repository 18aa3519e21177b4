// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SecurityBase} from "./SecurityBase.sol";
import {CallbackToken, ITokenHooks} from "../utils/CallbackToken.sol";
import {Staking} from "../../Staking.sol";
import {IFlexMarket} from "../../interfaces/IFlexMarket.sol";

/// @notice An account (grid operator or provider) whose ERC777-style hooks re-enter a target
///         once with prepared calldata, recording the outcome instead of reverting.
contract HookedAccount is ITokenHooks {
    address public target;
    bytes public data;
    bool public onSend;
    bool public armed;
    bool public reentryOk;
    bytes public reentryResult;
    uint256 public reentries;

    function arm(address target_, bytes calldata data_, bool onSend_) external {
        target = target_;
        data = data_;
        onSend = onSend_;
        armed = true;
    }

    function tokensToSend(address, address, uint256) external {
        if (onSend) _reenter();
    }

    function tokensReceived(address, address, uint256) external {
        if (!onSend) _reenter();
    }

    function _reenter() private {
        if (!armed) return;
        armed = false;
        reentries += 1;
        (reentryOk, reentryResult) = target.call(data);
    }
}

/// @notice A malicious ERC20: on every transfer and transferFrom it calls a target itself
///         (as the token contract) before moving the balance.
contract ReenteringToken {
    uint8 public constant decimals = 6;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    address public target;
    bytes public data;
    bool public armed;
    bool public reentryOk;
    bytes public reentryResult;

    function arm(address target_, bytes calldata data_) external {
        target = target_;
        data = data_;
        armed = true;
    }

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _reenter();
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        _reenter();
        allowance[from][msg.sender] -= amount;
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        return true;
    }

    function _reenter() private {
        if (!armed) return;
        armed = false;
        (reentryOk, reentryResult) = target.call(data);
    }
}

/// @notice Reentrancy through a settlement token with transfer callbacks. The market holds
///         escrow in any ERC20 the grid operator picks, so the token and both ends of every
///         transfer may be hostile. Every entry point that moves tokens (createRequest,
///         withdraw) or settles (finalize) is nonReentrant; the others move no tokens and
///         write their state before any external call. Each test re-enters from inside a
///         transfer and then checks that the market still holds exactly what it owes.
contract ReentrancyTest is SecurityBase {
    CallbackToken internal cb;
    HookedAccount internal op;
    HookedAccount internal prov;
    uint256 internal provDevice;
    bytes internal constant GUARD = abi.encodeWithSelector(ReentrancyGuard.ReentrancyGuardReentrantCall.selector);

    function setUp() public {
        setUpMarket();
        cb = new CallbackToken();
        op = new HookedAccount();
        prov = new HookedAccount();
        bytes32 role = market.GRID_OPERATOR_ROLE();
        vm.prank(governance);
        market.grantRole(role, address(op));
        cb.mint(address(op), 1_000_000 * EUR);
        vm.startPrank(address(op));
        cb.approve(address(market), type(uint256).max);
        cb.setHooked(true);
        vm.stopPrank();
        vm.prank(address(prov));
        cb.setHooked(true);
        fundAndStake(address(prov), PROVIDER_STAKE);
        provDevice = registerDevice(address(prov), 0xB0B5, DEVICE_W, ZONE);
    }

    // ─── Helpers ──────────────────────────────────────────────────────────────────────────

    function cbParams() internal view returns (IFlexMarket.RequestParams memory p) {
        p = defaultParams();
        p.settlementToken = address(cb);
    }

    function opCreates() internal returns (uint256 requestId) {
        vm.prank(address(op));
        requestId = market.createRequest(cbParams());
    }

    /// @dev A cb request where `prov` was awarded 50 kW and delivered all of it, finalized:
    ///      prov and the treasury and the operator have claims in cb.
    function settledWithProvider() internal returns (uint256 requestId) {
        requestId = opCreates();
        placeBid(address(prov), requestId, 50_000, P20, ids(provDevice));
        clearRequest(requestId);
        reportAndFinalize(requestId, wh(50_000));
    }

    /// @dev What the market owes in cb: claims of every party plus the escrow of live requests.
    function owedInCb(uint256[] memory liveRequests) internal view returns (uint256 owed) {
        owed = market.claimable(address(cb), address(op)) + market.claimable(address(cb), address(prov))
            + market.claimable(address(cb), treasury);
        for (uint256 i; i < liveRequests.length; ++i) {
            owed += market.request(liveRequests[i]).escrow;
        }
    }

    function assertConserved(uint256[] memory liveRequests) internal view {
        assertEq(cb.balanceOf(address(market)), owedInCb(liveRequests), "market holds exactly what it owes");
    }

    function assertGuarded(HookedAccount who) internal view {
        assertEq(who.reentries(), 1, "re-entered once");
        assertEq(who.reentryOk(), false, "re-entry refused");
        assertEq(keccak256(who.reentryResult()), keccak256(GUARD), "ReentrancyGuardReentrantCall");
    }

    function none() internal pure returns (uint256[] memory) {
        return new uint256[](0);
    }

    function one(uint256 a) internal pure returns (uint256[] memory) {
        return ids(a);
    }

    // ─── createRequest: re-entry while the escrow is pulled ───────────────────────────────

    function test_createRequest_reenterCreateRequest_refusedByGuard() public {
        op.arm(address(market), abi.encodeCall(market.createRequest, (cbParams())), true);
        uint256 requestId = opCreates();
        assertGuarded(op);
        assertEq(market.requestCount(), requestId, "one request only");
        assertConserved(one(requestId));
    }

    function test_createRequest_reenterWithdraw_refusedByGuard() public {
        uint256 earlier = opCreates();
        vm.prank(address(op));
        market.cancelRequest(earlier); // op now has a claim to pull twice if it could
        op.arm(address(market), abi.encodeCall(market.withdraw, (address(cb))), true);
        uint256 requestId = opCreates();
        assertGuarded(op);
        assertConserved(one(requestId));
    }

    function test_createRequest_reenterFinalize_refusedByGuard() public {
        // A reported request whose dispute window has ended: finalize would otherwise run.
        uint256 reported = opCreates();
        placeBid(address(prov), reported, 50_000, P20, ids(provDevice));
        clearRequest(reported);
        postReport(reported, wh(50_000), twoSigners());
        vm.warp(block.timestamp + market.disputeWindow());
        op.arm(address(market), abi.encodeCall(market.finalize, (reported, wh(50_000))), true);
        IFlexMarket.RequestParams memory p = cbParams();
        vm.prank(address(op));
        uint256 requestId = market.createRequest(p);
        assertGuarded(op);
        assertEq(statusOf(reported), uint256(IFlexMarket.RequestStatus.Reported), "not finalized from the hook");
        market.finalize(reported, wh(50_000));
        uint256[] memory live = ids(requestId);
        assertConserved(live);
    }

    function test_createRequest_reenterCancel_ofTheRequestBeingFunded_conserves() public {
        // The request exists (Open, escrow recorded) before the pull: cancelling it from the
        // hook credits a refund of an escrow that then arrives in full. Nothing is created
        // from nothing: the operator gets back exactly what it paid.
        uint256 next = market.requestCount() + 1;
        op.arm(address(market), abi.encodeCall(market.cancelRequest, (next)), true);
        uint256 balanceBefore = cb.balanceOf(address(op));
        uint256 requestId = opCreates();
        assertEq(op.reentryOk(), true, "cancel is not guarded: it moves no tokens");
        assertEq(statusOf(requestId), uint256(IFlexMarket.RequestStatus.Cancelled), "cancelled");
        assertConserved(none());
        vm.prank(address(op));
        market.withdraw(address(cb));
        assertEq(cb.balanceOf(address(op)), balanceBefore, "operator whole, no profit");
        assertEq(cb.balanceOf(address(market)), 0, "market empty");
    }

    // ─── withdraw: re-entry while the claim is paid ───────────────────────────────────────

    function test_withdraw_providerReentersWithdraw_paidOnce() public {
        settledWithProvider();
        uint256 claim = market.claimable(address(cb), address(prov));
        assertGe(claim, 1, "provider was paid");
        prov.arm(address(market), abi.encodeCall(market.withdraw, (address(cb))), false);
        vm.prank(address(prov));
        market.withdraw(address(cb));
        assertGuarded(prov);
        assertEq(cb.balanceOf(address(prov)), claim, "paid exactly once");
        assertEq(market.claimable(address(cb), address(prov)), 0, "claim zeroed");
        assertConserved(none());
    }

    function test_withdraw_reenterFinalize_refusedByGuard() public {
        settledWithProvider();
        // A second request, reported and past its window, finalizable by anyone.
        uint256 second = opCreates();
        placeBid(address(prov), second, 50_000, P20, ids(provDevice));
        clearRequest(second);
        postReport(second, wh(10_000), twoSigners());
        vm.warp(block.timestamp + market.disputeWindow());
        prov.arm(address(market), abi.encodeCall(market.finalize, (second, wh(10_000))), false);
        vm.prank(address(prov));
        market.withdraw(address(cb));
        assertGuarded(prov);
        market.finalize(second, wh(10_000));
        assertConserved(none());
    }

    function test_withdraw_reenterBidAndClear_unguardedButConserving() public {
        // bid and clear move no settlement tokens: a provider may bid, and anyone clear, from
        // a payout hook; the market still holds exactly what it owes.
        settledWithProvider();
        uint256 next = opCreates();
        uint256 refundable = opCreates();
        vm.prank(address(op));
        market.cancelRequest(refundable); // gives op a claim, so its withdraw runs a hook
        prov.arm(address(market), abi.encodeCall(market.bid, (next, 50_000, P20, ids(provDevice))), false);
        vm.prank(address(prov));
        market.withdraw(address(cb));
        assertEq(prov.reentryOk(), true, "bid placed from the hook");
        assertEq(market.request(next).bidCount, 1, "one bid");

        vm.warp(market.request(next).gateClosure);
        uint16[] memory order = new uint16[](1);
        op.arm(address(market), abi.encodeCall(market.clear, (next, order)), false);
        vm.prank(address(op));
        market.withdraw(address(cb));
        assertEq(op.reentryOk(), true, "cleared from the hook");
        assertEq(market.request(next).awardedW, 50_000, "cleared once");
        assertConserved(one(next));
    }

    function test_withdraw_reenterCreateRequest_refusedByGuard() public {
        uint256 earlier = opCreates();
        vm.prank(address(op));
        market.cancelRequest(earlier);
        op.arm(address(market), abi.encodeCall(market.createRequest, (cbParams())), false);
        vm.prank(address(op));
        market.withdraw(address(cb));
        assertGuarded(op);
        assertEq(market.requestCount(), earlier, "nothing created from the hook");
        assertConserved(none());
    }

    function test_withdraw_reenterExpire_unguardedButConserving() public {
        // Expire (anyone) moves no tokens: from a withdraw hook it only credits a claim,
        // which the market still covers (cancel from a hook: see the createRequest tests).
        uint256 toExpire = opCreates();
        uint256 toExpireLater = opCreates();
        uint256 refunded = opCreates();
        vm.prank(address(op));
        market.cancelRequest(refunded);
        vm.warp(market.request(toExpire).windowStart + 1);
        op.arm(address(market), abi.encodeCall(market.expire, (toExpire)), false);
        vm.prank(address(op));
        market.withdraw(address(cb));
        assertEq(op.reentryOk(), true, "expire ran inside the hook");
        assertEq(statusOf(toExpire), uint256(IFlexMarket.RequestStatus.Expired), "expired");
        market.expire(toExpireLater);
        assertConserved(none());
        vm.prank(address(op));
        market.withdraw(address(cb));
        assertEq(cb.balanceOf(address(market)), 0, "market empty after every refund");
        assertEq(cb.balanceOf(address(op)), 1_000_000 * EUR, "operator whole");
    }

    // ─── A malicious token re-entering as itself ──────────────────────────────────────────

    function test_maliciousToken_reentersWithdrawDuringEscrowPull_refusedByGuard() public {
        ReenteringToken evil = new ReenteringToken();
        evil.mint(gridOperator, 1_000 * EUR);
        vm.prank(gridOperator);
        evil.approve(address(market), type(uint256).max);
        evil.arm(address(market), abi.encodeCall(market.withdraw, (address(evil))));
        IFlexMarket.RequestParams memory p = defaultParams();
        p.settlementToken = address(evil);
        uint256 requestId = createRequest(p);
        assertEq(evil.reentryOk(), false, "refused");
        assertEq(keccak256(evil.reentryResult()), keccak256(GUARD), "ReentrancyGuardReentrantCall");
        assertEq(evil.balanceOf(address(market)), market.request(requestId).escrow, "escrow held");
    }

    function test_maliciousToken_cannotPostRequestsFromItsHook() public {
        ReenteringToken evil = new ReenteringToken();
        evil.mint(gridOperator, 1_000 * EUR);
        vm.prank(gridOperator);
        evil.approve(address(market), type(uint256).max);
        IFlexMarket.RequestParams memory p = defaultParams();
        p.settlementToken = address(evil);
        evil.arm(address(market), abi.encodeCall(market.createRequest, (p)));
        createRequest(p);
        // The role check comes first: the token is no grid operator.
        assertEq(
            keccak256(evil.reentryResult()),
            keccak256(
                abi.encodeWithSelector(
                    IAccessControl.AccessControlUnauthorizedAccount.selector, address(evil), market.GRID_OPERATOR_ROLE()
                )
            ),
            "not an operator"
        );
    }

    function test_maliciousToken_isolatedToItsOwnClaims() public {
        // A hostile token's escrow and claims never touch other tokens' accounting: eur
        // requests settle and pay out while the evil token re-enters.
        uint256 eurRequest = createRequest(defaultParams());
        ReenteringToken evil = new ReenteringToken();
        evil.mint(gridOperator, 1_000 * EUR);
        vm.prank(gridOperator);
        evil.approve(address(market), type(uint256).max);
        IFlexMarket.RequestParams memory p = defaultParams();
        p.settlementToken = address(evil);
        evil.arm(address(market), abi.encodeCall(market.cancelRequest, (eurRequest)));
        createRequest(p);
        assertEq(evil.reentryOk(), false, "the token is not the eur request's operator");
        assertEq(statusOf(eurRequest), uint256(IFlexMarket.RequestStatus.Open), "eur request untouched");
        assertEq(eur.balanceOf(address(market)), DEFAULT_ESCROW, "eur escrow intact");
    }

    // ─── Staking with a hooked token (defence in depth; FLEX itself has no hooks) ─────────

    function test_staking_hookedToken_reentrantWithdrawRefused_requestUnstakeConserves() public {
        CallbackToken hookedFlex = new CallbackToken();
        Staking hookedStaking = new Staking(IERC20(address(hookedFlex)), governance, treasury, UNBONDING);
        HookedAccount staker = new HookedAccount();
        hookedFlex.mint(address(staker), 100 * FLEX);
        vm.startPrank(address(staker));
        hookedFlex.approve(address(hookedStaking), type(uint256).max);
        hookedFlex.setHooked(true);
        hookedStaking.stake(100 * FLEX);
        hookedStaking.requestUnstake(60 * FLEX);
        vm.stopPrank();
        vm.warp(block.timestamp + UNBONDING);

        // Re-entering withdraw from the payout hook: the guard refuses it.
        staker.arm(address(hookedStaking), abi.encodeCall(hookedStaking.withdraw, ()), false);
        vm.prank(address(staker));
        hookedStaking.withdraw();
        assertGuarded(staker);
        assertEq(hookedFlex.balanceOf(address(staker)), 60 * FLEX, "paid once");

        // requestUnstake from the hook is allowed (moves no tokens) and restarts the clock.
        vm.prank(address(staker));
        hookedStaking.requestUnstake(10 * FLEX);
        vm.warp(block.timestamp + UNBONDING);
        staker.arm(address(hookedStaking), abi.encodeCall(hookedStaking.requestUnstake, (30 * FLEX)), false);
        vm.prank(address(staker));
        hookedStaking.withdraw();
        assertEq(staker.reentryOk(), true, "requestUnstake ran");
        assertEq(hookedFlex.balanceOf(address(staker)), 70 * FLEX, "only the 10 unbonded were paid");
        assertEq(hookedStaking.accountOf(address(staker)).unbonding, 30 * FLEX, "the rest waits a full period");
        assertEq(hookedFlex.balanceOf(address(hookedStaking)), 30 * FLEX, "staking holds what it owes");
    }
}
