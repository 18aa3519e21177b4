// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title SettlementMath
/// @notice The protocol's money arithmetic, mirrored to the unit by `gridflex.settlement`.
/// @dev Integers only: power in W, energy in Wh, time in seconds, money in token base units.
///      One rounding rule: every quotient rounds down; what rounding leaves over stays in
///      escrow and goes back to the grid operator with the refund. Because each per-bid
///      figure is a floor of its share of the budget, their sum never exceeds the escrow.
library SettlementMath {
    uint256 internal constant SECONDS_PER_HOUR = 3600;
    uint256 internal constant WH_PER_KWH = 1000;
    uint256 internal constant W_PER_KW = 1000;
    uint256 internal constant W_SECONDS_PER_KW_HOUR = 3_600_000;
    uint256 internal constant BPS = 10_000;

    /// @dev What one awarded bid earns, loses and is credited with after delivery.
    struct BidOutcome {
        uint256 awardedWh;
        uint256 creditedWh;
        uint256 utilization;
        uint256 availability;
        uint256 slashed;
    }

    /// @notice Energy of `powerW` held for `durationSeconds`, in Wh (rounded down).
    function energyWh(uint256 powerW, uint256 durationSeconds) internal pure returns (uint256) {
        return powerW * durationSeconds / SECONDS_PER_HOUR;
    }

    /// @notice The most a request can pay out: utilization at the cap for the full power and
    ///         the availability price for the full power; this is the escrow.
    function maxBudget(uint256 powerW, uint256 durationSeconds, uint256 priceCapPerKWh, uint256 availabilityPricePerKWh)
        internal
        pure
        returns (uint256 utilization, uint256 availability)
    {
        utilization = Math.mulDiv(energyWh(powerW, durationSeconds), priceCapPerKWh, WH_PER_KWH);
        availability = Math.mulDiv(powerW * durationSeconds, availabilityPricePerKWh, W_SECONDS_PER_KW_HOUR);
    }

    /// @notice Settles one awarded bid.
    /// @dev Utilization pays min(delivered, awarded energy) at `pricePerKWh`, but nothing when
    ///      delivery is below `thresholdBps` of the awarded energy; then the bond is slashed in
    ///      proportion to the shortfall. Availability pays the availability price for the awarded
    ///      power scaled by the delivery ratio (capped at 100%), whatever the ratio.
    function settleBid(
        uint256 awardedW,
        uint256 durationSeconds,
        uint256 deliveredWh,
        uint256 pricePerKWh,
        uint256 availabilityPricePerKWh,
        uint256 thresholdBps,
        uint256 bond
    ) internal pure returns (BidOutcome memory outcome) {
        outcome.awardedWh = energyWh(awardedW, durationSeconds);
        if (outcome.awardedWh == 0) return outcome;
        outcome.creditedWh = Math.min(deliveredWh, outcome.awardedWh);
        bool meetsThreshold = outcome.creditedWh * BPS >= outcome.awardedWh * thresholdBps;
        if (meetsThreshold) {
            outcome.utilization = Math.mulDiv(outcome.creditedWh, pricePerKWh, WH_PER_KWH);
        } else {
            outcome.slashed = Math.mulDiv(bond, outcome.awardedWh - outcome.creditedWh, outcome.awardedWh);
        }
        uint256 fullAvailability =
            Math.mulDiv(awardedW * durationSeconds, availabilityPricePerKWh, W_SECONDS_PER_KW_HOUR);
        outcome.availability = Math.mulDiv(fullAvailability, outcome.creditedWh, outcome.awardedWh);
    }

    /// @notice Protocol fee on a gross payment.
    function fee(uint256 gross, uint256 feeBps) internal pure returns (uint256) {
        return gross * feeBps / BPS;
    }

    /// @notice A pool bid's payout split: the operator's commission (rounded down) and the
    ///         members' pot (the rest).
    function poolSplit(uint256 payout, uint256 commissionBps)
        internal
        pure
        returns (uint256 commission, uint256 memberPot)
    {
        commission = payout * commissionBps / BPS;
        memberPot = payout - commission;
    }

    /// @notice A device's share of its pool bid's member pot: pot * max(delivered, 0) / the
    ///         bid's delivery, rounded down (0 when the bid delivered nothing). The dust,
    ///         pot - sum of shares, is below one base unit per device with a positive share.
    function memberShare(uint256 memberPot, uint256 bidDeliveredWh, int256 deviceDeliveredWh)
        internal
        pure
        returns (uint256)
    {
        if (bidDeliveredWh == 0 || deviceDeliveredWh <= 0) return 0;
        // forge-lint: disable-next-line(unsafe-typecast) -- positive, checked above
        return memberPot * uint256(deviceDeliveredWh) / bidDeliveredWh;
    }

    /// @notice Bond for `powerW` at `bondPerKW` (FLEX base units per kW).
    function bondFor(uint256 powerW, uint256 bondPerKW) internal pure returns (uint256) {
        return powerW * bondPerKW / W_PER_KW;
    }
}
