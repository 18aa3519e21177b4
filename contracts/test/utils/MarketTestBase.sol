// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Deployers} from "./Deployers.sol";
import {IFlexMarket} from "../../interfaces/IFlexMarket.sol";

/// @notice Deployers plus four staked providers with one 200 kW device each, and helpers
///         for reports, settlement and money checks used by the FlexMarket tests.
abstract contract MarketTestBase is Deployers {
    uint256 internal constant PROVIDER_STAKE = 10_000 * FLEX;
    uint48 internal constant DEVICE_W = 200_000;
    /// @dev Prices in tEUR base units per kWh (6 decimals): 0.10, 0.20, 0.25, 0.30 (the cap).
    uint96 internal constant P10 = 100_000;
    uint96 internal constant P20 = 200_000;
    uint96 internal constant P25 = 250_000;
    uint96 internal constant CAP = 300_000;
    /// @dev Escrow of `defaultParams()`: 100 kWh at the 0.30 cap.
    uint256 internal constant DEFAULT_ESCROW = 30 * 1e6;

    address internal alice = address(0xA11CE0);
    address internal bob = address(0xB0B0);
    address internal carol = address(0xCA201);
    address internal dave = address(0xDA7E0);
    address internal disputer = address(0xD15);

    uint256 internal aliceDevice;
    uint256 internal bobDevice;
    uint256 internal carolDevice;
    uint256 internal daveDevice;

    function setUpMarket() internal {
        deployProtocol();
        // Devices registered a day before T0, so that their readings before the event (the
        // baseline's history) fall in their first epoch (DeviceRegistry.deviceAt).
        vm.warp(T0 - 1 days);
        aliceDevice = addProvider(alice, 0xD1);
        bobDevice = addProvider(bob, 0xD2);
        carolDevice = addProvider(carol, 0xD3);
        daveDevice = addProvider(dave, 0xD4);
        vm.warp(T0);
        vm.startPrank(governance);
        market.grantRole(market.DISPUTE_ROLE(), disputer);
        vm.stopPrank();
    }

    function addProvider(address who, uint256 deviceKey) internal returns (uint256 deviceId) {
        fundAndStake(who, PROVIDER_STAKE);
        deviceId = registerDevice(who, deviceKey, DEVICE_W, ZONE);
    }

    // ─── Arrays ───────────────────────────────────────────────────────────────────────────

    function wh(uint256 a) internal pure returns (uint256[] memory out) {
        out = new uint256[](1);
        out[0] = a;
    }

    function wh(uint256 a, uint256 b) internal pure returns (uint256[] memory out) {
        out = new uint256[](2);
        out[0] = a;
        out[1] = b;
    }

    function wh(uint256 a, uint256 b, uint256 c) internal pure returns (uint256[] memory out) {
        out = new uint256[](3);
        out[0] = a;
        out[1] = b;
        out[2] = c;
    }

    function order(uint16 a, uint16 b) internal pure returns (uint16[] memory out) {
        out = new uint16[](2);
        out[0] = a;
        out[1] = b;
    }

    function allSigners() internal pure returns (uint256[] memory idx) {
        idx = new uint256[](3);
        idx[0] = 0;
        idx[1] = 1;
        idx[2] = 2;
    }

    // ─── Life cycle ───────────────────────────────────────────────────────────────────────

    function warpTo(uint256 t) internal {
        if (t > block.timestamp) vm.warp(t);
    }

    /// @notice Signs the report for the request's current round with `signerIdx` and posts
    ///         it, moving time forward to the window end if needed (never backwards).
    function postReport(uint256 requestId, uint256[] memory deliveredWh, uint256[] memory signerIdx) internal {
        IFlexMarket.Request memory r = market.request(requestId);
        bytes[] memory sigs =
            signReport(requestId, r.reportRound, deliveredWh, bytes32("devices"), bytes32("readings"), signerIdx);
        warpTo(r.windowEnd);
        market.submitReport(requestId, deliveredWh, bytes32("devices"), bytes32("readings"), sigs);
    }

    function reportAndFinalize(uint256 requestId, uint256[] memory deliveredWh) internal {
        postReport(requestId, deliveredWh, twoSigners());
        vm.warp(block.timestamp + market.disputeWindow());
        market.finalize(requestId, deliveredWh);
    }

    function statusOf(uint256 requestId) internal view returns (uint256) {
        return uint256(market.request(requestId).status);
    }

    function claimableEur(address account) internal view returns (uint256) {
        return market.claimable(address(eur), account);
    }

    function lockedOf(address account) internal view returns (uint256) {
        return staking.accountOf(account).locked;
    }

    function stakedOf(address account) internal view returns (uint256) {
        return staking.accountOf(account).staked;
    }
}
