"""Readable sentences for GridFlex reverts: one table from custom-error name to a message
with units, shared by every CLI (grid operator, node, oracle).

`explain(error, units)` turns a `TransactionReverted` into a sentence; amounts are rendered
in the settlement token (`Units`), power in kW, times in UTC."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from eth_utils import keccak

from gridflex.errors import TransactionReverted
from gridflex.rules.types import RequestStatus

if TYPE_CHECKING:
    from gridflex.chain.protocol import TokenMetadata

KNOWN_ROLES = (
    "GRID_OPERATOR_ROLE",
    "DISPUTE_ROLE",
    "LOCKER_ROLE",
    "SLASHER_ROLE",
)
ROLE_NAMES: dict[bytes, str] = {keccak(text=name): name for name in KNOWN_ROLES}
ROLE_NAMES[b"\x00" * 32] = "DEFAULT_ADMIN_ROLE"


def format_amount(amount: int, decimals: int, symbol: str = "") -> str:
    """`1200 * 10**18` -> '1,200.00 FLEX': two decimals, more only when they are needed."""
    value = Decimal(int(amount)).scaleb(-decimals)
    text = (
        f"{value:,.2f}" if value == value.quantize(Decimal("0.01")) else f"{value.normalize():,f}"
    )
    return f"{text} {symbol}".rstrip()


def format_time(timestamp: int) -> str:
    """Unix seconds -> '2026-11-25 10:45 UTC' (seconds shown only when not zero)."""
    moment = datetime.fromtimestamp(int(timestamp), UTC)
    pattern = "%Y-%m-%d %H:%M UTC" if moment.second == 0 else "%Y-%m-%d %H:%M:%S UTC"
    return moment.strftime(pattern)


def format_kw(power_w: int) -> str:
    return f"{Decimal(int(power_w)).scaleb(-3).normalize():,f} kW"


def status_name(value: Any) -> str:
    """A request status as the CLI shows it ('open', 'settled'...); the number if unknown."""
    try:
        return RequestStatus(int(value)).name.lower()
    except ValueError:
        return str(int(value))


def _bytes32_text(value: Any) -> str:
    raw = bytes(value)
    return raw.rstrip(b"\x00").decode("ascii", errors="replace") or "0x" + raw.hex()


@dataclass(frozen=True)
class Units:
    """How to render token amounts in messages (the request's settlement token)."""

    symbol: str = "FLEX"
    decimals: int = 18

    def money(self, amount: int) -> str:
        return format_amount(amount, self.decimals, self.symbol)

    def bare(self, amount: int) -> str:
        return format_amount(amount, self.decimals)

    @classmethod
    def of_token(cls, token: str, metadata: TokenMetadata | None) -> Units:
        """Units of `token` (`Protocol.token_metadata`): raw base units without metadata."""
        if metadata is None:
            return cls(f"units of {token}", 0)
        return cls(metadata.symbol, metadata.decimals)


Explainer = Callable[[dict[str, Any], Units], str]


def _role(args: dict[str, Any], units: Units) -> str:
    role = ROLE_NAMES.get(
        bytes(args.get("neededRole", b"")), "0x" + bytes(args["neededRole"]).hex()
    )
    account = args.get("account", "this account")
    if role == "GRID_OPERATOR_ROLE":
        return f"not a grid operator: {account} lacks GRID_OPERATOR_ROLE (ask governance for it)"
    return f"not allowed: {account} lacks {role}"


def _gate_closure(args: dict[str, Any], units: Units) -> str:
    gate, now, start = int(args["gateClosure"]), int(args["now_"]), int(args["windowStart"])
    if gate <= now:
        return (
            f"gate closure has passed: {format_time(gate)} is not after "
            f"chain time {format_time(now)}"
        )
    return f"gate closure {format_time(gate)} is after the window start {format_time(start)}"


def _wrong_status(args: dict[str, Any], units: Units) -> str:
    return (
        f"request {args['requestId']} is {status_name(args['status'])}, "
        f"this needs it {status_name(args['expected'])}"
    )


def _not_expirable(args: dict[str, Any], units: Units) -> str:
    expires = int(args["expiresAt"])
    when = f"before {format_time(expires)}" if expires else "in its state"
    return f"request {args['requestId']} ({status_name(args['status'])}) cannot expire {when}"


MESSAGES: dict[str, Explainer] = {
    # ─── FlexMarket ───────────────────────────────────────────────────────────────────
    "UnknownRequest": lambda a, u: f"request {a['requestId']} does not exist",
    "WrongStatus": _wrong_status,
    "InvalidWindow": lambda a, u: (
        f"invalid window {format_time(a['windowStart'])} to {format_time(a['windowEnd'])}: it must "
        f"start before it ends, on {int(a['intervalSeconds']) // 60}-minute boundaries, "
        "and not exceed the maximum number of intervals"
    ),
    "InvalidInterval": lambda a, u: (
        f"invalid interval of {a['intervalSeconds']} s: use 15 or 30 minutes"
    ),
    "InvalidGateClosure": _gate_closure,
    "PowerBelowMinimum": lambda a, u: (
        f"power {format_kw(a['powerW'])} is below the minimum of {format_kw(a['minimumW'])}"
    ),
    "UnknownBaselineMethod": lambda a, u: f"unknown baseline method {a['method']}",
    "InvalidDirection": lambda a, u: f"invalid direction {a['direction']}",
    "InvalidPricingRule": lambda a, u: f"invalid pricing rule {a['pricingRule']}",
    "ZeroPriceCap": lambda a, u: "the price cap must be above zero",
    "ZeroAddress": lambda a, u: "an address given is the zero address",
    "EscrowBelowMinimum": lambda a, u: (
        f"the request would escrow {u.money(a['escrow'])}, below the minimum of "
        f"{u.money(a['minimum'])} that governance set for this settlement token"
    ),
    "EscrowMismatch": lambda a, u: (
        f"the token moved {u.money(a['received'])} into escrow instead of "
        f"{u.money(a['expected'])} (fee-on-transfer tokens cannot settle requests)"
    ),
    "GateClosed": lambda a, u: (
        f"gate closure has passed: request {a['requestId']} closed at "
        f"{format_time(a['gateClosure'])}"
    ),
    "GateNotClosed": lambda a, u: (
        f"gate closure has not passed yet: request {a['requestId']} takes bids until "
        f"{format_time(a['gateClosure'])}"
    ),
    "ClearingTooLate": lambda a, u: (
        f"too late to clear request {a['requestId']}: its window started at "
        f"{format_time(a['windowStart'])} (expire it instead)"
    ),
    "InvalidBidPrice": lambda a, u: (
        f"bid price {u.money(a['price'])}/kWh must be above zero and at most the cap of "
        f"{u.money(a['cap'])}/kWh"
    ),
    "AlreadyBid": lambda a, u: f"{a['bidder']} already bid on request {a['requestId']}",
    "TooManyBids": lambda a, u: (
        f"request {a['requestId']} is full ({a['maxBids']} bids): only a bid priced below "
        "its worst bid gets in"
    ),
    "DeviceOvercommitted": lambda a, u: (
        f"device {a['deviceId']} already backs a live bid in request {a['otherRequestId']}, "
        "whose window overlaps this one"
    ),
    "DeviceCommitmentsFull": lambda a, u: (
        f"device {a['deviceId']} already backs {a['max']} live bids in requests yet to be delivered"
    ),
    "InvalidDeviceCount": lambda a, u: (
        f"a bid needs between 1 and {a['max']} devices, got {a['count']}"
    ),
    "BidExceedsCapacity": lambda a, u: (
        f"bid of {format_kw(a['powerW'])} exceeds the devices' capacity of "
        f"{format_kw(a['capacityW'])}"
    ),
    "NotRequestOperator": lambda a, u: (
        f"not the operator of request {a['requestId']}: {a['caller']} did not post it"
    ),
    "InvalidMeritOrder": lambda a, u: f"invalid merit order at position {a['position']}",
    "WindowNotEnded": lambda a, u: (
        f"the window of request {a['requestId']} ends at {format_time(a['windowEnd'])}"
    ),
    "DeliveryLengthMismatch": lambda a, u: (
        f"the report has {a['given']} delivery figures, the request has {a['bidCount']} bids"
    ),
    "ConflictingReport": lambda a, u: (
        f"a different report is already pending for request {a['requestId']} (round {a['round']})"
    ),
    "DisputeWindowOpen": lambda a, u: (
        f"the dispute window of request {a['requestId']} is still open until "
        f"{format_time(a['endsAt'])}"
    ),
    "DisputeWindowClosed": lambda a, u: (
        f"the dispute window of request {a['requestId']} closed at {format_time(a['endedAt'])}"
    ),
    "DeliveryHashMismatch": lambda a, u: (
        f"the delivery figures do not match the report of request {a['requestId']}"
    ),
    "NotExpirable": _not_expirable,
    "NothingToWithdraw": lambda a, u: f"nothing to withdraw for {a.get('account', 'this account')}",
    "ParameterOutOfBounds": lambda a, u: (
        f"{_bytes32_text(a['name'])} = {a['value']} is out of bounds [{a['min']}, {a['max']}]"
    ),
    # ─── DeviceRegistry ───────────────────────────────────────────────────────────────
    "UnknownDevice": lambda a, u: f"device {a['deviceId']} does not exist",
    "UnknownDeviceEpoch": lambda a, u: (
        f"device {a['deviceId']} has {a['epochCount']} registry epochs; there is no epoch "
        f"{a['index']}"
    ),
    "NotDeviceOwner": lambda a, u: (
        f"device {a['deviceId']} belongs to {a['owner']}, not {a['caller']}"
    ),
    "InvalidCapacity": lambda a, u: (
        f"capacity {format_kw(a['capacityW'])} must be above zero and at most "
        f"{format_kw(a['maxCapacityW'])}"
    ),
    "InvalidZone": lambda a, u: "the zone must not be empty",
    "InvalidKind": lambda a, u: f"unknown device kind {a['kind']}",
    "InvalidKeyType": lambda a, u: f"unknown device key type {a['keyType']}",
    "InvalidKey": lambda a, u: f"malformed device key ({a['length']} bytes)",
    "InvalidKeyProof": lambda a, u: "the device key's proof of possession does not verify",
    "DeviceActiveStateUnchanged": lambda a, u: (
        f"device {a['deviceId']} is already {'active' if a['active'] else 'inactive'}"
    ),
    "DevicesNotAscending": lambda a, u: (
        f"device ids must be strictly ascending (position {a['index']}: {a['deviceId']})"
    ),
    "DeviceNotOwned": lambda a, u: f"device {a['deviceId']} is not owned by {a['bidder']}",
    "DeviceInactive": lambda a, u: f"device {a['deviceId']} is inactive",
    "DeviceWrongZone": lambda a, u: f"device {a['deviceId']} is not in the request's zone",
    "DeviceTransferredAfterRequest": lambda a, u: (
        f"device {a['deviceId']} changed owner at {format_time(a['lastTransferAt'])}, after the "
        f"request was posted at {format_time(a['requestCreatedAt'])}"
    ),
    "InvalidNewOwner": lambda a, u: f"invalid new owner {a['newOwner']}",
    "NotPendingOwner": lambda a, u: (
        f"device {a['deviceId']} is not offered to {a['caller']}"
        + (f" (it is offered to {a['pendingOwner']})" if int(a["pendingOwner"], 16) else "")
    ),
    "NoPendingTransfer": lambda a, u: f"device {a['deviceId']} is not offered to anyone",
    "TransferKeyNotFresh": lambda a, u: (
        f"accepting device {a['deviceId']} needs a new key of your own, not the seller's"
    ),
    "DeviceNotYetRegistered": lambda a, u: (
        f"device {a['deviceId']} was registered at {format_time(a['registeredAt'])}, after "
        f"{format_time(a['timestamp'])}"
    ),
    # ─── Staking ──────────────────────────────────────────────────────────────────────
    "ZeroAmount": lambda a, u: "the amount must be above zero",
    "InsufficientFreeStake": lambda a, u: (
        f"insufficient free stake: need {u.money(a['needed'])}, have {u.bare(a['free'])}"
    ),
    "InsufficientLockedStake": lambda a, u: (
        f"insufficient locked stake: need {u.money(a['needed'])}, have {u.bare(a['locked'])}"
    ),
    "StillUnbonding": lambda a, u: f"stake is unbonding until {format_time(a['releaseAt'])}",
    # ─── OracleCommittee ──────────────────────────────────────────────────────────────
    "OracleAlreadyKnown": lambda a, u: f"{a['oracle']} is already an oracle",
    "NotActiveOracle": lambda a, u: f"{a['account']} is not an active oracle",
    "OracleIdsExhausted": lambda a, u: f"no oracle ids left (maximum {a['maxIds']})",
    "InvalidThreshold": lambda a, u: (
        f"threshold {a['threshold']} must be a strict majority of {a['activeOracles']} oracles"
    ),
    "NotEnoughSignatures": lambda a, u: (
        f"not enough oracle signatures: {a['given']} of {a['threshold']} needed"
    ),
    "SignersNotAscending": lambda a, u: f"signers must be ascending (position {a['index']})",
    "SignerNotOracle": lambda a, u: (
        f"signature {a['index']} is from {a['recovered']}, not an oracle"
    ),
    "MalformedSignature": lambda a, u: f"signature {a['index']} is malformed",
    "BondStillLocked": lambda a, u: (
        f"the oracle bond is locked until {format_time(a['releaseAt'])}"
    ),
    "NoBondToRelease": lambda a, u: f"{a['oracle']} has no bond to release",
    # ─── DisputeResolver ──────────────────────────────────────────────────────────────
    "NotDisputable": lambda a, u: (
        f"request {a['requestId']} ({status_name(a['status'])}) cannot be disputed now"
    ),
    "ReadingsProofInvalid": lambda a, u: (
        f"the readings proof for device {a['deviceId']} does not match the report"
    ),
    "ValuesAgree": lambda a, u: (
        f"device {a['deviceId']} signed the value the report used: nothing to challenge"
    ),
    "ChallengeWindowClosed": lambda a, u: (
        f"report round {a['round']} of request {a['requestId']} took challenges until "
        f"{format_time(a['originalDisputeEndsAt'])} (its original dispute end)"
    ),
    "UnitSpansDeviceEpochs": lambda a, u: (
        f"the unit of device {a['deviceId']} runs past {format_time(a['validUntil'])}, when "
        "its owner or key changed: no single key signed it"
    ),
    "UnitNotEnded": lambda a, u: (
        f"the unit of device {a['deviceId']} ends at {format_time(a['unitEnd'])}: not metered yet"
    ),
    "IntervalLengthMismatch": lambda a, u: (
        f"the units cover intervals of {a['intervalSecondsA']} s and {a['intervalSecondsB']} s: "
        "not the same interval"
    ),
    "DeviceEquivocated": lambda a, u: f"device {a['deviceId']} equivocated",
    "ChallengeNotPending": lambda a, u: f"challenge {a['challengeId']} is not pending",
    "ResponseWindowClosed": lambda a, u: (
        f"the response window of challenge {a['challengeId']} closed at "
        f"{format_time(a['responseDeadline'])}"
    ),
    "ResponseWindowOpen": lambda a, u: (
        f"the response window of challenge {a['challengeId']} is open until "
        f"{format_time(a['responseDeadline'])}"
    ),
    "UsedIndexOutOfRange": lambda a, u: (
        f"reading {a['usedIndex']} is out of range: the report used {a['readingCount']} readings"
    ),
    "UnitDeviceMismatch": lambda a, u: (
        f"the meter unit is from device {a['unitDeviceId']}, not device {a['deviceId']}"
    ),
    "UnitMalformed": lambda a, u: (
        f"the meter unit of device {a['deviceId']} is malformed "
        f"({a['intervalSeconds']} s intervals, {a['energyBytes']} energy bytes)"
    ),
    "UnitIndexOutOfRange": lambda a, u: (
        f"interval {a['unitIndex']} is out of range: the unit has {a['intervalCount']} intervals"
    ),
    "UnitIntervalMismatch": lambda a, u: (
        f"the unit's interval starts at {format_time(a['unitIntervalStart'])}, the report's "
        f"reading at {format_time(a['usedIntervalStart'])}"
    ),
    "UnitSignatureInvalid": lambda a, u: (
        f"the meter unit's signature does not verify against device {a['deviceId']}'s key"
    ),
    "RebuttalValueMismatch": lambda a, u: (
        f"the rebuttal unit says {a['unitEnergyWh']} Wh, the challenged reading "
        f"{a['usedEnergyWh']} Wh: it does not prove equivocation"
    ),
    # ─── DeliveryDispute (arithmetic fraud proofs) ────────────────────────────────────
    "RecordProofInvalid": lambda a, u: (
        f"the record proof for device {a['deviceId']} does not match the report"
    ),
    "BidDevicesMismatch": lambda a, u: (
        f"the device list given is not the one bid {a['bidIndex']} of request "
        f"{a['requestId']} committed to"
    ),
    "RecordNotJudgeable": lambda a, u: (
        f"request {a['requestId']}'s window ({a['windowSeconds']} s) is too long for the "
        "chain to recompute an X-of-Y baseline (4 h lead + window must fit a day)"
    ),
    "ArithmeticCorrect": lambda a, u: (
        f"device {a['deviceId']}'s record follows from its used readings: nothing to challenge"
    ),
    "UnknownBid": lambda a, u: (
        f"request {a['requestId']} has {a['bidCount']} bids, no bid {a['bidIndex']}"
    ),
    "BidNotAwarded": lambda a, u: (
        f"bid {a['bidIndex']} of request {a['requestId']} was not awarded: its figure is not paid"
    ),
    "RecordsDoNotMatchBid": lambda a, u: (
        f"give one record per device of bid {a['bidIndex']}, in its order "
        f"(position {a['position']} differs)"
    ),
    "BidTotalCorrect": lambda a, u: (
        f"bid {a['bidIndex']}'s figure ({a['deliveredWh']} Wh) is the sum of its records: "
        "nothing to challenge"
    ),
    "BaselineMathNotJudgeable": lambda a, u: (
        f"a {a['windowSeconds']} s window is too long to recompute baseline method "
        f"{a['method']} on-chain"
    ),
    "BaselineMathUnknownMethod": lambda a, u: f"unknown baseline method {a['method']}",
    "BaselineMathNoValues": lambda a, u: "a baseline needs at least one value",
    "BaselineMathLengthMismatch": lambda a, u: (
        f"expected {a['expected']} values, got {a['actual']}"
    ),
    "BaselineMathUnknownDirection": lambda a, u: f"unknown direction {a['direction']}",
    "BaselineMathZeroDivisor": lambda a, u: "division by zero (no capacity or interval)",
    # ─── OpenZeppelin ─────────────────────────────────────────────────────────────────
    "AccessControlBadConfirmation": lambda a, u: "a role can only be renounced by its holder",
    "ECDSAInvalidSignature": lambda a, u: "invalid signature",
    "ECDSAInvalidSignatureLength": lambda a, u: f"invalid signature length {a['length']}",
    "ECDSAInvalidSignatureS": lambda a, u: "invalid signature (malleable s value)",
    "ERC20InvalidApprover": lambda a, u: f"invalid approver {a['approver']}",
    "ERC20InvalidReceiver": lambda a, u: f"invalid token receiver {a['receiver']}",
    "ERC20InvalidSender": lambda a, u: f"invalid token sender {a['sender']}",
    "ERC20InvalidSpender": lambda a, u: f"invalid spender {a['spender']}",
    "InvalidAccountNonce": lambda a, u: (
        f"stale permit: nonce for {a['account']} is now {a['currentNonce']}"
    ),
    "InvalidShortString": lambda a, u: "invalid short string",
    "StringTooLong": lambda a, u: f"string too long: {a['str']}",
    "MissingPrecompile": lambda a, u: (
        f"the chain lacks precompile {a.get('arg0', '')} (needs an Osaka-compatible chain)"
    ),
    "SafeCastOverflowedUintDowncast": lambda a, u: (
        f"value {a['value']} does not fit {a['bits']} bits"
    ),
    "AccessControlUnauthorizedAccount": _role,
    "ERC20InsufficientAllowance": lambda a, u: (
        f"insufficient allowance: need {u.money(a['needed'])}, have {u.bare(a['allowance'])}"
    ),
    "ERC20InsufficientBalance": lambda a, u: (
        f"insufficient balance: need {u.money(a['needed'])}, have {u.bare(a['balance'])}"
    ),
    "ERC2612ExpiredSignature": lambda a, u: f"the permit expired at {format_time(a['deadline'])}",
    "ERC2612InvalidSigner": lambda a, u: (
        f"the permit was signed by {a['signer']}, not the owner {a['owner']}"
    ),
    "SafeERC20FailedOperation": lambda a, u: f"the token {a['token']} refused the transfer",
    "ReentrancyGuardReentrantCall": lambda a, u: "reentrant call refused",
    "Error": lambda a, u: f"reverted: {a['message']}",
    "Panic": lambda a, u: f"the contract panicked: {a['reason']}",
}


def explain_revert(name: str | None, args: dict[str, Any], units: Units | None = None) -> str:
    """The sentence for custom error `name` with decoded `args`; a generic one if unknown."""
    units = units or Units()
    if name is None:
        return "the transaction reverted for a reason that could not be decoded"
    explainer = MESSAGES.get(name)
    if explainer is not None:
        try:
            return explainer(args, units)
        except (KeyError, IndexError, TypeError, ValueError):
            pass  # arguments not as expected: fall back to the raw rendering
    rendered = ", ".join(f"{key}={value!r}" for key, value in args.items())
    return f"reverted with {name}({rendered})"


def explain(error: TransactionReverted, units: Units | None = None) -> str:
    """Readable sentence for a revert, plus the transaction hash when it was mined."""
    if error.revert is None:
        return str(error)
    sentence = explain_revert(error.error_name, error.error_args, units)
    return f"{sentence} (tx {error.tx_hash})" if error.tx_hash else sentence
