// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IStaking} from "./interfaces/IStaking.sol";

/// @notice What Staking asks of the market to keep unbonding at least as long as disputes.
interface IDisputeWindowSource {
    function disputeWindow() external view returns (uint64);
}

/// @title Staking
/// @notice FLEX bonds of device owners and oracles.
/// @dev Unstaking moves stake into `unbonding`, which can only be withdrawn after
///      `unbondingPeriod` and stays slashable until then, so a dispute can always reach the
///      stake that backed the disputed work. Only contracts holding LOCKER_ROLE or
///      SLASHER_ROLE (the market and the oracle committee) can lock or slash.
contract Staking is IStaking, AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    bytes32 public constant LOCKER_ROLE = keccak256("LOCKER_ROLE");
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    uint64 public constant MIN_UNBONDING_PERIOD = 60;
    uint64 public constant MAX_UNBONDING_PERIOD = 60 days;
    uint256 private constant BPS = 10_000;

    IERC20 public immutable token;
    address public treasury;
    uint64 public unbondingPeriod;
    /// @notice The market whose dispute window bounds the unbonding period from below.
    IDisputeWindowSource public disputeWindowSource;

    mapping(address account => Account) private _accounts;

    constructor(IERC20 token_, address admin, address treasury_, uint64 unbondingPeriod_) {
        if (address(token_) == address(0) || admin == address(0) || treasury_ == address(0)) revert ZeroAddress();
        token = token_;
        treasury = treasury_;
        _checkUnbonding(unbondingPeriod_, 0);
        unbondingPeriod = unbondingPeriod_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        emit TreasurySet(treasury_);
        emit UnbondingPeriodSet(unbondingPeriod_);
    }

    // ─── Stakers ──────────────────────────────────────────────────────────────────────────

    /// @notice Bonds `amount` FLEX from the caller (needs an allowance).
    function stake(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        _accounts[msg.sender].staked += _toUint128(amount);
        emit Staked(msg.sender, amount);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Starts unbonding `amount` of free stake; restarts the clock for all unbonding stake.
    function requestUnstake(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Account storage a = _accounts[msg.sender];
        uint256 free = a.staked - a.locked;
        if (amount > free) revert InsufficientFreeStake(msg.sender, free, amount);
        // forge-lint: disable-next-line(unsafe-typecast) -- bounded by a uint128 field above
        a.staked -= uint128(amount);
        // forge-lint: disable-next-line(unsafe-typecast) -- bounded by a uint128 field above
        a.unbonding += uint128(amount);
        // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit 64 bits
        uint64 releaseAt = uint64(block.timestamp) + unbondingPeriod;
        a.unbondingReleaseAt = releaseAt;
        emit UnstakeRequested(msg.sender, amount, releaseAt);
    }

    /// @notice Withdraws all unbonded stake once the unbonding period has passed.
    function withdraw() external nonReentrant {
        Account storage a = _accounts[msg.sender];
        uint256 amount = a.unbonding;
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        if (block.timestamp < a.unbondingReleaseAt) {
            revert StillUnbonding(msg.sender, a.unbondingReleaseAt, block.timestamp);
        }
        a.unbonding = 0;
        emit Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ─── Market and committee ─────────────────────────────────────────────────────────────

    function lock(address account, uint256 amount) external onlyRole(LOCKER_ROLE) {
        Account storage a = _accounts[account];
        uint256 free = a.staked - a.locked;
        if (amount > free) revert InsufficientFreeStake(account, free, amount);
        // forge-lint: disable-next-line(unsafe-typecast) -- bounded by a uint128 field above
        a.locked += uint128(amount);
        emit StakeLocked(account, msg.sender, amount);
    }

    function unlock(address account, uint256 amount) external onlyRole(LOCKER_ROLE) {
        Account storage a = _accounts[account];
        if (amount > a.locked) revert InsufficientLockedStake(account, a.locked, amount);
        // forge-lint: disable-next-line(unsafe-typecast) -- bounded by a uint128 field above
        a.locked -= uint128(amount);
        emit StakeUnlocked(account, msg.sender, amount);
    }

    /// @dev Takes locked stake first (and releases that lock), then free stake, then unbonding
    ///      stake; never more than the account holds. Pays `beneficiaryShareBps` of it to
    ///      `beneficiary` (e.g. a successful challenger) and the rest to the treasury.
    function slash(address account, uint256 amount, address beneficiary, uint16 beneficiaryShareBps)
        external
        onlyRole(SLASHER_ROLE)
        nonReentrant
        returns (uint256 slashedAmount)
    {
        if (beneficiaryShareBps > BPS) {
            revert ParameterOutOfBounds("beneficiaryShareBps", beneficiaryShareBps, 0, BPS);
        }
        Account storage a = _accounts[account];
        uint256 fromStaked = Math.min(amount, a.staked);
        uint256 fromUnbonding = Math.min(amount - fromStaked, a.unbonding);
        // forge-lint: disable-next-line(unsafe-typecast) -- bounded by a uint128 field above
        a.staked -= uint128(fromStaked);
        // forge-lint: disable-next-line(unsafe-typecast) -- bounded by a uint128 field above
        a.locked -= uint128(Math.min(fromStaked, a.locked));
        // forge-lint: disable-next-line(unsafe-typecast) -- bounded by a uint128 field above
        a.unbonding -= uint128(fromUnbonding);
        slashedAmount = fromStaked + fromUnbonding;
        _payOut(account, slashedAmount, beneficiary, beneficiaryShareBps);
    }

    /// @notice Slashes stake that backs nothing in flight: free stake (staked minus locked)
    ///         first, then unbonding stake; never locked stake.
    /// @dev For penalties outside a lock holder's accounting (e.g. a device owner's proven
    ///      equivocation): taking locked stake would make the lock holder's later `unlock`
    ///      revert and could block a settlement. Pays `beneficiaryShareBps` of it to
    ///      `beneficiary` and the rest to the treasury, like `slash`.
    function slashUnlocked(address account, uint256 amount, address beneficiary, uint16 beneficiaryShareBps)
        external
        onlyRole(SLASHER_ROLE)
        nonReentrant
        returns (uint256 slashedAmount)
    {
        if (beneficiaryShareBps > BPS) {
            revert ParameterOutOfBounds("beneficiaryShareBps", beneficiaryShareBps, 0, BPS);
        }
        Account storage a = _accounts[account];
        uint256 fromFree = Math.min(amount, a.staked - a.locked);
        uint256 fromUnbonding = Math.min(amount - fromFree, a.unbonding);
        // forge-lint: disable-next-line(unsafe-typecast) -- bounded by a uint128 field above
        a.staked -= uint128(fromFree);
        // forge-lint: disable-next-line(unsafe-typecast) -- bounded by a uint128 field above
        a.unbonding -= uint128(fromUnbonding);
        slashedAmount = fromFree + fromUnbonding;
        _payOut(account, slashedAmount, beneficiary, beneficiaryShareBps);
    }

    // ─── Governance ───────────────────────────────────────────────────────────────────────

    function setUnbondingPeriod(uint64 period) external onlyRole(DEFAULT_ADMIN_ROLE) {
        uint64 disputeWindow = address(disputeWindowSource) == address(0) ? 0 : disputeWindowSource.disputeWindow();
        _checkUnbonding(period, disputeWindow);
        unbondingPeriod = period;
        emit UnbondingPeriodSet(period);
    }

    function setDisputeWindowSource(IDisputeWindowSource source) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (address(source) == address(0)) revert ZeroAddress();
        _checkUnbonding(unbondingPeriod, source.disputeWindow());
        disputeWindowSource = source;
        emit DisputeWindowSourceSet(address(source));
    }

    function setTreasury(address treasury_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (treasury_ == address(0)) revert ZeroAddress();
        treasury = treasury_;
        emit TreasurySet(treasury_);
    }

    // ─── Views ────────────────────────────────────────────────────────────────────────────

    function accountOf(address account) external view returns (Account memory) {
        return _accounts[account];
    }

    function freeStake(address account) external view returns (uint256) {
        Account storage a = _accounts[account];
        return a.staked - a.locked;
    }

    /// @dev Splits a slashed amount between `beneficiary` and the treasury and transfers it.
    function _payOut(address account, uint256 slashedAmount, address beneficiary, uint16 beneficiaryShareBps) private {
        if (slashedAmount == 0) return;
        uint256 toBeneficiary = beneficiary == address(0) ? 0 : slashedAmount * beneficiaryShareBps / BPS;
        uint256 toTreasury = slashedAmount - toBeneficiary;
        emit Slashed(account, msg.sender, beneficiary, slashedAmount, toBeneficiary, toTreasury);
        if (toBeneficiary > 0) token.safeTransfer(beneficiary, toBeneficiary);
        if (toTreasury > 0) token.safeTransfer(treasury, toTreasury);
    }

    function _checkUnbonding(uint64 period, uint64 disputeWindow) private pure {
        uint256 min = Math.max(MIN_UNBONDING_PERIOD, disputeWindow);
        if (period < min || period > MAX_UNBONDING_PERIOD) {
            revert ParameterOutOfBounds("unbondingPeriod", period, min, MAX_UNBONDING_PERIOD);
        }
    }

    function _toUint128(uint256 value) private pure returns (uint128) {
        if (value > type(uint128).max) revert ParameterOutOfBounds("amount", value, 1, type(uint128).max);
        // forge-lint: disable-next-line(unsafe-typecast) -- checked on the line above
        return uint128(value);
    }
}
