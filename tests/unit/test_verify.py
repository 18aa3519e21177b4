"""`gridflex.verify.check_report` on hand-built reports: the honest one checks out; a used
reading the device signed differently is named (device, interval) with a fraud proof that
verifies; a wrong per-bid total names the bid; a reading without a signed unit and a
record that does not follow from its readings are named too."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account

from gridflex.chain.device_history import DeviceHistory, RegisteredDevice
from gridflex.rules.attestation import (
    DeviceSigningKey,
    MeterUnit,
    meter_domain_separator,
    sign_unit,
)
from gridflex.rules.baselines import EventWindow
from gridflex.rules.eip712 import KeyType
from gridflex.rules.measurement import AwardedBid, RequestFacts, measure_device
from gridflex.rules.merkle import verify_proof
from gridflex.rules.reports import build_report_trees, used_readings_leaf
from gridflex.rules.types import BaselineMethod, Direction
from gridflex.verify import DeviceData, PostedReport, PublishedReport, check_report

INTERVAL = 900
START = 1_800_000_000 - 1_800_000_000 % INTERVAL
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DOMAIN = meter_domain_separator(31337, REGISTRY)
DEVICES = {11: 4_000, 12: 8_000}  # device -> capacity; one bid each
SIGNED = {11: (800, 500, 500, 500, 500), 12: (1_600, -400, -400, -400, -400)}


@pytest.fixture(scope="module")
def device_keys() -> dict[int, bytes]:
    return {device: bytes(Account.create().key) for device in DEVICES}


def _facts() -> RequestFacts:
    bids = tuple(
        AwardedBid(index, capacity, {device: capacity})
        for index, (device, capacity) in enumerate(DEVICES.items())
    )
    return RequestFacts(
        request_id=3, round=0, market=REGISTRY, chain_id=31337, committee=REGISTRY,
        direction=int(Direction.REDUCE_CONSUMPTION), baseline_method=int(BaselineMethod.MBMA),
        window=EventWindow(START, START + 4 * INTERVAL, INTERVAL), bid_count=len(bids),
        bids=bids,
    )  # fmt: skip


def _units(keys: dict[int, bytes]) -> dict[int, MeterUnit]:
    return {
        device: sign_unit(
            MeterUnit(device, START - INTERVAL, INTERVAL, 1, values), DOMAIN, keys[device]
        )
        for device, values in SIGNED.items()
    }


def _registered(keys: dict[int, bytes]) -> dict[int, DeviceHistory]:
    """Each device registered with its key before every interval of these tests."""
    histories = {}
    for device, key in keys.items():
        signing = DeviceSigningKey(
            KeyType.SECP256K1, bytes(12) + bytes.fromhex(Account.from_key(key).address[2:])
        )
        epoch = RegisteredDevice(device, signing, None, DEVICES[device], True)
        histories[device] = DeviceHistory.single(epoch)
    return histories


def _report(
    keys: dict[int, bytes], readings: dict[int, dict[int, int]]
) -> tuple[PostedReport, PublishedReport]:
    """What an oracle holding `readings` measures, publishes and gets posted."""
    facts, units = _facts(), _units(keys)
    measured = {
        device: measure_device(facts, bid, device, readings[device], set())
        for bid in facts.bids
        for device in bid.device_capacity_w
    }
    records = [m.record for m in measured.values()]
    used = {device: m.used_readings for device, m in measured.items()}
    trees = build_report_trees(records, used, facts.bid_count)
    devices = {
        device: DeviceData(
            m.record,
            m.used_readings,
            tuple(trees.readings_tree.proof(used_readings_leaf(device, m.used_readings))),
            (units[device],),
        )
        for device, m in measured.items()
    }
    posted = PostedReport(
        3, 0, tuple(trees.delivered_wh), trees.devices_root, trees.readings_root, 0b11, 0
    )
    published = PublishedReport(
        "http://oracle", 0, None, tuple(trees.delivered_wh), trees.devices_root,
        trees.readings_root, tuple(records), devices,
    )  # fmt: skip
    return posted, published


def _signed_readings() -> dict[int, dict[int, int]]:
    return {
        device: {START - INTERVAL + i * INTERVAL: v for i, v in enumerate(values)}
        for device, values in SIGNED.items()
    }


def test_an_honest_report_checks_out(device_keys: dict[int, bytes]) -> None:
    posted, published = _report(device_keys, _signed_readings())
    verdict = check_report(_facts(), posted, [published], _registered(device_keys), DOMAIN)
    assert verdict.ok, verdict.differences
    assert (verdict.devices_checked, verdict.readings_checked) == (2, 10)
    assert posted.delivered_wh == (4 * 300, 4 * 2_000)


def test_a_tampered_reading_is_named_with_a_fraud_proof(device_keys: dict[int, bytes]) -> None:
    readings = _signed_readings()
    tampered_start = START + INTERVAL
    readings[11][tampered_start] = -200  # the device signed 500
    posted, published = _report(device_keys, readings)
    verdict = check_report(_facts(), posted, [published], _registered(device_keys), DOMAIN)
    assert not verdict.ok
    (difference,) = verdict.differences  # records and totals follow from the used readings
    assert difference.kind == "contradicted-reading"
    assert (difference.device_id, difference.interval_start) == (11, tampered_start)
    assert (difference.expected, difference.reported) == (500, -200)
    assert f"device 11 interval {tampered_start}" in difference.message
    material = difference.challenge
    assert material is not None
    assert (material.device_id, material.used_index, material.unit_index) == (11, 2, 2)
    assert material.unit == _units(device_keys)[11]
    leaf = used_readings_leaf(11, material.used_readings)
    assert verify_proof(posted.readings_root, leaf, material.readings_proof)
    # The same evidence from another source (e.g. an oracle's own store) finds it too.
    own = check_report(
        _facts(), posted, [published], _registered(device_keys), DOMAIN,
        units=list(_units(device_keys).values()),
    )  # fmt: skip
    assert [d.kind for d in own.differences] == ["contradicted-reading"]


def test_a_tampered_bid_total_names_the_bid(device_keys: dict[int, bytes]) -> None:
    posted, published = _report(device_keys, _signed_readings())
    inflated = dataclasses.replace(posted, delivered_wh=(posted.delivered_wh[0], 9_999))
    verdict = check_report(_facts(), inflated, [published], _registered(device_keys), DOMAIN)
    (difference,) = verdict.differences
    assert (difference.kind, difference.bid_index) == ("bid-total", 1)
    assert (difference.expected, difference.reported) == (8_000, 9_999)
    assert "bid 1" in difference.message


def test_unsigned_readings_and_unfounded_records_are_named(
    device_keys: dict[int, bytes],
) -> None:
    posted, published = _report(device_keys, _signed_readings())
    other_keys = {device: bytes(Account.create().key) for device in DEVICES}
    verdict = check_report(_facts(), posted, [published], _registered(other_keys), DOMAIN)
    kinds = {d.kind for d in verdict.differences}
    assert kinds == {"unsigned-reading"}  # units signed by other keys are no evidence
    assert len(verdict.differences) == 10

    record = published.devices[12].record
    inflated = dataclasses.replace(record, delivered_wh=record.delivered_wh + 100)
    devices = dict(published.devices) | {
        12: dataclasses.replace(published.devices[12], record=inflated)
    }
    lying = dataclasses.replace(published, devices=devices)
    verdict = check_report(_facts(), posted, [lying], _registered(device_keys), DOMAIN)
    (difference,) = verdict.differences
    assert (difference.kind, difference.device_id, difference.field) == (
        "record", 12, "delivered_wh",
    )  # fmt: skip
    assert (difference.expected, difference.reported) == (8_000, 8_100)


def test_a_source_that_is_not_the_posted_report_is_flagged(
    device_keys: dict[int, bytes],
) -> None:
    posted, _ = _report(device_keys, _signed_readings())
    readings = _signed_readings()
    readings[12][START] = 0
    _, other = _report(device_keys, readings)
    verdict = check_report(_facts(), posted, [other], _registered(device_keys), DOMAIN)
    kinds = [d.kind for d in verdict.differences]
    assert kinds[0] == "source" and "root" in kinds and "bid-total" in kinds


def test_a_unit_of_another_interval_length_backs_no_used_reading(
    device_keys: dict[int, bytes],
) -> None:
    """The request settles 900 s intervals. A 1800 s unit by the device's key whose
    interval starts (START, START + 1800) coincide with two used 900 s readings, with the
    same values, backs neither of them: it measures half hours, not those quarters."""
    posted, published = _report(device_keys, _signed_readings())
    used = _signed_readings()[11]
    half_hours = sign_unit(
        MeterUnit(11, START - 1800, 1800, 1, (0, used[START], used[START + 1800])),
        DOMAIN, device_keys[11],
    )  # fmt: skip
    units = [_units(device_keys)[12], half_hours]
    verdict = check_report(
        _facts(), posted, [published], _registered(device_keys), DOMAIN, units=units
    )
    unsigned = {d.interval_start for d in verdict.differences if d.kind == "unsigned-reading"}
    assert unsigned == set(used)  # all five of device 11's, the two half-hour starts too
    assert not verdict.challenges
