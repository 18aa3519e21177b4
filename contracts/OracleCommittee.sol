// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IOracleCommittee} from "./interfaces/IOracleCommittee.sol";
import {IStaking} from "./interfaces/IStaking.sol";

/// @title OracleCommittee
/// @notice Governance-managed oracle set with a k-of-n threshold. Each oracle bonds FLEX in
///         Staking for its seat; a successful dispute slashes the bonds of a report's signers.
/// @dev Reports are EIP-712 typed data under this contract's domain and name the market, the
///      request and the round, so a signature cannot be replayed on another chain, committee,
///      market, request or round.
contract OracleCommittee is IOracleCommittee, AccessControl, EIP712 {
    /// @notice Held by the DisputeResolver (granted at deployment, see gridflex/chain/deploy.py);
    ///         may slash report signers.
    bytes32 public constant DISPUTE_ROLE = keccak256("DISPUTE_ROLE");
    bytes32 public constant REPORT_TYPEHASH = keccak256(
        "Report(address market,uint256 requestId,uint16 round,bytes32 deliveredHash,bytes32 devicesRoot,bytes32 readingsRoot)"
    );
    /// @notice Oracle ids are 1..64 so a signer set fits in a uint64 bitmap.
    uint8 public constant MAX_ORACLE_IDS = 64;
    uint128 public constant MAX_ORACLE_BOND = type(uint128).max;
    uint256 private constant SIGNATURE_LENGTH = 65;

    IStaking public immutable staking;
    uint8 public threshold;
    uint8 public activeOracleCount;
    uint8 public oracleIdCount;
    uint128 public oracleBond;

    mapping(address account => Oracle) private _oracles;
    mapping(uint8 id => address) public oracleById;

    constructor(address admin, IStaking staking_, uint128 oracleBond_) EIP712("GridFlex OracleCommittee", "1") {
        staking = staking_;
        oracleBond = oracleBond_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        emit OracleBondSet(oracleBond_);
    }

    // ─── Governance ───────────────────────────────────────────────────────────────────────

    /// @notice Seats `oracle`, locks the current oracle bond from its free stake and sets
    ///         the threshold for the new size (a strict majority), atomically, so a committee
    ///         can grow from any size.
    function addOracle(address oracle, uint8 newThreshold) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (oracle == address(0)) revert ZeroAddress();
        if (_oracles[oracle].id != 0) revert OracleAlreadyKnown(oracle);
        if (oracleIdCount == MAX_ORACLE_IDS) revert OracleIdsExhausted(MAX_ORACLE_IDS);
        uint8 count = activeOracleCount + 1;
        _checkThreshold(newThreshold, count);
        uint8 id = ++oracleIdCount;
        uint128 bond = oracleBond;
        _oracles[oracle] = Oracle({id: id, active: true, bond: bond, bondReleaseAt: 0});
        oracleById[id] = oracle;
        activeOracleCount = count;
        threshold = newThreshold;
        emit OracleAdded(oracle, id, bond);
        emit ThresholdSet(newThreshold);
        if (bond > 0) staking.lock(oracle, bond);
    }

    /// @notice Unseats `oracle` and sets the threshold for the new size; its id is not
    ///         reused. The bond stays locked, and slashable for reports it signed, for one
    ///         staking unbonding period (at least the dispute window); then anyone may
    ///         release it with `releaseOracleBond`.
    function removeOracle(address oracle, uint8 newThreshold) external onlyRole(DEFAULT_ADMIN_ROLE) {
        Oracle storage o = _oracles[oracle];
        if (!o.active) revert NotActiveOracle(oracle);
        uint8 remaining = activeOracleCount - 1;
        _checkThreshold(newThreshold, remaining);
        uint64 releaseAt = uint64(block.timestamp) + staking.unbondingPeriod();
        o.active = false;
        o.bondReleaseAt = releaseAt;
        activeOracleCount = remaining;
        threshold = newThreshold;
        emit OracleRemoved(oracle, o.id, releaseAt);
        emit ThresholdSet(newThreshold);
    }

    function releaseOracleBond(address oracle) external {
        Oracle storage o = _oracles[oracle];
        uint128 bond = o.bond;
        if (o.active || bond == 0) revert NoBondToRelease(oracle);
        if (block.timestamp < o.bondReleaseAt) revert BondStillLocked(oracle, o.bondReleaseAt);
        o.bond = 0;
        emit OracleBondReleased(oracle, bond);
        staking.unlock(oracle, bond);
    }

    /// @notice Sets k; it must be a strict majority of the active oracles, so two different
    ///         reports for one request can never both reach the threshold.
    function setThreshold(uint8 threshold_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkThreshold(threshold_, activeOracleCount);
        threshold = threshold_;
        emit ThresholdSet(threshold_);
    }

    /// @notice Bond locked for oracles seated from now on.
    function setOracleBond(uint128 bond) external onlyRole(DEFAULT_ADMIN_ROLE) {
        oracleBond = bond;
        emit OracleBondSet(bond);
    }

    // ─── Reports ──────────────────────────────────────────────────────────────────────────

    function verifyReport(
        uint256 requestId,
        uint16 round,
        bytes32 deliveredHash,
        bytes32 devicesRoot,
        bytes32 readingsRoot,
        bytes[] calldata signatures
    ) external view returns (uint64 signerBitmap) {
        uint256 k = threshold;
        if (k == 0 || signatures.length < k) revert NotEnoughSignatures(signatures.length, k);
        bytes32 digest = reportDigest(msg.sender, requestId, round, deliveredHash, devicesRoot, readingsRoot);
        address previous = address(0);
        for (uint256 i; i < signatures.length; ++i) {
            if (signatures[i].length != SIGNATURE_LENGTH) revert MalformedSignature(i);
            // slither-disable-next-line unused-return -- the third value only details `err`
            (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signatures[i]);
            if (err != ECDSA.RecoverError.NoError) revert MalformedSignature(i);
            if (signer <= previous) revert SignersNotAscending(i, signer);
            Oracle storage o = _oracles[signer];
            if (!o.active) revert SignerNotOracle(i, signer);
            signerBitmap |= uint64(1) << (o.id - 1);
            previous = signer;
        }
    }

    function reportDigest(
        address market,
        uint256 requestId,
        uint16 round,
        bytes32 deliveredHash,
        bytes32 devicesRoot,
        bytes32 readingsRoot
    ) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(REPORT_TYPEHASH, market, requestId, round, deliveredHash, devicesRoot, readingsRoot))
        );
    }

    /// @dev Slashes each signer's remaining bond and unseats it: an oracle proven to have
    ///      signed a wrong report must not sign again. The threshold is left as it is (a slash
    ///      cannot be refused); governance re-seats or lowers k afterwards.
    // slither-disable-next-line reentrancy-no-eth -- staking is immutable and calls back nobody
    function slashSigners(uint64 signerBitmap, address beneficiary, uint16 beneficiaryShareBps)
        external
        onlyRole(DISPUTE_ROLE)
        returns (uint256 total)
    {
        uint8 idCount = oracleIdCount;
        for (uint8 id = 1; id <= idCount; ++id) {
            if (signerBitmap & (uint64(1) << (id - 1)) == 0) continue;
            address oracle = oracleById[id];
            Oracle storage o = _oracles[oracle];
            uint128 bond = o.bond;
            if (o.active) {
                o.active = false;
                activeOracleCount -= 1;
                emit OracleRemoved(oracle, id, block.timestamp);
            }
            if (bond == 0) continue;
            o.bond = 0;
            total += staking.slash(oracle, bond, beneficiary, beneficiaryShareBps);
        }
        emit OraclesSlashed(signerBitmap, beneficiary, total);
    }

    // ─── Views ────────────────────────────────────────────────────────────────────────────

    function oracleOf(address account) external view returns (Oracle memory) {
        return _oracles[account];
    }

    function _checkThreshold(uint256 k, uint256 n) private pure {
        if (n == 0 && k == 0) return;
        if (k == 0 || k > n || 2 * k <= n) revert InvalidThreshold(k, n);
    }
}
