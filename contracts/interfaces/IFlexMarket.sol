// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IPoolRegistry} from "./IPoolRegistry.sol";

/// @title IFlexMarket
/// @notice Flexibility requests from grid operators, bids from device owners, clearing,
///         oracle reports and settlement with escrowed budgets and pull payments.
interface IFlexMarket {
    enum Direction {
        ReduceConsumption,
        IncreaseConsumption
    }

    enum PricingRule {
        PayAsBid,
        Uniform
    }

    enum RequestStatus {
        None,
        Open,
        Cleared,
        Reported,
        Settled,
        Cancelled,
        Expired
    }

    /// @notice What a grid operator asks for. Energy in Wh, power in W, money in base units
    ///         of `settlementToken`, time in unix seconds.
    /// @dev `direction` and `pricingRule` are plain uint8 (Direction, PricingRule values) so
    ///      that a bad value gets a custom error instead of an ABI decoding failure.
    struct RequestParams {
        bytes32 zone;
        uint8 direction;
        uint48 powerW;
        uint40 windowStart;
        uint40 windowEnd;
        uint32 intervalSeconds;
        uint128 priceCapPerKWh;
        /// @dev Optional availability price per kW per hour of window (0 = none).
        uint128 availabilityPricePerKWh;
        uint40 gateClosure;
        uint8 baselineMethod;
        uint8 pricingRule;
        address settlementToken;
    }

    /// @dev Packed in seven slots; the report lives in its own mapping.
    struct Request {
        address operator;
        uint40 gateClosure;
        Direction direction;
        uint8 baselineMethod;
        PricingRule pricingRule;
        address settlementToken;
        uint48 powerW;
        uint48 awardedW;
        uint40 windowStart;
        uint40 windowEnd;
        uint32 intervalSeconds;
        uint16 bidCount;
        RequestStatus status;
        /// @dev End of the pending report's dispute window, fixed when the report is posted
        ///      (a later change of `disputeWindow` does not move it); after a void, the time
        ///      of the void, from which `reportTimeout` counts again.
        uint40 disputeEndsAt;
        uint16 reportRound;
        uint64 signerBitmap;
        bytes32 zone;
        uint128 priceCapPerKWh;
        uint128 availabilityPricePerKWh;
        uint128 escrow;
        uint128 clearingPrice;
        /// @dev Devices transferred at or after this time cannot be offered in the request.
        uint40 createdAt;
        /// @dev Bids ever placed on the request, displaced ones included: the next bid's
        ///      `sequence`.
        uint24 bidsPlaced;
    }

    /// @dev Two slots (20+6+6 and 12+12+5+3 bytes). Device ids are not stored:
    ///      `devicesHashOf(requestId, bidder)` commits to them and `BidPlaced` lists them.
    struct Bid {
        address bidder;
        uint48 powerW;
        uint48 awardedW;
        uint96 pricePerKWh;
        uint96 bond;
        /// @dev block.timestamp of the bid: the time at which its devices' records
        ///      (`DeviceRegistry.deviceAt`) are read, e.g. their capacities.
        uint40 placedAt;
        /// @dev Order of placement within the request (0 for the first bid): the merit
        ///      order's tie-break. A displacing bid reuses a slot, so the index is not time.
        uint24 sequence;
    }

    /// @dev One slot. A device's share in a bid that may still have to deliver: the bid in
    ///      slot `bidIndex` of `requestId` if that slot still holds bid `sequence`.
    struct DeviceCommitment {
        uint64 requestId;
        uint16 bidIndex;
        uint24 sequence;
        uint40 windowStart;
        uint40 windowEnd;
    }

    /// @dev One slot. A bid placed by a pool's operator for the pool (`bidAsPool`): the
    ///      commission in force and the pool's capacity in the zone when it was placed.
    struct PoolBid {
        uint64 poolId;
        uint16 commissionBps;
        uint48 capacityW;
    }

    struct Report {
        bytes32 deliveredHash;
        bytes32 devicesRoot;
        bytes32 readingsRoot;
    }

    /// @notice Thrown when a request id does not exist.
    error UnknownRequest(uint256 requestId);
    /// @notice Thrown when a request is not in the status an action needs.
    error WrongStatus(uint256 requestId, RequestStatus status, RequestStatus expected);
    /// @notice Thrown when request times are inconsistent or off the interval grid.
    error InvalidWindow(uint256 windowStart, uint256 windowEnd, uint256 intervalSeconds);
    /// @notice Thrown when the interval length is not one of the supported lengths.
    error InvalidInterval(uint256 intervalSeconds);
    /// @notice Thrown when gate closure is in the past or after the window start.
    error InvalidGateClosure(uint256 gateClosure, uint256 now_, uint256 windowStart);
    /// @notice Thrown when a power is below the protocol minimum.
    error PowerBelowMinimum(uint256 powerW, uint256 minimumW);
    /// @notice Thrown for an unknown baseline method id.
    error UnknownBaselineMethod(uint8 method);
    /// @notice Thrown for a direction outside the Direction enum.
    error InvalidDirection(uint8 direction);
    /// @notice Thrown for a pricing rule outside the PricingRule enum.
    error InvalidPricingRule(uint8 pricingRule);
    /// @notice Thrown for a zero price cap.
    error ZeroPriceCap();
    /// @notice Thrown when the settlement token is the zero address.
    error ZeroAddress();
    /// @notice Thrown when the escrow received differs from the budget (fee-on-transfer tokens).
    error EscrowMismatch(uint256 received, uint256 expected);
    /// @notice Thrown when an action comes after gate closure.
    error GateClosed(uint256 requestId, uint256 gateClosure);
    /// @notice Thrown when clearing before gate closure.
    error GateNotClosed(uint256 requestId, uint256 gateClosure);
    /// @notice Thrown when clearing after the delivery window has started.
    error ClearingTooLate(uint256 requestId, uint256 windowStart);
    /// @notice Thrown when a bid price exceeds the request's cap or is zero.
    error InvalidBidPrice(uint256 price, uint256 cap);
    /// @notice Thrown when a bidder bids twice on one request.
    error AlreadyBid(uint256 requestId, address bidder);
    /// @notice Thrown when a request holds the maximum number of bids and the new bid is not
    ///         priced strictly below the worst one (which it would displace).
    error TooManyBids(uint256 requestId, uint256 maxBids);
    /// @notice Thrown when a device already backs a live bid in a request whose delivery
    ///         window overlaps this one's (one delivery is paid once).
    error DeviceOvercommitted(uint256 deviceId, uint256 otherRequestId);
    /// @notice Thrown when a device already holds MAX_LIVE_COMMITMENTS_PER_DEVICE live
    ///         commitments in requests yet to be delivered.
    error DeviceCommitmentsFull(uint256 deviceId, uint256 max);
    /// @notice Thrown when a bid lists no device or more than MAX_DEVICES_PER_BID.
    error InvalidDeviceCount(uint256 count, uint256 max);
    /// @notice Thrown when a bid offers more power than its devices' total capacity.
    error BidExceedsCapacity(uint256 powerW, uint256 capacityW);
    /// @notice Thrown when the caller is not the request's grid operator.
    error NotRequestOperator(uint256 requestId, address caller);
    /// @notice Thrown when the merit order is not all bids sorted by price, then sequence.
    error InvalidMeritOrder(uint256 position);
    /// @notice Thrown when a report comes before the delivery window ended.
    error WindowNotEnded(uint256 requestId, uint256 windowEnd);
    /// @notice Thrown when per-bid delivery figures do not match the bids.
    error DeliveryLengthMismatch(uint256 given, uint256 bidCount);
    /// @notice Thrown when a different report is submitted while one is pending.
    error ConflictingReport(uint256 requestId, uint16 round);
    /// @notice Thrown when the dispute window has not ended.
    error DisputeWindowOpen(uint256 requestId, uint256 endsAt);
    /// @notice Thrown when voiding a report after its dispute window ended.
    error DisputeWindowClosed(uint256 requestId, uint256 endedAt);
    /// @notice Thrown when delivery figures do not match the stored report.
    error DeliveryHashMismatch(uint256 requestId);
    /// @notice Thrown when a request cannot expire yet.
    error NotExpirable(uint256 requestId, RequestStatus status, uint256 expiresAt);
    /// @notice Thrown when there is nothing to withdraw.
    error NothingToWithdraw(address token, address account);
    /// @notice Thrown when a request's escrow is below governance's minimum for its settlement
    ///         token (dust requests).
    error EscrowBelowMinimum(address token, uint256 escrow, uint256 minimum);
    /// @notice Thrown when a governance parameter is outside its bounds.
    error ParameterOutOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max);

    event RequestCreated(
        uint256 indexed requestId, address indexed operator, bytes32 indexed zone, RequestParams params, uint256 escrow
    );
    event RequestCancelled(uint256 indexed requestId, uint256 refund);
    event BidPlaced(
        uint256 indexed requestId,
        uint256 indexed bidIndex,
        address indexed bidder,
        uint48 powerW,
        uint96 pricePerKWh,
        uint96 bond,
        uint256[] deviceIds
    );
    /// @notice A full request took a cheaper bid: `bidder`'s bid in slot `bidIndex` (the
    ///         worst: highest price, latest among equals) is gone, its bond released, and the
    ///         `BidPlaced` that follows for the same slot is `byBidder`'s.
    /// @notice A pool's bid (with `BidPlaced`, whose device list is empty): the backing
    ///         devices are the pool's members in the zone at the bid's time (PoolRegistry).
    event PoolBidPlaced(
        uint256 indexed requestId,
        uint256 indexed bidIndex,
        uint256 indexed poolId,
        uint256 capacityW,
        uint16 commissionBps
    );
    event BidDisplaced(uint256 indexed requestId, uint256 indexed bidIndex, address indexed bidder, address byBidder);
    /// @notice The dispatch signal: `bidder`'s devices deliver `awardedW` during the window.
    event Awarded(
        uint256 indexed requestId, uint256 indexed bidIndex, address indexed bidder, uint48 awardedW, uint96 pricePerKWh
    );
    event RequestCleared(uint256 indexed requestId, uint48 awardedW, uint128 clearingPrice, uint256 acceptedBids);
    event ReportSubmitted(
        uint256 indexed requestId,
        uint16 indexed round,
        Report report,
        uint256[] deliveredWh,
        uint64 signerBitmap,
        uint256 disputeEndsAt
    );
    event ReportVoided(uint256 indexed requestId, uint16 indexed round, uint64 signerBitmap);
    /// @notice The pending report's dispute window now ends at `disputeEndsAt` (a challenge
    ///         against it is pending).
    event DisputeExtended(uint256 indexed requestId, uint16 indexed round, uint256 disputeEndsAt);
    event BidSettled(
        uint256 indexed requestId,
        uint256 indexed bidIndex,
        address indexed bidder,
        uint256 deliveredWh,
        uint256 utilization,
        uint256 availability,
        uint256 fee,
        uint256 slashed
    );
    event RequestSettled(uint256 indexed requestId, uint256 payouts, uint256 fees, uint256 refund, uint256 slashed);
    event RequestExpired(uint256 indexed requestId, uint256 refund);
    event Withdrawn(address indexed token, address indexed account, uint256 amount);
    event ParameterSet(bytes32 indexed name, uint256 value);
    event TreasurySet(address indexed treasury);
    event MinEscrowSet(address indexed token, uint256 minEscrow);

    function createRequest(RequestParams calldata params) external returns (uint256 requestId);
    function cancelRequest(uint256 requestId) external;
    function bid(uint256 requestId, uint48 powerW, uint96 pricePerKWh, uint256[] calldata deviceIds)
        external
        returns (uint256 bidIndex);
    function bidAsPool(uint256 requestId, uint256 poolId, uint48 powerW, uint96 pricePerKWh)
        external
        returns (uint256 bidIndex);
    function poolBidOf(uint256 requestId, uint256 bidIndex) external view returns (PoolBid memory);
    function pools() external view returns (IPoolRegistry);
    function clear(uint256 requestId, uint16[] calldata meritOrder) external;
    function submitReport(
        uint256 requestId,
        uint256[] calldata deliveredWh,
        bytes32 devicesRoot,
        bytes32 readingsRoot,
        bytes[] calldata signatures
    ) external;
    function voidReport(uint256 requestId) external;
    /// @notice Dispute contract: raises the pending report's dispute end (never lowers it).
    function extendDispute(uint256 requestId, uint256 until) external;
    function finalize(uint256 requestId, uint256[] calldata deliveredWh) external;
    function expire(uint256 requestId) external;
    function withdraw(address token) external returns (uint256 amount);

    function request(uint256 requestId) external view returns (Request memory);
    function bidOf(uint256 requestId, uint256 bidIndex) external view returns (Bid memory);
    /// @notice keccak256 of the packed device ids of `bidder`'s bid, zero when it has none.
    function devicesHashOf(uint256 requestId, address bidder) external view returns (bytes32);
    function reportOf(uint256 requestId) external view returns (Report memory);
    /// @notice The request of a live commitment of `deviceId` whose window overlaps
    ///         [windowStart, windowEnd), 0 when none (a bid with it would not revert
    ///         DeviceOvercommitted).
    function overlappingCommitment(uint256 deviceId, uint256 windowStart, uint256 windowEnd)
        external
        view
        returns (uint256 requestId);
    function claimable(address token, address account) external view returns (uint256);
    function requestCount() external view returns (uint256);
    function disputeWindow() external view returns (uint64);
    /// @notice Smallest escrow a request settled in `token` may hold (0: no minimum).
    function minEscrowOf(address token) external view returns (uint256);
}
