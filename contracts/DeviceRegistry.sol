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

    /// @dev What does not change with epochs, plus the epoch count.
    struct DeviceMeta {
        DeviceKind kind;
        uint32 epochCount;
        uint40 lastTransferAt;
    }

    mapping(uint256 deviceId => DeviceMeta) private _meta;
    /// @dev Append-only history; the last epoch is the device's current state.
    mapping(uint256 deviceId => mapping(uint256 index => DeviceEpoch)) private _epochs;
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
        _meta[deviceId].kind = DeviceKind(kind);
        DeviceEpoch memory e = DeviceEpoch({
            since: 0,
            owner: msg.sender,
            // forge-lint: disable-next-line(unsafe-typecast) -- checked <= MAX_CAPACITY_W above
            capacityW: uint32(capacityW),
            keyType: keyType,
            active: true,
            zone: zone,
            keyX: keyX,
            keyY: keyY
        });
        _record(deviceId, e);
        emit DeviceRegistered(deviceId, msg.sender, zone, DeviceKind(kind), capacityW, keyType, keyX, keyY);
    }

    /// @notice Changes capacity and zone (e.g. after a hardware upgrade or a grid re-connection).
    function update(uint256 deviceId, uint48 capacityW, bytes32 zone) external {
        DeviceEpoch memory e = _ownedCurrent(deviceId);
        _checkCapacityAndZone(capacityW, zone);
        // forge-lint: disable-next-line(unsafe-typecast) -- checked <= MAX_CAPACITY_W above
        e.capacityW = uint32(capacityW);
        e.zone = zone;
        _record(deviceId, e);
        emit DeviceUpdated(deviceId, zone, capacityW);
    }

    /// @notice Replaces the signing key, with a fresh proof of possession. Readings of
    ///         intervals before now stay judged by the old key.
    function rotateKey(uint256 deviceId, DeviceKey calldata key) external {
        DeviceEpoch memory e = _ownedCurrent(deviceId);
        (e.keyType, e.keyX, e.keyY) = _verifiedKey(msg.sender, key);
        _record(deviceId, e);
        emit DeviceKeyRotated(deviceId, e.keyType, e.keyX, e.keyY);
    }

    /// @notice Deactivates (no new bids) or reactivates a device.
    function setActive(uint256 deviceId, bool active) external {
        DeviceEpoch memory e = _ownedCurrent(deviceId);
        if (e.active == active) revert DeviceActiveStateUnchanged(deviceId, active);
        e.active = active;
        _record(deviceId, e);
        emit DeviceActiveChanged(deviceId, active);
    }

    /// @notice Hands the device to a new owner (a house sale, an aggregator change).
    function transfer(uint256 deviceId, address newOwner) external {
        DeviceEpoch memory e = _ownedCurrent(deviceId);
        if (newOwner == address(0) || newOwner == e.owner) revert InvalidNewOwner(newOwner);
        e.owner = newOwner;
        // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit 40 bits
        _meta[deviceId].lastTransferAt = uint40(block.timestamp);
        _record(deviceId, e);
        emit DeviceTransferred(deviceId, msg.sender, newOwner);
    }

    // ─── Views ────────────────────────────────────────────────────────────────────────────

    function device(uint256 deviceId) external view returns (Device memory d) {
        DeviceMeta memory m = _meta[deviceId];
        if (m.epochCount == 0) revert UnknownDevice(deviceId);
        DeviceEpoch memory e = _epochs[deviceId][m.epochCount - 1];
        d = Device({
            owner: e.owner,
            capacityW: e.capacityW,
            kind: m.kind,
            keyType: e.keyType,
            active: e.active,
            lastTransferAt: m.lastTransferAt,
            zone: e.zone,
            keyX: e.keyX,
            keyY: e.keyY
        });
    }

    function deviceCount() external view returns (uint256) {
        return _deviceCount;
    }

    function deviceAt(uint256 deviceId, uint256 timestamp) external view returns (DeviceEpoch memory epoch) {
        (epoch,) = _epochAt(deviceId, timestamp);
    }

    function deviceEpochAt(uint256 deviceId, uint256 timestamp)
        external
        view
        returns (DeviceEpoch memory epoch, uint256 validUntil)
    {
        return _epochAt(deviceId, timestamp);
    }

    function epochCount(uint256 deviceId) external view returns (uint256) {
        return _meta[deviceId].epochCount;
    }

    function epochAt(uint256 deviceId, uint256 index) external view returns (DeviceEpoch memory) {
        uint256 count = _meta[deviceId].epochCount;
        if (count == 0) revert UnknownDevice(deviceId);
        if (index >= count) revert UnknownDeviceEpoch(deviceId, index, count);
        return _epochs[deviceId][index];
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
            DeviceMeta storage m = _meta[deviceId];
            uint256 count = m.epochCount;
            if (count == 0) revert UnknownDevice(deviceId);
            DeviceEpoch storage e = _epochs[deviceId][count - 1];
            if (e.owner != owner) revert DeviceNotOwned(deviceId, owner);
            if (!e.active) revert DeviceInactive(deviceId);
            if (e.zone != zone) revert DeviceWrongZone(deviceId, e.zone, zone);
            uint256 lastTransferAt = m.lastTransferAt;
            if (lastTransferAt != 0 && lastTransferAt >= requestCreatedAt) {
                revert DeviceTransferredAfterRequest(deviceId, lastTransferAt, requestCreatedAt);
            }
            capacityW += e.capacityW;
        }
    }

    function keyProofDigest(address owner) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(DEVICE_KEY_PROOF_TYPEHASH, owner)));
    }

    // ─── Internals ────────────────────────────────────────────────────────────────────────

    /// @dev The current epoch of a device the caller owns, as a copy to modify and record.
    function _ownedCurrent(uint256 deviceId) private view returns (DeviceEpoch memory e) {
        uint256 count = _meta[deviceId].epochCount;
        if (count == 0) revert UnknownDevice(deviceId);
        e = _epochs[deviceId][count - 1];
        if (e.owner != msg.sender) revert NotDeviceOwner(deviceId, msg.sender, e.owner);
    }

    /// @dev Appends `e` as the epoch starting now, or overwrites the last epoch if it also
    ///      started now (no interval can have been read under a state that lasted 0 s).
    function _record(uint256 deviceId, DeviceEpoch memory e) private {
        DeviceMeta storage m = _meta[deviceId];
        uint256 count = m.epochCount;
        // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit 40 bits
        e.since = uint40(block.timestamp);
        if (count != 0 && _epochs[deviceId][count - 1].since == block.timestamp) {
            _epochs[deviceId][count - 1] = e;
        } else {
            _epochs[deviceId][count] = e;
            // forge-lint: disable-next-line(unsafe-typecast) -- one epoch per second at most
            m.epochCount = uint32(count + 1);
        }
    }

    /// @dev Binary search for the last epoch with since <= timestamp (O(log n) reads).
    function _epochAt(uint256 deviceId, uint256 timestamp)
        private
        view
        returns (DeviceEpoch memory epoch, uint256 validUntil)
    {
        uint256 count = _meta[deviceId].epochCount;
        if (count == 0) revert UnknownDevice(deviceId);
        mapping(uint256 => DeviceEpoch) storage history = _epochs[deviceId];
        uint256 registeredAt = history[0].since;
        if (timestamp < registeredAt) revert DeviceNotYetRegistered(deviceId, timestamp, registeredAt);
        // invariant: history[lo].since <= timestamp, and every index >= hi has since > timestamp
        uint256 lo = 0;
        uint256 hi = count;
        while (hi - lo > 1) {
            uint256 mid = (lo + hi) / 2;
            if (history[mid].since <= timestamp) lo = mid;
            else hi = mid;
        }
        epoch = history[lo];
        validUntil = hi < count ? history[hi].since : type(uint256).max;
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
