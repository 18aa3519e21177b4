// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {BaselineMath} from "../libraries/BaselineMath.sol";
import {TestBase} from "./utils/TestBase.sol";

/// @notice Properties of BaselineMath; the shared hand-computed vectors run against the same
///         bytecode through BaselineMathHarness (tests/integration/test_baseline_vectors.py).
contract BaselineMathTest is TestBase {
    function test_floorDiv_roundsNegativeQuotientsDown() public pure {
        assertTrue(BaselineMath.floorDiv(-10_001, 10) == -1001, "-10001 / 10");
        assertTrue(BaselineMath.floorDiv(-10_000, 10) == -1000, "-10000 / 10");
        assertTrue(BaselineMath.floorDiv(10_001, 10) == 1000, "10001 / 10");
    }

    function test_dayOfAdjustment_capsBothWays() public pure {
        (int256 num, int256 den) = BaselineMath.dayOfAdjustmentCapped(12_540, 18_000, 2000);
        assertTrue(num == 12_000 && den == 10_000, "+20% cap");
        (num, den) = BaselineMath.dayOfAdjustmentCapped(12_540, 6000, 2000);
        assertTrue(num == 8000 && den == 10_000, "-20% cap");
        (num, den) = BaselineMath.dayOfAdjustmentCapped(-5, 6000, 2000);
        assertTrue(num == 1 && den == 1, "export baseline not adjusted");
    }

    function test_highestDays_keepsTheMoreRecentDayOnATie() public pure {
        int256[] memory totals = new int256[](5);
        for (uint256 i; i < 5; ++i) {
            totals[i] = 4000;
        }
        uint256[] memory chosen = BaselineMath.highestDays(totals, 4);
        assertEq(chosen.length, 4, "kept");
        assertEq(chosen[3], 3, "oldest day dropped");
    }

    function test_fuzz_floorDiv_isTheFloor(int128 a, uint64 b) public pure {
        int256 divisor = int256(uint256(bound(b, 1, type(uint64).max)));
        int256 q = BaselineMath.floorDiv(a, divisor);
        assertTrue(q * divisor <= a && a < (q + 1) * divisor, "floor");
    }

    function test_fuzz_deliveredWh_neverAboveTheCapNorNegative(
        bool increase,
        int128 baseline,
        int128 metered,
        uint128 capWh
    ) public pure {
        int256[] memory b = new int256[](1);
        int256[] memory m = new int256[](1);
        b[0] = baseline;
        m[0] = metered;
        uint256[] memory delivered = BaselineMath.deliveredWh(increase ? 1 : 0, b, m, capWh);
        assertLe(delivered[0], capWh, "capped");
        int256 diff = increase ? m[0] - b[0] : b[0] - m[0];
        if (diff > 0 && uint256(diff) <= capWh) assertEq(delivered[0], uint256(diff), "uncapped difference");
        if (diff <= 0) assertEq(delivered[0], 0, "no negative delivery");
    }

    function test_fuzz_caisoBaseline_staysWithinTwentyPercent(int64 value, int64 actual) public pure {
        int256[][] memory dayEvent = new int256[][](1);
        dayEvent[0] = new int256[](1);
        dayEvent[0][0] = value;
        int256[] memory actualAdjustment = new int256[](1);
        actualAdjustment[0] = actual;
        int256[] memory baseline = BaselineMath.caisoBaseline(dayEvent, dayEvent, actualAdjustment, 2000);
        int256 low = BaselineMath.floorDiv(int256(value) * 8, 10);
        int256 high = BaselineMath.floorDiv(int256(value) * 12, 10);
        if (low > high) (low, high) = (high, low);
        assertTrue(baseline[0] >= low && baseline[0] <= high, "within cap");
    }
}
