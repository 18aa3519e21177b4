"""Issue 12 finding 3: a provider shows each oracle of a 2-of-3 committee a different,
validly signed value for one interval (a split view), once for an event interval and once
for the baseline interval (two attackers, two bids). No single oracle sees a conflict at
ingest. Before signing, the oracles reconcile (`oracle/reconcile.py`): each fetches the
units its peers hold, the different values become conflict evidence everywhere, the
attackers' devices are measured CONFLICT by every oracle, the honest oracles sign one
identical report, it is posted and finalized: the honest provider is paid for its
delivery, each attacker's bid delivers nothing and its bond is slashed. Without
reconciliation (b0384e6) the three reports differ, none reaches two signatures and the
request never reaches REPORTED.

Finding 12 rides along: the CONFLICT records' evidence is public
(`GET /v1/reports/{id}/conflicts`) and both units of each pair re-verify."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from eth_account import Account
from fault_support import (
    INTERVAL,
    PRICE_PER_KWH,
    ZONE,
    Fleet,
    reports_submitted,
    settle_after_dispute_window,
    wait_for_status,
)
from support.chain import funded_account, staked_owner
from support.committee import committee_urls, seat_committee, start_committee
from web3 import Web3

from explorer.verification import verify_device
from gridflex.chain.anvil import AnvilProcess, increase_time
from gridflex.chain.protocol import Protocol
from gridflex.rules.attestation import DeviceSigningKey, MeterUnit, sign_unit, verify_unit
from gridflex.rules.eip712 import KeyType, secp256k1_device_key
from gridflex.rules.reports import Quality
from gridflex.rules.settlement import bond_for, fee, settle_bid
from gridflex.rules.types import DeviceKind, RequestSpec, RequestStatus

pytestmark = pytest.mark.integration

REPORT_DELAY_S = 60
THRESHOLD_BPS = 5_000
EVENT_INTERVALS = 2
ATTACKER_CAPACITY_W = 10_000
FLEX = 10**18


def _attacker(governance: Protocol) -> tuple[Protocol, int, bytes]:
    """A staked owner of its own with one registered battery: (owner, device id, key)."""
    owner = staked_owner(governance, 1_000 * FLEX)
    key = bytes(Account.create().key)
    proof = secp256k1_device_key(key, owner.address, owner.client.chain_id, owner.registry.address)
    device_id = owner.register_device(DeviceKind.BATTERY, ATTACKER_CAPACITY_W, ZONE, proof)
    return owner, device_id, key


def _device_key(key: bytes) -> DeviceSigningKey:
    address = Account.from_key(key).address
    return DeviceSigningKey(KeyType.SECP256K1, bytes(12) + bytes.fromhex(address[2:]))


def _series(capacity_w: int) -> list[int]:
    """The interval before the window at 80% of capacity, then 90% of capacity less."""
    full_wh = capacity_w * INTERVAL // 3600
    baseline_wh = full_wh * 8 // 10
    return [baseline_wh] + [baseline_wh - full_wh * 9 // 10] * EVENT_INTERVALS


def test_split_view_readings_are_reconciled_into_one_report_that_slashes_the_equivocator(
    fleet: Fleet, anvil: AnvilProcess, w3: Web3, tmp_path: Path
) -> None:
    governance = fleet.governance
    signers = sorted((Account.create() for _ in range(3)), key=lambda a: int(a.address, 16))
    seat_committee(governance, signers)
    assert int(governance.committee.functions.threshold().call()) == 2
    event_attacker, event_device, event_key = _attacker(governance)
    baseline_attacker, baseline_device, baseline_key = _attacker(governance)
    oracles = start_committee(
        signers, committee_urls(3), tmp_path, fleet.deployments_dir, anvil.url, REPORT_DELAY_S
    )
    try:
        operator = governance.as_account(funded_account(w3))
        governance.grant_grid_operator(operator.address)
        governance.send(governance.token.functions.transfer(operator.address, 1_000 * FLEX))
        now = int(w3.eth.get_block("latest")["timestamp"])
        start = now - now % INTERVAL + 2 * 3600
        end = start + EVENT_INTERVALS * INTERVAL
        honest_w = sum(fleet.capacities_w.values())
        spec = RequestSpec(
            zone=ZONE, power_w=honest_w + 2 * ATTACKER_CAPACITY_W, window_start=start,
            window_end=end, price_cap_per_kwh=FLEX // 4, gate_closure=start - 3600,
            settlement_token=governance.token.address,
        )  # fmt: skip
        request_id, _escrow = operator.create_request(spec)
        fleet.owner.bid(request_id, honest_w, PRICE_PER_KWH, list(fleet.capacities_w))
        event_attacker.bid(request_id, ATTACKER_CAPACITY_W, PRICE_PER_KWH, [event_device])
        baseline_attacker.bid(request_id, ATTACKER_CAPACITY_W, PRICE_PER_KWH, [baseline_device])
        increase_time(w3, spec.gate_closure - int(w3.eth.get_block("latest")["timestamp"]))
        governance.clear(request_id)
        assert governance.awarded_w(request_id) == [honest_w] + [ATTACKER_CAPACITY_W] * 2
        increase_time(w3, end + 1 - int(w3.eth.get_block("latest")["timestamp"]))

        honest_units, honest_delivered_wh = [], 0
        for device in fleet.devices:
            series = _series(fleet.capacities_w[device.device_id])
            unit = MeterUnit(device.device_id, start - INTERVAL, INTERVAL, 0, tuple(series))
            honest_units.append(sign_unit(unit, fleet.domain, device.signing_key))
            honest_delivered_wh += (series[0] - series[1]) * EVENT_INTERVALS
        honest_series = _series(ATTACKER_CAPACITY_W)
        for index, oracle in enumerate(oracles):
            # Oracle `index` alone sees these values: valid, plausible, signed, different.
            on_event = list(honest_series)
            on_event[1] -= 100 * index
            on_baseline = list(honest_series)
            on_baseline[0] -= 100 * index
            split = [
                sign_unit(
                    MeterUnit(event_device, start - INTERVAL, INTERVAL, index, tuple(on_event)),
                    fleet.domain,
                    event_key,
                ),
                sign_unit(
                    MeterUnit(
                        baseline_device, start - INTERVAL, INTERVAL, index, tuple(on_baseline)
                    ),
                    fleet.domain,
                    baseline_key,
                ),
            ]
            body = {"units": [u.to_json() for u in honest_units + split]}
            stored = httpx.post(oracle.url + "/v1/readings", json=body, timeout=30)
            assert stored.status_code == 200, stored.text  # no oracle sees a conflict alone

        increase_time(w3, REPORT_DELAY_S)
        wait_for_status(governance, request_id, RequestStatus.REPORTED, "a 2-of-3 report")
        (submitted,) = reports_submitted(governance, request_id)
        assert list(submitted["args"]["deliveredWh"]) == [honest_delivered_wh, 0, 0]
        assert bin(submitted["args"]["signerBitmap"]).count("1") >= 2

        served = [httpx.get(f"{o.url}/v1/reports/{request_id}", timeout=30) for o in oracles]
        assert all(answer.status_code == 200 for answer in served)
        assert len({answer.json()["digest"] for answer in served}) == 1  # they converged
        quality = {r["deviceId"]: r["quality"] for r in served[0].json()["records"]}
        assert quality[event_device] == quality[baseline_device] == int(Quality.CONFLICT)
        assert {quality[d.device_id] for d in fleet.devices} == {int(Quality.OK)}

        evidence = httpx.get(f"{oracles[0].url}/v1/reports/{request_id}/conflicts", timeout=30)
        assert evidence.status_code == 200, evidence.text
        by_device = {d["deviceId"]: d["conflicts"] for d in evidence.json()["devices"]}
        assert set(by_device) == {event_device, baseline_device}
        keys = {event_device: event_key, baseline_device: baseline_key}
        for device_id, pairs in by_device.items():
            assert pairs, f"device {device_id} has no evidence"
            for pair in pairs:
                units = [MeterUnit.from_json(pair[side]) for side in ("existing", "conflicting")]
                for unit in units:
                    assert unit.device_id == device_id
                    verify_unit(unit, fleet.domain, _device_key(keys[device_id]))
                values = [dict(zip(u.interval_starts, u.energy_wh, strict=True)) for u in units]
                interval = pair["intervalStart"]
                assert values[0][interval] != values[1][interval]

        # The explorer's verify page checks the CONFLICT record's evidence itself.
        with httpx.Client(timeout=30) as http:
            checked = verify_device(
                governance, [o.url for o in oracles], request_id, event_device, http
            )
        assert checked.verdict == "verified", checked.reasons
        assert checked.quality == "CONFLICT" and any(pair.ok for pair in checked.evidence)

        settle_after_dispute_window(governance, w3, request_id)
        settled = {
            int(log["args"]["bidIndex"]): log["args"]
            for log in governance.market.events.BidSettled().get_logs(
                from_block=governance.deployment.deployed_at_block,
                argument_filters={"requestId": request_id},
            )
        }
        bond_per_kw = int(governance.market.functions.bondPerKW().call())
        duration = EVENT_INTERVALS * INTERVAL
        honest = settle_bid(
            honest_w,
            duration,
            honest_delivered_wh,
            PRICE_PER_KWH,
            0,
            THRESHOLD_BPS,
            bond_for(honest_w, bond_per_kw),
        )
        assert honest.gross > 0 and honest.slashed == 0
        assert (settled[0]["utilization"], settled[0]["slashed"]) == (honest.utilization, 0)
        fee_bps = int(governance.market.functions.protocolFeeBps().call())
        assert governance.claimable(
            governance.token.address, fleet.owner.address
        ) == honest.gross - fee(honest.gross, fee_bps)
        attacker_bond = bond_for(ATTACKER_CAPACITY_W, bond_per_kw)
        for bid_index in (1, 2):
            assert settled[bid_index]["deliveredWh"] == 0
            assert settled[bid_index]["utilization"] == 0
            assert settled[bid_index]["slashed"] == attacker_bond > 0
    finally:
        for oracle in oracles:
            oracle.stop()
