"""Acceptance: two of three oracle processes (k = 2, chain clock) are malicious. They alter
one device's event reading in their own stores (a value the device never signed), so they
measure, co-sign and post a tampered report. The honest oracle's watcher sees the posted
roots differ from its own measurement, finds the used reading that contradicts the unit
the device signed (held in its own store) and challenges; nobody can rebut (the device
never signed the forged value), so once anvil time passes the response deadline the
watcher resolves: the report is voided, both signers slashed, the honest challenger paid
its share. Governance seats a fresh honest
oracle (k = 2 of 2); the honest pair post the round-1 report, which finalizes with the
payouts `gridflex.rules.settlement` computes. `gridflex verify` agrees with the final report and
names the tampered device and interval of the voided one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from support.chain import fresh_protocol, funded_account, wait_for
from support.oracle_process import OracleServer, start_oracle
from typer.testing import CliRunner
from web3 import Web3

from cli.main import app
from gridflex.chain.anvil import AnvilProcess, free_port, increase_time
from gridflex.chain.compiler import load_artifacts
from gridflex.chain.protocol import ORACLE_CHALLENGE_BONDS, Protocol
from gridflex.config import get_settings
from gridflex.rules.attestation import MeterUnit, meter_domain_separator, sign_unit
from gridflex.rules.baselines import device_cap_wh
from gridflex.rules.eip712 import secp256k1_device_key
from gridflex.rules.reports import unpack_used_readings
from gridflex.rules.settlement import BidAward, PricingRule, bond_for, settle_request
from gridflex.rules.types import DeviceKind, RequestSpec, RequestStatus, zone_id
from gridflex.verify import fetch_device_data, fetch_report_summary

pytestmark = pytest.mark.integration

FLEX = 10**18
EUR = 10**18
ZONE = zone_id("NL-UTR-03")
INTERVAL = 900
EVENT_INTERVALS = 4
CAPACITIES_W = (4_000, 5_000, 6_000)  # per owner: 15 kW over 3 devices
PRICES = (EUR // 10, EUR // 5)
REQUEST_W = 30_000
REPORT_DELAY_S = 60
HONEST, MALICIOUS = 0, (1, 2)


def _post_readings(url: str, units: list[MeterUnit]) -> None:
    answer = httpx.post(
        f"{url}/v1/readings", json={"units": [u.to_json() for u in units]}, timeout=30
    )
    assert answer.status_code == 200, answer.text


@pytest.fixture
def protocol(w3: Web3, tmp_path: Path) -> Protocol:
    """A deployment of this test's own, recorded for the oracle processes."""
    return fresh_protocol(w3, tmp_path / "deployments")


@pytest.fixture
def cli_env(anvil: AnvilProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`gridflex verify` in process, on this chain and this test's deployment record."""
    monkeypatch.setenv("GRIDFLEX_DEPLOYMENTS_DIR", str(tmp_path / "deployments"))
    monkeypatch.setenv("GRIDFLEX_RPC_URL", anvil.url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


class Committee:
    """Four oracle processes: three seated now, the fourth a standby seated later."""

    def __init__(self, anvil: AnvilProcess, tmp_path: Path) -> None:
        self.anvil, self.tmp_path = anvil, tmp_path
        self.accounts = [Account.create() for _ in range(4)]
        self.urls = [f"http://127.0.0.1:{free_port()}" for _ in self.accounts]
        self.servers: list[OracleServer] = []

    def start(self, index: int, **extra: str) -> OracleServer:
        env = extra | {
            "GRIDFLEX_ORACLE_RPC_URL": self.anvil.url,
            "GRIDFLEX_ORACLE_DEPLOYMENTS_DIR": str(self.tmp_path / "deployments"),
            "GRIDFLEX_ORACLE_DATA_DIR": str(self.tmp_path / f"oracle-{index}"),
            "GRIDFLEX_ORACLE_SIGNER_KEY": self.accounts[index].key.hex(),
            "GRIDFLEX_ORACLE_PEERS": ",".join(u for u in self.urls if u != self.urls[index]),
            "GRIDFLEX_ORACLE_CLOCK": "chain",
            "GRIDFLEX_ORACLE_COMMITTEE_POLL_SECONDS": "0.3",
            "GRIDFLEX_ORACLE_REPORT_DELAY_SECONDS": str(REPORT_DELAY_S),
        }
        port = int(self.urls[index].rsplit(":", 1)[1])
        server = start_oracle(self.tmp_path, env, port=port)
        self.servers.append(server)
        return server

    def database(self, index: int) -> Path:
        return self.tmp_path / f"oracle-{index}" / "oracle.db"


@pytest.fixture
def committee(anvil: AnvilProcess, tmp_path: Path, protocol: Protocol) -> Iterator[Committee]:
    oracles = Committee(anvil, tmp_path)
    try:
        for index, threshold in zip(range(3), (1, 2, 2), strict=True):
            account = oracles.accounts[index]
            protocol.client.w3.provider.make_request(
                "anvil_setBalance", [account.address, hex(10**21)]
            )
            protocol.seat_oracle(account, threshold)
            oracles.start(index)
        # A standby (unseated) honest oracle ingesting the same readings; its own watcher
        # is off so that the seated honest oracle is the one that challenges.
        oracles.start(3, GRIDFLEX_ORACLE_WATCHER_ENABLED="false")
        yield oracles
    finally:
        for server in oracles.servers:
            server.stop()


def _verify(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["verify", *args])
    return result.exit_code, result.output


@dataclass
class Delivery:
    """A cleared 30 kW request (two owners, three devices each), delivered and metered: every
    oracle ingested the device-signed units."""

    token: str
    operator: Protocol
    owners: list[Protocol]
    devices: list[tuple[int, bytes, int, int]]  # (id, key, capacity, owner)
    request_id: int
    escrow: int
    awarded: list[int]
    units: list[MeterUnit]
    expected_delivered: list[int]
    start: int
    domain: bytes


def _deliver(w3: Web3, protocol: Protocol, committee: Committee) -> Delivery:
    artifacts = load_artifacts()
    chain_id, registry = w3.eth.chain_id, protocol.registry.address
    domain = meter_domain_separator(chain_id, registry)
    token = protocol.client.deploy(artifacts["FlexToken"], protocol.address, 10**9 * EUR).address
    operator = protocol.as_account(funded_account(w3))
    protocol.grant_grid_operator(operator.address)
    protocol.send(protocol.erc20(token).functions.transfer(operator.address, 10_000 * EUR))

    owners = [protocol.as_account(funded_account(w3)) for _ in PRICES]
    devices: list[tuple[int, bytes, int, int]] = []  # (id, key, capacity, owner)
    for index, owner in enumerate(owners):
        protocol.send(protocol.token.functions.transfer(owner.address, 1_000 * FLEX))
        owner.stake(1_000 * FLEX)
        for capacity in CAPACITIES_W:
            key = bytes(Account.create().key)
            device_key = secp256k1_device_key(key, owner.address, chain_id, registry)
            device_id = owner.register_device(DeviceKind.BATTERY, capacity, ZONE, device_key)
            devices.append((device_id, key, capacity, index))

    now = int(w3.eth.get_block("latest")["timestamp"])
    start = now - now % INTERVAL + 2 * 3600
    end = start + EVENT_INTERVALS * INTERVAL
    spec = RequestSpec(
        zone=ZONE, power_w=REQUEST_W, window_start=start, window_end=end,
        price_cap_per_kwh=EUR // 4, availability_price_per_kwh=EUR // 100,
        gate_closure=start - 3600, settlement_token=token,
    )  # fmt: skip
    request_id, escrow = operator.create_request(spec)
    for index, owner in enumerate(owners):
        owned = [d[0] for d in devices if d[3] == index]
        owner.bid(request_id, sum(CAPACITIES_W), PRICES[index], owned)
    increase_time(w3, spec.gate_closure - int(w3.eth.get_block("latest")["timestamp"]))
    protocol.clear(request_id)
    awarded = protocol.awarded_w(request_id)
    assert awarded == [15_000, 15_000]

    # The window passes: every device exports its full capacity, except the first one,
    # which delivers 30% (an honest report pays it little).
    increase_time(w3, end + 1 - int(w3.eth.get_block("latest")["timestamp"]))
    units, expected_delivered = [], [0, 0]
    for position, (device_id, key, capacity, owner_index) in enumerate(devices):
        baseline = capacity * 8 // 10 * INTERVAL // 3600
        full = capacity * INTERVAL // 3600
        delivered = full * 3 // 10 if position == 0 else full
        values = (baseline,) + (baseline - delivered,) * EVENT_INTERVALS
        unit = MeterUnit(device_id, start - INTERVAL, INTERVAL, 0, values)
        units.append(sign_unit(unit, domain, key))
        cap = device_cap_wh(awarded[owner_index], capacity, sum(CAPACITIES_W), INTERVAL)
        expected_delivered[owner_index] += EVENT_INTERVALS * min(cap, delivered)
    for server in committee.servers:
        _post_readings(server.url, units)

    return Delivery(
        token, operator, owners, devices, request_id, escrow, awarded, units,
        expected_delivered, start, domain,
    )  # fmt: skip


def test_honest_watcher_challenges_a_tampered_report_and_a_correct_one_finalizes(
    w3: Web3, anvil: AnvilProcess, protocol: Protocol, committee: Committee, cli_env: None
) -> None:
    d = _deliver(w3, protocol, committee)
    token, operator, owners, devices = d.token, d.operator, d.owners, d.devices
    request_id, escrow, awarded, units = d.request_id, d.escrow, d.awarded, d.units
    expected_delivered, start = d.expected_delivered, d.start

    # The malicious pair rewrite the under-delivering device's second event interval in
    # their stores: a full export the device never signed.
    tampered_device, _, tampered_capacity, _ = devices[0]
    tampered_start = start + INTERVAL
    signed_value = units[0].energy_wh[2]
    forged_value = tampered_capacity * 8 // 10 * INTERVAL // 3600 - tampered_capacity // 4
    for index in MALICIOUS:
        with sqlite3.connect(committee.database(index)) as db:
            changed = db.execute(
                "UPDATE readings SET energy_wh = ? WHERE device_id = ? AND interval_start = ?",
                (forged_value, tampered_device, tampered_start),
            ).rowcount
        assert changed == 1

    honest = committee.accounts[HONEST]
    flex = protocol.token.address
    bond = int(protocol.committee.functions.oracleBond().call())
    share_bps = int(protocol.dispute.functions.challengerShareBps().call())
    assert protocol.balance_of(flex, honest.address) == 0
    assert len(committee.servers) == 4

    # The report delay ends: the malicious pair post; the honest watcher challenges.
    increase_time(w3, REPORT_DELAY_S)
    from_block = protocol.deployment.deployed_at_block

    def challenged() -> list[object]:
        return list(protocol.dispute.events.ChallengeOpened().get_logs(from_block=from_block))

    def resolved() -> list[object]:
        return list(protocol.dispute.events.ChallengeResolved().get_logs(from_block=from_block))

    wait_for(lambda: bool(challenged()), "the honest watcher's challenge", timeout=40)
    (event,) = challenged()
    # Pending: nothing voided or slashed yet, the report cannot finalize meanwhile.
    assert protocol.request(request_id).status == RequestStatus.REPORTED
    assert protocol.request(request_id).dispute_ends_at == event["args"]["disputeEndsAt"]  # type: ignore[index]
    assert not resolved()
    # Anvil time passes the response deadline unrebutted: the watcher resolves.
    deadline = int(event["args"]["responseDeadline"])  # type: ignore[index]
    increase_time(w3, deadline - int(w3.eth.get_block("latest")["timestamp"]))
    wait_for(lambda: bool(resolved()), "the honest watcher's resolution", timeout=40)
    (resolution,) = resolved()
    assert resolution["args"]["challengeId"] == event["args"]["challengeId"]  # type: ignore[index]
    assert resolution["args"]["challenger"] == honest.address  # type: ignore[index]
    assert resolution["args"]["slashedTotal"] == 2 * bond  # type: ignore[index]
    assert not list(protocol.dispute.events.ChallengeRebutted().get_logs(from_block=from_block))
    posted = protocol.market.events.ReportSubmitted().get_logs(
        from_block=from_block, argument_filters={"requestId": request_id, "round": 0}
    )
    assert len(posted) == 1
    bad_totals = [int(v) for v in posted[0]["args"]["deliveredWh"]]
    assert bad_totals[0] > expected_delivered[0]
    args = event["args"]  # type: ignore[index]
    assert (args["requestId"], args["round"], args["deviceId"]) == (request_id, 0, tampered_device)
    assert (args["intervalStart"], args["usedEnergyWh"], args["signedEnergyWh"]) == (
        tampered_start, forged_value, signed_value,
    )  # fmt: skip
    assert args["challenger"] == honest.address
    state = protocol.request(request_id)
    assert (state.status, state.report_round) == (RequestStatus.CLEARED, 1)
    # Oracles are seated with their bond plus free stake for challenge bonds: the slash
    # takes the seat's bond; the honest challenger's bond came back on resolution.
    extra = ORACLE_CHALLENGE_BONDS * protocol.challenge_bond()
    for index in MALICIOUS:
        address = committee.accounts[index].address
        staked, locked, unbonding, _ = protocol.staking.functions.accountOf(address).call()
        assert (staked, locked, unbonding) == (extra, 0, 0)
        assert protocol.committee.functions.oracleOf(address).call()[1] is False
    assert protocol.balance_of(flex, honest.address) == 2 * bond * share_bps // 10_000
    honest_stake = protocol.staking.functions.accountOf(honest.address).call()
    assert tuple(honest_stake[:2]) == (bond + extra, bond)

    # `gridflex verify` names the tampered device and interval of the voided report.
    all_oracles = [arg for url in committee.urls[:3] for arg in ("--oracle", url)]
    code, output = _verify(str(request_id), "--round", "0", "--json", *all_oracles)
    assert code == 1, output
    verdict = json.loads(output)
    assert verdict["ok"] is False and verdict["round"] == 0
    (contradiction,) = [d for d in verdict["differences"] if d["kind"] == "contradicted-reading"]
    assert (contradiction["deviceId"], contradiction["intervalStart"]) == (
        tampered_device, tampered_start,
    )  # fmt: skip
    assert (contradiction["expected"], contradiction["reported"]) == (signed_value, forged_value)
    assert contradiction["challenge"]["usedIndex"] == 2
    code, output = _verify(str(request_id), "--round", "0", *all_oracles)
    assert code == 1 and f"device {tampered_device} interval {tampered_start}" in output, output

    # Governance seats the standby honest oracle (k = 2 of 2); the honest pair agree on
    # round 1 and post it; it finalizes after the window.
    newcomer = committee.accounts[3]
    w3.provider.make_request("anvil_setBalance", [newcomer.address, hex(10**21)])
    protocol.seat_oracle(newcomer, 2)
    wait_for(
        lambda: protocol.request(request_id).status == RequestStatus.REPORTED,
        "the round-1 report",
        timeout=40,
    )
    final = protocol.request(request_id)
    assert final.report_round == 1
    assert protocol.reported_delivery(request_id) == expected_delivered

    code, output = _verify(str(request_id), "--oracle", committee.urls[HONEST])
    assert code == 0, output
    assert "checks out" in output
    code, output = _verify("999", "--oracle", committee.urls[HONEST])
    assert code == 2 and "unknown request" in output, output

    increase_time(w3, int(protocol.market.functions.disputeWindow().call()) + 1)
    wait_for(lambda: protocol.request(request_id).status == RequestStatus.SETTLED, "finalize")
    assert len(challenged()) == 1  # the honest round-1 report was never challenged
    bond_per_kw = int(protocol.market.functions.bondPerKW().call())
    settlement = settle_request(
        escrow=escrow, duration_seconds=3600, pricing_rule=PricingRule.PAY_AS_BID,
        clearing_price=final.clearing_price, availability_price_per_kwh=EUR // 100,
        threshold_bps=5_000, fee_bps=int(protocol.market.functions.protocolFeeBps().call()),
        awards=[BidAward(owner.address, awarded[i], PRICES[i], bond_for(awarded[i], bond_per_kw))
                for i, owner in enumerate(owners)],
        delivered_wh=expected_delivered,
    )  # fmt: skip
    for owner, outcome in zip(owners, settlement.bids, strict=True):
        assert protocol.claimable(token, owner.address) == outcome.payout
    assert protocol.claimable(token, operator.address) == settlement.refund
    assert settlement.payouts + settlement.fees + settlement.refund == escrow


def test_oracle_watcher_rebuts_an_equivocating_device_owner(
    w3: Web3, anvil: AnvilProcess, protocol: Protocol, committee: Committee
) -> None:
    """Three honest oracles post the report; the owner of a device that sent unit A to the
    oracles signs B (same device, same interval, another value) privately and challenges
    with it. A signing oracle's watcher finds A in its store and rebuts before the response
    deadline: the owner's stake is slashed, the oracles keep theirs, the report finalizes
    after the extended dispute end."""
    d = _deliver(w3, protocol, committee)
    increase_time(w3, REPORT_DELAY_S)
    wait_for(
        lambda: protocol.request(d.request_id).status == RequestStatus.REPORTED,
        "the honest report",
        timeout=40,
    )
    signers = {
        protocol.committee.functions.oracleById(i + 1).call()
        for i in range(3)
        if protocol.request(d.request_id).signer_bitmap >> i & 1
    }
    assert len(signers) >= 2

    # The used readings and proof of the device, as any oracle publishes them.
    device_id, device_key, _, owner_index = d.devices[0]
    with httpx.Client(timeout=10) as http:
        summary = fetch_report_summary(http, committee.urls[HONEST], d.request_id, 0)
        data = fetch_device_data(http, summary, d.request_id).devices[device_id]
    disputed_start = d.start + INTERVAL
    intervals = [t for t, _ in unpack_used_readings(data.used_readings)]
    used_index = intervals.index(disputed_start)
    unit_a = d.units[0]
    unit_index = (disputed_start - unit_a.first_interval_start) // INTERVAL
    values = list(unit_a.energy_wh)
    values[unit_index] += 777
    unit_b = sign_unit(
        MeterUnit(device_id, unit_a.first_interval_start, INTERVAL, 1, tuple(values)),
        d.domain,
        device_key,
    )

    attacker = d.owners[owner_index]
    protocol.send(protocol.token.functions.transfer(attacker.address, 2_000 * FLEX))
    attacker.stake(2_000 * FLEX)
    staked_before, locked_before, _, _ = protocol.staking.functions.accountOf(
        attacker.address
    ).call()
    bond = int(protocol.committee.functions.oracleBond().call())
    opened = attacker.challenge(
        d.request_id, device_id, data.used_readings, list(data.readings_proof), used_index,
        unit_b, unit_index,
    )  # fmt: skip
    from_block = protocol.deployment.deployed_at_block

    def rebutted() -> list[object]:
        return list(protocol.dispute.events.ChallengeRebutted().get_logs(from_block=from_block))

    wait_for(lambda: bool(rebutted()), "a signer's rebuttal", timeout=40)
    (event,) = rebutted()
    args = event["args"]  # type: ignore[index]
    penalty = int(protocol.dispute.functions.equivocationPenalty().call())
    assert args["challengeId"] == opened.challenge_id
    assert args["rebutter"] in signers
    assert (args["deviceOwner"], args["penalty"]) == (attacker.address, penalty)
    # The attacker also loses the bond its challenge locked.
    challenge_bond = protocol.challenge_bond()
    assert (args["challenger"], args["bondSlashed"]) == (attacker.address, challenge_bond)
    staked, locked, _, _ = protocol.staking.functions.accountOf(attacker.address).call()
    assert (staked, locked) == (staked_before - penalty - challenge_bond, locked_before)
    extra = ORACLE_CHALLENGE_BONDS * challenge_bond  # oracles' free stake for challenges
    for account in committee.accounts[:3]:
        stake = protocol.staking.functions.accountOf(account.address).call()
        assert tuple(stake[:2]) == (bond + extra, bond)
    assert not list(protocol.dispute.events.ChallengeResolved().get_logs(from_block=from_block))

    # The report stands; the oracles finalize it after the extended end.
    state = protocol.request(d.request_id)
    assert (state.status, state.report_round) == (RequestStatus.REPORTED, 0)
    assert state.dispute_ends_at == opened.dispute_ends_at
    increase_time(w3, state.dispute_ends_at + 1 - int(w3.eth.get_block("latest")["timestamp"]))
    wait_for(lambda: protocol.request(d.request_id).status == RequestStatus.SETTLED, "finalize")
    assert protocol.reported_delivery(d.request_id) == d.expected_delivered
