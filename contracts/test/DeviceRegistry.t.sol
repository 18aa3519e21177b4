// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Deployers} from "./utils/Deployers.sol";
import {DeviceRegistry} from "../DeviceRegistry.sol";
import {IDeviceRegistry} from "../interfaces/IDeviceRegistry.sol";

contract DeviceRegistryTest is Deployers {
    uint256 internal constant P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551;
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    bytes32 internal constant OTHER_ZONE = keccak256("NL-RTM-02");

    uint8 internal constant BATTERY = uint8(IDeviceRegistry.DeviceKind.Battery);
    uint8 internal constant HEAT_PUMP = uint8(IDeviceRegistry.DeviceKind.HeatPump);
    IDeviceRegistry.KeyType internal constant SECP = IDeviceRegistry.KeyType.Secp256k1;
    IDeviceRegistry.KeyType internal constant P256 = IDeviceRegistry.KeyType.P256;

    address internal alice = address(0xA11);
    address internal bob = address(0xB0B);
    uint256 internal constant DEV_KEY = 0xD1;
    uint256 internal constant DEV_KEY_2 = 0xD2;
    uint256 internal constant P256_KEY = 0x5EC2E7;
    uint256 internal constant P256_KEY_2 = 0x5EC2E8;

    function setUp() public {
        deployProtocol();
    }

    // ─── Helpers ──────────────────────────────────────────────────────────────────────────

    function _secpKeyX(uint256 deviceKey) internal pure returns (bytes32) {
        return bytes32(uint256(uint160(vm.addr(deviceKey))));
    }

    function _p256XY(uint256 deviceKey) internal pure returns (bytes32 x, bytes32 y) {
        (uint256 px, uint256 py) = vm.publicKeyP256(deviceKey);
        return (bytes32(px), bytes32(py));
    }

    function _registerP256(address owner, uint256 deviceKey, uint48 capacityW, bytes32 zone)
        internal
        returns (uint256 deviceId)
    {
        IDeviceRegistry.DeviceKey memory key = p256Key(owner, deviceKey);
        vm.prank(owner);
        deviceId = registry.register(HEAT_PUMP, capacityW, zone, key);
    }

    function _expectRegisterRevert(address owner, IDeviceRegistry.DeviceKey memory key, bytes memory err) internal {
        vm.expectRevert(err);
        vm.prank(owner);
        registry.register(BATTERY, 10_000, ZONE, key);
    }

    function _proofParts(bytes memory proof) internal pure returns (bytes32 r, bytes32 s) {
        assembly {
            r := mload(add(proof, 32))
            s := mload(add(proof, 64))
        }
    }

    // ─── register ─────────────────────────────────────────────────────────────────────────

    function test_register_secp256k1_storesDeviceAndEmits() public {
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY);
        vm.expectEmit(true, true, true, true, address(registry));
        emit IDeviceRegistry.DeviceRegistered(
            1, alice, ZONE, IDeviceRegistry.DeviceKind.Battery, 60_000, SECP, _secpKeyX(DEV_KEY), bytes32(0)
        );
        vm.prank(alice);
        uint256 id = registry.register(BATTERY, 60_000, ZONE, key);

        assertEq(id, 1, "first id is 1");
        assertEq(registry.deviceCount(), 1, "count");
        IDeviceRegistry.Device memory d = registry.device(id);
        assertEq(d.owner, alice, "owner");
        assertEq(uint256(d.capacityW), 60_000, "capacity");
        assertEq(uint256(d.kind), uint256(IDeviceRegistry.DeviceKind.Battery), "kind");
        assertEq(uint256(d.keyType), uint256(SECP), "key type");
        assertEq(d.active, true, "active");
        assertEq(d.zone, ZONE, "zone");
        assertEq(d.keyX, _secpKeyX(DEV_KEY), "keyX is the signer address");
        assertEq(d.keyY, bytes32(0), "keyY unused");
        assertEq(uint256(d.lastTransferAt), 0, "never transferred");
    }

    function test_register_p256_storesDeviceAndEmits() public {
        IDeviceRegistry.DeviceKey memory key = p256Key(alice, P256_KEY);
        (bytes32 x, bytes32 y) = _p256XY(P256_KEY);
        vm.expectEmit(true, true, true, true, address(registry));
        emit IDeviceRegistry.DeviceRegistered(1, alice, ZONE, IDeviceRegistry.DeviceKind.HeatPump, 7_000, P256, x, y);
        vm.prank(alice);
        uint256 id = registry.register(HEAT_PUMP, 7_000, ZONE, key);

        assertEq(id, 1, "first id is 1");
        IDeviceRegistry.Device memory d = registry.device(id);
        assertEq(d.owner, alice, "owner");
        assertEq(uint256(d.keyType), uint256(P256), "key type");
        assertEq(uint256(d.kind), uint256(IDeviceRegistry.DeviceKind.HeatPump), "kind");
        assertEq(d.keyX, x, "x");
        assertEq(d.keyY, y, "y");
        assertEq(uint256(d.capacityW), 7_000, "capacity");
    }

    function test_register_p256_lowSProofFromHelper() public view {
        IDeviceRegistry.DeviceKey memory key = p256Key(alice, P256_KEY);
        (, bytes32 s) = _proofParts(key.proof);
        assertLe(uint256(s), P256_N / 2, "helper normalises s");
        assertEq(key.proof.length, 64, "r||s");
        assertEq(key.data.length, 64, "x||y");
    }

    function test_register_idsAscendFromOne() public {
        assertEq(registry.deviceCount(), 0, "empty");
        assertEq(registerDevice(alice, DEV_KEY, 1_000, ZONE), 1, "id 1");
        assertEq(_registerP256(bob, P256_KEY, 1_000, ZONE), 2, "id 2");
        assertEq(registerDevice(alice, DEV_KEY_2, 1_000, OTHER_ZONE), 3, "id 3");
        assertEq(registry.deviceCount(), 3, "count");
    }

    function test_register_sameKeyTwice_allowed() public {
        uint256 a = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        uint256 b = registerDevice(alice, DEV_KEY, 2_000, ZONE);
        assertEq(registry.device(a).keyX, registry.device(b).keyX, "same key");
    }

    function test_register_everyKind_accepted() public {
        for (uint8 kind; kind <= uint8(IDeviceRegistry.DeviceKind.Other); ++kind) {
            IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY);
            vm.prank(alice);
            uint256 id = registry.register(kind, 1_000, ZONE, key);
            assertEq(uint256(registry.device(id).kind), kind, "kind");
        }
    }

    function test_register_maxCapacity_accepted() public {
        uint48 max = registry.MAX_CAPACITY_W();
        uint256 id = registerDevice(alice, DEV_KEY, max, ZONE);
        assertEq(uint256(registry.device(id).capacityW), max, "max capacity");
    }

    function test_register_invalidKind_reverts() public {
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY);
        uint8 bad = uint8(IDeviceRegistry.DeviceKind.Other) + 1;
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidKind.selector, bad));
        vm.prank(alice);
        registry.register(bad, 1_000, ZONE, key);

        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidKind.selector, uint8(255)));
        vm.prank(alice);
        registry.register(255, 1_000, ZONE, key);
    }

    function test_register_zeroCapacity_reverts() public {
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidCapacity.selector, 0, registry.MAX_CAPACITY_W()));
        vm.prank(alice);
        registry.register(BATTERY, 0, ZONE, key);
    }

    function test_register_capacityAboveMax_reverts() public {
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY);
        uint48 max = registry.MAX_CAPACITY_W();
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidCapacity.selector, uint256(max) + 1, max));
        vm.prank(alice);
        registry.register(BATTERY, max + 1, ZONE, key);
    }

    function test_register_zeroZone_reverts() public {
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidZone.selector));
        vm.prank(alice);
        registry.register(BATTERY, 1_000, bytes32(0), key);
    }

    function test_register_invalidKeyType_reverts() public {
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY);
        key.keyType = 2;
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyType.selector, uint8(2)));
        key.keyType = 255;
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyType.selector, uint8(255)));
    }

    function test_register_secpKeyWrongLength_reverts() public {
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY);
        key.data = abi.encodePacked(vm.addr(DEV_KEY), uint8(0));
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKey.selector, SECP, 21));
        key.data = abi.encode(vm.addr(DEV_KEY)); // 32-byte ABI word instead of 20 bytes
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKey.selector, SECP, 32));
        key.data = "";
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKey.selector, SECP, 0));
    }

    function test_register_secpZeroAddressKey_reverts() public {
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY);
        key.data = abi.encodePacked(address(0));
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKey.selector, SECP, 20));
    }

    function test_register_p256KeyWrongLength_reverts() public {
        IDeviceRegistry.DeviceKey memory key = p256Key(alice, P256_KEY);
        (bytes32 x, bytes32 y) = _p256XY(P256_KEY);
        key.data = abi.encodePacked(x, bytes31(y));
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKey.selector, P256, 63));
        key.data = abi.encodePacked(bytes1(0x04), x, y); // SEC1 uncompressed prefix not accepted
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKey.selector, P256, 65));
    }

    function test_register_p256PointNotOnCurve_reverts() public {
        IDeviceRegistry.DeviceKey memory key = p256Key(alice, P256_KEY);
        key.data = abi.encodePacked(uint256(1), uint256(1));
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKey.selector, P256, 64));
        key.data = abi.encodePacked(uint256(0), uint256(0));
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKey.selector, P256, 64));
        // y flipped by one: off the curve
        (bytes32 x, bytes32 y) = _p256XY(P256_KEY);
        key.data = abi.encodePacked(x, bytes32(uint256(y) ^ 1));
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKey.selector, P256, 64));
    }

    function test_register_secpProofWrongSigner_reverts() public {
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY);
        key.data = abi.encodePacked(vm.addr(DEV_KEY_2)); // claims another key than the one that signed
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, SECP));
    }

    function test_register_secpProofForAnotherOwner_reverts() public {
        // a proof alice published cannot be replayed by bob to claim alice's device key
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY);
        _expectRegisterRevert(bob, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, SECP));
        registerDevice(alice, DEV_KEY, 1_000, ZONE);
        _expectRegisterRevert(bob, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, SECP));
    }

    function test_register_secpProofWrongLength_reverts() public {
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY);
        (bytes32 r, bytes32 s) = _proofParts(key.proof);
        key.proof = abi.encodePacked(r, s); // 64 bytes (EIP-2098 compact form is not accepted)
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, SECP));
        key.proof = "";
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, SECP));
    }

    function test_register_secpProofHighS_reverts() public {
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY);
        (bytes32 r, bytes32 s) = _proofParts(key.proof);
        uint8 v = uint8(key.proof[64]);
        // the malleable twin (r, n - s, v ^ 1) recovers the same key but is rejected
        key.proof = abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, SECP));
    }

    function test_register_secpProofBadV_reverts() public {
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY);
        key.proof[64] = bytes1(uint8(29));
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, SECP));
    }

    function test_register_p256ProofWrongLength_reverts() public {
        IDeviceRegistry.DeviceKey memory key = p256Key(alice, P256_KEY);
        key.proof = abi.encodePacked(key.proof, uint8(27));
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, P256));
        key.proof = "";
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, P256));
    }

    function test_register_p256TamperedProof_reverts() public {
        IDeviceRegistry.DeviceKey memory key = p256Key(alice, P256_KEY);
        (bytes32 r, bytes32 s) = _proofParts(key.proof);
        key.proof = abi.encodePacked(bytes32(uint256(r) ^ 1), s);
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, P256));
        key.proof = abi.encodePacked(r, bytes32(uint256(s) - 1));
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, P256));
        key.proof = abi.encodePacked(bytes32(0), s);
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, P256));
    }

    function test_register_p256HighSProof_reverts() public {
        IDeviceRegistry.DeviceKey memory key = p256Key(alice, P256_KEY);
        (bytes32 r, bytes32 s) = _proofParts(key.proof);
        // (r, n - s) is a mathematically valid signature, rejected for malleability
        key.proof = abi.encodePacked(r, bytes32(P256_N - uint256(s)));
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, P256));
        // the low-s original still works
        key.proof = abi.encodePacked(r, s);
        vm.prank(alice);
        registry.register(BATTERY, 10_000, ZONE, key);
    }

    function test_register_p256ProofWrongKey_reverts() public {
        IDeviceRegistry.DeviceKey memory key = p256Key(alice, P256_KEY);
        (bytes32 x, bytes32 y) = _p256XY(P256_KEY_2);
        key.data = abi.encodePacked(x, y);
        _expectRegisterRevert(alice, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, P256));
    }

    function test_register_p256ProofForAnotherOwner_reverts() public {
        IDeviceRegistry.DeviceKey memory key = p256Key(alice, P256_KEY);
        _expectRegisterRevert(bob, key, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, P256));
    }

    function test_register_proofForAnotherRegistry_reverts() public {
        DeviceRegistry other = new DeviceRegistry();
        assertTrue(other.keyProofDigest(alice) != registry.keyProofDigest(alice), "domains differ");
        IDeviceRegistry.DeviceKey memory secp = secpKey(alice, DEV_KEY); // signed for `registry`
        IDeviceRegistry.DeviceKey memory p256 = p256Key(alice, P256_KEY);

        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, SECP));
        vm.prank(alice);
        other.register(BATTERY, 1_000, ZONE, secp);

        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, P256));
        vm.prank(alice);
        other.register(BATTERY, 1_000, ZONE, p256);

        // both proofs are fine where they were signed
        vm.startPrank(alice);
        registry.register(BATTERY, 1_000, ZONE, secp);
        registry.register(BATTERY, 1_000, ZONE, p256);
        vm.stopPrank();
    }

    function test_register_proofForAnotherChainId_reverts() public {
        IDeviceRegistry.DeviceKey memory secp = secpKey(alice, DEV_KEY);
        IDeviceRegistry.DeviceKey memory p256 = p256Key(alice, P256_KEY);
        bytes32 before = registry.keyProofDigest(alice);
        vm.chainId(block.chainid + 1);
        assertTrue(registry.keyProofDigest(alice) != before, "digest bound to chain id");

        _expectRegisterRevert(alice, secp, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, SECP));
        _expectRegisterRevert(alice, p256, abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, P256));
    }

    function test_keyProofDigest_isEip712() public view {
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("GridFlex DeviceRegistry"),
                keccak256("1"),
                block.chainid,
                address(registry)
            )
        );
        bytes32 structHash = keccak256(abi.encode(keccak256("DeviceKeyProof(address owner)"), alice));
        assertEq(registry.keyProofDigest(alice), keccak256(abi.encodePacked("\x19\x01", domain, structHash)), "digest");
        assertEq(registry.DEVICE_KEY_PROOF_TYPEHASH(), keccak256("DeviceKeyProof(address owner)"), "typehash");
    }

    // ─── device() ─────────────────────────────────────────────────────────────────────────

    function test_device_unknownId_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.UnknownDevice.selector, 0));
        registry.device(0);
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.UnknownDevice.selector, id + 1));
        registry.device(id + 1);
    }

    // ─── update ───────────────────────────────────────────────────────────────────────────

    function test_update_byOwner_changesCapacityAndZone() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.expectEmit(true, true, false, true, address(registry));
        emit IDeviceRegistry.DeviceUpdated(id, OTHER_ZONE, 2_500);
        vm.prank(alice);
        registry.update(id, 2_500, OTHER_ZONE);
        IDeviceRegistry.Device memory d = registry.device(id);
        assertEq(uint256(d.capacityW), 2_500, "capacity");
        assertEq(d.zone, OTHER_ZONE, "zone");
        assertEq(d.keyX, _secpKeyX(DEV_KEY), "key unchanged");
        assertEq(d.owner, alice, "owner unchanged");
    }

    function test_update_unknownDevice_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.UnknownDevice.selector, 7));
        vm.prank(alice);
        registry.update(7, 1_000, ZONE);
    }

    function test_update_notOwner_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.NotDeviceOwner.selector, id, bob, alice));
        vm.prank(bob);
        registry.update(id, 2_000, ZONE);
    }

    function test_update_invalidCapacity_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        uint48 max = registry.MAX_CAPACITY_W();
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidCapacity.selector, 0, max));
        vm.prank(alice);
        registry.update(id, 0, ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidCapacity.selector, uint256(max) + 1, max));
        vm.prank(alice);
        registry.update(id, max + 1, ZONE);
    }

    function test_update_zeroZone_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidZone.selector));
        vm.prank(alice);
        registry.update(id, 1_000, bytes32(0));
    }

    // ─── rotateKey ────────────────────────────────────────────────────────────────────────

    function test_rotateKey_secpToSecp() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY_2);
        vm.expectEmit(true, false, false, true, address(registry));
        emit IDeviceRegistry.DeviceKeyRotated(id, SECP, _secpKeyX(DEV_KEY_2), bytes32(0));
        vm.prank(alice);
        registry.rotateKey(id, key);
        IDeviceRegistry.Device memory d = registry.device(id);
        assertEq(d.keyX, _secpKeyX(DEV_KEY_2), "new key");
        assertEq(uint256(d.keyType), uint256(SECP), "type");
    }

    function test_rotateKey_secpToP256() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        IDeviceRegistry.DeviceKey memory key = p256Key(alice, P256_KEY);
        (bytes32 x, bytes32 y) = _p256XY(P256_KEY);
        vm.expectEmit(true, false, false, true, address(registry));
        emit IDeviceRegistry.DeviceKeyRotated(id, P256, x, y);
        vm.prank(alice);
        registry.rotateKey(id, key);
        IDeviceRegistry.Device memory d = registry.device(id);
        assertEq(uint256(d.keyType), uint256(P256), "type");
        assertEq(d.keyX, x, "x");
        assertEq(d.keyY, y, "y");
    }

    function test_rotateKey_p256ToSecp_clearsY() public {
        uint256 id = _registerP256(alice, P256_KEY, 1_000, ZONE);
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY);
        vm.expectEmit(true, false, false, true, address(registry));
        emit IDeviceRegistry.DeviceKeyRotated(id, SECP, _secpKeyX(DEV_KEY), bytes32(0));
        vm.prank(alice);
        registry.rotateKey(id, key);
        IDeviceRegistry.Device memory d = registry.device(id);
        assertEq(uint256(d.keyType), uint256(SECP), "type");
        assertEq(d.keyX, _secpKeyX(DEV_KEY), "x");
        assertEq(d.keyY, bytes32(0), "y cleared");
    }

    function test_rotateKey_p256ToP256() public {
        uint256 id = _registerP256(alice, P256_KEY, 1_000, ZONE);
        IDeviceRegistry.DeviceKey memory key = p256Key(alice, P256_KEY_2);
        (bytes32 x, bytes32 y) = _p256XY(P256_KEY_2);
        vm.prank(alice);
        registry.rotateKey(id, key);
        IDeviceRegistry.Device memory d = registry.device(id);
        assertEq(d.keyX, x, "x");
        assertEq(d.keyY, y, "y");
    }

    function test_rotateKey_unknownDevice_reverts() public {
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.UnknownDevice.selector, 1));
        vm.prank(alice);
        registry.rotateKey(1, key);
    }

    function test_rotateKey_notOwner_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        IDeviceRegistry.DeviceKey memory key = secpKey(bob, DEV_KEY_2);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.NotDeviceOwner.selector, id, bob, alice));
        vm.prank(bob);
        registry.rotateKey(id, key);
    }

    function test_rotateKey_invalidProof_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        IDeviceRegistry.DeviceKey memory key = secpKey(bob, DEV_KEY_2); // proof for another owner
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, SECP));
        vm.prank(alice);
        registry.rotateKey(id, key);

        key = p256Key(alice, P256_KEY);
        (bytes32 r, bytes32 s) = _proofParts(key.proof);
        key.proof = abi.encodePacked(r, bytes32(P256_N - uint256(s)));
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, P256));
        vm.prank(alice);
        registry.rotateKey(id, key);
    }

    function test_rotateKey_invalidKeyType_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY_2);
        key.keyType = 3;
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidKeyType.selector, uint8(3)));
        vm.prank(alice);
        registry.rotateKey(id, key);
    }

    function test_rotateKey_invalidKey_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY_2);
        key.data = abi.encodePacked(address(0));
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidKey.selector, SECP, 20));
        vm.prank(alice);
        registry.rotateKey(id, key);
    }

    function test_rotateKey_afterTransfer_needsProofForNewOwner() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        transferDevice(id, alice, bob, 0xB0B1);
        IDeviceRegistry.DeviceKey memory stale = secpKey(alice, DEV_KEY_2);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, SECP));
        vm.prank(bob);
        registry.rotateKey(id, stale);
        IDeviceRegistry.DeviceKey memory fresh = secpKey(bob, DEV_KEY_2);
        vm.prank(bob);
        registry.rotateKey(id, fresh);
        assertEq(registry.device(id).keyX, _secpKeyX(DEV_KEY_2), "rotated by new owner");
    }

    // ─── setActive ────────────────────────────────────────────────────────────────────────

    function test_setActive_deactivateAndReactivate() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.expectEmit(true, false, false, true, address(registry));
        emit IDeviceRegistry.DeviceActiveChanged(id, false);
        vm.prank(alice);
        registry.setActive(id, false);
        assertEq(registry.device(id).active, false, "inactive");

        vm.expectEmit(true, false, false, true, address(registry));
        emit IDeviceRegistry.DeviceActiveChanged(id, true);
        vm.prank(alice);
        registry.setActive(id, true);
        assertEq(registry.device(id).active, true, "active again");
    }

    function test_setActive_unchanged_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DeviceActiveStateUnchanged.selector, id, true));
        vm.prank(alice);
        registry.setActive(id, true);

        vm.prank(alice);
        registry.setActive(id, false);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DeviceActiveStateUnchanged.selector, id, false));
        vm.prank(alice);
        registry.setActive(id, false);
    }

    function test_setActive_notOwner_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.NotDeviceOwner.selector, id, bob, alice));
        vm.prank(bob);
        registry.setActive(id, false);
    }

    function test_setActive_unknownDevice_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.UnknownDevice.selector, 3));
        vm.prank(alice);
        registry.setActive(3, false);
    }

    // ─── transfer ─────────────────────────────────────────────────────────────────────────

    /// @dev Issue 12 finding 2: a transfer used to move ownership at once, so an owner could
    ///      push a device (and the liability for its equivocations) onto a victim.
    function test_transfer_onlyProposes_recipientUntouchedUntilItAccepts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.expectEmit(true, true, true, true, address(registry));
        emit IDeviceRegistry.TransferProposed(id, alice, bob);
        vm.prank(alice);
        registry.transfer(id, bob);
        assertEq(registry.pendingOwnerOf(id), bob, "offered");
        IDeviceRegistry.Device memory d = registry.device(id);
        assertEq(d.owner, alice, "still alice's");
        assertEq(uint256(d.lastTransferAt), 0, "no transfer yet");
        assertEq(registry.epochCount(id), 1, "no epoch");
        // bob cannot be made to bid with it, and alice still can
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DeviceNotOwned.selector, id, bob));
        registry.checkBidDevices(bob, ZONE, block.timestamp + 1, ids(id));
        assertEq(registry.checkBidDevices(alice, ZONE, block.timestamp, ids(id)), 1_000, "alice bids");
        // alice keeps every owner right, bob has none
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.NotDeviceOwner.selector, id, bob, alice));
        vm.prank(bob);
        registry.update(id, 2_000, ZONE);
        vm.prank(alice);
        registry.update(id, 2_000, ZONE);
    }

    function test_acceptTransfer_movesOwnershipAndKey() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.warp(block.timestamp + 1 hours);
        vm.prank(alice);
        registry.transfer(id, bob);
        IDeviceRegistry.DeviceKey memory key = secpKey(bob, DEV_KEY_2);
        vm.expectEmit(true, true, true, true, address(registry));
        emit IDeviceRegistry.DeviceTransferred(id, alice, bob);
        vm.expectEmit(true, false, false, true, address(registry));
        emit IDeviceRegistry.DeviceKeyRotated(id, SECP, _secpKeyX(DEV_KEY_2), bytes32(0));
        vm.prank(bob);
        registry.acceptTransfer(id, key);

        IDeviceRegistry.Device memory d = registry.device(id);
        assertEq(d.owner, bob, "new owner");
        assertEq(d.keyX, _secpKeyX(DEV_KEY_2), "new owner's key");
        assertEq(uint256(d.lastTransferAt), block.timestamp, "transfer time recorded");
        assertEq(registry.pendingOwnerOf(id), address(0), "offer consumed");
        // the history keeps alice answerable for the time she owned it
        IDeviceRegistry.DeviceEpoch memory before = registry.deviceAt(id, block.timestamp - 1);
        assertEq(before.owner, alice, "alice owned it a second ago");
        assertEq(before.keyX, _secpKeyX(DEV_KEY), "with her key");
        IDeviceRegistry.DeviceEpoch memory now_ = registry.deviceAt(id, block.timestamp);
        assertEq(now_.owner, bob, "bob from now on");
        assertEq(now_.keyX, _secpKeyX(DEV_KEY_2), "with his key");

        // the old owner has lost control
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.NotDeviceOwner.selector, id, alice, bob));
        vm.prank(alice);
        registry.update(id, 2_000, ZONE);
        // and the new owner can bid with it in requests posted after the transfer
        assertEq(registry.checkBidDevices(bob, ZONE, block.timestamp + 1, ids(id)), 1_000, "bob bids");
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DeviceNotOwned.selector, id, alice));
        registry.checkBidDevices(alice, ZONE, block.timestamp + 1, ids(id));
    }

    function test_acceptTransfer_withTheSellersKey_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.prank(alice);
        registry.transfer(id, bob);
        // even with a valid proof for bob (alice helps him), the current key is refused
        IDeviceRegistry.DeviceKey memory sellers = secpKey(bob, DEV_KEY);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.TransferKeyNotFresh.selector, id));
        vm.prank(bob);
        registry.acceptTransfer(id, sellers);
    }

    function test_acceptTransfer_proofForAnotherOwner_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.prank(alice);
        registry.transfer(id, bob);
        IDeviceRegistry.DeviceKey memory forAlice = secpKey(alice, DEV_KEY_2);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidKeyProof.selector, SECP));
        vm.prank(bob);
        registry.acceptTransfer(id, forAlice);
    }

    function test_acceptTransfer_notProposedToCaller_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        IDeviceRegistry.DeviceKey memory key = secpKey(bob, DEV_KEY_2);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.NotPendingOwner.selector, id, bob, address(0)));
        vm.prank(bob);
        registry.acceptTransfer(id, key);

        address carol = address(0xCA201);
        vm.prank(alice);
        registry.transfer(id, carol);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.NotPendingOwner.selector, id, bob, carol));
        vm.prank(bob);
        registry.acceptTransfer(id, key);
    }

    function test_acceptTransfer_unknownDevice_reverts() public {
        IDeviceRegistry.DeviceKey memory key = secpKey(bob, DEV_KEY_2);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.UnknownDevice.selector, 9));
        vm.prank(bob);
        registry.acceptTransfer(9, key);
    }

    function test_transfer_newOfferReplacesTheOld() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        address carol = address(0xCA201);
        vm.startPrank(alice);
        registry.transfer(id, bob);
        registry.transfer(id, carol);
        vm.stopPrank();
        IDeviceRegistry.DeviceKey memory key = secpKey(bob, DEV_KEY_2);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.NotPendingOwner.selector, id, bob, carol));
        vm.prank(bob);
        registry.acceptTransfer(id, key);
    }

    function test_cancelTransfer_withdrawsTheOffer() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.prank(alice);
        registry.transfer(id, bob);
        vm.expectEmit(true, true, true, true, address(registry));
        emit IDeviceRegistry.TransferCancelled(id, alice, bob);
        vm.prank(alice);
        registry.cancelTransfer(id);
        assertEq(registry.pendingOwnerOf(id), address(0), "no offer");
        IDeviceRegistry.DeviceKey memory key = secpKey(bob, DEV_KEY_2);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.NotPendingOwner.selector, id, bob, address(0)));
        vm.prank(bob);
        registry.acceptTransfer(id, key);
        assertEq(registry.device(id).owner, alice, "still alice's");
    }

    function test_cancelTransfer_nothingPending_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.NoPendingTransfer.selector, id));
        vm.prank(alice);
        registry.cancelTransfer(id);
    }

    function test_cancelTransfer_notOwner_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.prank(alice);
        registry.transfer(id, bob);
        // the recipient can decline by not accepting, but cannot cancel for the owner
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.NotDeviceOwner.selector, id, bob, alice));
        vm.prank(bob);
        registry.cancelTransfer(id);
    }

    function test_transfer_secondTransferUpdatesTime() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        transferDevice(id, alice, bob, 0xB0B1);
        uint256 first = block.timestamp;
        vm.warp(first + 1 days);
        transferDevice(id, bob, alice, 0xA11A);
        assertEq(uint256(registry.device(id).lastTransferAt), first + 1 days, "latest transfer");
        assertEq(registry.device(id).owner, alice, "back to alice");
        // a request posted between the two transfers no longer accepts the device
        vm.expectRevert(
            abi.encodeWithSelector(
                IDeviceRegistry.DeviceTransferredAfterRequest.selector, id, first + 1 days, first + 1 hours
            )
        );
        registry.checkBidDevices(alice, ZONE, first + 1 hours, ids(id));
    }

    function test_transfer_otherStateUnchanged() public {
        uint256 id = registerDevice(alice, DEV_KEY, 5_000, ZONE);
        vm.warp(block.timestamp + 3 hours);
        transferDevice(id, alice, bob, 0xB0B1);
        IDeviceRegistry.Device memory d = registry.device(id);
        assertEq(uint256(d.capacityW), 5_000, "capacity kept");
        assertEq(d.zone, ZONE, "zone kept");
        assertEq(d.active, true, "still active");
        assertEq(uint256(d.kind), uint256(IDeviceRegistry.DeviceKind.Battery), "kind kept");
        assertEq(uint256(d.lastTransferAt), block.timestamp, "transfer time");
    }

    function test_transfer_toZeroAddress_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidNewOwner.selector, address(0)));
        vm.prank(alice);
        registry.transfer(id, address(0));
    }

    function test_transfer_toSelf_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidNewOwner.selector, alice));
        vm.prank(alice);
        registry.transfer(id, alice);
    }

    function test_transfer_notOwner_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.NotDeviceOwner.selector, id, bob, alice));
        vm.prank(bob);
        registry.transfer(id, bob);
    }

    function test_transfer_unknownDevice_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.UnknownDevice.selector, 0));
        vm.prank(alice);
        registry.transfer(0, bob);
    }

    // ─── checkBidDevices ──────────────────────────────────────────────────────────────────

    function test_checkBidDevices_sumsCapacity() public {
        uint256 d1 = registerDevice(alice, DEV_KEY, 60_000, ZONE);
        uint256 d2 = _registerP256(alice, P256_KEY, 45_000, ZONE);
        registerDevice(bob, DEV_KEY_2, 1, ZONE);
        uint256 d4 = registerDevice(alice, DEV_KEY_2, 5_000, ZONE);
        assertEq(registry.checkBidDevices(alice, ZONE, block.timestamp, ids(d1)), 60_000, "one device");
        assertEq(registry.checkBidDevices(alice, ZONE, block.timestamp, ids(d1, d2)), 105_000, "two devices");
        uint256[] memory three = new uint256[](3);
        (three[0], three[1], three[2]) = (d1, d2, d4);
        assertEq(registry.checkBidDevices(alice, ZONE, block.timestamp, three), 110_000, "gaps in ids are fine");
    }

    function test_checkBidDevices_emptyList_returnsZero() public view {
        assertEq(registry.checkBidDevices(alice, ZONE, block.timestamp, new uint256[](0)), 0, "empty");
    }

    function test_checkBidDevices_duplicate_reverts() public {
        uint256 d1 = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DevicesNotAscending.selector, 1, d1));
        registry.checkBidDevices(alice, ZONE, block.timestamp, ids(d1, d1));
    }

    function test_checkBidDevices_descending_reverts() public {
        uint256 d1 = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        uint256 d2 = registerDevice(alice, DEV_KEY_2, 1_000, ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DevicesNotAscending.selector, 1, d1));
        registry.checkBidDevices(alice, ZONE, block.timestamp, ids(d2, d1));
    }

    function test_checkBidDevices_zeroId_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DevicesNotAscending.selector, 0, 0));
        registry.checkBidDevices(alice, ZONE, block.timestamp, ids(0));
    }

    function test_checkBidDevices_unknownDevice_reverts() public {
        uint256 d1 = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.UnknownDevice.selector, d1 + 1));
        registry.checkBidDevices(alice, ZONE, block.timestamp, ids(d1, d1 + 1));
    }

    function test_checkBidDevices_notOwned_reverts() public {
        uint256 d1 = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        uint256 d2 = registerDevice(bob, DEV_KEY_2, 1_000, ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DeviceNotOwned.selector, d2, alice));
        registry.checkBidDevices(alice, ZONE, block.timestamp, ids(d1, d2));
    }

    function test_checkBidDevices_inactive_reverts() public {
        uint256 d1 = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.prank(alice);
        registry.setActive(d1, false);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DeviceInactive.selector, d1));
        registry.checkBidDevices(alice, ZONE, block.timestamp, ids(d1));
    }

    function test_checkBidDevices_wrongZone_reverts() public {
        uint256 d1 = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        uint256 d2 = registerDevice(alice, DEV_KEY_2, 1_000, OTHER_ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DeviceWrongZone.selector, d2, OTHER_ZONE, ZONE));
        registry.checkBidDevices(alice, ZONE, block.timestamp, ids(d1, d2));
    }

    function test_checkBidDevices_neverTransferred_anyRequestTime() public {
        uint256 d1 = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        assertEq(registry.checkBidDevices(alice, ZONE, 0, ids(d1)), 1_000, "request time 0");
        assertEq(registry.checkBidDevices(alice, ZONE, block.timestamp, ids(d1)), 1_000, "now");
        assertEq(registry.checkBidDevices(alice, ZONE, type(uint256).max, ids(d1)), 1_000, "far future");
    }

    function test_checkBidDevices_transferredBeforeRequest_accepted() public {
        uint256 d1 = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        transferDevice(d1, alice, bob, 0xB0B1);
        uint256 transferredAt = block.timestamp;
        assertEq(registry.checkBidDevices(bob, ZONE, transferredAt + 1, ids(d1)), 1_000, "one second later");
    }

    function test_checkBidDevices_transferredAtRequestTime_reverts() public {
        uint256 d1 = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        transferDevice(d1, alice, bob, 0xB0B1);
        uint256 t = block.timestamp;
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DeviceTransferredAfterRequest.selector, d1, t, t));
        registry.checkBidDevices(bob, ZONE, t, ids(d1));
    }

    function test_checkBidDevices_transferredAfterRequest_reverts() public {
        uint256 d1 = registerDevice(bob, DEV_KEY, 1_000, ZONE);
        uint256 d2 = registerDevice(alice, DEV_KEY_2, 1_000, ZONE);
        uint256 requestCreatedAt = block.timestamp;
        vm.warp(requestCreatedAt + 10 minutes);
        transferDevice(d2, alice, bob, 0xB0B1);
        // the untransferred device passes, the transferred one is named
        vm.expectRevert(
            abi.encodeWithSelector(
                IDeviceRegistry.DeviceTransferredAfterRequest.selector,
                d2,
                requestCreatedAt + 10 minutes,
                requestCreatedAt
            )
        );
        registry.checkBidDevices(bob, ZONE, requestCreatedAt, ids(d1, d2));
        assertEq(registry.checkBidDevices(bob, ZONE, requestCreatedAt, ids(d1)), 1_000, "other device fine");
    }

    /// @dev The transfer time is the acceptance: an offer made before the request but accepted
    ///      after it does not let the device into that request.
    function test_checkBidDevices_offeredBeforeAcceptedAfterRequest_reverts() public {
        uint256 d1 = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.prank(alice);
        registry.transfer(d1, bob);
        uint256 requestCreatedAt = block.timestamp + 1;
        vm.warp(requestCreatedAt + 5 minutes);
        IDeviceRegistry.DeviceKey memory key = secpKey(bob, DEV_KEY_2);
        vm.prank(bob);
        registry.acceptTransfer(d1, key);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDeviceRegistry.DeviceTransferredAfterRequest.selector,
                d1,
                requestCreatedAt + 5 minutes,
                requestCreatedAt
            )
        );
        registry.checkBidDevices(bob, ZONE, requestCreatedAt, ids(d1));
    }

    function test_checkBidDevices_afterZoneUpdate_followsNewZone() public {
        uint256 d1 = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.prank(alice);
        registry.update(d1, 1_000, OTHER_ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DeviceWrongZone.selector, d1, OTHER_ZONE, ZONE));
        registry.checkBidDevices(alice, ZONE, block.timestamp, ids(d1));
        assertEq(registry.checkBidDevices(alice, OTHER_ZONE, block.timestamp, ids(d1)), 1_000, "new zone");
    }

    // ─── Fuzz ─────────────────────────────────────────────────────────────────────────────

    // ─── history (deviceAt) ───────────────────────────────────────────────────────────────

    function test_deviceAt_followsEveryOwnerAction() public {
        uint256 t0 = block.timestamp;
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.warp(t0 + 100);
        vm.prank(alice);
        registry.update(id, 2_000, OTHER_ZONE);
        vm.warp(t0 + 200);
        IDeviceRegistry.DeviceKey memory key2 = secpKey(alice, DEV_KEY_2);
        vm.prank(alice);
        registry.rotateKey(id, key2);
        vm.warp(t0 + 300);
        vm.prank(alice);
        registry.setActive(id, false);
        vm.warp(t0 + 400);
        transferDevice(id, alice, bob, 0xB0B1);
        assertEq(registry.epochCount(id), 5, "one epoch per action");

        IDeviceRegistry.DeviceEpoch memory e = registry.deviceAt(id, t0);
        assertEq(uint256(e.since), t0, "registered");
        assertEq(e.owner, alice, "owner at registration");
        assertEq(uint256(e.capacityW), 1_000, "capacity at registration");
        assertEq(e.zone, ZONE, "zone at registration");
        assertEq(e.keyX, _secpKeyX(DEV_KEY), "first key");
        assertEq(e.active, true, "active at registration");
        e = registry.deviceAt(id, t0 + 99);
        assertEq(uint256(e.since), t0, "still the first epoch one second before the update");
        e = registry.deviceAt(id, t0 + 100);
        assertEq(uint256(e.capacityW), 2_000, "updated capacity");
        assertEq(e.zone, OTHER_ZONE, "updated zone");
        assertEq(e.keyX, _secpKeyX(DEV_KEY), "key unchanged by update");
        e = registry.deviceAt(id, t0 + 250);
        assertEq(e.keyX, _secpKeyX(DEV_KEY_2), "rotated key");
        assertEq(uint256(e.capacityW), 2_000, "rotation keeps capacity");
        e = registry.deviceAt(id, t0 + 300);
        assertEq(e.active, false, "deactivated");
        e = registry.deviceAt(id, t0 + 400);
        assertEq(e.owner, bob, "transferred");
        e = registry.deviceAt(id, type(uint256).max);
        assertEq(e.owner, bob, "the last epoch lasts forever");

        (IDeviceRegistry.DeviceEpoch memory rotated, uint256 until) = registry.deviceEpochAt(id, t0 + 200);
        assertEq(rotated.keyX, _secpKeyX(DEV_KEY_2), "epoch of the rotation");
        assertEq(until, t0 + 300, "ends at the next action");
        (, until) = registry.deviceEpochAt(id, t0 + 400);
        assertEq(until, type(uint256).max, "current epoch is open-ended");
        assertEq(registry.epochAt(id, 1).zone, OTHER_ZONE, "second epoch by index");
    }

    function test_deviceAt_sameSecondActionsShareOneEpoch() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        IDeviceRegistry.DeviceKey memory key2 = secpKey(alice, DEV_KEY_2);
        vm.startPrank(alice);
        registry.update(id, 3_000, ZONE);
        registry.rotateKey(id, key2);
        vm.stopPrank();
        assertEq(registry.epochCount(id), 1, "overwritten in the same second");
        IDeviceRegistry.DeviceEpoch memory e = registry.deviceAt(id, block.timestamp);
        assertEq(uint256(e.capacityW), 3_000, "last write wins: capacity");
        assertEq(e.keyX, _secpKeyX(DEV_KEY_2), "last write wins: key");

        vm.warp(block.timestamp + 1);
        vm.prank(alice);
        registry.setActive(id, false);
        assertEq(registry.epochCount(id), 2, "a new second appends");
    }

    function test_deviceAt_beforeRegistration_reverts() public {
        vm.warp(1_000_000);
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.DeviceNotYetRegistered.selector, id, 999_999, 1_000_000));
        registry.deviceAt(id, 999_999);
    }

    function test_deviceAt_unknownDevice_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.UnknownDevice.selector, 7));
        registry.deviceAt(7, block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.UnknownDevice.selector, 7));
        registry.epochAt(7, 0);
        assertEq(registry.epochCount(7), 0, "no epochs");
    }

    function test_epochAt_outOfRange_reverts() public {
        uint256 id = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.UnknownDeviceEpoch.selector, id, 1, 1));
        registry.epochAt(id, 1);
    }

    function test_deviceAt_currentMatchesDevice() public {
        uint256 id = registerDevice(alice, DEV_KEY, 4_000, ZONE);
        vm.warp(block.timestamp + 60);
        vm.prank(alice);
        registry.update(id, 5_000, OTHER_ZONE);
        IDeviceRegistry.Device memory d = registry.device(id);
        IDeviceRegistry.DeviceEpoch memory e = registry.deviceAt(id, block.timestamp);
        assertEq(d.owner, e.owner, "owner");
        assertEq(uint256(d.capacityW), uint256(e.capacityW), "capacity");
        assertEq(d.zone, e.zone, "zone");
        assertEq(d.keyX, e.keyX, "key");
        assertEq(d.active, e.active, "active");
    }

    /// @dev Binary search against a linear scan over a long history (capacity = epoch index + 1).
    function testFuzz_deviceAt_matchesLinearScan(uint8 epochs, uint256 query, uint256 gapSeed) public {
        uint256 n = bound(epochs, 1, 40);
        uint256 t0 = 1_000_000;
        vm.warp(t0);
        uint256 id = registerDevice(alice, DEV_KEY, 1, ZONE);
        uint256[] memory since = new uint256[](n);
        since[0] = t0;
        for (uint256 i = 1; i < n; ++i) {
            uint256 gap = bound(uint256(keccak256(abi.encode(gapSeed, i))), 1, 10_000);
            since[i] = since[i - 1] + gap;
            vm.warp(since[i]);
            vm.prank(alice);
            registry.update(id, uint48(i + 1), ZONE);
        }
        assertEq(registry.epochCount(id), n, "history length");
        uint256 t = bound(query, t0, since[n - 1] + 10_000);
        uint256 expected = 0;
        for (uint256 i = 0; i < n; ++i) {
            if (since[i] <= t) expected = i;
        }
        (IDeviceRegistry.DeviceEpoch memory e, uint256 until) = registry.deviceEpochAt(id, t);
        assertEq(uint256(e.capacityW), expected + 1, "epoch found");
        assertEq(uint256(e.since), since[expected], "since");
        assertEq(until, expected + 1 < n ? since[expected + 1] : type(uint256).max, "valid until");
    }

    function testFuzz_register_capacityBounds(uint48 capacityW) public {
        IDeviceRegistry.DeviceKey memory key = secpKey(alice, DEV_KEY);
        uint48 max = registry.MAX_CAPACITY_W();
        if (capacityW == 0 || capacityW > max) {
            vm.expectRevert(abi.encodeWithSelector(IDeviceRegistry.InvalidCapacity.selector, capacityW, max));
        }
        vm.prank(alice);
        registry.register(BATTERY, capacityW, ZONE, key);
        if (capacityW != 0 && capacityW <= max) {
            assertEq(uint256(registry.device(1).capacityW), capacityW, "stored capacity");
        }
    }

    function testFuzz_register_anySecpKey(uint256 deviceKey, address owner) public {
        vm.assume(owner != address(0));
        deviceKey = bound(deviceKey, 1, SECP256K1_N - 1);
        uint256 id = registerDevice(owner, deviceKey, 1_000, ZONE);
        assertEq(registry.device(id).keyX, _secpKeyX(deviceKey), "key");
        assertEq(registry.device(id).owner, owner, "owner");
    }

    function testFuzz_register_anyP256Key(uint256 deviceKey) public {
        deviceKey = bound(deviceKey, 1, P256_N - 1);
        uint256 id = _registerP256(alice, deviceKey, 1_000, ZONE);
        (bytes32 x, bytes32 y) = _p256XY(deviceKey);
        assertEq(registry.device(id).keyX, x, "x");
        assertEq(registry.device(id).keyY, y, "y");
    }

    function testFuzz_checkBidDevices_transferTimeVsRequestTime(uint40 transferAt, uint256 requestCreatedAt) public {
        transferAt = uint40(bound(transferAt, 1, type(uint40).max));
        uint256 d1 = registerDevice(alice, DEV_KEY, 1_000, ZONE);
        vm.warp(transferAt);
        transferDevice(d1, alice, bob, 0xB0B1);
        if (requestCreatedAt <= transferAt) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IDeviceRegistry.DeviceTransferredAfterRequest.selector, d1, transferAt, requestCreatedAt
                )
            );
        }
        uint256 capacity = registry.checkBidDevices(bob, ZONE, requestCreatedAt, ids(d1));
        if (requestCreatedAt > transferAt) assertEq(capacity, 1_000, "accepted");
    }

    function testFuzz_checkBidDevices_sumsCapacity(uint48 c1, uint48 c2, uint48 c3) public {
        uint48 max = registry.MAX_CAPACITY_W();
        c1 = uint48(bound(c1, 1, max));
        c2 = uint48(bound(c2, 1, max));
        c3 = uint48(bound(c3, 1, max));
        uint256[] memory list = new uint256[](3);
        list[0] = registerDevice(alice, DEV_KEY, c1, ZONE);
        list[1] = registerDevice(alice, DEV_KEY, c2, ZONE);
        list[2] = registerDevice(alice, DEV_KEY, c3, ZONE);
        assertEq(registry.checkBidDevices(alice, ZONE, block.timestamp, list), uint256(c1) + c2 + c3, "sum");
    }
}
