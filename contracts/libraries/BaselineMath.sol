// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title BaselineMath
/// @notice Baseline and delivered-energy arithmetic, mirrored to the unit by
///         `gridflex.baselines` (shared vectors: tests/vectors/baselines.json).
/// @dev Energy in Wh per interval, signed (import positive, PV export negative). One rounding
///      rule: every quotient rounds down, towards minus infinity (`floorDiv`; Solidity's signed
///      `/` truncates towards zero, which would round negative baselines up).
///      Day selection by calendar (UTC weekdays/weekend days within a 45-day lookback, minus
///      the device's event days and days with missing intervals) happens off-chain: these
///      functions receive the already-chosen days' values, most recent day first.
///      Sources: ERCOT meter-before/meter-after (`mbma`); CAISO 10-in-10 / 4-in-4 with a
///      multiplicative day-of adjustment capped at +/-20% (`caisoBaseline`); PJM high 4 of 5
///      (high 2 of 3 on weekend days) with a symmetric additive adjustment (`pjmBaseline`).
library BaselineMath {
    uint256 internal constant BPS = 10_000;
    uint256 internal constant SECONDS_PER_HOUR = 3600;
    uint8 internal constant REDUCE_CONSUMPTION = 0;
    uint8 internal constant INCREASE_CONSUMPTION = 1;

    /// @notice Thrown when an average or a baseline is asked of no values or no days.
    error BaselineMathNoValues();
    /// @notice Thrown when two per-interval arrays (or a day's row) differ in length.
    error BaselineMathLengthMismatch(uint256 expected, uint256 actual);
    /// @notice Thrown for a direction other than reduce (0) or increase (1).
    error BaselineMathUnknownDirection(uint8 direction);
    /// @notice Thrown when a divisor (bid capacity, window length) is zero.
    error BaselineMathZeroDivisor();

    /*//////////////////////////////////////////////////////////////
                                ARITHMETIC
    //////////////////////////////////////////////////////////////*/

    /// @notice floor(a / b) for b > 0, rounding towards minus infinity like Python's `//`.
    function floorDiv(int256 a, int256 b) internal pure returns (int256 q) {
        if (b <= 0) revert BaselineMathZeroDivisor();
        q = a / b;
        if (a % b != 0 && a < 0) q -= 1;
    }

    function sum(int256[] memory values) internal pure returns (int256 total) {
        for (uint256 i; i < values.length; ++i) {
            total += values[i];
        }
    }

    /// @notice floor(sum / count).
    function averageFloor(int256[] memory values) internal pure returns (int256) {
        if (values.length == 0) revert BaselineMathNoValues();
        return floorDiv(sum(values), int256(values.length));
    }

    /*//////////////////////////////////////////////////////////////
                                BASELINES
    //////////////////////////////////////////////////////////////*/

    /// @notice ERCOT meter before / meter after: every event interval's baseline is the metered
    ///         energy of the last interval before the event.
    function mbma(int256 lastBeforeWh, uint256 intervals) internal pure returns (int256[] memory baseline) {
        baseline = new int256[](intervals);
        for (uint256 i; i < intervals; ++i) {
            baseline[i] = lastBeforeWh;
        }
    }

    /// @notice Per-interval floor average over the selected days: `dayValues[day][interval]`.
    function xOfYBaseline(int256[][] memory dayValues) internal pure returns (int256[] memory baseline) {
        uint256 days_ = dayValues.length;
        if (days_ == 0) revert BaselineMathNoValues();
        uint256 intervals = dayValues[0].length;
        baseline = new int256[](intervals);
        for (uint256 d; d < days_; ++d) {
            if (dayValues[d].length != intervals) revert BaselineMathLengthMismatch(intervals, dayValues[d].length);
            for (uint256 i; i < intervals; ++i) {
                baseline[i] += dayValues[d][i];
            }
        }
        for (uint256 i; i < intervals; ++i) {
            baseline[i] = floorDiv(baseline[i], int256(days_));
        }
    }

    /// @notice Indices (ascending) of the `keep` days with the highest totals. Days come most
    ///         recent first; on equal totals the more recent (lower index) day wins.
    /// @dev O(n^2) over at most a handful of days (PJM: 5).
    function highestDays(int256[] memory dayTotals, uint256 keep) internal pure returns (uint256[] memory selected) {
        uint256 n = dayTotals.length;
        if (keep > n) keep = n;
        selected = new uint256[](keep);
        uint256 found = 0;
        for (uint256 i; i < n; ++i) {
            uint256 ahead = 0;
            for (uint256 j; j < n; ++j) {
                if (dayTotals[j] > dayTotals[i] || (dayTotals[j] == dayTotals[i] && j < i)) ++ahead;
            }
            if (ahead < keep) selected[found++] = i;
        }
    }

    /// @notice CAISO day-of adjustment ratio actual/baseline as a fraction, capped to
    ///         [1 - capBps, 1 + capBps]; a non-positive baseline sum (net export) is not adjusted.
    function dayOfAdjustmentCapped(int256 baselineSum, int256 actualSum, uint256 capBps)
        internal
        pure
        returns (int256 num, int256 den)
    {
        if (baselineSum <= 0) return (1, 1);
        int256 bps = int256(BPS);
        int256 cap = int256(capBps);
        if (actualSum * bps > baselineSum * (bps + cap)) return (bps + cap, bps);
        if (actualSum * bps < baselineSum * (bps - cap)) return (bps - cap, bps);
        return (actualSum, baselineSum);
    }

    /// @notice floor(baseline * num / den) per interval.
    function applyRatio(int256[] memory baseline, int256 num, int256 den) internal pure returns (int256[] memory out) {
        out = new int256[](baseline.length);
        for (uint256 i; i < baseline.length; ++i) {
            out[i] = floorDiv(baseline[i] * num, den);
        }
    }

    /// @notice PJM symmetric additive adjustment: floor((actual - baseline) / windowIntervals).
    function additiveAdjustment(int256 baselineSum, int256 actualSum, uint256 windowIntervals)
        internal
        pure
        returns (int256)
    {
        return floorDiv(actualSum - baselineSum, int256(windowIntervals));
    }

    /// @notice CAISO X-in-X on already-selected days: per-interval floor average, then the capped
    ///         multiplicative day-of adjustment. `dayAdjustment` holds the same days' adjustment
    ///         window, `actualAdjustment` the event day's.
    function caisoBaseline(
        int256[][] memory dayEvent,
        int256[][] memory dayAdjustment,
        int256[] memory actualAdjustment,
        uint256 capBps
    ) internal pure returns (int256[] memory) {
        int256[] memory adjustmentBaseline = xOfYBaseline(dayAdjustment);
        _checkLength(adjustmentBaseline.length, actualAdjustment.length);
        (int256 num, int256 den) = dayOfAdjustmentCapped(sum(adjustmentBaseline), sum(actualAdjustment), capBps);
        return applyRatio(xOfYBaseline(dayEvent), num, den);
    }

    /// @notice PJM high X of Y on the pool of eligible days (most recent first): keeps the `keep`
    ///         days with the highest event-interval totals, averages them, adds the symmetric
    ///         additive adjustment.
    function pjmBaseline(
        int256[][] memory poolEvent,
        int256[][] memory poolAdjustment,
        int256[] memory actualAdjustment,
        uint256 keep
    ) internal pure returns (int256[] memory baseline) {
        _checkLength(poolEvent.length, poolAdjustment.length);
        int256[] memory totals = new int256[](poolEvent.length);
        for (uint256 d; d < poolEvent.length; ++d) {
            totals[d] = sum(poolEvent[d]);
        }
        uint256[] memory chosen = highestDays(totals, keep);
        int256[][] memory selectedEvent = new int256[][](chosen.length);
        int256[][] memory selectedAdjustment = new int256[][](chosen.length);
        for (uint256 k; k < chosen.length; ++k) {
            selectedEvent[k] = poolEvent[chosen[k]];
            selectedAdjustment[k] = poolAdjustment[chosen[k]];
        }
        int256[] memory adjustmentBaseline = xOfYBaseline(selectedAdjustment);
        _checkLength(adjustmentBaseline.length, actualAdjustment.length);
        int256 offset = additiveAdjustment(sum(adjustmentBaseline), sum(actualAdjustment), actualAdjustment.length);
        baseline = xOfYBaseline(selectedEvent);
        for (uint256 i; i < baseline.length; ++i) {
            baseline[i] += offset;
        }
    }

    /*//////////////////////////////////////////////////////////////
                                DELIVERY
    //////////////////////////////////////////////////////////////*/

    /// @notice Per interval: reduce max(0, baseline - metered), increase max(0, metered - baseline),
    ///         each capped at `capWh`.
    function deliveredWh(uint8 direction, int256[] memory baseline, int256[] memory metered, uint256 capWh)
        internal
        pure
        returns (uint256[] memory delivered)
    {
        if (direction > INCREASE_CONSUMPTION) revert BaselineMathUnknownDirection(direction);
        _checkLength(baseline.length, metered.length);
        delivered = new uint256[](baseline.length);
        for (uint256 i; i < baseline.length; ++i) {
            int256 diff = direction == REDUCE_CONSUMPTION ? baseline[i] - metered[i] : metered[i] - baseline[i];
            if (diff > 0) delivered[i] = uint256(diff) < capWh ? uint256(diff) : capWh;
        }
    }

    /// @notice The device's pro-rata share of the bid's awarded power times one interval, in Wh:
    ///         awardedW * deviceCapacityW / bidCapacityW * intervalSeconds / 3600, each step floored.
    function deviceCapWh(uint256 awardedW, uint256 deviceCapacityW, uint256 bidCapacityW, uint256 intervalSeconds)
        internal
        pure
        returns (uint256)
    {
        if (bidCapacityW == 0) revert BaselineMathZeroDivisor();
        // The share is floored to whole watts first on purpose (the device's power cap), then
        // turned into Wh; Python's device_cap_wh does the same two floors.
        // slither-disable-next-line divide-before-multiply
        uint256 shareW = awardedW * deviceCapacityW / bidCapacityW;
        return shareW * intervalSeconds / SECONDS_PER_HOUR;
    }

    function _checkLength(uint256 expected, uint256 actual) private pure {
        if (expected != actual) revert BaselineMathLengthMismatch(expected, actual);
    }
}
