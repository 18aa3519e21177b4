"""Arithmetic fraud proofs on a real anvil (issue 12, finding 11). A 2-of-3 committee posts
a report whose used readings are exactly what the devices signed, but whose delivery does
not follow from them. `gridflex.verify.check_report` finds the one-phase proof and
`gridflex.watch.ReportWatcher` (what `gridflex watch` and the oracle's watcher run)
submits it: `DeliveryDispute` recomputes the record on-chain, voids the report at once
and slashes both signers. Records, trees and used readings come from the same Python
code the oracles use (`gridflex.rules.measurement.measure_device` over `read_request_facts`,
which reads capacities with `deviceAt(id, bid.placedAt)` like the contract), so the
honest report of the next round is refused with ArithmeticCorrect: Python and Solidity
agree to the unit, for MBMA and for CAISO 10-in-10 with 45 days of history."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator

import pytest
from eth_account import Account
from support.chain import fresh_protocol, funded_account
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess, increase_time
from gridflex.chain.compiler import Artifact
from gridflex.chain.facts import read_request_facts
from gridflex.chain.protocol import Protocol
from gridflex.errors import TransactionReverted
from gridflex.rules.attestation import MeterUnit, meter_domain_separator, sign_unit
from gridflex.rules.baselines import (
    ADJUSTMENT_GAP_SECONDS,
    ADJUSTMENT_WINDOW_SECONDS,
    SECONDS_PER_DAY,
)
from gridflex.rules.eip712 import ReportPayload, secp256k1_device_key, sign_report
from gridflex.rules.measurement import RecordFigures, measure_device
from gridflex.rules.reports import DeviceRecord, Quality, build_report_trees, unpack_used_readings
from gridflex.rules.types import (
    ArithmeticFault,
    BaselineMethod,
    DeviceKind,
    RequestSpec,
    RequestStatus,
    zone_id,
)
from gridflex.verify import (
    ArithmeticMaterial,
    BidTotalMaterial,
    DeviceData,
    PostedReport,
    PublishedReport,
    check_report,
    device_histories,
    read_posted_report,
)
from gridflex.watch import ReportWatcher, chain_now

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilProcess]:
    """This module's own anvil: the tests move its chain HISTORY_DAYS ahead (the history
    after the registration), which the session's other tests should not inherit."""
    with AnvilProcess() as process:
        yield process


@pytest.fixture(scope="module")
def w3(anvil: AnvilProcess) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.url))


FLEX = 10**18
EUR = 10**18
ZONE = zone_id("NL-GRQ-07")
INTERVAL = 900
CAPACITIES_W = (12_000, 8_000)  # alice's two devices; she bids 15 kW from both
HISTORY_DAYS = 47  # X-of-Y reads 46 days of history before the event day


def _now(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


@dataclasses.dataclass
class Event:
    governance: Protocol
    oracles: list
    request_id: int
    devices: list[int]
    device_keys: list[bytes]
    window_start: int
    window_end: int
    meter_domain: bytes


def _event(w3: Web3, artifacts: dict[str, Artifact], method: BaselineMethod) -> Event:
    """A cleared request (`method`, one hour) whose window has ended: alice's 15 kW bid
    from two devices is awarded in full."""
    governance = fresh_protocol(w3, artifacts=artifacts)
    chain_id, registry = w3.eth.chain_id, governance.registry.address
    oracles = [funded_account(w3) for _ in range(3)]
    for account, threshold in zip(oracles, (1, 2, 2), strict=True):
        governance.seat_oracle(account, threshold)
    token = governance.client.deploy(artifacts["FlexToken"], governance.address, 10**9 * EUR)
    operator, alice = (governance.as_account(funded_account(w3)) for _ in range(2))
    governance.grant_grid_operator(operator.address)
    governance.send(governance.erc20(token.address).functions.transfer(operator.address, 10 * EUR))
    keys = [Account.create().key for _ in CAPACITIES_W]
    devices = []
    for capacity, key in zip(CAPACITIES_W, keys, strict=True):
        proof = secp256k1_device_key(key, alice.address, chain_id, registry)
        devices.append(alice.register_device(DeviceKind.BATTERY, capacity, ZONE, proof))
    governance.send(governance.token.functions.transfer(alice.address, 1_000 * FLEX))
    alice.stake(1_000 * FLEX)
    # Every reading after the registration (none before can be judged: `deviceAt` reverts),
    # X-of-Y's 46 days of history included.
    increase_time(w3, HISTORY_DAYS * SECONDS_PER_DAY)
    now = _now(w3)
    start = now - now % INTERVAL + 2 * 3600
    spec = RequestSpec(
        zone=ZONE, power_w=15_000, window_start=start, window_end=start + 3600,
        price_cap_per_kwh=EUR // 4, gate_closure=start - 3600, settlement_token=token.address,
        baseline_method=method,
    )  # fmt: skip
    request_id, _ = operator.create_request(spec)
    alice.bid(request_id, 15_000, EUR // 5, devices)
    increase_time(w3, spec.gate_closure - _now(w3))
    governance.clear(request_id)
    increase_time(w3, spec.window_end - _now(w3))
    return Event(
        governance, oracles, request_id, devices, keys, start, start + 3600,
        meter_domain_separator(chain_id, registry),
    )  # fmt: skip


def _readings(event: Event, method: BaselineMethod, seed: int) -> list[dict[int, int]]:
    """Each device's readings: MBMA the interval before and the event; X-of-Y 45 days of
    history at the needed times of day, the adjustment window and the event."""
    rng = random.Random(seed)
    lead = ADJUSTMENT_GAP_SECONDS + ADJUSTMENT_WINDOW_SECONDS
    if method == BaselineMethod.MBMA:
        starts = range(event.window_start - INTERVAL, event.window_end, INTERVAL)
    else:
        starts = range(event.window_start - lead, event.window_end, INTERVAL)
    days = 1 if method == BaselineMethod.MBMA else HISTORY_DAYS - 1
    per_device = []
    for level in (3_200, 1_900):
        readings = {}
        for back in range(days):
            for t in starts:
                in_event = back == 0 and t >= event.window_start
                low = level // 3 if in_event else level
                readings[t - back * SECONDS_PER_DAY] = low + rng.randint(-150, 150)
        per_device.append(readings)
    return per_device


def _signed_units(event: Event, readings: list[dict[int, int]]) -> list[MeterUnit]:
    """The units the devices signed: one per device and day-run of consecutive intervals."""
    units = []
    for device, key, values in zip(event.devices, event.device_keys, readings, strict=True):
        run: list[int] = []
        for t in sorted(values):
            if run and (t != run[-1] + INTERVAL or len(run) == 96):
                units.append(_unit(event, device, key, run, values))
                run = []
            run.append(t)
        units.append(_unit(event, device, key, run, values))
    return units


def _unit(event: Event, device: int, key: bytes, run: list[int], values: dict[int, int]):
    unit = MeterUnit(device, run[0], INTERVAL, run[0], tuple(values[t] for t in run))
    return sign_unit(unit, event.meter_domain, key)


def _post(event: Event, records: list[DeviceRecord], used: dict[int, bytes], round_: int):
    trees = build_report_trees(records, used, 1)
    governance = event.governance
    payload = ReportPayload(
        governance.market.address, event.request_id, round_, trees.delivered_wh,
        trees.devices_root, trees.readings_root,
    )  # fmt: skip
    signers = [a.key for a in event.oracles[:2]]
    chain_id = governance.client.chain_id
    governance.submit_report(
        event.request_id, trees.delivered_wh, trees.devices_root, trees.readings_root,
        sign_report(payload, chain_id, governance.committee.address, signers),
    )  # fmt: skip
    return trees


def _published(event: Event, trees, units: list[MeterUnit], round_: int) -> PublishedReport:
    """What the signing oracles serve for the round (`GET /v1/reports/...`), in process."""
    devices = {
        record.device_id: DeviceData(
            record,
            trees.used_readings[record.device_id],
            tuple(trees.readings_tree.proof(_readings_leaf(record.device_id, trees))),
            tuple(u for u in units if u.device_id == record.device_id),
        )
        for record in trees.records
    }
    return PublishedReport(
        "in-process", round_, None, tuple(trees.delivered_wh), trees.devices_root,
        trees.readings_root, tuple(trees.records), devices,
    )  # fmt: skip


def _readings_leaf(device_id: int, trees) -> bytes:
    from gridflex.rules.reports import used_readings_leaf

    return used_readings_leaf(device_id, trees.used_readings[device_id])


def _honest(event: Event, readings: list[dict[int, int]]):
    facts = read_request_facts(event.governance, event.request_id)
    (bid,) = facts.bids
    measured = [
        measure_device(facts, bid, device, values, set())
        for device, values in zip(event.devices, readings, strict=True)
    ]
    return (
        facts,
        [m.record for m in measured],
        {m.record.device_id: m.used_readings for m in measured},
    )


def _verdict(event: Event, facts, posted: PostedReport, published: PublishedReport):
    keys = device_histories(event.governance, event.devices)
    return check_report(facts, posted, [published], keys, event.meter_domain)


@pytest.mark.parametrize("method", [BaselineMethod.MBMA, BaselineMethod.CAISO_10_OF_10])
def test_wrong_delivery_on_signed_readings_is_found_proven_by_the_watcher_and_voided(
    w3: Web3, artifacts: dict[str, Artifact], method: BaselineMethod
) -> None:
    event = _event(w3, artifacts, method)
    governance = event.governance
    readings = _readings(event, method, seed=int(method) + 7)
    units = _signed_units(event, readings)
    facts, honest, used = _honest(event, readings)
    assert all(r.delivered_wh > 0 and r.quality == Quality.OK for r in honest), "it delivers"

    # The malicious pair: the first device's delivery doubled, on the honest used readings.
    inflated = dataclasses.replace(honest[0], delivered_wh=2 * honest[0].delivered_wh)
    trees = _post(event, [inflated, honest[1]], used, 0)
    posted = read_posted_report(governance, event.request_id)
    verdict = _verdict(event, facts, posted, _published(event, trees, units, 0))
    assert not verdict.ok
    assert not verdict.challenges, "every used reading is device-signed: no reading to contradict"
    proof = verdict.best_proof
    assert isinstance(proof, ArithmeticMaterial)
    assert proof.record == inflated
    assert proof.expected == RecordFigures.of(honest[0])

    # The reading fraud proof (all there was before DeliveryDispute) cannot touch it: every
    # used reading is what the device signed.
    # (A unit of the event interval alone, the one the used reading is challenged at.)
    device = inflated.device_id
    used_index = [t for t, _ in unpack_used_readings(used[device])].index(event.window_start)
    event_unit = sign_unit(
        MeterUnit(device, event.window_start, INTERVAL, 1, (readings[0][event.window_start],)),
        event.meter_domain, event.device_keys[0],
    )  # fmt: skip
    with pytest.raises(TransactionReverted) as agree:
        governance.challenge(
            event.request_id, device, used[device],
            trees.readings_tree.proof(_readings_leaf(device, trees)), used_index, event_unit, 0,
        )  # fmt: skip
    assert agree.value.error_name == "ValuesAgree"

    # The watcher (any funded account) submits it: one transaction voids and slashes.
    watcher_account = governance.as_account(funded_account(w3))
    watcher = ReportWatcher(
        watcher_account,
        lambda p: _verdict(event, facts, p, _published(event, trees, units, p.round)).best_proof,
        now=chain_now(governance),
    )
    watcher.tick()
    (result,) = watcher.proven
    assert (result.request_id, result.round, result.device_id) == (
        event.request_id,
        0,
        inflated.device_id,
    )
    assert result.fault == ArithmeticFault.ARITHMETIC
    assert result.expected == (
        honest[0].baseline_wh, honest[0].metered_wh, honest[0].delivered_wh, int(honest[0].quality),
    )  # fmt: skip
    bond = int(governance.committee.functions.oracleBond().call())
    assert result.slashed_total == 2 * bond
    share = int(governance.dispute.functions.challengerShareBps().call())
    assert watcher_account.balance_of(governance.token.address) == 2 * bond * share // 10_000
    state = governance.request(event.request_id)
    assert (state.status, state.report_round) == (RequestStatus.CLEARED, 1)

    # The next round, honest (the third oracle and a fresh seat): nothing to prove, and the
    # contract agrees (ArithmeticCorrect), for every device and for the bid total.
    newcomer = funded_account(w3)
    governance.seat_oracle(newcomer, 2)
    event.oracles = [event.oracles[2], newcomer]
    good = _post(event, honest, used, 1)
    posted = read_posted_report(governance, event.request_id)
    verdict = _verdict(event, facts, posted, _published(event, good, units, 1))
    assert verdict.ok, [d.message for d in verdict.differences]
    for record in honest:
        with pytest.raises(TransactionReverted) as correct:
            watcher_account.challenge_arithmetic(
                event.request_id, record.values(),
                good.devices_tree.proof(record.leaf()), used[record.device_id],
                good.readings_tree.proof(_readings_leaf(record.device_id, good)),
                sorted(event.devices),
            )  # fmt: skip
        assert correct.value.error_name == "ArithmeticCorrect"
    with pytest.raises(TransactionReverted) as total:
        watcher_account.challenge_bid_total(
            event.request_id, good.delivered_wh, 0,
            [(r.values(), good.devices_tree.proof(r.leaf())) for r in honest],
            sorted(event.devices),
        )  # fmt: skip
    assert total.value.error_name == "BidTotalCorrect"
    assert governance.request(event.request_id).status == RequestStatus.REPORTED


def test_paid_bid_figure_above_its_records_is_proven_and_voided(
    w3: Web3, artifacts: dict[str, Artifact]
) -> None:
    """Every record right, the per-bid figure the market pays inflated: `challengeBidTotal`."""
    event = _event(w3, artifacts, BaselineMethod.MBMA)
    readings = _readings(event, BaselineMethod.MBMA, seed=3)
    units = _signed_units(event, readings)
    facts, honest, used = _honest(event, readings)
    trees = build_report_trees(honest, used, 1)
    inflated = [trees.delivered_wh[0] + 5_000]
    governance = event.governance
    payload = ReportPayload(
        governance.market.address, event.request_id, 0, inflated, trees.devices_root,
        trees.readings_root,
    )  # fmt: skip
    governance.submit_report(
        event.request_id, inflated, trees.devices_root, trees.readings_root,
        sign_report(
            payload, governance.client.chain_id, governance.committee.address,
            [a.key for a in event.oracles[:2]],
        ),
    )  # fmt: skip
    posted = read_posted_report(governance, event.request_id)
    proof = _verdict(event, facts, posted, _published(event, trees, units, 0)).best_proof
    assert isinstance(proof, BidTotalMaterial)
    watcher = ReportWatcher(
        governance.as_account(funded_account(w3)), lambda p: proof, now=chain_now(governance)
    )
    watcher.tick()
    (result,) = watcher.proven
    assert result.fault == ArithmeticFault.BID_TOTAL
    assert governance.request(event.request_id).status == RequestStatus.CLEARED
