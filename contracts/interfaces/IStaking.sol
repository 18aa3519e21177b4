// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title IStaking
/// @notice FLEX bonds. Stake is locked by bids (bond per kW) and by oracle seats, and stays
///         slashable while it unbonds: the unbonding period is at least the dispute window.
interface IStaking {
    struct Account {
        /// @dev Bonded stake, including the locked part.
        uint128 staked;
        /// @dev Part of `staked` that backs open bids or an oracle seat.
        uint128 locked;
        /// @dev Stake requested out and waiting for the unbonding period (still slashable).
        uint128 unbonding;
        /// @dev When `unbonding` becomes withdrawable.
        uint64 unbondingReleaseAt;
    }

    /// @notice Thrown for a zero amount where a positive one is needed.
    error ZeroAmount();
    /// @notice Thrown when free stake (staked - locked) is below what is asked.
    error InsufficientFreeStake(address account, uint256 free, uint256 needed);
    /// @notice Thrown when unlocking more than is locked.
    error InsufficientLockedStake(address account, uint256 locked, uint256 needed);
    /// @notice Thrown when withdrawing before the unbonding period ends.
    error StillUnbonding(address account, uint256 releaseAt, uint256 now_);
    /// @notice Thrown when there is nothing to withdraw.
    error NothingToWithdraw(address account);
    /// @notice Thrown when a governance parameter is outside its bounds.
    error ParameterOutOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max);
    /// @notice Thrown when an address parameter is zero.
    error ZeroAddress();

    event Staked(address indexed account, uint256 amount);
    event UnstakeRequested(address indexed account, uint256 amount, uint256 releaseAt);
    event Withdrawn(address indexed account, uint256 amount);
    event StakeLocked(address indexed account, address indexed by, uint256 amount);
    event StakeUnlocked(address indexed account, address indexed by, uint256 amount);
    event Slashed(
        address indexed account,
        address indexed by,
        address indexed beneficiary,
        uint256 amount,
        uint256 toBeneficiary,
        uint256 toTreasury
    );
    event UnbondingPeriodSet(uint256 unbondingPeriod);
    event TreasurySet(address indexed treasury);
    event DisputeWindowSourceSet(address indexed source);

    function stake(uint256 amount) external;
    function requestUnstake(uint256 amount) external;
    function withdraw() external;

    function lock(address account, uint256 amount) external;
    function unlock(address account, uint256 amount) external;
    /// @return slashedAmount what was actually taken (at most the account's slashable stake)
    function slash(address account, uint256 amount, address beneficiary, uint16 beneficiaryShareBps)
        external
        returns (uint256 slashedAmount);
    /// @notice Slashes free stake, then unbonding stake, never locked stake.
    /// @return slashedAmount what was actually taken
    function slashUnlocked(address account, uint256 amount, address beneficiary, uint16 beneficiaryShareBps)
        external
        returns (uint256 slashedAmount);

    function accountOf(address account) external view returns (Account memory);
    function freeStake(address account) external view returns (uint256);
    function unbondingPeriod() external view returns (uint64);
}
