// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {GasBase} from "./Gas.t.sol";
import {TestMerkle} from "./utils/TestMerkle.sol";
import {IFlexMarket} from "../interfaces/IFlexMarket.sol";
import {IDeliveryDispute} from "../interfaces/IDeliveryDispute.sol";
import {IDeviceRegistry} from "../interfaces/IDeviceRegistry.sol";

/// @notice Gas of pools (issue 14): a pool bid, its clearing, report and settlement with 10,
///         1,000 and 100,000 devices behind it (the same: nothing per device), enrolment and
///         leave per device, and member claims (one device, and the marginal device of a
///         batch). Same conventions as Gas.t.sol: `setUp` builds the state, the measured call
///         finds it cold. Figures are execution gas; a transaction adds 21,000 and its calldata.
abstract contract GasPoolBase is GasBase {
    address internal operator = address(0x9A01);
    address internal soloBidder = address(0x9A02);
    uint256 internal constant OWNER_KEYS = 0x70000;
    uint256 internal constant PER_OWNER = 250;
    uint48 internal constant MEMBER_W = 3_000;
    uint48 internal constant POOL_BID_W = 20_000;
    uint256 internal poolId;
    uint256 internal requestId;
    uint256 internal poolBid;
    uint256[] internal poolDevices;

    function ownerKey(uint256 deviceIndex) internal pure returns (uint256) {
        return OWNER_KEYS + deviceIndex / PER_OWNER;
    }

    /// @dev A pool of `devices` 3 kW devices, 250 per owner, each owner's enrolled with one
    ///      consent; a request the pool and one individual bidder can serve.
    function setUpPool(uint256 devices) internal {
        deployProtocol();
        fundAndStake(operator, 10_000 * FLEX);
        vm.prank(operator);
        poolId = pools.createPool(2_000, "gas");
        for (uint256 start; start < devices; start += PER_OWNER) {
            uint256 n = devices - start < PER_OWNER ? devices - start : PER_OWNER;
            address owner = vm.addr(ownerKey(start));
            uint256[] memory list = new uint256[](n);
            for (uint256 i; i < n; ++i) {
                list[i] = registerDevice(owner, 0x100000 + start + i, MEMBER_W, ZONE);
                poolDevices.push(list[i]);
            }
            enrollDevices(operator, poolId, ownerKey(start), list);
        }
        vm.warp(block.timestamp + 1);
        IFlexMarket.RequestParams memory p = defaultParams();
        p.powerW = 2 * POOL_BID_W;
        requestId = createRequest(p);
        fundAndStake(soloBidder, 1_000 * FLEX);
        placeBid(soloBidder, requestId, POOL_BID_W, 150_000, ids(registerDevice(soloBidder, 0xD0, 30_000, ZONE)));
    }

    /// @dev Every pool size measures the same figure (181.8k): nothing is read per device.
    uint256 internal constant POOL_BID_TARGET = 190_000;

    function measurePoolBid(string memory name) internal returns (uint256 used) {
        vm.startPrank(operator);
        vm.startSnapshotGas(GROUP, name);
        poolBid = market.bidAsPool(requestId, poolId, POOL_BID_W, 120_000);
        used = vm.stopSnapshotGas();
        vm.stopPrank();
    }

    /// @dev Pool bid, clear, report and finalize of the request, each measured.
    function measureLifecycle(string memory suffix) internal returns (uint256 bidGas) {
        bidGas = measurePoolBid(string.concat("poolBid_", suffix));
        assertLe(bidGas, POOL_BID_TARGET, "pool bid");
        vm.warp(market.request(requestId).gateClosure);
        uint16[] memory order = meritOrder(requestId);
        vm.startSnapshotGas(GROUP, string.concat("poolClear_", suffix));
        market.clear(requestId, order);
        vm.stopSnapshotGas();
        uint256[] memory delivered = new uint256[](2);
        (delivered[0], delivered[1]) = (POOL_BID_W, POOL_BID_W);
        bytes[] memory sigs = signReport(requestId, 0, delivered, bytes32("devices"), bytes32("readings"), twoSigners());
        vm.warp(market.request(requestId).windowEnd);
        vm.startSnapshotGas(GROUP, string.concat("poolSubmitReport_", suffix));
        market.submitReport(requestId, delivered, bytes32("devices"), bytes32("readings"), sigs);
        vm.stopSnapshotGas();
        vm.warp(block.timestamp + market.disputeWindow());
        vm.startSnapshotGas(GROUP, string.concat("poolFinalize_", suffix));
        market.finalize(requestId, delivered);
        vm.stopSnapshotGas();
        assertEq(pools.payoutOf(requestId, poolBid).poolId, poolId, "the pool was paid");
    }
}

contract GasPool10Test is GasPoolBase {
    function setUp() public {
        setUpPool(10);
    }

    function test_gas_poolLifecycle_10devices() public {
        measureLifecycle("10devices");
    }
}

contract GasPool1000Test is GasPoolBase {
    function setUp() public {
        setUpPool(1_000);
    }

    function test_gas_poolLifecycle_1000devices() public {
        measureLifecycle("1000devices");
    }
}

contract GasPool100000Test is GasPoolBase {
    function setUp() public {
        setUpPool(100_000);
    }

    function test_gas_poolLifecycle_100000devices() public {
        measureLifecycle("100000devices");
    }
}

/// @notice Enrolment per device (one consent of 250 devices, and of one) and a leave.
contract GasPoolMembershipTest is GasPoolBase {
    uint256[] internal batch;
    uint256 internal single;

    function setUp() public {
        setUpPool(10);
        address owner = vm.addr(OWNER_KEYS + 1);
        for (uint256 i; i < PER_OWNER; ++i) {
            batch.push(registerDevice(owner, 0x200000 + i, MEMBER_W, ZONE));
        }
        single = registerDevice(vm.addr(OWNER_KEYS + 2), 0x300000, MEMBER_W, ZONE);
        vm.warp(block.timestamp + 1);
    }

    function test_gas_enroll_perDevice() public {
        uint256 deadline = block.timestamp + 1 days;
        bytes memory one = signConsent(OWNER_KEYS + 2, poolId, ids(single), 0, deadline);
        vm.prank(operator);
        vm.startSnapshotGas(GROUP, "poolEnroll_1device");
        pools.enroll(poolId, vm.addr(OWNER_KEYS + 2), ids(single), 0, deadline, one);
        uint256 oneGas = vm.stopSnapshotGas();
        uint256[] memory devices = batch;
        bytes memory many = signConsent(OWNER_KEYS + 1, poolId, devices, 0, deadline);
        vm.prank(operator);
        vm.startSnapshotGas(GROUP, "poolEnroll_250devices");
        pools.enroll(poolId, vm.addr(OWNER_KEYS + 1), devices, 0, deadline, many);
        uint256 manyGas = vm.stopSnapshotGas();
        vm.snapshotValue(GROUP, "poolEnroll_perDevice_in250", manyGas / PER_OWNER);
        assertLe(manyGas / PER_OWNER, oneGas, "a batch is cheaper per device");
    }

    function test_gas_registerBatch_perDevice() public {
        uint256 count = registry.MAX_BATCH();
        IDeviceRegistry.DeviceKey[] memory keys = new IDeviceRegistry.DeviceKey[](count);
        address owner = vm.addr(OWNER_KEYS + 3);
        for (uint256 i; i < count; ++i) {
            keys[i] = secpKey(owner, 0x500000 + i);
        }
        vm.prank(owner);
        registry.registerBatch(0, MEMBER_W, ZONE, keys);
        uint256 used = vm.snapshotGasLastCall(GROUP, "registerBatch_200devices");
        vm.snapshotValue(GROUP, "registerBatch_perDevice_in200", used / count);
        assertLe(used / count, 90_000, "per device in a batch");
        assertLe(used, 16_777_216, "within the per-transaction gas cap");
    }

    function test_gas_leave() public {
        vm.prank(vm.addr(OWNER_KEYS));
        vm.startSnapshotGas(GROUP, "poolRequestLeave_1device");
        pools.requestLeave(ids(poolDevices[0]));
        vm.stopSnapshotGas();
        vm.warp(block.timestamp + 1 days);
        vm.startSnapshotGas(GROUP, "poolCompleteLeave_1device");
        pools.completeLeave(ids(poolDevices[0]));
        vm.stopSnapshotGas();
    }
}

/// @notice Member claims from a settled pool bid of 1,000 devices (a 1,000-leaf record tree,
///         proofs of 10 hashes). The figures are the claim call's execution gas, each measured
///         cold in its own test; a transaction adds 21,000 and about 16 gas per calldata byte
///         (a one-device claim sends about 700 bytes).
abstract contract GasPoolClaimBase is GasPoolBase {
    bytes32[] internal leaves;
    IDeliveryDispute.DeviceRecord[] internal records;
    mapping(uint256 index => bytes32[]) internal proofOf;

    function setUpClaims() internal {
        setUpPool(1_000);
        vm.prank(operator);
        poolBid = market.bidAsPool(requestId, poolId, POOL_BID_W, 120_000);
        clearRequest(requestId);
        for (uint256 i; i < poolDevices.length; ++i) {
            // 20 Wh each: 20,000 Wh for the bid.
            records.push(IDeliveryDispute.DeviceRecord(poolDevices[i], uint16(poolBid), 100, 80, 20, 0));
            leaves.push(
                keccak256(
                    bytes.concat(
                        keccak256(
                            abi.encode(poolDevices[i], uint16(poolBid), int256(100), int256(80), int256(20), uint8(0))
                        )
                    )
                )
            );
        }
        uint256[] memory delivered = new uint256[](2);
        delivered[poolBid] = 20_000;
        bytes32 root = TestMerkle.root(leaves);
        bytes[] memory sigs = signReport(requestId, 0, delivered, root, bytes32("readings"), twoSigners());
        vm.warp(market.request(requestId).windowEnd);
        market.submitReport(requestId, delivered, root, bytes32("readings"), sigs);
        vm.warp(block.timestamp + market.disputeWindow());
        market.finalize(requestId, delivered);
        // Proofs built here: the tree's memory would otherwise be paid for by the measured call.
        for (uint256 i = 300; i < 302; ++i) {
            proofOf[i] = TestMerkle.proof(leaves, i);
        }
        for (uint256 i = 500; i < 512; ++i) {
            proofOf[i] = TestMerkle.proof(leaves, i);
        }
    }

    function claim(uint256 first, uint256 count, string memory name) internal returns (uint256 used) {
        IDeliveryDispute.DeviceRecord[] memory batch = new IDeliveryDispute.DeviceRecord[](count);
        bytes32[][] memory proofs = new bytes32[][](count);
        for (uint256 i; i < count; ++i) {
            batch[i] = records[first + i];
            proofs[i] = proofOf[first + i];
        }
        vm.prank(vm.addr(ownerKey(first)));
        uint256 amount = pools.claim(requestId, batch, proofs);
        // The call's own gas: the test's memory (the tree) would inflate a region measure.
        used = bytes(name).length == 0 ? 0 : vm.snapshotGasLastCall(GROUP, name);
        assertEq(amount, count * (pools.payoutOf(requestId, poolBid).memberPot * 20 / 20_000), "paid");
    }
}

/// @notice The request's first claim in a claimed-bitmap word (256 device ids share one), by
///         an owner holding no tEUR yet: two fresh storage slots (about 40k of it).
contract GasPoolClaimFirstTest is GasPoolClaimBase {
    function setUp() public {
        setUpClaims();
    }

    function test_gas_claim_firstInItsWord_freshOwner() public {
        claim(300, 1, "poolClaim_1device_first");
    }
}

/// @notice The steady state: the bitmap word is in use and the owner already holds tEUR.
contract GasPoolClaimSteadyTest is GasPoolClaimBase {
    function setUp() public {
        setUpClaims();
        claim(300, 1, "");
        claim(500, 1, "");
    }

    function test_gas_claim_oneDevice() public {
        assertLe(claim(301, 1, "poolClaim_1device"), 60_000, "one device's claim");
    }

    function test_gas_sweepUnclaimed() public {
        vm.warp(block.timestamp + pools.CLAIM_PERIOD() + 1);
        pools.sweepUnclaimed(requestId, poolBid);
        assertLe(vm.snapshotGasLastCall(GROUP, "poolSweepUnclaimed"), 60_000, "one sweep");
    }

    function test_gas_claim_tenDevices() public {
        uint256 ten = claim(502, 10, "poolClaim_10devices");
        // The marginal device: against test_gas_claim_oneDevice's figure, measured alike.
        vm.snapshotValue(GROUP, "poolClaim_10devices_perDevice", ten / 10);
    }
}
