// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {BaselineMath} from "../../libraries/BaselineMath.sol";

/// @notice Exposes BaselineMath so Python runs the shared baseline vectors against its bytecode
///         (tests/integration/test_baseline_vectors.py).
contract BaselineMathHarness {
    function floorDiv(int256 a, int256 b) external pure returns (int256) {
        return BaselineMath.floorDiv(a, b);
    }

    function averageFloor(int256[] memory values) external pure returns (int256) {
        return BaselineMath.averageFloor(values);
    }

    function mbma(int256 lastBeforeWh, uint256 intervals) external pure returns (int256[] memory) {
        return BaselineMath.mbma(lastBeforeWh, intervals);
    }

    function xOfYBaseline(int256[][] memory dayValues) external pure returns (int256[] memory) {
        return BaselineMath.xOfYBaseline(dayValues);
    }

    function highestDays(int256[] memory dayTotals, uint256 keep) external pure returns (uint256[] memory) {
        return BaselineMath.highestDays(dayTotals, keep);
    }

    function dayOfAdjustmentCapped(int256 baselineSum, int256 actualSum, uint256 capBps)
        external
        pure
        returns (int256, int256)
    {
        return BaselineMath.dayOfAdjustmentCapped(baselineSum, actualSum, capBps);
    }

    function additiveAdjustment(int256 baselineSum, int256 actualSum, uint256 windowIntervals)
        external
        pure
        returns (int256)
    {
        return BaselineMath.additiveAdjustment(baselineSum, actualSum, windowIntervals);
    }

    function caisoBaseline(
        int256[][] memory dayEvent,
        int256[][] memory dayAdjustment,
        int256[] memory actualAdjustment,
        uint256 capBps
    ) external pure returns (int256[] memory) {
        return BaselineMath.caisoBaseline(dayEvent, dayAdjustment, actualAdjustment, capBps);
    }

    function pjmBaseline(
        int256[][] memory poolEvent,
        int256[][] memory poolAdjustment,
        int256[] memory actualAdjustment,
        uint256 keep
    ) external pure returns (int256[] memory) {
        return BaselineMath.pjmBaseline(poolEvent, poolAdjustment, actualAdjustment, keep);
    }

    function deliveredWh(uint8 direction, int256[] memory baseline, int256[] memory metered, uint256 capWh)
        external
        pure
        returns (uint256[] memory)
    {
        return BaselineMath.deliveredWh(direction, baseline, metered, capWh);
    }

    function deviceCapWh(uint256 awardedW, uint256 deviceCapacityW, uint256 bidCapacityW, uint256 intervalSeconds)
        external
        pure
        returns (uint256)
    {
        return BaselineMath.deviceCapWh(awardedW, deviceCapacityW, bidCapacityW, intervalSeconds);
    }

    function wellFormedUsedReadings(bytes calldata used) external pure returns (bool) {
        return BaselineMath.wellFormedUsedReadings(used);
    }

    function measureUsedReadings(bytes calldata used, BaselineMath.Measurement memory m)
        external
        pure
        returns (BaselineMath.Figures memory)
    {
        return BaselineMath.measureUsedReadings(used, m);
    }
}
