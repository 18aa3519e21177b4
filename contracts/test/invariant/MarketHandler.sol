// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {TestBase} from "../utils/TestBase.sol";
import {TestStablecoin} from "../utils/Deployers.sol";
import {FlexToken} from "../../FlexToken.sol";
import {Staking} from "../../Staking.sol";
import {OracleCommittee} from "../../OracleCommittee.sol";
import {FlexMarket} from "../../FlexMarket.sol";
import {IFlexMarket} from "../../interfaces/IFlexMarket.sol";
import {IStaking} from "../../interfaces/IStaking.sol";

/// @notice Drives FlexMarket and Staking through random but valid life cycles for the
///         invariant test: requests, bids, clearing, reports, voids, settlement, cancels,
///         expiries, withdrawals, staking and unstaking, with time moving forward.
/// @dev Every action picks a request in the status it needs and moves time forward to the
///      moment the action becomes valid, so that (almost) no call is wasted; an action with
///      nothing to act on returns early. A call that reverts is therefore a finding (the
///      invariant test runs with fail-on-revert). Ghost variables record what every closed
///      request credited so the test can check payouts + fees + refund == escrow.
contract MarketHandler is TestBase {
    uint48 public constant DEVICE_W = 200_000;
    uint256 public constant MAX_STAKE_TOP_UP = 5_000 * 1e18;
    bytes32 private constant DEVICES_ROOT = bytes32("devices");
    bytes32 private constant READINGS_ROOT = bytes32("readings");

    FlexMarket public immutable market;
    Staking public immutable staking;
    OracleCommittee public immutable committee;
    FlexToken public immutable flex;
    TestStablecoin public immutable eur;
    address public immutable operator;
    address public immutable disputer;
    bytes32 public immutable zone;

    uint256[] private _oracleKeys;
    address[] private _oracles;
    address[] private _actors;
    mapping(address actor => uint256) public deviceOf;
    uint256[] private _requestIds;
    mapping(uint256 requestId => uint256[]) private _pendingDelivered;

    /// @notice What the parties were credited when the request reached a final status.
    mapping(uint256 requestId => uint256) public creditedAtClose;
    mapping(uint256 requestId => bool) public closed;
    mapping(bytes32 action => uint256) public calls;

    constructor(
        FlexMarket market_,
        OracleCommittee committee_,
        TestStablecoin eur_,
        address operator_,
        address disputer_,
        bytes32 zone_,
        uint256[] memory oracleKeys_
    ) {
        market = market_;
        staking = Staking(address(market_.staking()));
        committee = committee_;
        flex = FlexToken(address(staking.token()));
        eur = eur_;
        operator = operator_;
        disputer = disputer_;
        zone = zone_;
        for (uint256 i; i < oracleKeys_.length; ++i) {
            _oracleKeys.push(oracleKeys_[i]);
            _oracles.push(vm.addr(oracleKeys_[i]));
        }
    }

    function addActor(address actor, uint256 deviceId) external {
        _actors.push(actor);
        deviceOf[actor] = deviceId;
    }

    // ─── Views for the invariants ─────────────────────────────────────────────────────────

    function actorCount() external view returns (uint256) {
        return _actors.length;
    }

    function actorAt(uint256 i) external view returns (address) {
        return _actors[i];
    }

    function oracleCount() external view returns (uint256) {
        return _oracles.length;
    }

    function oracleAt(uint256 i) external view returns (address) {
        return _oracles[i];
    }

    function requestTotal() external view returns (uint256) {
        return _requestIds.length;
    }

    function requestAt(uint256 i) external view returns (uint256) {
        return _requestIds[i];
    }

    /// @notice Everyone the market can credit: the operator, the treasury, the providers.
    function parties() public view returns (address[] memory list) {
        list = new address[](_actors.length + 2);
        list[0] = operator;
        list[1] = market.treasury();
        for (uint256 i; i < _actors.length; ++i) {
            list[i + 2] = _actors[i];
        }
    }

    function totalClaimable() public view returns (uint256 sum) {
        address[] memory list = parties();
        for (uint256 i; i < list.length; ++i) {
            sum += market.claimable(address(eur), list[i]);
        }
    }

    // ─── Grid operator ────────────────────────────────────────────────────────────────────

    function createRequest(uint256 powerSeed, uint256 leadSeed, uint256 lengthSeed, uint256 priceSeed, bool uniform)
        external
    {
        _createRequest(powerSeed, leadSeed, lengthSeed, priceSeed, uniform);
    }

    function _createRequest(uint256 powerSeed, uint256 leadSeed, uint256 lengthSeed, uint256 priceSeed, bool uniform)
        private
        returns (uint256 requestId)
    {
        calls["createRequest"] += 1;
        uint256 gateClosure = block.timestamp + bound(leadSeed, 1, 3 hours);
        uint256 windowStart = gateClosure + (900 - gateClosure % 900) % 900;
        IFlexMarket.RequestParams memory p = IFlexMarket.RequestParams({
            zone: zone,
            direction: uint8(priceSeed % 2),
            powerW: uint48(bound(powerSeed, 1_000, 300_000)),
            windowStart: uint40(windowStart),
            windowEnd: uint40(windowStart + bound(lengthSeed, 1, 8) * 900),
            intervalSeconds: 900,
            priceCapPerKWh: uint128(bound(priceSeed, 1, 1_000_000)),
            availabilityPricePerKWh: priceSeed % 3 == 0 ? 0 : uint128(bound(priceSeed >> 8, 1, 500_000)),
            gateClosure: uint40(gateClosure),
            baselineMethod: uint8(powerSeed % 3),
            pricingRule: uniform ? 1 : 0,
            settlementToken: address(eur)
        });
        vm.prank(operator);
        requestId = market.createRequest(p);
        _requestIds.push(requestId);
    }

    function cancel(uint256 requestSeed) external {
        (bool found, uint256 requestId) = _pick(requestSeed, IFlexMarket.RequestStatus.Open);
        if (!found || block.timestamp >= market.request(requestId).gateClosure) return;
        calls["cancel"] += 1;
        uint256 before = totalClaimable();
        vm.prank(operator);
        market.cancelRequest(requestId);
        _close(requestId, before);
    }

    // ─── Providers and clearing ───────────────────────────────────────────────────────────

    /// @notice Up to three actors bid on an open request (posted first if none is biddable).
    function bid(uint256 requestSeed, uint256 actorSeed, uint256 powerSeed, uint256 priceSeed) external {
        (bool found, uint256 requestId) = _pickBiddable(requestSeed);
        if (!found) requestId = _createRequest(powerSeed, priceSeed, actorSeed, requestSeed, priceSeed % 2 == 0);
        _bid(requestId, actorSeed, powerSeed, priceSeed);
    }

    /// @dev A device committed in an overlapping live bid is skipped (the market's own view
    ///      says so; with fail-on-revert a disagreement with `bid` is a finding). In a full
    ///      request the price is drawn below the worst bid's, so the bid displaces it.
    function _bid(uint256 requestId, uint256 actorSeed, uint256 powerSeed, uint256 priceSeed) private {
        uint256 bidders = bound(actorSeed >> 128, 1, 3);
        for (uint256 k; k < bidders; ++k) {
            IFlexMarket.Request memory r = market.request(requestId);
            address actor = _actors[(actorSeed % _actors.length + k) % _actors.length];
            if (market.devicesHashOf(requestId, actor) != bytes32(0)) continue;
            uint256[] memory devices = new uint256[](1);
            devices[0] = deviceOf[actor];
            if (market.overlappingCommitment(devices[0], r.windowStart, r.windowEnd) != 0) {
                calls["bid.deviceCommitted"] += 1;
                continue;
            }
            uint256 seed = uint256(keccak256(abi.encode(powerSeed, priceSeed, k)));
            uint256 powerW = bound(seed, 1_000, DEVICE_W);
            uint256 bondPerKW = market.bondPerKW();
            uint256 free = staking.freeStake(actor);
            if (bondPerKW > 0 && powerW * bondPerKW / 1000 > free) powerW = free * 1000 / bondPerKW;
            if (powerW < market.minBidW()) continue;
            uint256 maxPrice = r.priceCapPerKWh;
            if (r.bidCount >= market.maxBidsPerRequest()) {
                maxPrice = _worstPrice(requestId, r.bidCount) - 1;
                if (maxPrice == 0) continue;
                calls["bid.displacing"] += 1;
            }
            calls["bid"] += 1;
            vm.prank(actor);
            try market.bid(requestId, uint48(powerW), uint96(bound(seed >> 64, 1, maxPrice)), devices) {}
            catch (bytes memory reason) {
                // Only a device's full list of live commitments may refuse a valid bid.
                if (bytes4(reason) != IFlexMarket.DeviceCommitmentsFull.selector) _bubble(reason);
                calls["bid.commitmentsFull"] += 1;
            }
        }
    }

    function _worstPrice(uint256 requestId, uint256 count) private view returns (uint256 worst) {
        for (uint256 i; i < count; ++i) {
            uint256 price = market.bidOf(requestId, i).pricePerKWh;
            if (price > worst) worst = price;
        }
    }

    function _bubble(bytes memory reason) private pure {
        assembly ("memory-safe") {
            revert(add(reason, 0x20), mload(reason))
        }
    }

    function clear(uint256 requestSeed) external {
        (bool found, uint256 requestId) = _pick(requestSeed, IFlexMarket.RequestStatus.Open);
        if (!found) return;
        _clear(requestId);
    }

    function _clear(uint256 requestId) private {
        IFlexMarket.Request memory r = market.request(requestId);
        if (block.timestamp > r.windowStart) return;
        _warpTo(r.gateClosure);
        calls["clear"] += 1;
        uint256 before = totalClaimable();
        market.clear(requestId, _meritOrder(requestId, r.bidCount));
        if (r.bidCount == 0) {
            calls["clear.noBids"] += 1;
            _close(requestId, before);
        }
    }

    /// @notice Moves one live request a natural step forward: settlement (or, now and then,
    ///         a void) for a reported request, else a report for a cleared one, else bids
    ///         while the gate is open, clearing, or expiry for an open one.
    function advance(uint256 requestSeed, uint256 actionSeed) public {
        (bool found, uint256 requestId) = _pick(requestSeed, IFlexMarket.RequestStatus.Reported);
        if (found) {
            if (actionSeed % 4 == 0) _voidReport(requestId);
            else _finalize(requestId);
            return;
        }
        (found, requestId) = _pick(requestSeed, IFlexMarket.RequestStatus.Cleared);
        if (found) return _report(requestId, actionSeed, actionSeed % 3 == 0);
        (found, requestId) = _pick(requestSeed, IFlexMarket.RequestStatus.Open);
        if (!found) return;
        IFlexMarket.Request memory r = market.request(requestId);
        if (block.timestamp < r.gateClosure && r.bidCount < 3) {
            _bid(requestId, actionSeed, actionSeed >> 32, actionSeed >> 64);
        } else if (block.timestamp <= r.windowStart) {
            _clear(requestId);
        } else {
            _expire(requestId);
        }
    }

    /// @dev Extra weight for `advance` in the selector draw.
    function advanceAgain(uint256 requestSeed, uint256 actionSeed) external {
        advance(requestSeed, actionSeed);
    }

    function advanceOnceMore(uint256 requestSeed, uint256 actionSeed) external {
        advance(requestSeed, actionSeed);
    }

    // ─── Oracles and disputes ─────────────────────────────────────────────────────────────

    function report(uint256 requestSeed, uint256 deliverySeed, bool allThree) external {
        (bool found, uint256 requestId) = _pick(requestSeed, IFlexMarket.RequestStatus.Cleared);
        if (!found) return;
        _report(requestId, deliverySeed, allThree);
    }

    function _report(uint256 requestId, uint256 deliverySeed, bool allThree) private {
        IFlexMarket.Request memory r = market.request(requestId);
        _warpTo(r.windowEnd);
        calls["report"] += 1;
        uint256 duration = uint256(r.windowEnd) - r.windowStart;
        uint256[] memory delivered = new uint256[](r.bidCount);
        for (uint256 i; i < r.bidCount; ++i) {
            uint256 awardedWh = uint256(market.bidOf(requestId, i).awardedW) * duration / 3600;
            delivered[i] = uint256(keccak256(abi.encode(deliverySeed, i))) % (2 * awardedWh + 2);
        }
        bytes[] memory sigs = _sign(requestId, r.reportRound, delivered, allThree ? 3 : 2, deliverySeed);
        market.submitReport(requestId, delivered, DEVICES_ROOT, READINGS_ROOT, sigs);
        _pendingDelivered[requestId] = delivered;
    }

    function voidReport(uint256 requestSeed) external {
        (bool found, uint256 requestId) = _pick(requestSeed, IFlexMarket.RequestStatus.Reported);
        if (!found) return;
        _voidReport(requestId);
    }

    function _voidReport(uint256 requestId) private {
        if (block.timestamp >= market.request(requestId).disputeEndsAt) return;
        calls["voidReport"] += 1;
        vm.prank(disputer);
        market.voidReport(requestId);
        delete _pendingDelivered[requestId];
    }

    function finalize(uint256 requestSeed) external {
        (bool found, uint256 requestId) = _pick(requestSeed, IFlexMarket.RequestStatus.Reported);
        if (!found) return;
        _finalize(requestId);
    }

    function _finalize(uint256 requestId) private {
        _warpTo(market.request(requestId).disputeEndsAt);
        calls["finalize"] += 1;
        uint256 before = totalClaimable();
        market.finalize(requestId, _pendingDelivered[requestId]);
        _close(requestId, before);
    }

    function expire(uint256 requestSeed, bool cleared) external {
        IFlexMarket.RequestStatus wanted = cleared ? IFlexMarket.RequestStatus.Cleared : IFlexMarket.RequestStatus.Open;
        (bool found, uint256 requestId) = _pick(requestSeed, wanted);
        if (!found) return;
        _expire(requestId);
    }

    function _expire(uint256 requestId) private {
        IFlexMarket.Request memory r = market.request(requestId);
        bool cleared = r.status == IFlexMarket.RequestStatus.Cleared;
        // A voided report restarts the report timeout from the void (disputeEndsAt).
        uint256 reportDeadlineFrom = r.disputeEndsAt > r.windowEnd ? r.disputeEndsAt : r.windowEnd;
        _warpTo(cleared ? reportDeadlineFrom + market.reportTimeout() : uint256(r.windowStart) + 1);
        calls["expire"] += 1;
        uint256 before = totalClaimable();
        market.expire(requestId);
        _close(requestId, before);
    }

    function withdraw(uint256 partySeed) external {
        address[] memory list = parties();
        address account = list[partySeed % list.length];
        if (market.claimable(address(eur), account) == 0) return;
        calls["withdraw"] += 1;
        uint256 balanceBefore = eur.balanceOf(account);
        uint256 owed = market.claimable(address(eur), account);
        vm.prank(account);
        uint256 amount = market.withdraw(address(eur));
        assertEq(amount, owed, "withdrawn amount");
        assertEq(eur.balanceOf(account), balanceBefore + owed, "received");
    }

    // ─── Staking and time ─────────────────────────────────────────────────────────────────

    function stake(uint256 actorSeed, uint256 amountSeed) external {
        address actor = _actors[actorSeed % _actors.length];
        uint256 amount = bound(amountSeed, 1, MAX_STAKE_TOP_UP);
        if (flex.balanceOf(address(this)) < amount) return;
        calls["stake"] += 1;
        flex.transfer(actor, amount);
        vm.startPrank(actor);
        flex.approve(address(staking), amount);
        staking.stake(amount);
        vm.stopPrank();
    }

    /// @notice Starts unbonding free stake, or withdraws unbonded stake once it is released.
    function unstake(uint256 actorSeed, uint256 amountSeed, bool withdrawUnbonded) external {
        address actor = _actors[actorSeed % _actors.length];
        if (withdrawUnbonded) {
            IStaking.Account memory a = staking.accountOf(actor);
            if (a.unbonding == 0) return;
            _warpTo(a.unbondingReleaseAt);
            calls["unstake.withdraw"] += 1;
            vm.prank(actor);
            staking.withdraw();
            return;
        }
        uint256 free = staking.freeStake(actor);
        if (free == 0) return;
        calls["unstake.request"] += 1;
        vm.prank(actor);
        staking.requestUnstake(bound(amountSeed, 1, free));
    }

    function warp(uint256 secondsSeed) external {
        calls["warp"] += 1;
        vm.warp(block.timestamp + bound(secondsSeed, 0, 6 hours));
    }

    // ─── Internals ────────────────────────────────────────────────────────────────────────

    /// @dev The first request in `status`, scanning from a seeded position.
    function _pick(uint256 seed, IFlexMarket.RequestStatus status) private view returns (bool, uint256) {
        uint256 n = _requestIds.length;
        for (uint256 k; k < n; ++k) {
            uint256 requestId = _requestIds[(seed % n + k) % n];
            if (market.request(requestId).status == status) return (true, requestId);
        }
        return (false, 0);
    }

    /// @dev The first open request whose gate is still open, scanning from a seeded position.
    function _pickBiddable(uint256 seed) private view returns (bool, uint256) {
        uint256 n = _requestIds.length;
        for (uint256 k; k < n; ++k) {
            uint256 requestId = _requestIds[(seed % n + k) % n];
            IFlexMarket.Request memory r = market.request(requestId);
            if (r.status == IFlexMarket.RequestStatus.Open && block.timestamp < r.gateClosure) {
                return (true, requestId);
            }
        }
        return (false, 0);
    }

    function _close(uint256 requestId, uint256 creditedBefore) private {
        closed[requestId] = true;
        creditedAtClose[requestId] = totalClaimable() - creditedBefore;
    }

    function _warpTo(uint256 t) private {
        if (t > block.timestamp) vm.warp(t);
    }

    /// @dev Merit order by (price, bid sequence): insertion sort.
    function _meritOrder(uint256 requestId, uint256 count) private view returns (uint16[] memory order) {
        order = new uint16[](count);
        uint256[] memory keys = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            IFlexMarket.Bid memory b = market.bidOf(requestId, i);
            keys[i] = (uint256(b.pricePerKWh) << 24) | b.sequence;
            uint256 j = i;
            while (j > 0 && keys[order[j - 1]] > keys[i]) {
                order[j] = order[j - 1];
                --j;
            }
            order[j] = uint16(i);
        }
    }

    /// @dev `count` oracle signatures (a seeded choice of which oracles), ascending by signer.
    function _sign(uint256 requestId, uint16 round, uint256[] memory delivered, uint256 count, uint256 seed)
        private
        view
        returns (bytes[] memory sigs)
    {
        bytes32 digest = committee.reportDigest(
            address(market), requestId, round, keccak256(abi.encodePacked(delivered)), DEVICES_ROOT, READINGS_ROOT
        );
        uint256 n = _oracleKeys.length;
        uint256 skip = count < n ? seed % n : type(uint256).max;
        uint256[] memory keys = new uint256[](count);
        uint256 k;
        for (uint256 i; i < n; ++i) {
            if (i != skip) keys[k++] = _oracleKeys[i];
        }
        for (uint256 i; i < count; ++i) {
            for (uint256 j = i + 1; j < count; ++j) {
                if (vm.addr(keys[j]) < vm.addr(keys[i])) (keys[i], keys[j]) = (keys[j], keys[i]);
            }
        }
        sigs = new bytes[](count);
        for (uint256 i; i < count; ++i) {
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(keys[i], digest);
            sigs[i] = abi.encodePacked(r, s, v);
        }
    }
}
