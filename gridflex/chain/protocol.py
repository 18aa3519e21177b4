"""Typed helpers over the deployed GridFlex contracts: what the CLI, node, oracle and tests
call instead of hand-building web3 calls. Amounts are integers in base units; times are
unix seconds; power in W; energy in Wh."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from gridflex.chain.client import ChainClient
from gridflex.chain.decode import from_named, struct_from_output, struct_members
from gridflex.chain.deployments import Deployment
from gridflex.chain.device_history import DeviceHistory, device_history
from gridflex.chain.logs import LoggedEvent, logged_event
from gridflex.rules.attestation import MeterUnit
from gridflex.rules.clearing import BidOffer, merit_order
from gridflex.rules.eip712 import DeviceKey
from gridflex.rules.pools import Membership, Pool, PoolBid, PoolPayout
from gridflex.rules.reports import DeviceRecord
from gridflex.rules.types import (
    ArithmeticFault,
    ChallengeStatus,
    DeviceEpoch,
    DeviceKind,
    RegistryDevice,
    RequestSpec,
    RequestState,
)

ERC20_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": name,
        "stateMutability": mutability,
        "inputs": [{"name": n, "type": t} for n, t in inputs],
        "outputs": [{"name": "", "type": out}],
    }
    for name, mutability, inputs, out in (
        ("approve", "nonpayable", [("spender", "address"), ("amount", "uint256")], "bool"),
        ("transfer", "nonpayable", [("to", "address"), ("amount", "uint256")], "bool"),
        ("balanceOf", "view", [("account", "address")], "uint256"),
        ("allowance", "view", [("owner", "address"), ("spender", "address")], "uint256"),
        ("decimals", "view", [], "uint8"),
        ("symbol", "view", [], "string"),
    )
]


ORACLE_CHALLENGE_BONDS = 4
"""Challenge bonds of free stake `seat_oracle` adds to the oracle bond, so that the oracle's
watcher can challenge (each challenge locks `challengeBond` until it is settled)."""


@dataclass(frozen=True)
class EquivocationResult:
    """A proven equivocation, from `EquivocationProven`: `owner` (the device's owner at the
    interval) lost `penalty` FLEX, the prover got its share."""

    device_id: int
    interval_start: int
    owner: str
    prover: str
    penalty: int
    receipt: TxReceipt


@dataclass(frozen=True)
class ChallengeResult:
    """An opened challenge, from the `ChallengeOpened` event: nothing is voided or slashed
    until `resolve_challenge` after `response_deadline` (if nobody rebuts before)."""

    challenge_id: int
    request_id: int
    round: int
    device_id: int
    interval_start: int
    used_energy_wh: int
    signed_energy_wh: int
    challenger: str
    response_deadline: int
    dispute_ends_at: int
    receipt: TxReceipt


@dataclass(frozen=True)
class ChallengeState:
    """`IDisputeResolver.Challenge` as read from the chain."""

    challenge_id: int
    request_id: int
    device_id: int
    challenger: str
    response_deadline: int
    round: int
    status: ChallengeStatus
    device_owner: str
    bond: int
    signer_bitmap: int
    interval_start: int
    used_energy_wh: int
    signed_energy_wh: int


@dataclass(frozen=True)
class RebutResult:
    """A dismissed challenge (device equivocation proven), from `ChallengeRebutted`."""

    challenge_id: int
    request_id: int
    device_id: int
    rebutter: str
    device_owner: str
    penalty: int
    challenger: str
    bond_slashed: int
    receipt: TxReceipt


@dataclass(frozen=True)
class ResolveResult:
    """An executed challenge (report voided, signers slashed), from `ChallengeResolved`; or
    a moot one (`ChallengeMooted`: its round was voided by another challenge, finalized or
    closed; the bond came back, nothing was slashed)."""

    challenge_id: int
    request_id: int
    round: int
    challenger: str
    slashed_total: int
    receipt: TxReceipt
    moot: bool = False


@dataclass(frozen=True)
class ArithmeticProofResult:
    """A report voided by an arithmetic fraud proof, from `ArithmeticProven`. `expected` is
    (baselineWh, meteredWh, deliveredWh, quality) recomputed on-chain (zeros for faults
    other than ARITHMETIC)."""

    request_id: int
    round: int
    device_id: int
    fault: ArithmeticFault
    challenger: str
    expected: tuple[int, int, int, int]
    slashed_total: int
    receipt: TxReceipt


@dataclass(frozen=True)
class TokenMetadata:
    """An ERC-20's optional `symbol()` and `decimals()`."""

    symbol: str
    decimals: int


@dataclass(frozen=True)
class Award:
    """One `Awarded` event: the dispatch signal for bid `bid_index`."""

    bid_index: int
    bidder: str
    awarded_w: int
    price_per_kwh: int


@dataclass(frozen=True)
class Clearing:
    """A cleared request, from `RequestCleared` and its `Awarded` events."""

    awarded_w: int
    clearing_price: int
    accepted_bids: int
    awards: tuple[Award, ...]


@dataclass(frozen=True)
class Settlement:
    """A settled request, from `RequestSettled` (`slashed` is in FLEX, the rest in the
    settlement token)."""

    payouts: int
    fees: int
    refund: int
    slashed: int


@dataclass(frozen=True)
class BidSettlement:
    """One `BidSettled` event: what bid `bid_index` of `request_id` delivered and earned."""

    request_id: int
    bid_index: int
    bidder: str
    delivered_wh: int
    utilization: int
    availability: int
    fee: int
    slashed: int

    @property
    def payout(self) -> int:
        """What the bidder can withdraw for it: utilization and availability, less the fee."""
        return max(self.utilization + self.availability - self.fee, 0)


@dataclass(frozen=True)
class Bid:
    """`IFlexMarket.Bid` as read from the chain (`bidOf`)."""

    bidder: str
    power_w: int
    awarded_w: int
    price_per_kwh: int
    bond: int
    placed_at: int
    sequence: int


@dataclass(frozen=True)
class StakeAccount:
    """`IStaking.Account` (`accountOf`)."""

    staked: int
    locked: int
    unbonding: int
    unbonding_release_at: int


@dataclass(frozen=True)
class OracleSeat:
    """`IOracleCommittee.Oracle` (`oracleOf`): id 0 when the address was never seated."""

    id: int
    active: bool
    bond: int
    bond_release_at: int


@dataclass(frozen=True)
class ReportSubmission:
    """One `ReportSubmitted` event: a report posted for one round of a request."""

    request_id: int
    round: int
    delivered_wh: tuple[int, ...]
    devices_root: bytes
    readings_root: bytes
    signer_bitmap: int
    dispute_ends_at: int
    block_number: int = 0
    log_index: int = 0
    tx_hash: str = ""


def report_submission(event: LoggedEvent) -> ReportSubmission:
    """The one decoding of `ReportSubmitted` (its `report` struct flattened by name)."""
    args = dict(event.args)
    report = args.pop("report")
    return from_named(
        ReportSubmission,
        {**args, **report},
        block_number=event.block_number,
        log_index=event.log_index,
        tx_hash=event.tx_hash,
    )


def _unit_tuple(unit: MeterUnit) -> tuple[int, int, int, int, bytes, bytes]:
    return (
        unit.device_id,
        unit.first_interval_start,
        unit.interval_seconds,
        unit.sequence,
        unit.energy_bytes,
        unit.signature,
    )


class Protocol:
    """One account's handle on one GridFlex deployment."""

    def __init__(self, client: ChainClient, deployment: Deployment) -> None:
        self.client = client
        self.deployment = deployment
        self.token = self._bind("FlexToken")
        self.registry = self._bind("DeviceRegistry")
        self.staking = self._bind("Staking")
        self.committee = self._bind("OracleCommittee")
        self.market = self._bind("FlexMarket")
        self._dispute: Contract | None = None
        self._delivery: Contract | None = None
        self._pools: Contract | None = None

    def _bind(self, name: str) -> Contract:
        address = self.deployment.address_of(name)  # KeyError naming what is deployed
        return self.client.contract(address, self.deployment.contracts[name].abi)

    @property
    def dispute(self) -> Contract:
        """The DisputeResolver (fraud proofs). Bound on first use, so a deployment record
        written before it existed still serves everything else."""
        if self._dispute is None:
            self._dispute = self._bind("DisputeResolver")
        return self._dispute

    @property
    def delivery(self) -> Contract:
        """The DeliveryDispute (arithmetic fraud proofs), bound on first use like `dispute`."""
        if self._delivery is None:
            self._delivery = self._bind("DeliveryDispute")
        return self._delivery

    @property
    def pools(self) -> Contract:
        """The PoolRegistry (pools, members, member payouts), bound on first use."""
        if self._pools is None:
            self._pools = self._bind("PoolRegistry")
        return self._pools

    @classmethod
    def reader(cls, w3: Web3, deployment: Deployment) -> Protocol:
        """A handle that only reads (a throwaway account is only the `from` of eth_call)."""
        return cls.signing(w3, Account.create(), deployment)

    @classmethod
    def signing(cls, w3: Web3, account: LocalAccount, deployment: Deployment) -> Protocol:
        """`deployment` on `w3`, writing as `account` through a new client (its own nonce
        counter: build one per key and share it), every deployed contract's errors known."""
        client = ChainClient(w3, account)
        for deployed in deployment.contracts.values():
            client.register_abi(deployed.abi)
        return cls(client, deployment)

    def as_account(self, account: LocalAccount) -> Protocol:
        """The same deployment, signing as `account`."""
        return Protocol.signing(self.client.w3, account, self.deployment)

    @property
    def address(self) -> str:
        return self.client.address

    def erc20(self, address: str) -> Contract:
        return self.client.contract(address, ERC20_ABI)

    def send(self, fn: Any) -> TxReceipt:
        return self.client.send(fn)

    # ─── Reading: structs by ABI name, events decoded once ────────────────────────────

    def _struct(self, cls: type[Any], fn: Any, block: int | str = "latest") -> Any:
        """`cls` from the struct view call `fn` returns, matched by member name."""
        return struct_from_output(cls, fn.abi, self.client.call(fn, block=block))

    def events(
        self,
        contract: Contract,
        name: str,
        *,
        from_block: int | None = None,
        to_block: int | str = "latest",
        **filters: Any,
    ) -> list[LoggedEvent]:
        """Every `name` event of `contract` from `from_block` (default: the deployment
        block), in chain order; `filters` match indexed arguments by ABI name."""
        event = contract.events[name]
        logs = event().get_logs(
            from_block=self.deployment.deployed_at_block if from_block is None else from_block,
            to_block=to_block,
            argument_filters=filters or None,
        )
        return [logged_event(event.abi, raw) for raw in logs]

    def block_number(self) -> int:
        return int(self.client.w3.eth.block_number)

    def latest_block_timestamp(self) -> int:
        """Chain time: the latest block's timestamp (unix seconds)."""
        return int(self.client.w3.eth.get_block("latest")["timestamp"])

    def changed_device_ids(self, from_block: int, to_block: int) -> set[int]:
        """Devices named by any registry event in the blocks (each names its device id in
        the first indexed topic): what a device cache must forget."""
        return self.registry_changes(from_block, to_block)[0]

    def registry_changes(
        self, from_block: int, to_block: int
    ) -> tuple[set[int], dict[int, DeviceHistory]]:
        """Devices named by any registry event in the blocks, and the histories of those
        whose only event there is their registration: one epoch, built from the event and
        its block time exactly as `epochAt(id, 0)` would return it (a fleet onboarded in
        batches is then known without two calls per device)."""
        logs = self.client.w3.eth.get_logs(
            {"address": self.registry.address, "fromBlock": from_block, "toBlock": to_block}
        )
        named: dict[int, int] = {}
        for entry in logs:
            if len(entry["topics"]) > 1:
                device_id = int.from_bytes(bytes(entry["topics"][1]), "big")
                named[device_id] = named.get(device_id, 0) + 1
        registered = self.registry.events.DeviceRegistered()
        topic = bytes(event_abi_to_log_topic(registered.abi))  # type: ignore[arg-type]
        block_times: dict[int, int] = {}
        histories: dict[int, DeviceHistory] = {}
        for entry in logs:
            if not entry["topics"] or bytes(entry["topics"][0]) != topic:
                continue
            args = registered.process_log(entry)["args"]
            device_id = int(args["deviceId"])
            if named.get(device_id) != 1:
                continue
            block = int(entry["blockNumber"])
            if block not in block_times:
                block_times[block] = int(self.client.w3.eth.get_block(block)["timestamp"])
            epoch = DeviceEpoch(
                since=block_times[block], owner=str(args["owner"]),
                capacity_w=int(args["capacityW"]), key_type=int(args["keyType"]), active=True,
                zone=bytes(args["zone"]), key_x=bytes(args["keyX"]), key_y=bytes(args["keyY"]),
            )  # fmt: skip
            histories[device_id] = device_history(device_id, [epoch])
        return set(named), histories

    # ─── Tokens and stake ─────────────────────────────────────────────────────────────

    def balance_of(self, token: str, account: str | None = None) -> int:
        return int(self.erc20(token).functions.balanceOf(account or self.address).call())

    def allowance(self, token: str, spender: str, owner: str | None = None) -> int:
        return int(self.erc20(token).functions.allowance(owner or self.address, spender).call())

    def token_metadata(self, token: str) -> TokenMetadata | None:
        """The token's symbol and decimals; None when it lacks the optional metadata."""
        contract = self.erc20(token)
        try:
            symbol = str(contract.functions.symbol().call())
            decimals = int(contract.functions.decimals().call())
        except Exception:  # not a full ERC-20 metadata token
            return None
        return TokenMetadata(symbol, decimals)

    def approve(self, token: str, spender: str, amount: int) -> None:
        self.send(self.erc20(token).functions.approve(spender, amount))

    def transfer(self, token: str, to: str, amount: int) -> None:
        self.send(self.erc20(token).functions.transfer(to, amount))

    def token_symbol(self, token: str) -> str:
        return str(self.client.call(self.erc20(token).functions.symbol()))

    def stake_of(self, account: str, block: int | str = "latest") -> StakeAccount:
        """`account`'s stake at `block` (raises what the node raises without that state)."""
        fn = self.staking.functions.accountOf(account)
        return self._struct(StakeAccount, fn, block)

    def stake(self, amount: int) -> None:
        self.approve(self.token.address, self.staking.address, amount)
        self.send(self.staking.functions.stake(amount))

    # ─── Governance ───────────────────────────────────────────────────────────────────

    def seat_oracle(
        self, oracle: LocalAccount, threshold: int, challenge_bonds: int = ORACLE_CHALLENGE_BONDS
    ) -> None:
        """Funds `oracle` with the oracle bond in FLEX plus `challenge_bonds` challenge bonds
        of free stake (its watcher locks one per challenge), stakes it all and seats it
        (governance).

        `threshold` is the committee's k once `oracle` is seated: it must be a strict majority
        of the new committee size (1 of 1, 2 of 2, 2 of 3, 3 of 4, ...); the contract sets it
        in the same transaction.
        """
        bond = self.oracle_bond() + challenge_bonds * self.challenge_bond()
        self.transfer(self.token.address, oracle.address, bond)
        self.as_account(oracle).stake(bond)
        self.send(self.committee.functions.addOracle(oracle.address, threshold))

    def oracle_bond(self) -> int:
        """FLEX an oracle must stake to be seated."""
        return int(self.client.call(self.committee.functions.oracleBond()))

    def threshold(self) -> int:
        """k: the signatures a report needs."""
        return int(self.client.call(self.committee.functions.threshold()))

    def oracle_of(self, address: str) -> OracleSeat:
        return self._struct(OracleSeat, self.committee.functions.oracleOf(address))

    def oracle_by_id(self, oracle_id: int, block: int | str = "latest") -> str:
        """The address seated with `oracle_id` at `block` (an id may be reused later)."""
        return str(self.client.call(self.committee.functions.oracleById(oracle_id), block=block))

    def grant_grid_operator(self, account: str) -> None:
        role = self.market.functions.GRID_OPERATOR_ROLE().call()
        self.send(self.market.functions.grantRole(role, account))

    # ─── Devices ──────────────────────────────────────────────────────────────────────

    def register_device(
        self, kind: DeviceKind, capacity_w: int, zone: bytes, key: DeviceKey
    ) -> int:
        receipt = self.send(
            self.registry.functions.register(int(kind), capacity_w, zone, key.as_tuple())
        )
        (event,) = self.registry.events.DeviceRegistered().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["deviceId"])

    def register_devices(
        self, kind: DeviceKind, capacity_w: int, zone: bytes, keys: list[DeviceKey]
    ) -> list[int]:
        """A fleet of like devices in one transaction (`registerBatch`); their ids."""
        receipt = self.send(
            self.registry.functions.registerBatch(
                int(kind), capacity_w, zone, [key.as_tuple() for key in keys]
            )
        )
        events = self.registry.events.DeviceRegistered().process_receipt(receipt, errors=DISCARD)
        return [int(event["args"]["deviceId"]) for event in events]

    def device(self, device_id: int) -> RegistryDevice:
        return self._struct(RegistryDevice, self.registry.functions.device(device_id))

    def device_at(self, device_id: int, timestamp: int) -> DeviceEpoch:
        """The device as it stood at `timestamp` (owner, key, ...): what a reading of an
        interval starting then is judged by. Reverts `DeviceNotYetRegistered` before it
        existed."""
        return self._struct(DeviceEpoch, self.registry.functions.deviceAt(device_id, timestamp))

    def device_history(self, device_id: int) -> DeviceHistory | None:
        """The device's whole history (`epochCount` + `epochAt`), None when it is not
        registered; every call at one block, so an epoch appended meanwhile cannot leave
        the last one read open-ended."""
        block = self.block_number()
        registry = self.registry.functions
        count = int(self.client.call(registry.epochCount(device_id), block=block))
        epochs = [
            self._struct(DeviceEpoch, registry.epochAt(device_id, index), block)
            for index in range(count)
        ]
        return device_history(device_id, epochs) if count else None

    def registered_at(self, device_id: int) -> int:
        """When the device was first registered (`epochAt(id, 0).since`): no key of it can
        attest an interval before then."""
        return int(self.client.call(self.registry.functions.epochAt(device_id, 0))[0])

    def propose_transfer(self, device_id: int, new_owner: str) -> None:
        """Offers the device to `new_owner`; nothing changes until it accepts."""
        self.send(self.registry.functions.transfer(device_id, new_owner))

    def cancel_transfer(self, device_id: int) -> None:
        """Withdraws the pending offer (owner only; `NoPendingTransfer` when there is none)."""
        self.send(self.registry.functions.cancelTransfer(device_id))

    def accept_transfer(self, device_id: int, key: DeviceKey) -> None:
        """Takes over a device offered to this account with a fresh key of its own (proof
        bound to this account): the seller's key attests nothing from now on. Reverts
        `NotPendingOwner`, `TransferKeyNotFresh`, `InvalidKeyProof`."""
        self.send(self.registry.functions.acceptTransfer(device_id, key.as_tuple()))

    def pending_owner_of(self, device_id: int) -> str | None:
        """Who the device is offered to, None when no transfer is pending."""
        owner = self.registry.functions.pendingOwnerOf(device_id).call()
        return None if int(owner, 16) == 0 else owner

    # ─── Requests, bids, clearing ─────────────────────────────────────────────────────

    def create_request(self, spec: RequestSpec) -> tuple[int, int]:
        """Approves and escrows the budget; returns (request id, escrow)."""
        self.approve(spec.settlement_token, self.market.address, self.budget_of(spec))
        return self.escrow_request(spec)

    def check_request(self, spec: RequestSpec) -> None:
        """Dry-runs `createRequest` (an eth_call): raises TransactionReverted as posting
        would, the role and parameter checks coming before the escrow is pulled."""
        self.client.call(self.market.functions.createRequest(spec.as_tuple()))

    def escrow_request(self, spec: RequestSpec) -> tuple[int, int]:
        """Posts the request, the market pulling its budget under an allowance already
        given; returns (request id, escrow)."""
        receipt = self.send(self.market.functions.createRequest(spec.as_tuple()))
        (event,) = self.market.events.RequestCreated().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["requestId"]), int(event["args"]["escrow"])

    @staticmethod
    def budget_of(spec: RequestSpec) -> int:
        from gridflex.rules.settlement import escrow_for

        return escrow_for(
            spec.power_w,
            spec.window_end - spec.window_start,
            spec.price_cap_per_kwh,
            spec.availability_price_per_kwh,
        )

    def request_count(self) -> int:
        return int(self.market.functions.requestCount().call())

    def cancel_request(self, request_id: int) -> None:
        """Withdraws an open request before gate closure (its operator only)."""
        self.send(self.market.functions.cancelRequest(request_id))

    def request(self, request_id: int) -> RequestState:
        return self._struct(RequestState, self.market.functions.request(request_id))

    def bid_of(self, request_id: int, bid_index: int) -> Bid:
        return self._struct(Bid, self.market.functions.bidOf(request_id, bid_index))

    def bid_placements(self, request_id: int) -> dict[int, tuple[int, ...]]:
        """Device ids of each bid now in its slot (bid index -> ids), from `BidPlaced` (a
        displaced bid's slot holds the latest placement)."""
        return {
            int(e.args["bidIndex"]): tuple(int(d) for d in e.args["deviceIds"])
            for e in self.events(self.market, "BidPlaced", requestId=request_id)
        }

    def cleared_request_ids(self, from_block: int, to_block: int) -> list[int]:
        events = self.events(
            self.market, "RequestCleared", from_block=from_block, to_block=to_block
        )
        return [int(e.args["requestId"]) for e in events]

    def dispute_window(self) -> int:
        return int(self.client.call(self.market.functions.disputeWindow()))

    def delivery_threshold_bps(self) -> int:
        """Delivery (of the awarded energy) below which a bid is paid nothing and slashed."""
        return int(self.client.call(self.market.functions.deliveryThresholdBps()))

    def protocol_fee_bps(self) -> int:
        return int(self.client.call(self.market.functions.protocolFeeBps()))

    def bid(self, request_id: int, power_w: int, price_per_kwh: int, device_ids: list[int]) -> int:
        receipt = self.send(
            self.market.functions.bid(request_id, power_w, price_per_kwh, sorted(device_ids))
        )
        (event,) = self.market.events.BidPlaced().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["bidIndex"])

    def overlapping_commitment(self, device_id: int, window_start: int, window_end: int) -> int:
        """The request in which `device_id` backs a live bid overlapping the window (0: none):
        a bid with it there reverts `DeviceOvercommitted`."""
        return int(
            self.client.call(
                self.market.functions.overlappingCommitment(device_id, window_start, window_end)
            )
        )

    def bids(self, request_id: int) -> list[BidOffer]:
        offers = []
        for index in range(self.request(request_id).bid_count):
            bid = self.bid_of(request_id, index)
            offers.append(
                BidOffer(index, bid.bidder, bid.power_w, bid.price_per_kwh, bid.bond, bid.sequence)
            )
        return offers

    def awarded_w(self, request_id: int) -> list[int]:
        count = self.request(request_id).bid_count
        return [self.bid_of(request_id, index).awarded_w for index in range(count)]

    def clear(self, request_id: int) -> TxReceipt:
        order = merit_order(self.bids(request_id))
        return self.send(self.market.functions.clear(request_id, order))

    def clearing(self, request_id: int) -> Clearing | None:
        """How the request was cleared; None before it was."""
        cleared = self._market_events("RequestCleared", requestId=request_id)
        if not cleared:
            return None
        awards = tuple(
            Award(int(a["bidIndex"]), a["bidder"], int(a["awardedW"]), int(a["pricePerKWh"]))
            for a in self._market_events("Awarded", requestId=request_id)
        )
        args = cleared[-1]
        return Clearing(
            int(args["awardedW"]), int(args["clearingPrice"]), int(args["acceptedBids"]), awards
        )

    def _market_events(self, event: str, **indexed: Any) -> list[Any]:
        """The args of every FlexMarket `event` since the deployment, filtered on indexed
        arguments by ABI name."""
        logs = self.market.events[event]().get_logs(
            from_block=self.deployment.deployed_at_block, argument_filters=indexed or None
        )
        return [log["args"] for log in logs]

    # ─── Reports and settlement ───────────────────────────────────────────────────────

    def submit_report(
        self,
        request_id: int,
        delivered_wh: list[int],
        devices_root: bytes,
        readings_root: bytes,
        signatures: list[bytes],
    ) -> TxReceipt:
        return self.send(
            self.market.functions.submitReport(
                request_id, delivered_wh, devices_root, readings_root, signatures
            )
        )

    def report_submissions(
        self,
        request_id: int | None = None,
        round_: int | None = None,
        *,
        from_block: int | None = None,
        to_block: int | str = "latest",
    ) -> list[ReportSubmission]:
        """`ReportSubmitted` events in chain order, of one request (and round) or of all:
        the only place GridFlex reads posted reports."""
        filters: dict[str, Any] = {}
        if request_id is not None:
            filters["requestId"] = request_id
        if round_ is not None:
            filters["round"] = round_
        events = self.events(
            self.market, "ReportSubmitted", from_block=from_block, to_block=to_block, **filters
        )
        return [report_submission(event) for event in events]

    def reported_delivery(self, request_id: int) -> list[int]:
        """Per-bid delivery of the pending report, from its `ReportSubmitted` event."""
        state = self.request(request_id)
        reports = self.report_submissions(request_id, state.report_round)
        if not reports:
            raise LookupError(f"request {request_id} has no report in round {state.report_round}")
        return list(reports[-1].delivered_wh)

    def finalize(self, request_id: int) -> TxReceipt:
        return self.send(
            self.market.functions.finalize(request_id, self.reported_delivery(request_id))
        )

    def settlement(self, request_id: int) -> Settlement | None:
        """The request's settlement totals; None before it settled."""
        settled = self._market_events("RequestSettled", requestId=request_id)
        if not settled:
            return None
        args = settled[-1]
        return Settlement(
            int(args["payouts"]), int(args["fees"]), int(args["refund"]), int(args["slashed"])
        )

    def bid_settlements(
        self, *, request_id: int | None = None, bidder: str | None = None
    ) -> list[BidSettlement]:
        """Every `BidSettled`, of one request and/or one bidder."""
        indexed = {"requestId": request_id, "bidder": bidder}
        events = self._market_events(
            "BidSettled", **{name: value for name, value in indexed.items() if value is not None}
        )
        fields = ("deliveredWh", "utilization", "availability", "fee", "slashed")
        return [
            BidSettlement(
                int(a["requestId"]), int(a["bidIndex"]), a["bidder"], *(int(a[f]) for f in fields)
            )
            for a in events
        ]

    def cancellation_refund(self, request_id: int) -> int | None:
        """The escrow a cancelled request returned; None if it was not cancelled."""
        cancelled = self._market_events("RequestCancelled", requestId=request_id)
        return int(cancelled[-1]["refund"]) if cancelled else None

    def claimable(self, token: str, account: str | None = None) -> int:
        return int(self.market.functions.claimable(token, account or self.address).call())

    def withdraw(self, token: str) -> int:
        receipt = self.send(self.market.functions.withdraw(token))
        (event,) = self.market.events.Withdrawn().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["amount"])

    # ─── Pools ────────────────────────────────────────────────────────────────────────

    def create_pool(self, commission_bps: int, name: str) -> int:
        receipt = self.send(self.pools.functions.createPool(commission_bps, name))
        (event,) = self.pools.events.PoolCreated().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["poolId"])

    def pool(self, pool_id: int) -> Pool:
        return self._struct(Pool, self.pools.functions.pool(pool_id))

    def pool_count(self) -> int:
        return int(self.client.call(self.pools.functions.poolCount()))

    def pool_name(self, pool_id: int) -> str:
        events = self.events(self.pools, "PoolCreated", poolId=pool_id)
        return str(events[0].args["name"]) if events else ""

    def set_commission(self, pool_id: int, commission_bps: int) -> int:
        """Schedules the new commission; returns when it takes effect."""
        receipt = self.send(self.pools.functions.setCommission(pool_id, commission_bps))
        (event,) = self.pools.events.CommissionChangeScheduled().process_receipt(
            receipt, errors=DISCARD
        )
        return int(event["args"]["effectiveAt"])

    def commission_changes(self, pool_id: int) -> list[LoggedEvent]:
        return self.events(self.pools, "CommissionChangeScheduled", poolId=pool_id)

    def consent_nonce(self, owner: str) -> int:
        return int(self.client.call(self.pools.functions.nonces(owner)))

    def enroll(
        self,
        pool_id: int,
        owner: str,
        device_ids: list[int],
        nonce: int,
        deadline: int,
        signature: bytes,
    ) -> None:
        self.send(
            self.pools.functions.enroll(pool_id, owner, device_ids, nonce, deadline, signature)
        )

    def request_leave(self, device_ids: list[int]) -> None:
        self.send(self.pools.functions.requestLeave(device_ids))

    def complete_leave(self, device_ids: list[int]) -> None:
        self.send(self.pools.functions.completeLeave(device_ids))

    def is_pooled(self, device_id: int) -> bool:
        return bool(self.client.call(self.registry.functions.isPooled(device_id)))

    def pool_capacity(self, pool_id: int, zone: bytes) -> int:
        return int(self.client.call(self.pools.functions.capacityOf(pool_id, zone)))

    def memberships(self, pool_id: int | None = None) -> list[Membership]:
        """Every membership (of one pool, or all), joined with its leave if asked, from
        PoolRegistry's events: what decides which devices back a pool bid."""
        filters = {} if pool_id is None else {"poolId": pool_id}
        joined = self.events(self.pools, "MemberJoined", **filters)
        leaves: dict[tuple[int, int], list[LoggedEvent]] = {}
        for e in self.events(self.pools, "LeaveRequested", **filters):
            leaves.setdefault((int(e.args["poolId"]), int(e.args["deviceId"])), []).append(e)
        result = []
        for event in joined:
            a = event.args
            pool, device = int(a["poolId"]), int(a["deviceId"])
            # Its leave: the first one of this device from this pool after it joined.
            order = (event.block_number, event.log_index)
            later = [
                e for e in leaves.get((pool, device), ()) if (e.block_number, e.log_index) > order
            ]
            leave = later[0] if later else None
            result.append(
                Membership(
                    pool_id=pool,
                    device_id=device,
                    owner=str(a["owner"]),
                    zone=bytes(a["zone"]),
                    capacity_w=int(a["capacityW"]),
                    joined_at=int(a["joinedAt"]),
                    leave_requested_at=None if leave is None else int(leave.args["requestedAt"]),
                    leave_at=None if leave is None else int(leave.args["leaveAt"]),
                )
            )
        return result

    def bid_as_pool(self, request_id: int, pool_id: int, power_w: int, price_per_kwh: int) -> int:
        receipt = self.send(
            self.market.functions.bidAsPool(request_id, pool_id, power_w, price_per_kwh)
        )
        (event,) = self.market.events.BidPlaced().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["bidIndex"])

    def pool_bid_of(self, request_id: int, bid_index: int) -> PoolBid:
        return self._struct(PoolBid, self.market.functions.poolBidOf(request_id, bid_index))

    def pool_payout(self, request_id: int, bid_index: int) -> PoolPayout:
        return self._struct(PoolPayout, self.pools.functions.payoutOf(request_id, bid_index))

    def member_claimed(self, request_id: int, device_id: int) -> bool:
        return bool(self.client.call(self.pools.functions.claimed(request_id, device_id)))

    def claim_member_shares(
        self, request_id: int, records: list[DeviceRecord], proofs: list[list[bytes]]
    ) -> int:
        """Claims the caller's devices' shares of one request in one transaction."""
        receipt = self.send(
            self.pools.functions.claim(
                request_id, [r.values() for r in records], [list(p) for p in proofs]
            )
        )
        events = self.pools.events.MemberPaid().process_receipt(receipt, errors=DISCARD)
        return sum(int(e["args"]["amount"]) for e in events)

    def sweep_unclaimed(self, request_id: int, bid_index: int) -> int:
        """After the claim period, moves what members left of a pool bid's pot (unclaimed
        shares, the split's dust) to the pool operator's withdrawable balance."""
        receipt = self.send(self.pools.functions.sweepUnclaimed(request_id, bid_index))
        (event,) = self.pools.events.UnclaimedSwept().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["amount"])

    def pool_withdrawable(self, token: str, account: str | None = None) -> int:
        return int(
            self.client.call(self.pools.functions.withdrawable(token, account or self.address))
        )

    def withdraw_commission(self, token: str) -> int:
        receipt = self.send(self.pools.functions.withdraw(token))
        (event,) = self.pools.events.Withdrawn().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["amount"])

    # ─── Disputes ─────────────────────────────────────────────────────────────────────

    def challenge(
        self,
        request_id: int,
        device_id: int,
        used_readings: bytes,
        readings_proof: list[bytes],
        used_index: int,
        unit: MeterUnit,
        unit_index: int,
    ) -> ChallengeResult:
        """Proves that the pending report of `request_id` used a reading of `device_id`
        (reading `used_index` of `used_readings`, the packed pairs committed under the
        report's readingsRoot, with its Merkle proof) that differs from value `unit_index`
        of `unit`, signed by the device. Opens a challenge: the report cannot finalize before
        the returned `dispute_ends_at`; after `response_deadline`, unless rebutted,
        `resolve_challenge` voids it and slashes its signers (this account receives the
        challenger's share). Reverts (TransactionReverted) with the contract's reason, e.g.
        `NotDisputable`, `ChallengeWindowClosed`, `DeviceEquivocated`, `ValuesAgree`, or
        `InsufficientFreeStake` (Staking) when this account cannot lock `challenge_bond()`."""
        receipt = self.send(
            self.dispute.functions.challenge(
                request_id,
                device_id,
                used_readings,
                list(readings_proof),
                used_index,
                _unit_tuple(unit),
                unit_index,
            )
        )
        (event,) = self.dispute.events.ChallengeOpened().process_receipt(receipt, errors=DISCARD)
        args = event["args"]
        return ChallengeResult(
            challenge_id=int(args["challengeId"]),
            request_id=int(args["requestId"]),
            round=int(args["round"]),
            device_id=int(args["deviceId"]),
            interval_start=int(args["intervalStart"]),
            used_energy_wh=int(args["usedEnergyWh"]),
            signed_energy_wh=int(args["signedEnergyWh"]),
            challenger=args["challenger"],
            response_deadline=int(args["responseDeadline"]),
            dispute_ends_at=int(args["disputeEndsAt"]),
            receipt=receipt,
        )

    def challenge_arithmetic(
        self,
        request_id: int,
        record: tuple[int, int, int, int, int, int],
        record_proof: list[bytes],
        used_readings: bytes,
        readings_proof: list[bytes],
        bid_device_ids: list[int],
    ) -> ArithmeticProofResult:
        """Proves that device `record` (RegistryDevice.values(), committed under the pending
        report's devicesRoot with `record_proof`) does not follow from the device's
        `used_readings` (committed under readingsRoot with `readings_proof`); the bid's
        device ids give the device's cap. Voids the report at once and slashes its signers
        (this account receives the challenger's share). Reverts (TransactionReverted) e.g.
        `ArithmeticCorrect`, `NotDisputable`, `RecordProofInvalid`, `ReadingsProofInvalid`."""
        receipt = self.send(
            self.delivery.functions.challengeArithmetic(
                request_id,
                tuple(record),
                list(record_proof),
                used_readings,
                list(readings_proof),
                list(bid_device_ids),
            )
        )
        return self._arithmetic_result(receipt)

    def challenge_bid_total(
        self,
        request_id: int,
        delivered_wh: list[int],
        bid_index: int,
        records: list[tuple[tuple[int, int, int, int, int, int], list[bytes]]],
        bid_device_ids: list[int],
    ) -> ArithmeticProofResult:
        """Proves that the report's per-bid figure `delivered_wh[bid_index]` is not the sum
        of the bid's device records (one (record values, proof) per bid device, in the bid's
        device order). Voids the report and slashes its signers. Reverts e.g.
        `BidTotalCorrect`, `RecordsDoNotMatchBid`, `DeliveryHashMismatch`."""
        receipt = self.send(
            self.delivery.functions.challengeBidTotal(
                request_id,
                list(delivered_wh),
                bid_index,
                [(tuple(values), list(proof)) for values, proof in records],
                list(bid_device_ids),
            )
        )
        return self._arithmetic_result(receipt)

    def _arithmetic_result(self, receipt: TxReceipt) -> ArithmeticProofResult:
        events = self.delivery.events.ArithmeticProven().process_receipt(receipt, errors=DISCARD)
        (event,) = events
        args = event["args"]
        expected = args["expected"]
        return ArithmeticProofResult(
            request_id=int(args["requestId"]),
            round=int(args["round"]),
            device_id=int(args["deviceId"]),
            fault=ArithmeticFault(int(args["fault"])),
            challenger=args["challenger"],
            expected=(
                int(expected["baselineWh"]),
                int(expected["meteredWh"]),
                int(expected["deliveredWh"]),
                int(expected["quality"]),
            ),
            slashed_total=int(args["slashedTotal"]),
            receipt=receipt,
        )

    def challenge_of(self, challenge_id: int) -> ChallengeState:
        fn = self.dispute.functions.challengeOf(challenge_id)
        members = struct_members(fn.abi["outputs"][0]["components"], self.client.call(fn))
        return from_named(ChallengeState, members, challenge_id=challenge_id)

    def challenge_bond(self) -> int:
        """FLEX of free stake a challenge locks (lost if the challenge is rebutted)."""
        return int(self.client.call(self.dispute.functions.challengeBond()))

    def challenger_share_bps(self) -> int:
        """The challenger's share of what a successful challenge slashes."""
        return int(self.client.call(self.dispute.functions.challengerShareBps()))

    def pending_challenge_count(self, request_id: int) -> int:
        """How many challenges against `request_id` (any round) await rebuttal or resolution."""
        return int(self.client.call(self.dispute.functions.pendingChallengeCount(request_id)))

    def pending_challenges(self, request_id: int, round_: int) -> list[ChallengeState]:
        """The pending challenges against report `round_` of `request_id` (from the indexed
        `ChallengeOpened` events), oldest first."""
        if self.pending_challenge_count(request_id) == 0:
            return []
        events = self.events(self.dispute, "ChallengeOpened", requestId=request_id)
        states = [self.challenge_of(int(e.args["challengeId"])) for e in events]
        return [s for s in states if s.status == ChallengeStatus.PENDING and s.round == round_]

    def prove_equivocation(
        self, first: MeterUnit, first_index: int, second: MeterUnit, second_index: int
    ) -> EquivocationResult:
        """Proves that a device signed two values for one interval (`first_index` of `first`
        and `second_index` of `second`), no report needed: the device's owner at that
        interval is slashed, this account gets the prover's share. Reverts e.g.
        `DeviceEquivocated` (proven before), `ValuesAgree`, `UnitSignatureInvalid` (not the
        key in force at the interval)."""
        receipt = self.send(
            self.dispute.functions.proveEquivocation(
                _unit_tuple(first), first_index, _unit_tuple(second), second_index
            )
        )
        (event,) = self.dispute.events.EquivocationProven().process_receipt(receipt, errors=DISCARD)
        args = event["args"]
        return EquivocationResult(
            device_id=int(args["deviceId"]),
            interval_start=int(args["intervalStart"]),
            owner=args["owner"],
            prover=args["prover"],
            penalty=int(args["penalty"]),
            receipt=receipt,
        )

    def rebut(self, challenge_id: int, unit: MeterUnit, unit_index: int) -> RebutResult:
        """Dismisses pending challenge `challenge_id` with `unit`, signed by the same device,
        whose value `unit_index` (the challenged interval) is exactly the value the report
        used: the device signed two values (equivocation). The device owner's free stake is
        slashed (this account receives the share); the report stands. Before the response
        deadline only. Reverts e.g. `ChallengeNotPending`, `ResponseWindowClosed`,
        `RebuttalValueMismatch`, `UnitSignatureInvalid`."""
        receipt = self.send(
            self.dispute.functions.rebut(challenge_id, _unit_tuple(unit), unit_index)
        )
        (event,) = self.dispute.events.ChallengeRebutted().process_receipt(receipt, errors=DISCARD)
        args = event["args"]
        return RebutResult(
            challenge_id=int(args["challengeId"]),
            request_id=int(args["requestId"]),
            device_id=int(args["deviceId"]),
            rebutter=args["rebutter"],
            device_owner=args["deviceOwner"],
            penalty=int(args["penalty"]),
            challenger=args["challenger"],
            bond_slashed=int(args["bondSlashed"]),
            receipt=receipt,
        )

    def resolve_challenge(self, challenge_id: int) -> ResolveResult:
        """Executes unrebutted challenge `challenge_id` once its response deadline passed
        (chain time): voids the report, slashes its signers, pays the challenger. Reverts e.g.
        `ResponseWindowOpen`, `ChallengeNotPending` (rebutted or already resolved). A
        challenge whose round can no longer be voided comes back `moot`."""
        receipt = self.send(self.dispute.functions.resolve(challenge_id))
        resolved = self.dispute.events.ChallengeResolved().process_receipt(receipt, errors=DISCARD)
        if not resolved:
            (mooted,) = self.dispute.events.ChallengeMooted().process_receipt(
                receipt, errors=DISCARD
            )
            state = self.challenge_of(challenge_id)
            return ResolveResult(
                challenge_id=challenge_id,
                request_id=int(mooted["args"]["requestId"]),
                round=int(mooted["args"]["round"]),
                challenger=state.challenger,
                slashed_total=0,
                receipt=receipt,
                moot=True,
            )
        args = resolved[0]["args"]
        return ResolveResult(
            challenge_id=int(args["challengeId"]),
            request_id=int(args["requestId"]),
            round=int(args["round"]),
            challenger=args["challenger"],
            slashed_total=int(args["slashedTotal"]),
            receipt=receipt,
        )
