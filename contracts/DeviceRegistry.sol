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
    /// @notice Devices per `registerBatch`: at about 77k gas each, 200 fit Osaka's per-transaction
    ///         gas cap (EIP-7825, 2^24) with room to spare.
    uint256 public constant MAX_BATCH = 200;
    bytes32 public constant DEVICE_KEY_PROOF_TYPEHASH = keccak256("DeviceKeyProof(address owner)");

    uint256 private constant SECP256K1_KEY_LENGTH = 20;
    uint256 private constant SECP256K1_PROOF_LENGTH = 65;
    uint256 private constant P256_KEY_LENGTH = 64;
    uint256 private constant P256_PROOF_LENGTH = 64;
    /// @dev `Current.flags`: the device accepts bids.
    uint8 private constant ACTIVE = 1;
    /// @dev `Current.flags`: the device changed owner at least once (when: `_meta`).
    uint8 private constant TRANSFERRED = 2;
    /// @dev `Current.flags`: the device is enrolled in a pool (set by `pools` only): no
    ///      individual bids, no capacity or zone change, no transfer until it has left.
    uint8 private constant POOLED = 4;

    /// @dev The current epoch: slot 0 packs everything a bid checks but the zone, so a bid
    ///      reads two slots per device and a registration writes no more than the state itself.
    struct Current {
        address owner;
        uint32 capacityW;
        DeviceKind kind;
        KeyType keyType;
        /// @dev ACTIVE, TRANSFERRED and POOLED bits: one byte, so that `since` fits this slot too.
        uint8 flags;
        /// @dev When this epoch began (registration or the last owner action).
        uint40 since;
        bytes32 zone;
        bytes32 keyX;
        bytes32 keyY;
    }

    /// @dev Written at the first owner action after registration, not by `register`.
    struct DeviceMeta {
        /// @dev How many epochs ended (stored in `_past`, oldest first).
        uint32 pastCount;
        /// @dev When the device last changed owner (0: never).
        uint40 lastTransferAt;
        /// @dev Who the device is offered to (0: nobody).
        address pendingOwner;
    }

    mapping(uint256 deviceId => Current) private _devices;
    mapping(uint256 deviceId => DeviceMeta) private _meta;
    /// @dev Append-only: epochs that ended, judged forever by the state they held.
    mapping(uint256 deviceId => mapping(uint256 index => DeviceEpoch)) private _past;
    uint256 private _deviceCount;
    /// @notice The PoolRegistry, the only caller of `setPooled`; wired once at deployment.
    address public pools;
    address private immutable _deployer;

    constructor() EIP712("GridFlex DeviceRegistry", "1") {
        _deployer = msg.sender;
    }

    /// @notice Wires the PoolRegistry, once, by the deploying account.
    function setPools(address pools_) external {
        if (msg.sender != _deployer) revert NotDeployer(msg.sender);
        if (pools != address(0)) revert PoolsAlreadySet(pools);
        if (pools_ == address(0)) revert InvalidNewOwner(pools_);
        pools = pools_;
        emit PoolsSet(pools_);
    }

    /// @notice Marks a device as enrolled in a pool, or as having left it (PoolRegistry only).
    ///         Not an owner action: no new epoch, the device's state is unchanged.
    function setPooled(uint256 deviceId, bool pooled) external {
        if (msg.sender != pools || pools == address(0)) revert NotPools(msg.sender);
        Current storage d = _devices[deviceId];
        if (d.owner == address(0)) revert UnknownDevice(deviceId);
        d.flags = pooled ? d.flags | POOLED : d.flags & ~POOLED;
    }

    function isPooled(uint256 deviceId) external view returns (bool) {
        return _devices[deviceId].flags & POOLED != 0;
    }

    // ─── Owner actions ────────────────────────────────────────────────────────────────────

    /// @notice Registers a device owned by the caller; ids start at 1.
    function register(uint8 kind, uint48 capacityW, bytes32 zone, DeviceKey calldata key)
        external
        returns (uint256 deviceId)
    {
        return _register(kind, capacityW, zone, key);
    }

    /// @notice Registers a fleet of like devices (same kind, capacity and zone) owned by the
    ///         caller, each with its own key and proof; their ids are consecutive from the
    ///         returned one. Onboarding at fleet scale: one transaction per few hundred devices.
    function registerBatch(uint8 kind, uint48 capacityW, bytes32 zone, DeviceKey[] calldata keys)
        external
        returns (uint256 firstDeviceId)
    {
        uint256 count = keys.length;
        if (count == 0 || count > MAX_BATCH) revert InvalidBatchSize(count, MAX_BATCH);
        firstDeviceId = _deviceCount + 1;
        for (uint256 i; i < count; ++i) {
            _register(kind, capacityW, zone, keys[i]);
        }
    }

    function _register(uint8 kind, uint48 capacityW, bytes32 zone, DeviceKey calldata key)
        private
        returns (uint256 deviceId)
    {
        if (kind > uint8(DeviceKind.Other)) revert InvalidKind(kind);
        _checkCapacityAndZone(capacityW, zone);
        (KeyType keyType, bytes32 keyX, bytes32 keyY) = _verifiedKey(msg.sender, key);

        deviceId = ++_deviceCount;
        Current storage d = _devices[deviceId];
        d.owner = msg.sender;
        // forge-lint: disable-next-line(unsafe-typecast) -- checked <= MAX_CAPACITY_W above
        d.capacityW = uint32(capacityW);
        d.kind = DeviceKind(kind);
        d.keyType = keyType;
        d.flags = ACTIVE;
        // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit 40 bits
        d.since = uint40(block.timestamp);
        d.zone = zone;
        d.keyX = keyX;
        if (keyY != bytes32(0)) d.keyY = keyY;
        emit DeviceRegistered(deviceId, msg.sender, zone, DeviceKind(kind), capacityW, keyType, keyX, keyY);
    }

    /// @notice Changes capacity and zone (e.g. after a hardware upgrade or a grid re-connection).
    function update(uint256 deviceId, uint48 capacityW, bytes32 zone) external {
        Current storage d = _ownedDevice(deviceId);
        if (d.flags & POOLED != 0) revert DeviceInPool(deviceId);
        _checkCapacityAndZone(capacityW, zone);
        _newEpoch(deviceId, d);
        // forge-lint: disable-next-line(unsafe-typecast) -- checked <= MAX_CAPACITY_W above
        d.capacityW = uint32(capacityW);
        d.zone = zone;
        emit DeviceUpdated(deviceId, zone, capacityW);
    }

    /// @notice Replaces the signing key, with a fresh proof of possession. Readings of
    ///         intervals before now stay judged by the old key (`deviceAt`).
    function rotateKey(uint256 deviceId, DeviceKey calldata key) external {
        Current storage d = _ownedDevice(deviceId);
        (KeyType keyType, bytes32 keyX, bytes32 keyY) = _verifiedKey(msg.sender, key);
        _newEpoch(deviceId, d);
        d.keyType = keyType;
        d.keyX = keyX;
        d.keyY = keyY;
        emit DeviceKeyRotated(deviceId, keyType, keyX, keyY);
    }

    /// @notice Deactivates (no new bids) or reactivates a device.
    function setActive(uint256 deviceId, bool active) external {
        Current storage d = _ownedDevice(deviceId);
        uint8 flags = d.flags;
        if (((flags & ACTIVE) != 0) == active) revert DeviceActiveStateUnchanged(deviceId, active);
        _newEpoch(deviceId, d);
        d.flags = active ? flags | ACTIVE : flags & ~ACTIVE;
        emit DeviceActiveChanged(deviceId, active);
    }

    /// @notice Offers the device to a new owner (a house sale, an aggregator change); the
    ///         device is unchanged until the recipient accepts.
    function transfer(uint256 deviceId, address newOwner) external {
        Current storage d = _ownedDevice(deviceId);
        if (d.flags & POOLED != 0) revert DeviceInPool(deviceId);
        if (newOwner == address(0) || newOwner == d.owner) revert InvalidNewOwner(newOwner);
        _meta[deviceId].pendingOwner = newOwner;
        emit TransferProposed(deviceId, msg.sender, newOwner);
    }

    function cancelTransfer(uint256 deviceId) external {
        _ownedDevice(deviceId);
        DeviceMeta storage m = _meta[deviceId];
        address pending = m.pendingOwner;
        if (pending == address(0)) revert NoPendingTransfer(deviceId);
        m.pendingOwner = address(0);
        emit TransferCancelled(deviceId, msg.sender, pending);
    }

    /// @notice Takes over an offered device with the caller's own key: one new epoch with the
    ///         new owner and the new key, so the seller's key attests nothing from now on and
    ///         the seller stays answerable for the intervals it owned (`deviceAt`).
    function acceptTransfer(uint256 deviceId, DeviceKey calldata key) external {
        Current storage d = _devices[deviceId];
        address from = d.owner;
        if (from == address(0)) revert UnknownDevice(deviceId);
        DeviceMeta storage m = _meta[deviceId];
        if (m.pendingOwner != msg.sender) revert NotPendingOwner(deviceId, msg.sender, m.pendingOwner);
        if (d.flags & POOLED != 0) revert DeviceInPool(deviceId);
        (KeyType keyType, bytes32 keyX, bytes32 keyY) = _verifiedKey(msg.sender, key);
        if (keyType == d.keyType && keyX == d.keyX && keyY == d.keyY) revert TransferKeyNotFresh(deviceId);
        _newEpoch(deviceId, d);
        d.owner = msg.sender;
        d.flags |= TRANSFERRED;
        d.keyType = keyType;
        d.keyX = keyX;
        d.keyY = keyY;
        m.pendingOwner = address(0);
        // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit 40 bits
        m.lastTransferAt = uint40(block.timestamp);
        emit DeviceTransferred(deviceId, from, msg.sender);
        emit DeviceKeyRotated(deviceId, keyType, keyX, keyY);
    }

    // ─── Views ────────────────────────────────────────────────────────────────────────────

    function device(uint256 deviceId) external view returns (Device memory) {
        Current memory d = _devices[deviceId];
        if (d.owner == address(0)) revert UnknownDevice(deviceId);
        return Device({
            owner: d.owner,
            capacityW: d.capacityW,
            kind: d.kind,
            keyType: d.keyType,
            active: d.flags & ACTIVE != 0,
            lastTransferAt: _meta[deviceId].lastTransferAt,
            zone: d.zone,
            keyX: d.keyX,
            keyY: d.keyY
        });
    }

    function deviceCount() external view returns (uint256) {
        return _deviceCount;
    }

    function deviceAt(uint256 deviceId, uint256 timestamp) external view returns (DeviceEpoch memory epoch) {
        (epoch,) = _epochAt(deviceId, timestamp);
    }

    /// @notice The device's owner at `timestamp` (one read for a device never changed since).
    function ownerAt(uint256 deviceId, uint256 timestamp) external view returns (address) {
        (bool current, uint256 index,) = _locate(deviceId, timestamp);
        return current ? _devices[deviceId].owner : _past[deviceId][index].owner;
    }

    function deviceEpochAt(uint256 deviceId, uint256 timestamp)
        external
        view
        returns (DeviceEpoch memory epoch, uint256 validUntil)
    {
        return _epochAt(deviceId, timestamp);
    }

    function pendingOwnerOf(uint256 deviceId) external view returns (address) {
        return _meta[deviceId].pendingOwner;
    }

    function signingKeyAt(uint256 deviceId, uint256 timestamp) external view returns (SigningKey memory key) {
        (bool current, uint256 index, uint256 validUntil) = _locate(deviceId, timestamp);
        key.validUntil = validUntil;
        if (current) {
            Current storage d = _devices[deviceId];
            (key.owner, key.keyType, key.keyX) = (d.owner, d.keyType, d.keyX);
            if (key.keyType == KeyType.P256) key.keyY = d.keyY;
        } else {
            DeviceEpoch storage e = _past[deviceId][index];
            (key.owner, key.keyType, key.keyX) = (e.owner, e.keyType, e.keyX);
            if (key.keyType == KeyType.P256) key.keyY = e.keyY;
        }
    }

    function epochCount(uint256 deviceId) external view returns (uint256) {
        if (_devices[deviceId].owner == address(0)) return 0;
        return uint256(_meta[deviceId].pastCount) + 1;
    }

    function epochAt(uint256 deviceId, uint256 index) external view returns (DeviceEpoch memory) {
        Current storage d = _devices[deviceId];
        if (d.owner == address(0)) revert UnknownDevice(deviceId);
        uint256 pastCount = _meta[deviceId].pastCount;
        if (index < pastCount) return _past[deviceId][index];
        if (index > pastCount) revert UnknownDeviceEpoch(deviceId, index, pastCount + 1);
        return _epochOf(d);
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
            Current storage d = _devices[deviceId];
            if (d.owner != owner) {
                if (d.owner == address(0)) revert UnknownDevice(deviceId);
                revert DeviceNotOwned(deviceId, owner);
            }
            uint8 flags = d.flags;
            if (flags & ACTIVE == 0) revert DeviceInactive(deviceId);
            if (flags & POOLED != 0) revert DeviceInPool(deviceId);
            if (d.zone != zone) revert DeviceWrongZone(deviceId, d.zone, zone);
            // A transfer starts an epoch, so lastTransferAt <= since: only a transferred device
            // changed at or after the request's creation needs the third read.
            if (flags & TRANSFERRED != 0 && d.since >= requestCreatedAt) {
                uint256 lastTransferAt = _meta[deviceId].lastTransferAt;
                if (lastTransferAt != 0 && lastTransferAt >= requestCreatedAt) {
                    revert DeviceTransferredAfterRequest(deviceId, lastTransferAt, requestCreatedAt);
                }
            }
            capacityW += d.capacityW;
        }
    }

    function keyProofDigest(address owner) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(DEVICE_KEY_PROOF_TYPEHASH, owner)));
    }

    // ─── Internals ────────────────────────────────────────────────────────────────────────

    function _ownedDevice(uint256 deviceId) private view returns (Current storage d) {
        d = _devices[deviceId];
        if (d.owner == address(0)) revert UnknownDevice(deviceId);
        if (d.owner != msg.sender) revert NotDeviceOwner(deviceId, msg.sender, d.owner);
    }

    /// @dev Called before an owner action changes `d`: archives the current epoch and starts
    ///      one now; an epoch that also began now is changed in place instead (no interval
    ///      can have been read under a state that lasted 0 s).
    function _newEpoch(uint256 deviceId, Current storage d) private {
        // slither-disable-next-line incorrect-equality -- same-second actions share one epoch
        if (d.since == block.timestamp) return;
        DeviceMeta storage m = _meta[deviceId];
        uint256 pastCount = m.pastCount;
        _past[deviceId][pastCount] = _epochOf(d);
        // forge-lint: disable-next-line(unsafe-typecast) -- one epoch per second at most
        m.pastCount = uint32(pastCount + 1);
        // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit 40 bits
        d.since = uint40(block.timestamp);
    }

    function _epochOf(Current storage d) private view returns (DeviceEpoch memory) {
        return DeviceEpoch({
            since: d.since,
            owner: d.owner,
            capacityW: d.capacityW,
            keyType: d.keyType,
            active: d.flags & ACTIVE != 0,
            zone: d.zone,
            keyX: d.keyX,
            keyY: d.keyY
        });
    }

    /// @dev The epoch in force at `timestamp` and when it ended.
    function _epochAt(uint256 deviceId, uint256 timestamp)
        private
        view
        returns (DeviceEpoch memory epoch, uint256 validUntil)
    {
        (bool current, uint256 index, uint256 until) = _locate(deviceId, timestamp);
        return (current ? _epochOf(_devices[deviceId]) : _past[deviceId][index], until);
    }

    /// @dev Where the epoch in force at `timestamp` is (the current one, or `_past[index]`)
    ///      and when it ended: a binary search over the ended epochs (O(log n) reads) unless
    ///      it is the current one.
    function _locate(uint256 deviceId, uint256 timestamp)
        private
        view
        returns (bool current, uint256 index, uint256 validUntil)
    {
        Current storage d = _devices[deviceId];
        if (d.owner == address(0)) revert UnknownDevice(deviceId);
        uint256 currentSince = d.since;
        if (timestamp >= currentSince) return (true, 0, type(uint256).max);
        uint256 pastCount = _meta[deviceId].pastCount;
        mapping(uint256 => DeviceEpoch) storage past = _past[deviceId];
        // slither-disable-next-line incorrect-equality -- a count: no epoch ended yet
        uint256 registeredAt = pastCount == 0 ? currentSince : past[0].since;
        if (timestamp < registeredAt) revert DeviceNotYetRegistered(deviceId, timestamp, registeredAt);
        // invariant: past[lo].since <= timestamp, and every index >= hi has since > timestamp
        uint256 lo = 0;
        uint256 hi = pastCount;
        while (hi - lo > 1) {
            uint256 mid = (lo + hi) / 2;
            if (past[mid].since <= timestamp) lo = mid;
            else hi = mid;
        }
        return (false, lo, hi < pastCount ? past[hi].since : currentSince);
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
