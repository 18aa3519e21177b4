// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IStaking} from "./IStaking.sol";

/// @title IOracleCommittee
/// @notice The k-of-n oracle set that measures delivery and signs reports (EIP-712).
/// @dev Every oracle gets a permanent id (1..MAX_ORACLE_IDS) so that a report can record its
///      signers as a 64-bit bitmap in storage it already writes; ids are never reused.
interface IOracleCommittee {
    struct Oracle {
        uint8 id;
        bool active;
        /// @dev FLEX locked in Staking for the seat; stays locked (and slashable) after removal
        ///      until `bondReleaseAt`.
        uint128 bond;
        uint64 bondReleaseAt;
    }

    /// @notice Thrown when adding an address that already holds an oracle id.
    error OracleAlreadyKnown(address oracle);
    /// @notice Thrown when removing or using an address that is not an active oracle.
    error NotActiveOracle(address account);
    /// @notice Thrown when all oracle ids are used.
    error OracleIdsExhausted(uint256 maxIds);
    /// @notice Thrown when a threshold k is not a strict majority of n, or zero.
    error InvalidThreshold(uint256 threshold, uint256 activeOracles);
    /// @notice Thrown when fewer signatures than the threshold are given.
    error NotEnoughSignatures(uint256 given, uint256 threshold);
    /// @notice Thrown when signers are not in strictly ascending address order (duplicates).
    error SignersNotAscending(uint256 index, address signer);
    /// @notice Thrown when a signature does not recover to an active oracle.
    error SignerNotOracle(uint256 index, address recovered);
    /// @notice Thrown when a signature is malformed.
    error MalformedSignature(uint256 index);
    /// @notice Thrown when seating the zero address.
    error ZeroAddress();
    /// @notice Thrown when releasing a removed oracle's bond before its release time.
    error BondStillLocked(address oracle, uint256 releaseAt);
    /// @notice Thrown when releasing the bond of an active oracle or one with no bond left.
    error NoBondToRelease(address oracle);
    /// @notice Thrown when a governance parameter is outside its bounds.
    error ParameterOutOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max);

    event OracleAdded(address indexed oracle, uint8 indexed id, uint256 bond);
    event OracleRemoved(address indexed oracle, uint8 indexed id, uint256 bondReleaseAt);
    event OracleBondReleased(address indexed oracle, uint256 amount);
    event ThresholdSet(uint256 threshold);
    event OracleBondSet(uint256 bond);
    event OraclesSlashed(uint64 signerBitmap, address indexed beneficiary, uint256 total);

    /// @notice Seats `oracle` and sets the threshold for the new committee size in one step.
    function addOracle(address oracle, uint8 newThreshold) external;
    /// @notice Unseats `oracle` and sets the threshold for the new committee size in one step.
    function removeOracle(address oracle, uint8 newThreshold) external;
    /// @notice Unlocks a removed oracle's remaining bond once its release time has passed.
    function releaseOracleBond(address oracle) external;
    function setThreshold(uint8 newThreshold) external;
    function setOracleBond(uint128 bond) external;

    /// @notice Checks k distinct oracle signatures over the report of the calling market.
    /// @param signatures 65-byte ECDSA signatures, ordered by ascending signer address
    /// @return signerBitmap bit `id - 1` set for every signing oracle
    function verifyReport(
        uint256 requestId,
        uint16 round,
        bytes32 deliveredHash,
        bytes32 devicesRoot,
        bytes32 readingsRoot,
        bytes[] calldata signatures
    ) external view returns (uint64 signerBitmap);

    /// @notice The EIP-712 digest an oracle signs for a report of `market`.
    function reportDigest(
        address market,
        uint256 requestId,
        uint16 round,
        bytes32 deliveredHash,
        bytes32 devicesRoot,
        bytes32 readingsRoot
    ) external view returns (bytes32);

    /// @notice Slashes the bond of every oracle in `signerBitmap` (the dispute hook).
    function slashSigners(uint64 signerBitmap, address beneficiary, uint16 beneficiaryShareBps)
        external
        returns (uint256 total);

    /// @notice The staking contract holding the oracles' bonds.
    function staking() external view returns (IStaking);
    function threshold() external view returns (uint8);
    function activeOracleCount() external view returns (uint8);
    function oracleOf(address account) external view returns (Oracle memory);
    function oracleById(uint8 id) external view returns (address);
}
