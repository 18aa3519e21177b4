// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {DeliveryFixtures} from "./utils/DeliveryFixtures.sol";
import {IDeliveryDispute} from "./../interfaces/IDeliveryDispute.sol";
import {IFlexMarket} from "../interfaces/IFlexMarket.sol";

/// @notice Gas of the arithmetic fraud proofs at their worst (the pattern of Gas.t.sol: one
///         contract per measurement, setUp builds the state; figures are execution gas of the
///         call, written to the snapshot group `gridflex`). Each test also checks that the whole
///         transaction (21,000 + calldata, with the EIP-7623 floor, + execution) fits the
///         16,777,216 gas cap of EIP-7825, computed from the exact calldata.
/// @dev The bid holds 64 devices (MAX_DEVICES_PER_BID): one registry read per device for the
///      capacities. Trees hold 64 leaves (proofs of 6 siblings).
abstract contract GasDeliveryBase is DeliveryFixtures {
    string internal constant GROUP = "gridflex";
    uint256 internal constant TX_GAS_CAP = 16_777_216;
    uint256 internal constant DEVICES = 64;
    uint256 internal constant ADJUSTMENT = 12;

    address internal pool = address(0x9001);
    address internal prover = address(0x9002);
    uint256[] internal deviceIds;
    uint256 internal requestId;
    uint256 internal start;

    IDeliveryDispute.DeviceRecord internal wrong;
    bytes32[] internal recordProof;
    bytes internal used;
    bytes32[] internal readingsProof;

    /// @dev A request of `intervals` 15-minute intervals with `method`, one 64-device bid of
    ///      64 kW from the pool, cleared.
    function setUpRequest(uint8 method, uint256 intervals) internal {
        deployWithDelivery();
        fundAndStake(pool, 10_000 * FLEX);
        for (uint256 i; i < DEVICES; ++i) {
            deviceIds.push(registerDevice(pool, 0xD000 + i, 1_000 + uint48(i), ZONE));
        }
        IFlexMarket.RequestParams memory p = defaultParams();
        p.powerW = 64_000;
        p.baselineMethod = method;
        p.windowEnd = uint40(p.windowStart + intervals * INTERVAL);
        start = p.windowStart;
        requestId = createRequest(p);
        placeBid(pool, requestId, 64_000, 200_000, deviceIds);
        clearRequest(requestId);
    }

    /// @dev A perfect tree over `leaves` (a power of two) with sorted-pair hashing, as
    ///      OpenZeppelin's MerkleProof verifies; the root and the proof of leaf 0.
    function tree(bytes32[] memory leaves) internal pure returns (bytes32 root, bytes32[] memory proof) {
        uint256 depth;
        for (uint256 n = leaves.length; n > 1; n /= 2) {
            ++depth;
        }
        proof = new bytes32[](depth);
        uint256 level;
        uint256 index;
        while (leaves.length > 1) {
            proof[level++] = leaves[index ^ 1];
            bytes32[] memory up = new bytes32[](leaves.length / 2);
            for (uint256 i; i < up.length; ++i) {
                up[i] = hashPair(leaves[2 * i], leaves[2 * i + 1]);
            }
            leaves = up;
            index /= 2;
        }
        root = leaves[0];
    }

    function treeWith(bytes32 first) internal pure returns (bytes32 root, bytes32[] memory proof) {
        bytes32[] memory leaves = new bytes32[](DEVICES);
        leaves[0] = first;
        for (uint256 i = 1; i < DEVICES; ++i) {
            leaves[i] = keccak256(abi.encode("other leaf", i));
        }
        return tree(leaves);
    }

    /// @dev Posts a report whose record of the first device is `wrong`, over `used`.
    function postWrongRecord() internal {
        bytes32 devicesRoot;
        bytes32 readingsRoot;
        (devicesRoot, recordProof) = treeWith(recordLeaf(wrong));
        (readingsRoot, readingsProof) = treeWith(readingsLeaf(deviceIds[0], used));
        postRoots(requestId, one(uint256(wrong.deliveredWh)), devicesRoot, readingsRoot);
    }

    /// @dev Intrinsic gas of a transaction with `data` (EIP-2028 prices, EIP-7623 floor).
    function transactionGas(bytes memory data, uint256 execution) internal pure returns (uint256) {
        uint256 tokens;
        for (uint256 i; i < data.length; ++i) {
            tokens += data[i] == 0 ? 1 : 4;
        }
        uint256 standard = 21_000 + 4 * tokens + execution;
        uint256 floor = 21_000 + 10 * tokens;
        return standard > floor ? standard : floor;
    }

    function measureArithmetic(string memory name) internal returns (uint256 total) {
        bytes memory data = abi.encodeCall(
            delivery.challengeArithmetic, (requestId, wrong, recordProof, used, readingsProof, deviceIds)
        );
        vm.prank(prover);
        vm.startSnapshotGas(GROUP, name);
        (bool ok,) = address(delivery).call(data);
        uint256 execution = vm.stopSnapshotGas();
        assertTrue(ok, "the proof succeeds");
        assertTrue(market.request(requestId).status == IFlexMarket.RequestStatus.Cleared, "voided");
        total = transactionGas(data, execution);
        assertLe(total, TX_GAS_CAP, name);
        vm.snapshotValue(GROUP, string.concat(name, "_transaction"), total);
    }

    /// @dev Used readings: for each day in `backs` (oldest first) then the event day, the
    ///      12 adjustment and `intervals` event readings of that day.
    function xOfYReadings(uint256[] memory backs, uint256 intervals) internal view returns (bytes memory out) {
        uint256 perDay = ADJUSTMENT + intervals;
        out = usedBuffer((backs.length + 1) * perDay);
        uint256 n;
        for (uint256 d; d <= backs.length; ++d) {
            uint256 shift = d < backs.length ? backs[d] * DAY : 0;
            for (uint256 i; i < ADJUSTMENT; ++i) {
                put(out, n++, start - 4 hours + i * INTERVAL - shift, int256(1_000 + i));
            }
            for (uint256 i; i < intervals; ++i) {
                put(out, n++, start + i * INTERVAL - shift, int256(d < backs.length ? 2_000 + i : 900));
            }
        }
    }
}

/// @notice CAISO 10-in-10 at the largest window it can judge (20 h = 80 intervals, so 4 h of
///         adjustment lead plus the window fit a day) with the 10 weekdays an honest report
///         holds: 11 days x 92 readings = 1,012 used readings.
contract GasArithmeticCaisoTenDaysTest is GasDeliveryBase {
    uint256 internal constant INTERVALS = 80;

    function setUp() public {
        setUpRequest(1, INTERVALS);
        uint256 eventDay = start / DAY;
        uint256[] memory backs = new uint256[](10); // oldest first
        uint256 found;
        for (uint256 back = 1; found < 10; ++back) {
            if ((eventDay - back + 3) % 7 < 5) backs[9 - found++] = back;
        }
        used = xOfYReadings(backs, INTERVALS);
        wrong = IDeliveryDispute.DeviceRecord(deviceIds[0], 0, 1, 2, 3, OK);
        postWrongRecord();
    }

    function test_gas_challengeArithmetic_caiso_10days_80intervals_64devices() public {
        measureArithmetic("challengeArithmetic_caiso_10days_80intervals_64devices");
    }
}

/// @notice The worst a committee can commit for one device and the chain still scans: every
///         day of the 45-day lookback complete (46 days x 92 readings = 4,232 used readings),
///         80-interval CAISO window, 64-device bid.
contract GasArithmeticCaisoLookbackTest is GasDeliveryBase {
    uint256 internal constant INTERVALS = 80;

    function setUp() public {
        setUpRequest(1, INTERVALS);
        uint256[] memory backs = new uint256[](45);
        for (uint256 i; i < 45; ++i) {
            backs[i] = 45 - i;
        }
        used = xOfYReadings(backs, INTERVALS);
        wrong = IDeliveryDispute.DeviceRecord(deviceIds[0], 0, 1, 2, 3, OK);
        postWrongRecord();
    }

    function test_gas_challengeArithmetic_caiso_45dayLookback_80intervals_64devices() public {
        measureArithmetic("challengeArithmetic_caiso_45days_80intervals_64devices");
    }
}

/// @notice MBMA at the longest window (96 intervals): 97 used readings, 64-device bid.
contract GasArithmeticMbmaTest is GasDeliveryBase {
    uint256 internal constant INTERVALS = 96;

    function setUp() public {
        setUpRequest(0, INTERVALS);
        used = usedBuffer(INTERVALS + 1);
        put(used, 0, start - INTERVAL, 5_000);
        for (uint256 i; i < INTERVALS; ++i) {
            put(used, i + 1, start + i * INTERVAL, int256(1_000 + i));
        }
        wrong = IDeliveryDispute.DeviceRecord(deviceIds[0], 0, 1, 2, 3, OK);
        postWrongRecord();
    }

    function test_gas_challengeArithmetic_mbma_96intervals_64devices() public {
        measureArithmetic("challengeArithmetic_mbma_96intervals_64devices");
    }
}

/// @notice A per-bid figure against its 64 device records (64 proofs of 6 siblings).
contract GasBidTotalTest is GasDeliveryBase {
    IDeliveryDispute.ProvenRecord[] internal records;

    function setUp() public {
        setUpRequest(0, 4);
        bytes32[] memory leaves = new bytes32[](DEVICES);
        for (uint256 i; i < DEVICES; ++i) {
            leaves[i] = recordLeaf(IDeliveryDispute.DeviceRecord(deviceIds[i], 0, 4_000, 1_000, 100, OK));
        }
        bytes32 root;
        for (uint256 i; i < DEVICES; ++i) {
            // rotate leaf i to the front to reuse `tree` for its proof (same root: pairs are sorted)
            bytes32[] memory rotated = new bytes32[](DEVICES);
            for (uint256 j; j < DEVICES; ++j) {
                rotated[j] = leaves[j ^ i];
            }
            bytes32[] memory proof;
            (root, proof) = tree(rotated);
            records.push();
            records[i].record = IDeliveryDispute.DeviceRecord(deviceIds[i], 0, 4_000, 1_000, 100, OK);
            records[i].proof = proof;
        }
        postRoots(requestId, one(6_401), root, bytes32("readings"));
    }

    function test_gas_challengeBidTotal_64devices() public {
        bytes memory data =
            abi.encodeCall(delivery.challengeBidTotal, (requestId, one(6_401), uint16(0), records, deviceIds));
        vm.prank(prover);
        vm.startSnapshotGas(GROUP, "challengeBidTotal_64devices");
        (bool ok,) = address(delivery).call(data);
        uint256 execution = vm.stopSnapshotGas();
        assertTrue(ok, "the proof succeeds");
        assertTrue(market.request(requestId).status == IFlexMarket.RequestStatus.Cleared, "voided");
        assertLe(transactionGas(data, execution), TX_GAS_CAP, "challengeBidTotal_64devices");
    }
}
