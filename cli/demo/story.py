"""The demo's stories on a running `DemoNetwork`.

`market`: a DSO asks to cut consumption (settled against a CAISO 10-of-10 baseline, which is
why the nodes backfill two weeks of signed readings), and half an hour after, a TSO asks to
absorb a wind surplus (more consumption, MBMA baseline): batteries recharge, PV curtails;
the nodes bid on their own; clearing at gate closure; chain time moves through the windows
one interval at a time while the nodes dispatch, meter, sign and send; the committee
measures, co-signs and posts; after the dispute window it finalizes; everyone withdraws.

`fraud`: one request; two of the three seated oracles collude and rewrite one reading in
their databases (a value the device never signed) and post the tampered report; the honest
oracle's watcher challenges with the device-signed unit; unrebutted, the report is voided
and both signers slashed; governance seats a standby oracle and the honest pair's report
settles.

Each step waits for the real effect (a bid on chain, a reading at every oracle, a report
event), never a fixed sleep.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from eth_account import Account
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from cli.demo.network import (
    FLEX,
    NODE_POLL_SECONDS,
    REPORT_DELAY_SECONDS,
    ZONE_NAME,
    DemoNetwork,
    Node,
    node_sizes,
    wait_until,
)
from cli.demo.processes import gridflex_command
from cli.demo.summary import RequestSummary, summarize_request, withdrawn_total
from gridflex.chain.anvil import mine, set_next_block_timestamp
from gridflex.chain.protocol import Protocol
from gridflex.rules.eip712 import sign_digest_secp256k1
from gridflex.rules.pools import consent_digest, pool_offer_w
from gridflex.rules.reports import DeviceRecord
from gridflex.rules.settlement import PricingRule
from gridflex.rules.types import (
    BaselineMethod,
    DeviceKind,
    Direction,
    RequestSpec,
    RequestStatus,
    zone_id,
)
from node.devices.simulated import simulated_device
from node.state import load_state
from node.strategy import availability_for

INTERVAL = 900
HOUR = 3600
X_OF_Y_HISTORY_HOURS = 15 * 24  # CAISO 10-of-10: ten weekdays always fit in 15 days
MBMA_HISTORY_HOURS = 2


@dataclass
class FraudSummary:
    challenge_id: int
    request_id: int
    voided_round: int
    device_id: int
    interval_start: int
    signed_energy_wh: int
    forged_energy_wh: int
    challenger: str
    slashed_oracles: list[str]
    slashed_total: int
    challenger_reward: int
    oracle_bond: int
    challenger_share_bps: int


class Phases:
    """The story's phases on stderr: a spinner and bar while one runs, then a line that
    stays (✓ and its time), so phases and their notes read in order."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.timings: list[tuple[str, float]] = []
        """(phase, seconds) in order: the JSON summary and the benchmark report them."""

    def __enter__(self) -> Phases:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    @contextmanager
    def phase(self, description: str, total: int = 1) -> Iterator[Any]:
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        task = progress.add_task(description, total=total)
        started = time.monotonic()

        def advance(completed: int | None = None, note: str | None = None) -> None:
            if completed is not None:
                progress.update(task, completed=completed)
            if note is not None:
                progress.update(task, description=f"{description} [dim]{note}")

        try:
            # Not a terminal (a log, a pipe): only the lines that stay.
            with progress if self.console.is_terminal else contextlib.nullcontext():
                yield advance
        except BaseException:
            self.console.print(f"[red]✗[/] {description}")
            raise
        seconds = round(time.monotonic() - started, 2)
        self.timings.append((description, seconds))
        self.console.print(f"[green]✓[/] {description} [dim]({seconds:.1f} s)")

    def note(self, text: str) -> None:
        self.console.print(f"    [dim]{text}")


# ─── Shared phases ────────────────────────────────────────────────────────────────────


def start_network(
    network: DemoNetwork,
    phases: Phases,
    *,
    devices: int,
    oracles: int,
    threshold: int,
    standby_oracles: int,
    history_hours: float,
    more_nodes: Callable[[], None] | None = None,
) -> None:
    with phases.phase("compile contracts, deploy GridFlex on an Osaka anvil"):
        protocol = network.deploy()
    phases.note(f"anvil {network.rpc_url}; market {protocol.market.address}")
    with phases.phase(
        f"seat a {threshold}-of-{oracles} oracle committee, start the oracle processes",
        oracles + standby_oracles,
    ) as advance:
        seated = network.add_oracles(oracles)
        standby = network.add_oracles(standby_oracles)
        for number, oracle in enumerate(seated, 1):  # each seat sets k for the new size
            network.seat(oracle, max(number // 2 + 1, min(number, threshold)))
        advance(note="(starting processes)")
        network.start_oracles(seated)
        network.start_oracles(standby, watchers=False)  # so the seated honest one challenges
        advance(oracles + standby_oracles, note="")
    sizes = node_sizes(devices)
    with phases.phase(
        f"{len(sizes)} device owners: keys, register {devices} devices, stake", len(sizes)
    ) as advance:
        for index, size in enumerate(sizes):
            network.nodes.append(network.create_node(index, size))
            advance(index + 1)
    if more_nodes is not None:
        more_nodes()
    devices = sum(len(n.device_ids) for n in network.nodes)
    sizes = [len(n.device_ids) for n in network.nodes]
    capacity = sum(sum(n.capacities_w.values()) for n in network.nodes)
    phases.note(f"{devices} devices, {capacity / 1000:,.0f} kW registered in zone {ZONE_NAME}")
    now = network.pass_history(history_hours)  # the history starts after the registrations
    last_complete = now - now % INTERVAL - INTERVAL
    with phases.phase(
        f"start {len(sizes)} node processes; backfill {history_hours:g} h of signed readings",
        devices * len(network.oracles),
    ) as advance:
        for node in network.nodes:
            network.start_node(node, history_hours)
        total = devices * len(network.oracles)

        def backfilled() -> bool:
            missing = network.readings_missing(last_complete)
            advance(total - missing)
            return missing == 0

        wait_until(backfilled, "the backfilled history at every oracle", network, timeout=300)
    readings = int(history_hours * HOUR) // INTERVAL * devices
    phases.note(f"{readings:,} signed readings at each of {len(network.oracles)} oracles")


def _flexible_capacity_w(network: DemoNetwork) -> int:
    """Capacity of devices that can cut consumption (a PV inverter cannot)."""
    return sum(
        capacity
        for node in network.nodes
        for device, capacity in node.capacities_w.items()
        if node.kinds[device] != DeviceKind.PV_INVERTER
    )


def _operator(network: DemoNetwork, budget: int) -> Protocol:
    account = Account.create()
    network.fund(account.address, budget)
    network.protocol.grant_grid_operator(account.address)
    return network.protocol.as_account(account)


def _jump_to(network: DemoNetwork, timestamp: int) -> None:
    """Chain time exactly at `timestamp` (nodes dispatch on the block time they read)."""
    w3 = network.protocol.client.w3
    if timestamp > network.chain_time():
        set_next_block_timestamp(w3, timestamp)
        mine(w3)


def _wait_for_bids(
    network: DemoNetwork, request_ids: list[int], nodes: list[Node] | None = None
) -> None:
    """Until every node (of `nodes`, default all) bid on some request and no new bid came
    for a few node polls."""
    protocol = network.protocol

    def bidders() -> tuple[set[str], int]:
        offers = [o for rid in request_ids for o in protocol.bids(rid)]
        return {o.bidder for o in offers}, len(offers)

    owners = {node.address for node in (network.nodes if nodes is None else nodes)}
    wait_until(lambda: owners <= bidders()[0], "a bid from every node", network, timeout=60)
    count, quiet_since = bidders()[1], time.monotonic()
    while time.monotonic() - quiet_since < 4 * NODE_POLL_SECONDS + 0.5:
        time.sleep(NODE_POLL_SECONDS)
        if (latest := bidders()[1]) != count:
            count, quiet_since = latest, time.monotonic()


def _deliver(
    network: DemoNetwork, phases: Phases, gate_closure: int, last_end: int, title: str
) -> None:
    """Chain time through the windows, one interval per step; each step waits until
    every oracle holds every device's reading of the interval that just ended."""
    boundaries = list(range(gate_closure + INTERVAL, last_end + 1, INTERVAL))
    with phases.phase(title, len(boundaries)) as advance:
        for step, boundary in enumerate(boundaries, 1):
            _jump_to(network, boundary)
            wait_until(
                lambda b=boundary: network.readings_missing(b - INTERVAL) == 0,
                f"the readings of the interval ending {boundary}",
                network,
            )
            advance(step)


def _wait_status(
    network: DemoNetwork, request_ids: list[int], status: RequestStatus, what: str
) -> None:
    """Until every request reached `status` or settled (one nobody won settles at once)."""
    done = {status, RequestStatus.SETTLED}
    wait_until(
        lambda: all(network.protocol.request(r).status in done for r in request_ids),
        what,
        network,
        timeout=120,
    )


def _settle_and_withdraw(
    network: DemoNetwork,
    phases: Phases,
    request_ids: list[int],
    operators: list[Protocol],
    titles: list[str],
) -> list[RequestSummary]:
    protocol = network.protocol
    with phases.phase("dispute window passes (anvil time); the committee finalizes"):
        settle_from = protocol.block_number()
        dispute_window = protocol.dispute_window()
        _jump_to(network, network.chain_time() + dispute_window + 1)
        _wait_status(network, request_ids, RequestStatus.SETTLED, "settlement")
    with phases.phase("withdrawals: nodes (`gridflex node withdraw`), operators, treasury"):
        paid = [n for n in network.nodes if protocol.claimable(protocol.token.address, n.address)]
        withdrawals = [
            subprocess.Popen(
                gridflex_command("node", "withdraw"),
                env=_child_env(node.env(network)),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=network.workdir,
            )
            for node in paid
        ]
        for operator in operators:
            if protocol.claimable(protocol.token.address, operator.address):
                operator.withdraw(protocol.token.address)
        if protocol.claimable(protocol.token.address, protocol.address):
            protocol.withdraw(protocol.token.address)
        for node, process in zip(paid, withdrawals, strict=True):
            output, _ = process.communicate(timeout=120)
            if process.returncode != 0:
                raise RuntimeError(f"node {node.index} withdraw failed: {output.decode()}")
    node_of = {node.address: node.index for node in network.nodes}
    summaries = [
        summarize_request(protocol, rid, title, node_of)
        for rid, title in zip(request_ids, titles, strict=True)
    ]
    network.withdrawn = withdrawn_total(protocol, protocol.token.address, settle_from)
    return summaries


def _child_env(env: dict[str, str]) -> dict[str, str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLEX")}
    return base | env


# ─── Market ───────────────────────────────────────────────────────────────────────────


def market_story(network: DemoNetwork, phases: Phases) -> list[RequestSummary]:
    protocol = network.protocol
    flexible = _flexible_capacity_w(network)
    now = network.chain_time()
    base = now - now % INTERVAL
    gate_closure = base + HOUR + HOUR // 2
    zone = zone_id(ZONE_NAME)
    specs = [
        RequestSpec(
            zone=zone, power_w=max(1_000, flexible * 35 // 100 // 1000 * 1000),
            window_start=base + 2 * HOUR, window_end=base + 3 * HOUR,
            price_cap_per_kwh=FLEX * 30 // 100, gate_closure=gate_closure,
            settlement_token=protocol.token.address,
            baseline_method=BaselineMethod.CAISO_10_OF_10, pricing_rule=PricingRule.UNIFORM,
        ),
        RequestSpec(
            zone=zone, direction=Direction.INCREASE_CONSUMPTION,
            power_w=max(1_000, flexible * 12 // 100 // 1000 * 1000),
            window_start=base + 5 * HOUR, window_end=base + 6 * HOUR,
            price_cap_per_kwh=FLEX * 50 // 100, availability_price_per_kwh=FLEX * 2 // 100,
            gate_closure=gate_closure, settlement_token=protocol.token.address,
            baseline_method=BaselineMethod.MBMA, pricing_rule=PricingRule.PAY_AS_BID,
        ),
    ]  # fmt: skip
    titles = ["DSO evening peak: cut consumption (CAISO 10-of-10)",
              "TSO wind surplus: absorb power (MBMA)"]  # fmt: skip
    with phases.phase("a DSO and a TSO post requests, escrowing budgets", 2) as adv:
        operators, request_ids = [], []
        for done, spec in enumerate(specs, 1):
            operator = _operator(network, Protocol.budget_of(spec))
            request_id, _escrow = operator.create_request(spec)
            operators.append(operator)
            request_ids.append(request_id)
            adv(done)
    with phases.phase("nodes bid on their own (price, capacity, revenue stacking)"):
        _wait_for_bids(network, request_ids)
    bids = sum(len(protocol.bids(r)) for r in request_ids)
    phases.note(f"{bids} bids on requests {request_ids}")
    with phases.phase("gate closure: operators clear in merit order", len(request_ids)) as adv:
        _jump_to(network, gate_closure)
        for done, (operator, rid) in enumerate(zip(operators, request_ids, strict=True), 1):
            operator.clear(rid)
            adv(done)
    _deliver(
        network, phases, gate_closure, max(s.window_end for s in specs),
        "delivery: nodes dispatch, meter, sign and send, interval by interval",
    )  # fmt: skip
    with phases.phase("the committee measures, co-signs over HTTP and posts the reports"):
        _jump_to(network, network.chain_time() + REPORT_DELAY_SECONDS + 1)
        _wait_status(network, request_ids, RequestStatus.REPORTED, "the reports")
    return _settle_and_withdraw(network, phases, request_ids, operators, titles)


def run_market(
    network: DemoNetwork, phases: Phases, *, devices: int, oracles: int, threshold: int
) -> list[RequestSummary]:
    start_network(
        network, phases, devices=devices, oracles=oracles, threshold=threshold,
        standby_oracles=0, history_hours=X_OF_Y_HISTORY_HOURS,
    )  # fmt: skip
    return market_story(network, phases)


# ─── Fraud ────────────────────────────────────────────────────────────────────────────


def run_fraud(
    network: DemoNetwork, phases: Phases, *, devices: int
) -> tuple[list[RequestSummary], FraudSummary]:
    """Needs k = 2 of 3 seated oracles plus a standby: two collude, one is honest."""
    start_network(
        network, phases, devices=devices, oracles=3, threshold=2, standby_oracles=1,
        history_hours=MBMA_HISTORY_HOURS,
    )  # fmt: skip
    protocol = network.protocol
    honest, colluders, standby = network.oracles[0], network.oracles[1:3], network.oracles[3]
    now = network.chain_time()
    base = now - now % INTERVAL
    gate_closure = base + HOUR
    spec = RequestSpec(
        zone=zone_id(ZONE_NAME),
        power_w=max(1_000, _flexible_capacity_w(network) * 30 // 100 // 1000 * 1000),
        window_start=base + HOUR + HOUR // 2, window_end=base + 2 * HOUR + HOUR // 2,
        price_cap_per_kwh=FLEX * 30 // 100, availability_price_per_kwh=FLEX // 100,
        gate_closure=gate_closure, settlement_token=protocol.token.address,
    )  # fmt: skip
    with phases.phase("a DSO posts a request, escrowing the budget"):
        operator = _operator(network, Protocol.budget_of(spec))
        request_id, _escrow = operator.create_request(spec)
    with phases.phase("nodes bid on their own"):
        _wait_for_bids(network, [request_id])
    with phases.phase("gate closure: clearing in merit order"):
        _jump_to(network, gate_closure)
        operator.clear(request_id)
    _deliver(network, phases, gate_closure, spec.window_end, "delivery, interval by interval")

    # The attack: the colluding pair rewrite one awarded device's reading in their own
    # databases (less consumption metered = more delivery paid); the device never signed it.
    bid = next(b for b in protocol.bids(request_id) if protocol.awarded_w(request_id)[b.index])
    owner = next(n for n in network.nodes if n.address == bid.bidder)
    device_id = protocol.bid_placements(request_id)[bid.index][0]  # the bid now in the slot
    interval = spec.window_start + INTERVAL
    with phases.phase("two colluding oracles rewrite a reading the device never signed"):
        for oracle in colluders:
            with closing(sqlite3.connect(oracle.database)) as db, db:
                (signed,) = db.execute(
                    "SELECT energy_wh FROM readings WHERE device_id = ? AND interval_start = ?",
                    (device_id, interval),
                ).fetchone()
                forged = int(signed) - owner.capacities_w[device_id] * INTERVAL // HOUR
                db.execute(
                    "UPDATE readings SET energy_wh = ? WHERE device_id = ? AND interval_start = ?",
                    (forged, device_id, interval),
                )
    first = protocol.deployment.deployed_at_block
    with phases.phase("they co-sign and post the tampered report (k = 2)"):
        _jump_to(network, network.chain_time() + REPORT_DELAY_SECONDS + 1)
        _wait_status(network, [request_id], RequestStatus.REPORTED, "the tampered report")
    with phases.phase("the honest oracle's watcher challenges with the device-signed unit"):
        wait_until(
            lambda: bool(protocol.events(protocol.dispute, "ChallengeOpened", from_block=first)),
            "the challenge", network, timeout=120,
        )  # fmt: skip
    (opened,) = protocol.events(protocol.dispute, "ChallengeOpened", from_block=first)
    challenge = opened.args
    phases.note(
        f"challenge {challenge['challengeId']}: device {challenge['deviceId']} interval "
        f"{challenge['intervalStart']}: report used {challenge['usedEnergyWh']} Wh, the "
        f"device signed {challenge['signedEnergyWh']} Wh"
    )
    reward_before = protocol.balance_of(protocol.token.address, honest.account.address)
    with phases.phase("no rebuttal: the report is voided, both signers slashed"):
        _jump_to(network, int(challenge["responseDeadline"]) + 1)
        wait_until(
            lambda: bool(protocol.events(protocol.dispute, "ChallengeResolved", from_block=first)),
            "the resolution", network, timeout=120,
        )  # fmt: skip
    (resolved,) = protocol.events(protocol.dispute, "ChallengeResolved", from_block=first)
    slashes = protocol.events(
        protocol.staking,
        "Slashed",
        from_block=resolved.block_number,
        to_block=resolved.block_number,
    )
    with phases.phase("governance seats the standby oracle; the honest pair report again"):
        network.seat(standby, 2)
        wait_until(
            lambda: protocol.request(request_id).status == RequestStatus.REPORTED,
            "the corrected report", network, timeout=120,
        )  # fmt: skip
    summaries = _settle_and_withdraw(
        network, phases, [request_id], [operator], ["DSO congestion relief (MBMA)"]
    )
    fraud = FraudSummary(
        challenge_id=int(challenge["challengeId"]), request_id=request_id,
        voided_round=int(challenge["round"]), device_id=int(challenge["deviceId"]),
        interval_start=int(challenge["intervalStart"]),
        signed_energy_wh=int(challenge["signedEnergyWh"]),
        forged_energy_wh=int(challenge["usedEnergyWh"]),
        challenger=str(challenge["challenger"]),
        slashed_oracles=sorted({str(e.args["account"]) for e in slashes}),
        slashed_total=int(resolved.args["slashedTotal"]),
        challenger_reward=protocol.balance_of(protocol.token.address, honest.account.address)
        - reward_before,
        oracle_bond=protocol.oracle_bond(),
        challenger_share_bps=protocol.challenger_share_bps(),
    )  # fmt: skip
    return summaries, fraud


# ─── Community ────────────────────────────────────────────────────────────────────────

COMMUNITY_STREETS = 4
HOUSEHOLDS_PER_STREET = 50
AGGREGATOR_HOUSEHOLDS = 50
COMMUNITY_COMMISSION_BPS = 500
AGGREGATOR_COMMISSION_BPS = 2_500
COMMUNITY_KINDS = (DeviceKind.BATTERY,)  # the community's shared home batteries
AGGREGATOR_KINDS = (DeviceKind.BATTERY, DeviceKind.HEAT_PUMP)


@dataclass
class PoolSummary:
    pool_id: int
    name: str
    households: int
    devices: int
    commission_bps: int
    bid_index: int
    payout: int
    commission: int
    claimed: int
    claims: int
    dust: int

    @property
    def adds_up(self) -> bool:
        return self.claimed + self.commission + self.dust == self.payout


@dataclass
class _Pool:
    pool_id: int
    name: str
    operator: Protocol
    households: list[Protocol]
    nodes: list[Node]
    commission_bps: int


def _household(network: DemoNetwork) -> Protocol:
    account = Account.create()
    network.fund(account.address)
    return network.protocol.as_account(account)


def _enroll(operator: Protocol, pool_id: int, household: Protocol, device_ids: list[int]) -> None:
    """The household signs its EIP-712 consent; the pool's operator sends it."""
    deadline = household.latest_block_timestamp() + 7 * 86_400
    digest = consent_digest(
        household.client.chain_id, household.pools.address, pool_id, household.address,
        device_ids, 0, deadline,
    )  # fmt: skip
    signature = sign_digest_secp256k1(household.client.account.key, digest)
    operator.enroll(pool_id, household.address, device_ids, 0, deadline, signature)


def _create_pools(network: DemoNetwork, phases: Phases, pools: list[_Pool]) -> None:
    """An energy community of four streets (a street node each, 50 households, one device
    per household) and an aggregator's pool of 50 households on one node."""
    streets = [
        (
            "Zonnedorp energy community",
            COMMUNITY_COMMISSION_BPS,
            COMMUNITY_STREETS,
            COMMUNITY_KINDS,
        ),
        ("Voltwise aggregator VPP", AGGREGATOR_COMMISSION_BPS, 1, AGGREGATOR_KINDS),
    ]
    total = (COMMUNITY_STREETS * HOUSEHOLDS_PER_STREET + AGGREGATOR_HOUSEHOLDS) * 2
    with phases.phase(
        "an energy community (4 street nodes, 200 households) and an aggregator's pool "
        "(50 households): households register, sign their consent, the operators enrol them",
        total,
    ) as advance:
        done = 0
        for name, commission, street_count, kinds in streets:
            operator = _operator(network, 0)
            network.fund(operator.address, 10_000 * FLEX)
            operator.stake(10_000 * FLEX)
            pool_id = operator.create_pool(commission, name)
            pool = _Pool(pool_id, name, operator, [], [], commission)
            for _ in range(street_count):
                households = [_household(network) for _ in range(HOUSEHOLDS_PER_STREET)]
                node = network.create_street_node(len(network.nodes), households, kinds)
                network.nodes.append(node)
                done += len(households)
                advance(done)
                for household, device_id in zip(households, node.device_ids, strict=True):
                    _enroll(operator, pool_id, household, [device_id])
                    done += 1
                    advance(done)
                pool.households += households
                pool.nodes.append(node)
            pools.append(pool)


def _pool_offer_w(pool: _Pool, window: tuple[int, int]) -> int:
    """What the operator offers: the most its members can deliver in the window at their
    dispatch shares, from the availability their nodes report (here read off the same
    simulated devices the street nodes run), in whole kW."""
    capacities, available = {}, {}
    for node in pool.nodes:
        for device in load_state(node.data_dir).devices:
            model = simulated_device(device.kind, device.capacity_w, device.seed)
            device_id = int(device.device_id or 0)
            capacities[device_id] = device.capacity_w
            available[device_id] = availability_for(model)(*window, Direction.REDUCE_CONSUMPTION)
    return pool_offer_w(capacities, available) // 1000 * 1000


def _claim_all(
    network: DemoNetwork, phases: Phases, request_id: int, pools: list[_Pool]
) -> list[PoolSummary]:
    """Every household claims its device's share with the proof an oracle serves."""
    protocol = network.protocol
    summaries = []
    homes = sum(len(p.households) for p in pools)
    with phases.phase(f"{homes} households claim their shares (Merkle proofs)", homes) as advance:
        done = 0
        for pool in pools:
            bid = next(
                b.index for b in protocol.bids(request_id)
                if protocol.pool_bid_of(request_id, b.index).pool_id == pool.pool_id
            )  # fmt: skip
            payout = protocol.pool_payout(request_id, bid)
            settled = [
                e for e in protocol.events(protocol.pools, "PoolBidSettled", requestId=request_id)
                if int(e.args["bidIndex"]) == bid
            ]  # fmt: skip
            claimed = claims = 0
            if not settled:  # the bid earned nothing (below the delivery threshold)
                summaries.append(PoolSummary(
                    pool.pool_id, pool.name, len(pool.households),
                    sum(len(n.device_ids) for n in pool.nodes), pool.commission_bps, bid,
                    0, 0, 0, 0, 0,
                ))  # fmt: skip
                done += len(pool.households)
                advance(done)
                continue
            for household, device_id in zip(
                pool.households, [d for n in pool.nodes for d in n.device_ids], strict=True
            ):
                proof = httpx.get(
                    f"{network.oracles[0].url}/v1/reports/{request_id}/devices/{device_id}",
                    timeout=30,
                )
                done += 1
                advance(done)
                if proof.status_code != 200:
                    continue
                body = proof.json()
                record = DeviceRecord.from_json(body["record"])
                if record.delivered_wh <= 0:
                    continue  # nothing to claim
                nodes = [bytes.fromhex(n[2:]) for n in body["recordProof"]]
                claimed += household.claim_member_shares(request_id, [record], [nodes])
                claims += 1
            commission = int(settled[0].args["commission"])
            summaries.append(PoolSummary(
                pool.pool_id, pool.name, len(pool.households),
                sum(len(n.device_ids) for n in pool.nodes), pool.commission_bps, bid,
                int(settled[0].args["payout"]), commission, claimed, claims,
                payout.member_pot - claimed,
            ))  # fmt: skip
        for pool in pools:
            if protocol.pool_withdrawable(protocol.token.address, pool.operator.address):
                pool.operator.withdraw_commission(protocol.token.address)
    return summaries


def run_community(
    network: DemoNetwork, phases: Phases, *, devices: int, oracles: int, threshold: int
) -> tuple[list[RequestSummary], list[PoolSummary]]:
    """A DSO's request served by an energy community's pool and an aggregator's pool
    beside individual owners' nodes, which bid on their own; the members' nodes dispatch
    their shares of their pools' awards; every household claims."""
    pools: list[_Pool] = []
    start_network(
        network, phases, devices=devices, oracles=oracles, threshold=threshold,
        standby_oracles=0, history_hours=MBMA_HISTORY_HOURS,
        more_nodes=lambda: _create_pools(network, phases, pools),
    )  # fmt: skip
    protocol = network.protocol
    individuals = [n for n in network.nodes if all(n not in p.nodes for p in pools)]
    now = network.chain_time()
    base = now - now % INTERVAL
    gate_closure = base + HOUR
    window = (base + HOUR + HOUR // 2, base + 2 * HOUR + HOUR // 2)
    pool_bids_w = {p.pool_id: _pool_offer_w(p, window) for p in pools}
    solo_w = sum(
        cap for n in individuals for d, cap in n.capacities_w.items()
        if n.kinds[d] != DeviceKind.PV_INVERTER
    ) * 25 // 100 // 1000 * 1000  # fmt: skip
    spec = RequestSpec(
        zone=zone_id(ZONE_NAME), power_w=max(1_000, sum(pool_bids_w.values()) + solo_w),
        window_start=window[0], window_end=window[1],
        price_cap_per_kwh=FLEX * 30 // 100, gate_closure=gate_closure,
        settlement_token=protocol.token.address, baseline_method=BaselineMethod.MBMA,
    )  # fmt: skip
    with phases.phase("a DSO posts a congestion request, escrowing the budget"):
        operator = _operator(network, Protocol.budget_of(spec))
        request_id, _escrow = operator.create_request(spec)
    with phases.phase("the pools' operators bid for their members; owners' nodes bid alone"):
        for number, pool in enumerate(pools):
            pool.operator.bid_as_pool(
                request_id, pool.pool_id, pool_bids_w[pool.pool_id], FLEX * (12 + 4 * number) // 100
            )
        _wait_for_bids(network, [request_id], individuals)
    phases.note(f"{len(protocol.bids(request_id))} bids, {len(pools)} of them pools'")
    with phases.phase("gate closure: clearing in merit order"):
        _jump_to(network, gate_closure)
        operator.clear(request_id)
    _deliver(
        network, phases, gate_closure, spec.window_end,
        "delivery: street nodes dispatch each household's share, all meter, sign and send",
    )  # fmt: skip
    with phases.phase("the committee measures every device, co-signs and posts the report"):
        _jump_to(network, network.chain_time() + REPORT_DELAY_SECONDS + 1)
        _wait_status(network, [request_id], RequestStatus.REPORTED, "the report")
    summaries = _settle_and_withdraw(
        network, phases, [request_id], [operator], ["DSO congestion relief (pools + owners)"]
    )
    return summaries, _claim_all(network, phases, request_id, pools)
