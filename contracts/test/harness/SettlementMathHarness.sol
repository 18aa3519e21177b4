// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {SettlementMath} from "../../libraries/SettlementMath.sol";

/// @notice Exposes SettlementMath so Python can run the shared vectors against the very
///         bytecode the market uses (tests/unit/test_settlement_vectors.py).
contract SettlementMathHarness {
    function energyWh(uint256 powerW, uint256 durationSeconds) external pure returns (uint256) {
        return SettlementMath.energyWh(powerW, durationSeconds);
    }

    function maxBudget(uint256 powerW, uint256 durationSeconds, uint256 priceCap, uint256 availabilityPrice)
        external
        pure
        returns (uint256 utilization, uint256 availability)
    {
        return SettlementMath.maxBudget(powerW, durationSeconds, priceCap, availabilityPrice);
    }

    function settleBid(
        uint256 awardedW,
        uint256 durationSeconds,
        uint256 deliveredWh,
        uint256 pricePerKWh,
        uint256 availabilityPricePerKWh,
        uint256 thresholdBps,
        uint256 bond
    ) external pure returns (SettlementMath.BidOutcome memory) {
        return SettlementMath.settleBid(
            awardedW, durationSeconds, deliveredWh, pricePerKWh, availabilityPricePerKWh, thresholdBps, bond
        );
    }

    function fee(uint256 gross, uint256 feeBps) external pure returns (uint256) {
        return SettlementMath.fee(gross, feeBps);
    }

    function poolSplit(uint256 payout, uint256 commissionBps) external pure returns (uint256, uint256) {
        return SettlementMath.poolSplit(payout, commissionBps);
    }

    function memberShare(uint256 memberPot, uint256 bidDeliveredWh, int256 deviceDeliveredWh)
        external
        pure
        returns (uint256)
    {
        return SettlementMath.memberShare(memberPot, bidDeliveredWh, deviceDeliveredWh);
    }

    function bondFor(uint256 powerW, uint256 bondPerKW) external pure returns (uint256) {
        return SettlementMath.bondFor(powerW, bondPerKW);
    }
}
