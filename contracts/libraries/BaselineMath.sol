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

    /*//////////////////////////////////////////////////////////////
                     RECORDS FROM USED READINGS
    //////////////////////////////////////////////////////////////*/

    uint8 internal constant METHOD_MBMA = 0;
    uint8 internal constant METHOD_CAISO_10_OF_10 = 1;
    uint8 internal constant METHOD_PJM_HIGH_4_OF_5 = 2;
    uint8 internal constant QUALITY_OK = 0;
    uint8 internal constant QUALITY_FALLBACK = 1;
    uint8 internal constant QUALITY_INSUFFICIENT_DATA = 2;
    uint8 internal constant QUALITY_CONFLICT = 3;
    uint256 internal constant SECONDS_PER_DAY = 86_400;
    /// @dev X-of-Y history: the days event_day - 45 .. event_day - 1.
    uint256 internal constant LOOKBACK_DAYS = 45;
    /// @dev Day-of adjustment window: [start - 4 h, start - 1 h).
    uint256 internal constant ADJUSTMENT_LEAD_SECONDS = 4 hours;
    uint256 internal constant ADJUSTMENT_WINDOW_SECONDS = 3 hours;
    uint256 internal constant ADJUSTMENT_CAP_BPS = 2_000;
    uint256 internal constant USED_READING_BYTES = 16;

    /// @notice Thrown when the record of an X-of-Y method cannot be recomputed from used
    ///         readings alone: the adjustment lead (4 h) plus the window exceeds one day, so two
    ///         history days' intervals overlap and the used readings no longer say which days
    ///         were chosen (see `measureUsedReadings`).
    error BaselineMathNotJudgeable(uint8 method, uint256 windowSeconds);
    /// @notice Thrown for a baseline method id without a rule here.
    error BaselineMathUnknownMethod(uint8 method);

    /// @notice The facts of one device's measurement besides its readings (all on-chain).
    struct Measurement {
        uint8 method;
        uint8 direction;
        uint256 windowStart;
        uint256 windowEnd;
        uint256 intervalSeconds;
        /// @dev `deviceCapWh` of the device in its bid (per interval).
        uint256 capWh;
    }

    /// @notice A device record's figures, summed over the event intervals (gridflex/reports.py).
    struct Figures {
        int256 baselineWh;
        int256 meteredWh;
        int256 deliveredWh;
        uint8 quality;
    }

    /// @dev Day-of-history bookkeeping of `measureUsedReadings`.
    struct Layout {
        uint256 base; // start of the event day's needed span (adjustment window start)
        uint256 span; // adjustment lead + window: one day's needed span
        uint256 adjustment; // intervals in the adjustment window
        uint256 events; // event intervals
        uint256 interval;
        uint256 eventDay;
        bool weekend;
    }

    /// @dev What one pass over the used readings found: complete-day counts by days back, the
    ///      event day's adjustment-window readings and how many of them and of its event
    ///      intervals are present.
    struct Scan {
        uint256[] counts;
        int256[] actual;
        uint256 actualPresent;
        uint256 eventPresent;
    }

    /// @notice True when `used` is whole 16-byte (uint64 intervalStart, int64 energyWh) pairs in
    ///         strictly ascending interval order: what `gridflex.reports.pack_used_readings`
    ///         writes. Anything else was never written by an honest measurement.
    function wellFormedUsedReadings(bytes calldata used) internal pure returns (bool) {
        uint256 length = used.length;
        if (length % USED_READING_BYTES != 0) return false;
        uint256 previous = 0;
        for (uint256 offset; offset < length; offset = _next(offset)) {
            (uint256 t,) = _reading(used, offset);
            if (offset > 0 && t <= previous) return false;
            previous = t;
        }
        return true;
    }

    /// @notice The record `gridflex.measurement.measure_device` builds for a device whose only
    ///         readings are `used` (well formed, see `wellFormedUsedReadings`), with no excluded
    ///         days and no conflicts: what follows from the report's own used readings.
    /// @dev Mirrors `gridflex.measurement.recompute_from_used_readings`. Rules, first match wins:
    ///      an event interval missing -> INSUFFICIENT_DATA, delivered 0 (the baseline still
    ///      summed); no usable baseline (MBMA: no reading just before the window; X-of-Y: fewer
    ///      complete history days than the method's minimum, or an adjustment-window reading of
    ///      the event day missing) -> INSUFFICIENT_DATA, zero baseline; else OK (X-of-Y: the
    ///      method's full pool of days) or FALLBACK (fewer days, at least the minimum), and the
    ///      delivered sum of `deliveredWh`. History days (X-of-Y): the `pool` most recent days
    ///      d in event_day-45..event_day-1 of the event day's type (weekday or weekend) whose
    ///      every needed interval (adjustment window and event intervals, shifted back by whole
    ///      days) is in `used`. Honest used readings hold exactly the needed intervals of the
    ///      chosen days and of the event day, so this finds the days the oracles chose; it
    ///      needs the needed span (4 h + window) to fit one day, else the days' intervals
    ///      overlap (BaselineMathNotJudgeable).
    function measureUsedReadings(bytes calldata used, Measurement memory m) internal pure returns (Figures memory f) {
        if (m.intervalSeconds == 0) revert BaselineMathZeroDivisor();
        int256[] memory metered = new int256[]((m.windowEnd - m.windowStart) / m.intervalSeconds);
        (int256[] memory baseline, bool eventComplete, uint8 quality) = _baselineFromUsed(used, m, metered);
        f.quality = quality;
        f.baselineWh = sum(baseline);
        f.meteredWh = sum(metered);
        if (!eventComplete) {
            f.quality = QUALITY_INSUFFICIENT_DATA;
        } else if (f.quality != QUALITY_INSUFFICIENT_DATA) {
            uint256[] memory delivered = deliveredWh(m.direction, baseline, metered, m.capWh);
            for (uint256 i; i < delivered.length; ++i) {
                f.deliveredWh += int256(delivered[i]);
            }
        }
    }

    /// @dev The method's baseline; fills `metered` with the event intervals found.
    function _baselineFromUsed(bytes calldata used, Measurement memory m, int256[] memory metered)
        private
        pure
        returns (int256[] memory, bool, uint8)
    {
        if (m.method == METHOD_MBMA) return _mbmaFromUsed(used, m, metered);
        if (m.method == METHOD_CAISO_10_OF_10 || m.method == METHOD_PJM_HIGH_4_OF_5) {
            return _xOfYFromUsed(used, m, metered);
        }
        revert BaselineMathUnknownMethod(m.method);
    }

    /// @dev Fills `metered` with the event intervals found; MBMA's baseline is the reading of
    ///      the interval just before the window.
    function _mbmaFromUsed(bytes calldata used, Measurement memory m, int256[] memory metered)
        private
        pure
        returns (int256[] memory baseline, bool eventComplete, uint8 quality)
    {
        (int256 before, bool found, uint256 present) = _mbmaReadings(used, m, metered);
        eventComplete = present == metered.length;
        if (!found) return (new int256[](metered.length), eventComplete, QUALITY_INSUFFICIENT_DATA);
        return (mbma(before, metered.length), eventComplete, QUALITY_OK);
    }

    /// @dev Fills `metered` with the event day's event intervals found (pass 1), then averages
    ///      the pool days (pass 2).
    function _xOfYFromUsed(bytes calldata used, Measurement memory m, int256[] memory metered)
        private
        pure
        returns (int256[] memory baseline, bool eventComplete, uint8 quality)
    {
        Layout memory l = _layout(m, metered.length);
        Scan memory scan = _scanDays(used, l, metered);
        eventComplete = scan.eventPresent == l.events;
        uint256[] memory poolBack;
        (poolBack, quality) = _pool(scan, l, m.method);
        if (quality == QUALITY_INSUFFICIENT_DATA) return (new int256[](l.events), eventComplete, quality);
        baseline = _poolBaseline(used, l, poolBack, scan.actual, m.method);
    }

    /// @dev Pass 2: the pool days' values (most recent first), then the method's baseline.
    function _poolBaseline(
        bytes calldata used,
        Layout memory l,
        uint256[] memory poolBack,
        int256[] memory actual,
        uint8 method
    ) private pure returns (int256[] memory) {
        (int256[][] memory dayEvent, int256[][] memory dayAdjustment) = _poolValues(used, l, poolBack);
        if (method == METHOD_CAISO_10_OF_10) return caisoBaseline(dayEvent, dayAdjustment, actual, ADJUSTMENT_CAP_BPS);
        (, uint256 keep,) = _dayRule(method, l.weekend);
        return pjmBaseline(dayEvent, dayAdjustment, actual, keep);
    }

    /// @dev (pool days, days kept, minimum days) of gridflex.baselines.X_OF_Y_RULES.
    function _dayRule(uint8 method, bool weekend) private pure returns (uint256, uint256, uint256) {
        if (method == METHOD_CAISO_10_OF_10) return weekend ? (4, 4, 2) : (10, 10, 5);
        return weekend ? (3, 2, 2) : (5, 4, 3);
    }

    /// @notice Unix day 0 (1970-01-01) was a Thursday; Saturday and Sunday are weekend days.
    function isWeekend(uint256 unixDay) internal pure returns (bool) {
        return (unixDay + 3) % 7 >= 5;
    }

    function _layout(Measurement memory m, uint256 events) private pure returns (Layout memory l) {
        uint256 windowSeconds = m.windowEnd - m.windowStart;
        if (windowSeconds + ADJUSTMENT_LEAD_SECONDS > SECONDS_PER_DAY) {
            revert BaselineMathNotJudgeable(m.method, windowSeconds);
        }
        l.base = m.windowStart - ADJUSTMENT_LEAD_SECONDS;
        l.span = windowSeconds + ADJUSTMENT_LEAD_SECONDS;
        l.adjustment = ADJUSTMENT_WINDOW_SECONDS / m.intervalSeconds;
        l.events = events;
        l.interval = m.intervalSeconds;
        l.eventDay = m.windowStart / SECONDS_PER_DAY;
        l.weekend = isWeekend(l.eventDay);
    }

    /// @dev Where reading `t` sits: `back` days before the event day, at needed slot `slot`
    ///      (adjustment intervals first, then event intervals); `ok` false for a reading no day
    ///      needs (off the grid, in the hour before the start, after the window, too old).
    function _slot(uint256 t, Layout memory l) private pure returns (bool ok, uint256 back, uint256 slot) {
        // Unchecked: t < 2^64 and l.base > 4 h, so nothing below wraps or overflows.
        unchecked {
            uint256 base = l.base;
            if (t >= base + l.span) return (false, 0, 0);
            if (t < base) back = (base - t + SECONDS_PER_DAY - 1) / SECONDS_PER_DAY;
            if (back > LOOKBACK_DAYS) return (false, 0, 0);
            uint256 offset = t + back * SECONDS_PER_DAY - base;
            uint256 interval = l.interval;
            if (offset >= l.span || offset % interval != 0) return (false, 0, 0);
            if (offset < ADJUSTMENT_WINDOW_SECONDS) return (true, back, offset / interval);
            if (offset < ADJUSTMENT_LEAD_SECONDS) return (false, 0, 0);
            return (true, back, l.adjustment + (offset - ADJUSTMENT_LEAD_SECONDS) / interval);
        }
    }

    /// @dev Reading at byte `offset` (a multiple of 16 below `used.length`, which the loops
    ///      guarantee): uint64 interval start and int64 energy, big-endian.
    function _reading(bytes calldata used, uint256 offset) private pure returns (uint256 t, int256 energyWh) {
        assembly ("memory-safe") {
            let word := calldataload(add(used.offset, offset))
            t := shr(192, word)
            energyWh := signextend(7, shr(128, word))
        }
    }

    function _next(uint256 offset) private pure returns (uint256) {
        unchecked {
            return offset + USED_READING_BYTES;
        }
    }

    function _mbmaReadings(bytes calldata used, Measurement memory m, int256[] memory metered)
        private
        pure
        returns (int256 before, bool found, uint256 present)
    {
        uint256 interval = m.intervalSeconds;
        uint256 first = m.windowStart - interval;
        for (uint256 offset; offset + USED_READING_BYTES <= used.length; offset = _next(offset)) {
            (uint256 t, int256 energyWh) = _reading(used, offset);
            if (t == first) {
                (before, found) = (energyWh, true);
            } else if (t >= m.windowStart && t < m.windowEnd && (t - m.windowStart) % interval == 0) {
                metered[(t - m.windowStart) / interval] = energyWh;
                ++present;
            }
        }
    }

    function _scanDays(bytes calldata used, Layout memory l, int256[] memory metered)
        private
        pure
        returns (Scan memory scan)
    {
        scan.counts = new uint256[](LOOKBACK_DAYS + 1);
        scan.actual = new int256[](l.adjustment);
        for (uint256 offset; offset + USED_READING_BYTES <= used.length; offset = _next(offset)) {
            (uint256 t, int256 energyWh) = _reading(used, offset);
            (bool ok, uint256 back, uint256 slot) = _slot(t, l);
            if (!ok) continue;
            scan.counts[back] += 1;
            if (back != 0) continue;
            if (slot < l.adjustment) {
                scan.actual[slot] = energyWh;
                ++scan.actualPresent;
            } else {
                metered[slot - l.adjustment] = energyWh;
                ++scan.eventPresent;
            }
        }
    }

    /// @dev Days back (ascending: most recent first) of the method's pool: the most recent
    ///      complete days of the event day's type; INSUFFICIENT_DATA below the method's minimum
    ///      or without the event day's whole adjustment window, FALLBACK below the full pool.
    function _pool(Scan memory scan, Layout memory l, uint8 method)
        private
        pure
        returns (uint256[] memory poolBack, uint8 quality)
    {
        (uint256 poolSize,, uint256 minDays) = _dayRule(method, l.weekend);
        uint256[] memory found = new uint256[](poolSize);
        uint256 n = 0;
        uint256 needed = l.adjustment + l.events;
        for (uint256 back = 1; back <= LOOKBACK_DAYS && n < poolSize; ++back) {
            if (scan.counts[back] == needed && isWeekend(l.eventDay - back) == l.weekend) found[n++] = back;
        }
        poolBack = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            poolBack[i] = found[i];
        }
        if (n < minDays || scan.actualPresent < l.adjustment) quality = QUALITY_INSUFFICIENT_DATA;
        else quality = n == poolSize ? QUALITY_OK : QUALITY_FALLBACK;
    }

    function _poolValues(bytes calldata used, Layout memory l, uint256[] memory poolBack)
        private
        pure
        returns (int256[][] memory dayEvent, int256[][] memory dayAdjustment)
    {
        uint256 days_ = poolBack.length;
        dayEvent = new int256[][](days_);
        dayAdjustment = new int256[][](days_);
        // position + 1 of each day back in the pool, 0 when not in it
        uint256[] memory position = new uint256[](LOOKBACK_DAYS + 1);
        for (uint256 i; i < days_; ++i) {
            dayEvent[i] = new int256[](l.events);
            dayAdjustment[i] = new int256[](l.adjustment);
            position[poolBack[i]] = i + 1;
        }
        for (uint256 offset; offset + USED_READING_BYTES <= used.length; offset = _next(offset)) {
            (uint256 t, int256 energyWh) = _reading(used, offset);
            (bool ok, uint256 back, uint256 slot) = _slot(t, l);
            if (!ok || back == 0 || position[back] == 0) continue;
            uint256 day = position[back] - 1;
            if (slot < l.adjustment) dayAdjustment[day][slot] = energyWh;
            else dayEvent[day][slot - l.adjustment] = energyWh;
        }
    }

    function _checkLength(uint256 expected, uint256 actual) private pure {
        if (expected != actual) revert BaselineMathLengthMismatch(expected, actual);
    }
}
