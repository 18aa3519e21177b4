// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {P256} from "@openzeppelin/contracts/utils/cryptography/P256.sol";
import {IDeviceRegistry} from "./interfaces/IDeviceRegistry.sol";

/// @title DeviceRegistry
/// @notice Registers DER devices with a proof that their owner holds the device signing key.
/// @dev The proof is an EIP-712 signature by the device key over `DeviceKeyProof(owner)`, so
///      it is bound to this chain and this registry and cannot be replayed for another owner.
///      P-256 keys (secure elements, TPMs, phones) are checked with the EIP-7951 precompile.
contract DeviceRegistry is IDeviceRegistry, EIP712 {
    /// @notice Largest capacity a single device can declare (1 GW; fits the uint32 field).
    uint48 public constant MAX_CAPACITY_W = 1_000_000_000;
    bytes32 public constant DEVICE_KEY_PROOF_TYPEHASH = keccak256("DeviceKeyProof(address owner)");

    uint256 private constant SECP256K1_KEY_LENGTH = 20;
    uint256 private constant SECP256K1_PROOF_LENGTH = 65;
    uint256 private constant P256_KEY_LENGTH = 64;
    uint256 private constant P256_PROOF_LENGTH = 64;

    mapping(uint256 deviceId => Device) private _devices;
    uint256 private _deviceCount;

    constructor() EIP712("GridFlex DeviceRegistry", "1") {}

    // ─── Owner actions ────────────────────────────────────────────────────────────────────

    /// @notice Registers a device owned by the caller; ids start at 1.
    function register(uint8 kind, uint48 capacityW, bytes32 zone, DeviceKey calldata key)
        external
        returns (uint256 deviceId)
    {
        if (kind > uint8(DeviceKind.Other)) revert InvalidKind(kind);
        _checkCapacityAndZone(capacityW, zone);
        (KeyType keyType, bytes32 keyX, bytes32 keyY) = _verifiedKey(msg.sender, key);

        deviceId = ++_deviceCount;
        Device storage d = _devices[deviceId];
        d.owner = msg.sender;
        // forge-lint: disable-next-line(unsafe-typecast) -- checked <= MAX_CAPACITY_W above
        d.capacityW = uint32(capacityW);
        d.kind = DeviceKind(kind);
        d.keyType = keyType;
        d.active = true;
        d.zone = zone;
        d.keyX = keyX;
        if (keyY != bytes32(0)) d.keyY = keyY;
        emit DeviceRegistered(deviceId, msg.sender, zone, DeviceKind(kind), capacityW, keyType, keyX, keyY);
    }

    /// @notice Changes capacity and zone (e.g. after a hardware upgrade or a grid re-connection).
    function update(uint256 deviceId, uint48 capacityW, bytes32 zone) external {
        Device storage d = _ownedDevice(deviceId);
        _checkCapacityAndZone(capacityW, zone);
        // forge-lint: disable-next-line(unsafe-typecast) -- checked <= MAX_CAPACITY_W above
        d.capacityW = uint32(capacityW);
        d.zone = zone;
        emit DeviceUpdated(deviceId, zone, capacityW);
    }

    /// @notice Replaces the signing key, with a fresh proof of possession.
    function rotateKey(uint256 deviceId, DeviceKey calldata key) external {
        Device storage d = _ownedDevice(deviceId);
        (KeyType keyType, bytes32 keyX, bytes32 keyY) = _verifiedKey(msg.sender, key);
        d.keyType = keyType;
        d.keyX = keyX;
        d.keyY = keyY;
        emit DeviceKeyRotated(deviceId, keyType, keyX, keyY);
    }

    /// @notice Deactivates (no new bids) or reactivates a device.
    function setActive(uint256 deviceId, bool active) external {
        Device storage d = _ownedDevice(deviceId);
        if (d.active == active) revert DeviceActiveStateUnchanged(deviceId, active);
        d.active = active;
        emit DeviceActiveChanged(deviceId, active);
    }

    /// @notice Hands the device to a new owner (a house sale, an aggregator change).
    function transfer(uint256 deviceId, address newOwner) external {
        Device storage d = _ownedDevice(deviceId);
        if (newOwner == address(0) || newOwner == d.owner) revert InvalidNewOwner(newOwner);
        d.owner = newOwner;
        // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit 40 bits
        d.lastTransferAt = uint40(block.timestamp);
        emit DeviceTransferred(deviceId, msg.sender, newOwner);
    }

    // ─── Views ────────────────────────────────────────────────────────────────────────────

    function device(uint256 deviceId) external view returns (Device memory) {
        Device memory d = _devices[deviceId];
        if (d.owner == address(0)) revert UnknownDevice(deviceId);
        return d;
    }

    function deviceCount() external view returns (uint256) {
        return _deviceCount;
    }

    function checkBidDevices(address owner, bytes32 zone, uint256 requestCreatedAt, uint256[] calldata deviceIds)
        external
        view
        returns (uint256 capacityW)
    {
        uint256 previous = 0;
        for (uint256 i; i < deviceIds.length; ++i) {
            uint256 deviceId = deviceIds[i];
            if (deviceId <= previous) revert DevicesNotAscending(i, deviceId);
            previous = deviceId;
            Device storage d = _devices[deviceId];
            if (d.owner != owner) {
                if (d.owner == address(0)) revert UnknownDevice(deviceId);
                revert DeviceNotOwned(deviceId, owner);
            }
            if (!d.active) revert DeviceInactive(deviceId);
            if (d.zone != zone) revert DeviceWrongZone(deviceId, d.zone, zone);
            uint256 lastTransferAt = d.lastTransferAt;
            if (lastTransferAt != 0 && lastTransferAt >= requestCreatedAt) {
                revert DeviceTransferredAfterRequest(deviceId, lastTransferAt, requestCreatedAt);
            }
            capacityW += d.capacityW;
        }
    }

    function keyProofDigest(address owner) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(DEVICE_KEY_PROOF_TYPEHASH, owner)));
    }

    // ─── Internals ────────────────────────────────────────────────────────────────────────

    function _ownedDevice(uint256 deviceId) private view returns (Device storage d) {
        d = _devices[deviceId];
        if (d.owner == address(0)) revert UnknownDevice(deviceId);
        if (d.owner != msg.sender) revert NotDeviceOwner(deviceId, msg.sender, d.owner);
    }

    function _checkCapacityAndZone(uint48 capacityW, bytes32 zone) private pure {
        if (capacityW == 0 || capacityW > MAX_CAPACITY_W) revert InvalidCapacity(capacityW, MAX_CAPACITY_W);
        if (zone == bytes32(0)) revert InvalidZone();
    }

    /// @dev Returns the key as stored (x, y) after checking the proof of possession.
    function _verifiedKey(address owner, DeviceKey calldata key)
        private
        view
        returns (KeyType keyType, bytes32 keyX, bytes32 keyY)
    {
        if (key.keyType > uint8(KeyType.P256)) revert InvalidKeyType(key.keyType);
        keyType = KeyType(key.keyType);
        bytes32 digest = keyProofDigest(owner);
        if (keyType == KeyType.Secp256k1) {
            if (key.data.length != SECP256K1_KEY_LENGTH) revert InvalidKey(keyType, key.data.length);
            address signer = address(bytes20(key.data));
            if (signer == address(0)) revert InvalidKey(keyType, key.data.length);
            if (key.proof.length != SECP256K1_PROOF_LENGTH) revert InvalidKeyProof(keyType);
            // slither-disable-next-line unused-return -- the third value only details `err`
            (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, key.proof);
            if (err != ECDSA.RecoverError.NoError || recovered != signer) revert InvalidKeyProof(keyType);
            keyX = bytes32(uint256(uint160(signer)));
        } else {
            if (key.data.length != P256_KEY_LENGTH) revert InvalidKey(keyType, key.data.length);
            keyX = bytes32(key.data[0:32]);
            keyY = bytes32(key.data[32:64]);
            if (!P256.isValidPublicKey(keyX, keyY)) revert InvalidKey(keyType, key.data.length);
            if (key.proof.length != P256_PROOF_LENGTH) revert InvalidKeyProof(keyType);
            bytes32 r = bytes32(key.proof[0:32]);
            bytes32 s = bytes32(key.proof[32:64]);
            if (!P256.verifyNative(digest, r, s, keyX, keyY)) revert InvalidKeyProof(keyType);
        }
    }
}
