// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Deployers} from "./utils/Deployers.sol";
import {IDeviceRegistry} from "../interfaces/IDeviceRegistry.sol";

/// @notice `registerBatch`: a fleet of like devices in one transaction, each with its own key
///         proven, ids consecutive; one bad proof or a bad size refuses the whole batch.
contract DeviceRegistryBatchTest is Deployers {
    address internal owner = address(0xF1EE7);

    function setUp() public {
        deployProtocol();
    }

    function keys(uint256 count, uint256 firstKey) internal view returns (IDeviceRegistry.DeviceKey[] memory out) {
        out = new IDeviceRegistry.DeviceKey[](count);
        for (uint256 i; i < count; ++i) {
            out[i] = secpKey(owner, firstKey + i);
        }
    }

    function test_registerBatch_registersConsecutiveDevicesOfTheCaller() public {
        registerDevice(address(0xE1), 0xE1, 1_000, ZONE);
        IDeviceRegistry.DeviceKey[] memory batch = keys(5, 0x500);
        vm.prank(owner);
        uint256 first = registry.registerBatch(uint8(IDeviceRegistry.DeviceKind.HeatPump), 3_000, ZONE, batch);
        assertEq(first, 2, "ids follow the registry's counter");
        assertEq(registry.deviceCount(), 6, "five more");
        for (uint256 id = first; id < first + 5; ++id) {
            IDeviceRegistry.Device memory d = registry.device(id);
            assertEq(d.owner, owner, "owner");
            assertEq(d.capacityW, 3_000, "capacity");
            assertEq(d.zone, ZONE, "zone");
            assertEq(d.keyX, bytes32(uint256(uint160(vm.addr(0x500 + id - first)))), "its own key");
        }
    }

    function test_registerBatch_withOneBadProof_registersNothing() public {
        IDeviceRegistry.DeviceKey[] memory batch = keys(3, 0x600);
        batch[1] = secpKey(address(0xBAD), 0x601); // proven for another owner
        vm.prank(owner);
        vm.expectRevert(
            abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, IDeviceRegistry.KeyType.Secp256k1)
        );
        registry.registerBatch(0, 3_000, ZONE, batch);
        assertEq(registry.deviceCount(), 0, "nothing registered");
    }

    function test_registerBatch_ofNoDeviceOrTooMany_refused() public {
        vm.startPrank(owner);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidBatchSize.selector, 0, 200));
        registry.registerBatch(0, 3_000, ZONE, new IDeviceRegistry.DeviceKey[](0));
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidBatchSize.selector, 201, 200));
        registry.registerBatch(0, 3_000, ZONE, new IDeviceRegistry.DeviceKey[](201));
        vm.stopPrank();
    }
}
