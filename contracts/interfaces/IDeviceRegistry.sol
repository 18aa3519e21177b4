// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title IDeviceRegistry
/// @notice Distributed energy resources (DER) known to GridFlex: who owns them, what they are,
///         where they connect and which key signs their meter readings.
interface IDeviceRegistry {
    enum DeviceKind {
        Battery,
        EvCharger,
        HeatPump,
        Hvac,
        PvInverter,
        IndustrialLoad,
        Other
    }

    enum KeyType {
        Secp256k1,
        P256
    }

    /// @dev Packed in three slots (four for P-256 keys).
    struct Device {
        address owner;
        uint32 capacityW;
        DeviceKind kind;
        KeyType keyType;
        bool active;
        /// @dev When the device last changed owner (0: never). A device that changed owner at
        ///      or after a request was posted cannot be offered in that request, so a transfer
        ///      cannot put the same hardware into two bids of one request.
        uint40 lastTransferAt;
        bytes32 zone;
        /// @dev secp256k1: the signer address in the low 160 bits. P-256: the x coordinate.
        bytes32 keyX;
        /// @dev P-256 only: the y coordinate.
        bytes32 keyY;
    }

    /// @notice The device as it stood from `since` until the next epoch: every owner action
    ///         (register, update, rotateKey, setActive, transfer) appends one, so a past
    ///         interval is judged forever by the owner and key that were in force then.
    /// @dev Four slots (since..active packed in one). Two actions in one second share an epoch.
    struct DeviceEpoch {
        uint40 since;
        address owner;
        uint32 capacityW;
        KeyType keyType;
        bool active;
        bytes32 zone;
        bytes32 keyX;
        bytes32 keyY;
    }

    /// @notice Who answered for a device at some time and which key signed for it then, until
    ///         `validUntil` (the next epoch's start, type(uint256).max for the current one).
    struct SigningKey {
        address owner;
        KeyType keyType;
        bytes32 keyX;
        /// @dev P-256 only (zero for secp256k1 keys).
        bytes32 keyY;
        uint256 validUntil;
    }

    /// @notice A device key as given at registration or rotation.
    /// @dev secp256k1: `data` is the 20-byte signer address and `proof` a 65-byte r||s||v
    ///      signature. P-256: `data` is the 64-byte public key x||y and `proof` a 64-byte
    ///      low-s r||s signature. Either signs the EIP-712 `DeviceKeyProof(address owner)`.
    struct DeviceKey {
        /// @dev A KeyType value; a plain uint8 so that a bad value gets InvalidKeyType.
        uint8 keyType;
        bytes data;
        bytes proof;
    }

    /// @notice Thrown when a device id was never registered.
    error UnknownDevice(uint256 deviceId);
    /// @notice Thrown when the caller is not the device owner.
    error NotDeviceOwner(uint256 deviceId, address caller, address owner);
    /// @notice Thrown when a capacity is zero or above MAX_CAPACITY_W.
    error InvalidCapacity(uint256 capacityW, uint256 maxCapacityW);
    /// @notice Thrown when the zone is zero.
    error InvalidZone();
    /// @notice Thrown when the kind is outside the DeviceKind enum.
    error InvalidKind(uint8 kind);
    /// @notice Thrown when the key type is outside the KeyType enum.
    error InvalidKeyType(uint8 keyType);
    /// @notice Thrown when key bytes have the wrong length or an unusable value for their type.
    error InvalidKey(KeyType keyType, uint256 length);
    /// @notice Thrown when the proof of possession does not verify against the key.
    error InvalidKeyProof(KeyType keyType);
    /// @notice Thrown when deactivating an inactive device or reactivating an active one.
    error DeviceActiveStateUnchanged(uint256 deviceId, bool active);
    /// @notice Thrown when device ids of a bid are not strictly ascending (duplicates).
    error DevicesNotAscending(uint256 index, uint256 deviceId);
    /// @notice Thrown when a device in a bid is not owned by the bidder.
    error DeviceNotOwned(uint256 deviceId, address bidder);
    /// @notice Thrown when a device in a bid is inactive.
    error DeviceInactive(uint256 deviceId);
    /// @notice Thrown when a device in a bid is in another zone than the request.
    error DeviceWrongZone(uint256 deviceId, bytes32 zone, bytes32 requestZone);
    /// @notice Thrown when a device changed owner at or after the request it is offered in.
    error DeviceTransferredAfterRequest(uint256 deviceId, uint256 lastTransferAt, uint256 requestCreatedAt);
    /// @notice Thrown when asking for a device's state at a time before it was registered.
    error DeviceNotYetRegistered(uint256 deviceId, uint256 timestamp, uint256 registeredAt);
    /// @notice Thrown when asking for an epoch index the device does not have.
    error UnknownDeviceEpoch(uint256 deviceId, uint256 index, uint256 epochCount);
    /// @notice Thrown when transferring to the zero address or to the current owner.
    error InvalidNewOwner(address newOwner);
    /// @notice Thrown when accepting a transfer that was not proposed to the caller.
    error NotPendingOwner(uint256 deviceId, address caller, address pendingOwner);
    /// @notice Thrown when cancelling while no transfer of the device is proposed.
    error NoPendingTransfer(uint256 deviceId);
    /// @notice Thrown when a transfer is accepted with the device's current key: the new owner
    ///         must bring its own, so the seller's key cannot attest intervals after the sale.
    error TransferKeyNotFresh(uint256 deviceId);

    /// @notice Thrown when a pooled device is offered in an individual bid, or its capacity,
    ///         zone or owner would change: it must leave its pool first.
    error DeviceInPool(uint256 deviceId);
    /// @notice Thrown when a batch registration lists no device or more than MAX_BATCH.
    error InvalidBatchSize(uint256 count, uint256 max);
    /// @notice Thrown when anyone but the deploying account wires the PoolRegistry.
    error NotDeployer(address caller);
    /// @notice Thrown when the PoolRegistry is wired a second time.
    error PoolsAlreadySet(address pools);
    /// @notice Thrown when anyone but the PoolRegistry marks a device as pooled.
    error NotPools(address caller);

    event PoolsSet(address pools);

    event DeviceRegistered(
        uint256 indexed deviceId,
        address indexed owner,
        bytes32 indexed zone,
        DeviceKind kind,
        uint48 capacityW,
        KeyType keyType,
        bytes32 keyX,
        bytes32 keyY
    );
    event DeviceUpdated(uint256 indexed deviceId, bytes32 indexed zone, uint48 capacityW);
    event DeviceKeyRotated(uint256 indexed deviceId, KeyType keyType, bytes32 keyX, bytes32 keyY);
    event DeviceActiveChanged(uint256 indexed deviceId, bool active);
    /// @notice The device changed owner (the recipient accepted); its key changed too.
    event DeviceTransferred(uint256 indexed deviceId, address indexed from, address indexed to);
    /// @notice `from` offered the device to `to`; nothing changes until `to` accepts.
    event TransferProposed(uint256 indexed deviceId, address indexed from, address indexed to);
    /// @notice The owner withdrew its offer of the device to `to`.
    event TransferCancelled(uint256 indexed deviceId, address indexed from, address indexed to);

    /// @param kind a DeviceKind value
    function register(uint8 kind, uint48 capacityW, bytes32 zone, DeviceKey calldata key)
        external
        returns (uint256 deviceId);
    function registerBatch(uint8 kind, uint48 capacityW, bytes32 zone, DeviceKey[] calldata keys)
        external
        returns (uint256 firstDeviceId);
    function update(uint256 deviceId, uint48 capacityW, bytes32 zone) external;
    function rotateKey(uint256 deviceId, DeviceKey calldata key) external;
    function setActive(uint256 deviceId, bool active) external;
    /// @notice Offers the device to `newOwner` (replacing an earlier offer); ownership moves
    ///         only when `newOwner` calls `acceptTransfer`, so no one can be handed a device
    ///         (and its owner's liabilities) it did not ask for.
    function transfer(uint256 deviceId, address newOwner) external;
    /// @notice Withdraws the pending offer (owner only).
    function cancelTransfer(uint256 deviceId) external;
    /// @notice Completes an offered transfer: the caller becomes the owner with `key` (a fresh
    ///         proof of possession bound to the caller, a key other than the current one).
    function acceptTransfer(uint256 deviceId, DeviceKey calldata key) external;
    /// @notice Who the device is offered to (zero when no transfer is pending).
    function pendingOwnerOf(uint256 deviceId) external view returns (address);

    function device(uint256 deviceId) external view returns (Device memory);
    function deviceCount() external view returns (uint256);
    /// @notice Checks that `deviceIds` are strictly ascending, active, owned by `owner`, in
    ///         `zone` and not transferred since `requestCreatedAt`; returns their total
    ///         capacity (one call per bid).
    function checkBidDevices(address owner, bytes32 zone, uint256 requestCreatedAt, uint256[] calldata deviceIds)
        external
        view
        returns (uint256 capacityW);
    /// @notice The device as it stood at `timestamp`: the last epoch with since <= timestamp.
    function deviceAt(uint256 deviceId, uint256 timestamp) external view returns (DeviceEpoch memory);
    function ownerAt(uint256 deviceId, uint256 timestamp) external view returns (address);
    /// @notice deviceAt plus the end of that epoch: the next epoch's `since`, or
    ///         type(uint256).max while it is the current one. A reading covering
    ///         [start, end) was made under a single epoch iff end <= validUntil.
    function deviceEpochAt(uint256 deviceId, uint256 timestamp)
        external
        view
        returns (DeviceEpoch memory epoch, uint256 validUntil);
    /// @notice The owner and signing key of the epoch at `timestamp` (deviceEpochAt, reading
    ///         only what a signature check needs: what fraud proofs call).
    function signingKeyAt(uint256 deviceId, uint256 timestamp) external view returns (SigningKey memory);
    /// @notice How many epochs the device has (>= 1 once registered, 0 for unknown ids).
    function epochCount(uint256 deviceId) external view returns (uint256);
    /// @notice The `index`-th epoch of the device, oldest first.
    function epochAt(uint256 deviceId, uint256 index) external view returns (DeviceEpoch memory);
    /// @notice EIP-712 digest that the device key signs to prove possession for `owner`.
    function keyProofDigest(address owner) external view returns (bytes32);

    function setPools(address pools_) external;
    function setPooled(uint256 deviceId, bool pooled) external;
    function isPooled(uint256 deviceId) external view returns (bool);
}
