// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IDeliveryDispute} from "./IDeliveryDispute.sol";

/// @title IPoolRegistry
/// @notice Pools (an aggregator's virtual power plant, an energy community): an operator, a
///         commission, and member devices enrolled with their owners' consent. A pool bids in
///         FlexMarket as one bid backed by its members in the request's zone; after
///         settlement each member's owner claims its share of the bid's payout with a Merkle
///         proof of its device record.
interface IPoolRegistry {
    /// @dev One slot. A commission change waits `COMMISSION_NOTICE` so members can leave
    ///      before it applies; a bid takes the commission in force when it is placed.
    struct Pool {
        address operator;
        uint16 commissionBps;
        uint16 pendingCommissionBps;
        uint40 pendingEffectiveAt;
    }

    /// @dev One slot. A device backs its pool's bids placed at or after `joinedAt` and before
    ///      `leaveRequestedAt` (0: not leaving). It stays a member until `leaveAt`, which is
    ///      never before the end of a window its pool has bid on.
    struct Membership {
        uint64 poolId;
        uint40 joinedAt;
        uint40 leaveRequestedAt;
        uint40 leaveAt;
    }

    /// @dev One slot per pool and zone: the capacity of the devices that back new bids,
    ///      the latest window end among the pool's bids (members stay until then) and the
    ///      last time a device joined or asked to leave.
    struct ZoneState {
        uint128 capacityW;
        uint40 committedUntil;
        uint40 changedAt;
    }

    /// @dev A settled pool bid's member pot, what was claimed from it, and what it is split by.
    struct PoolPayout {
        uint128 memberPot;
        uint128 claimed;
        uint64 poolId;
        uint192 deliveredWh;
    }

    /// @dev What claims of one request are checked against: the final report's devicesRoot,
    ///      the owners at the window start, the settlement token.
    struct RequestPayouts {
        bytes32 devicesRoot;
        address token;
        uint40 windowStart;
        uint40 settledAt;
    }

    /// @notice Thrown when a commission is above `MAX_COMMISSION_BPS`.
    error CommissionTooHigh(uint256 commissionBps, uint256 maxBps);
    /// @notice Thrown when a pool id does not exist.
    error UnknownPool(uint256 poolId);
    /// @notice Thrown when anyone but the pool's operator acts for the pool.
    error NotPoolOperator(uint256 poolId, address caller);
    /// @notice Thrown when an enrolment's consent is past its deadline.
    error ConsentExpired(uint256 deadline);
    /// @notice Thrown when the consent was not signed by the devices' owner.
    error InvalidConsent(address owner, address signer);
    /// @notice Thrown when an enrolled device is not owned by the consenting owner.
    error DeviceNotOwnedBy(uint256 deviceId, address owner);
    /// @notice Thrown when a device is already in a pool (it must leave, then `completeLeave`).
    error AlreadyInPool(uint256 deviceId, uint256 poolId);
    /// @notice Thrown when a device to enrol backs a live individual bid.
    error DeviceCommitted(uint256 deviceId, uint256 requestId);
    /// @notice Thrown when an enrolment lists no device or too many.
    error InvalidDeviceCount(uint256 count, uint256 max);
    /// @notice Thrown when a device is not a member of the pool named.
    error NotMember(uint256 deviceId, uint256 poolId);
    /// @notice Thrown when neither the device's owner nor its pool's operator asks it to leave.
    error NotOwnerOrOperator(uint256 deviceId, address caller);
    /// @notice Thrown when a device already asked to leave.
    error AlreadyLeaving(uint256 deviceId, uint256 leaveAt);
    /// @notice Thrown when a leave is completed before its time.
    error LeaveNotDue(uint256 deviceId, uint256 leaveAt);
    /// @notice Thrown when anyone but FlexMarket calls a market hook.
    error NotMarket(address caller);
    /// @notice Thrown when the market is wired a second time or by anyone but the deployer.
    error MarketWiring(address caller);
    /// @notice Thrown when a pool bid exceeds the pool's capacity in the zone.
    error PoolCapacityExceeded(uint256 poolId, uint256 powerW, uint256 capacityW);
    /// @notice Thrown when a pool bids in the second a device joined or left it in the zone.
    error PoolChangedThisBlock(uint256 poolId, bytes32 zone);
    /// @notice Thrown when a claimed record's bid is not a settled pool bid.
    error NotPoolPayout(uint256 requestId, uint256 bidIndex);
    /// @notice Thrown when a record is not in the request's final devicesRoot (another round,
    ///         another request, a made-up record).
    error InvalidRecordProof(uint256 requestId, uint256 deviceId);
    /// @notice Thrown when the caller did not own the device at the request's window start.
    error NotDeviceOwnerAt(uint256 deviceId, address caller, address owner);
    /// @notice Thrown when a device's share of a request was claimed already.
    error AlreadyClaimed(uint256 requestId, uint256 deviceId);
    /// @notice Thrown when claims would exceed a bid's member pot (only a wrong report can
    ///         cause it; the pot never pays out more than it holds).
    error PotExceeded(uint256 requestId, uint256 bidIndex);
    /// @notice Thrown when the numbers of records and proofs differ.
    error LengthMismatch(uint256 records, uint256 proofs);
    /// @notice Thrown when there is nothing to withdraw.
    error NothingToWithdraw(address token, address account);
    /// @notice Thrown when a member claims after the claim period (its share was swept).
    error ClaimPeriodOver(uint256 requestId, uint256 endedAt);
    /// @notice Thrown when a sweep comes before the claim period has ended.
    error ClaimPeriodNotOver(uint256 requestId, uint256 endsAt);
    /// @notice Thrown when a bid's pot holds nothing unclaimed (or was swept already).
    error NothingToSweep(uint256 requestId, uint256 bidIndex);

    event PoolCreated(uint256 indexed poolId, address indexed operator, uint16 commissionBps, string name);
    event CommissionChangeScheduled(uint256 indexed poolId, uint16 commissionBps, uint256 effectiveAt);
    event MemberJoined(
        uint256 indexed poolId,
        uint256 indexed deviceId,
        address indexed owner,
        bytes32 zone,
        uint256 capacityW,
        uint256 joinedAt
    );
    event LeaveRequested(uint256 indexed poolId, uint256 indexed deviceId, uint256 requestedAt, uint256 leaveAt);
    event MemberLeft(uint256 indexed poolId, uint256 indexed deviceId);
    event PoolBidSettled(
        uint256 indexed requestId,
        uint256 indexed bidIndex,
        uint256 indexed poolId,
        uint256 payout,
        uint256 commission,
        uint256 memberPot,
        uint256 deliveredWh
    );
    event MemberPaid(
        uint256 indexed requestId, uint256 indexed deviceId, address indexed owner, uint256 bidIndex, uint256 amount
    );
    event Withdrawn(address indexed token, address indexed account, uint256 amount);
    event UnclaimedSwept(
        uint256 indexed requestId, uint256 indexed bidIndex, uint256 indexed poolId, address operator, uint256 amount
    );
    event MarketSet(address market);

    function createPool(uint16 commissionBps, string calldata name) external returns (uint256 poolId);
    function setCommission(uint256 poolId, uint16 commissionBps) external;
    function enroll(
        uint256 poolId,
        address owner,
        uint256[] calldata deviceIds,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external;
    function requestLeave(uint256[] calldata deviceIds) external;
    function completeLeave(uint256[] calldata deviceIds) external;
    function claim(uint256 requestId, IDeliveryDispute.DeviceRecord[] calldata records, bytes32[][] calldata proofs)
        external
        returns (uint256 amount);
    function withdraw(address token) external returns (uint256 amount);
    function sweepUnclaimed(uint256 requestId, uint256 bidIndex) external returns (uint256 amount);

    /// @notice FlexMarket's hook when a pool bids: checks the operator and the capacity,
    ///         returns the commission in force and records how long members are committed.
    function onPoolBid(uint256 poolId, address operator, bytes32 zone, uint256 powerW, uint256 windowEnd)
        external
        returns (uint16 commissionBps, uint256 capacityW);
    /// @notice FlexMarket's hook when a pool bid settles; the market sent `payout` before.
    function onPoolBidSettled(uint256 requestId, uint256 bidIndex, uint256 payout, uint256 deliveredWh) external;

    function pool(uint256 poolId) external view returns (Pool memory);
    function commissionAt(uint256 poolId, uint256 timestamp) external view returns (uint16);
    function membershipOf(uint256 deviceId) external view returns (Membership memory);
    function backingPoolAt(uint256 deviceId, uint256 timestamp) external view returns (uint256);
    function capacityOf(uint256 poolId, bytes32 zone) external view returns (uint256);
    function payoutOf(uint256 requestId, uint256 bidIndex) external view returns (PoolPayout memory);
    function claimed(uint256 requestId, uint256 deviceId) external view returns (bool);
    function consentDigest(uint256 poolId, address owner, uint256[] calldata deviceIds, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32);
}
