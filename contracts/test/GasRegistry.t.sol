// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {GasBase} from "./Gas.t.sol";
import {DisputeFixtures} from "./utils/DisputeFixtures.sol";
import {IDeviceRegistry} from "../interfaces/IDeviceRegistry.sol";
import {IDisputeResolver} from "../interfaces/IDisputeResolver.sol";

/// @notice Gas of the device-history paths (issue 12 findings 1, 2, 3, 5): a fraud proof on
///         a device whose key was rotated (the binary search over its epochs), a direct
///         equivocation proof, a transfer's acceptance, and a challenge that locks a bond.
/// @dev Same pattern as Gas.t.sol: one contract per measurement, state built in setUp.
abstract contract GasHistoryBase is GasBase, DisputeFixtures {
    /// @dev Gas.t.sol's challenge target plus the epoch search (~4 cold reads for 15 ended
    ///      epochs) and the bond's lock.
    uint256 internal constant CHALLENGE_HISTORY_TARGET = 275_000;
    /// @dev Measured cold (the challenge ran in setUp, unlike Gas.t.sol's rebut, which finds
    ///      the registry and staking warm): epoch search, bond slash and owner penalty.
    uint256 internal constant REBUT_HISTORY_TARGET = 215_000;
    /// @dev Two 96-interval units verified (two signatures) and one penalty.
    uint256 internal constant PROVE_EQUIVOCATION_TARGET = 185_000;
    /// @dev A registration's key proof plus the archived epoch (four slots).
    uint256 internal constant ACCEPT_TRANSFER_TARGET = 160_000;
    uint256 internal constant DEVICE_KEY = 0xDE96;
    uint256 internal constant INTERVALS = 96;
    uint256 internal constant DISPUTED = 90;
    /// @dev Epochs before the one in force at the disputed interval, and after it.
    uint256 internal constant ROTATIONS_BEFORE = 7;
    uint256 internal constant ROTATIONS_AFTER = 8;
    uint256 internal requestId;
    uint256 internal deviceId;
    bytes internal used;
    bytes32[] internal proof;
    IDisputeResolver.MeterUnit internal signedUnit;
    IDisputeResolver.MeterUnit internal usedUnit;
    address internal owner;
    address internal challenger = address(0xC4A1);

    function rotate(uint256 key) internal {
        IDeviceRegistry.DeviceKey memory k = secpKey(owner, key);
        vm.prank(owner);
        registry.rotateKey(deviceId, k);
    }

    /// @dev The 96-interval challenge of Gas.t.sol on a device with 16 epochs: 7 rotations
    ///      before its readings, 8 after them (the search runs over 15 ended epochs).
    function buildChallengeableReport() internal {
        deployProtocol();
        requestId = createRequest(defaultParams());
        owner = provider(0);
        fundAndStake(owner, 2_000 * FLEX);
        uint256 windowEnd = market.request(requestId).windowEnd;
        uint256 first = windowEnd - INTERVALS * 900;
        vm.warp(first - 2 days);
        deviceId = registerDevice(owner, 0xDE00, 200_000, ZONE);
        for (uint256 i; i < ROTATIONS_BEFORE; ++i) {
            vm.warp(block.timestamp + 1 hours);
            rotate(i + 1 == ROTATIONS_BEFORE ? DEVICE_KEY : 0xDE01 + i);
        }
        vm.warp(T0);
        placeBid(owner, requestId, 100_000, 150_000, ids(deviceId));
        clearRequest(requestId);

        int64[] memory values = new int64[](INTERVALS);
        for (uint256 i; i < INTERVALS; ++i) {
            values[i] = int64(int256(10_000 + i * 37));
        }
        signedUnit = signSecp(unit(deviceId, first, values), DEVICE_KEY);
        values[DISPUTED] = 1;
        usedUnit = signSecp(unit(deviceId, first, values), DEVICE_KEY);
        used = packUsed(first, 900, values);
        for (uint256 i; i < 7; ++i) {
            proof.push(keccak256(abi.encode("sibling", i)));
        }
        bytes32 root = rootOf(readingsLeaf(deviceId, used), proof);
        postReportWithRoot(requestId, ids(100_000), root, twoSigners());
        for (uint256 i; i < ROTATIONS_AFTER; ++i) {
            vm.warp(block.timestamp + 1 minutes);
            rotate(0xDE20 + i);
        }
        stakeForChallenges(challenger, 1);
    }
}

contract GasChallengeWithBondTest is GasHistoryBase {
    function setUp() public {
        buildChallengeableReport();
    }

    function test_gas_challenge_withBond_keyHistory() public {
        bytes memory readings = used;
        bytes32[] memory siblings = proof;
        IDisputeResolver.MeterUnit memory u = signedUnit;
        vm.startPrank(challenger);
        vm.startSnapshotGas(GROUP, "challenge_96intervals_bond_16epochs");
        dispute.challenge(requestId, deviceId, readings, siblings, DISPUTED, u, DISPUTED);
        uint256 used_ = vm.stopSnapshotGas();
        vm.stopPrank();
        assertLe(used_, CHALLENGE_HISTORY_TARGET, "challenge with bond and key history");
        assertEq(lockedOf(challenger), dispute.challengeBond(), "bond locked");
    }

    function lockedOf(address account) internal view returns (uint256) {
        return staking.accountOf(account).locked;
    }
}

contract GasRebutKeyHistoryTest is GasHistoryBase {
    uint256 internal challengeId;

    function setUp() public {
        buildChallengeableReport();
        vm.prank(challenger);
        challengeId = dispute.challenge(requestId, deviceId, used, proof, DISPUTED, signedUnit, DISPUTED);
    }

    function test_gas_rebut_afterRotations() public {
        IDisputeResolver.MeterUnit memory u = usedUnit;
        vm.startSnapshotGas(GROUP, "rebut_96intervals_16epochs");
        dispute.rebut(challengeId, u, DISPUTED);
        uint256 used_ = vm.stopSnapshotGas();
        assertLe(used_, REBUT_HISTORY_TARGET, "rebut with key history");
        assertTrue(dispute.equivocated(deviceId), "rebutted");
    }
}

contract GasProveEquivocationTest is GasHistoryBase {
    function setUp() public {
        buildChallengeableReport();
    }

    function test_gas_proveEquivocation_96intervals() public {
        IDisputeResolver.MeterUnit memory a = signedUnit;
        IDisputeResolver.MeterUnit memory b = usedUnit;
        vm.startSnapshotGas(GROUP, "proveEquivocation_96intervals_16epochs");
        dispute.proveEquivocation(a, DISPUTED, b, DISPUTED);
        uint256 used_ = vm.stopSnapshotGas();
        assertLe(used_, PROVE_EQUIVOCATION_TARGET, "proveEquivocation");
        assertTrue(dispute.equivocated(deviceId), "marked");
    }
}

contract GasAcceptTransferTest is GasBase {
    /// @dev A registration's key proof plus the archived epoch (four slots).
    uint256 internal constant ACCEPT_TRANSFER_TARGET = 160_000;
    address internal seller = address(0x5E11);
    address internal buyer = address(0xB0E7);
    uint256 internal deviceId;
    IDeviceRegistry.DeviceKey internal key;

    function setUp() public {
        deployProtocol();
        deviceId = registerDevice(seller, 0xD5, 10_000, ZONE);
        vm.warp(block.timestamp + 1 days);
        vm.prank(seller);
        registry.transfer(deviceId, buyer);
        key = secpKey(buyer, 0xD6);
    }

    function test_gas_acceptTransfer() public {
        IDeviceRegistry.DeviceKey memory k = key;
        vm.startPrank(buyer);
        vm.startSnapshotGas(GROUP, "acceptTransfer");
        registry.acceptTransfer(deviceId, k);
        uint256 used_ = vm.stopSnapshotGas();
        vm.stopPrank();
        assertLe(used_, ACCEPT_TRANSFER_TARGET, "acceptTransfer: an archived epoch and a new key");
        assertEq(registry.device(deviceId).owner, buyer, "accepted");
    }
}
