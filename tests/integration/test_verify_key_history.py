"""`gridflex verify` judges each unit by the key in force at its intervals (issue 12,
finding 1, off-chain side): against a real DeviceRegistry on anvil, a device signs its
readings, then its owner honestly rotates the key.

Judged by the current key (the old `device_keys`), the honest report no longer checks out
(every used reading "unsigned") and a unit the new key signs for the old intervals is
fraud evidence that `DisputeResolver` refuses. Judged by the registry's history
(`device_histories`, `deviceAt`'s rule), the honest report verifies, the new key's unit
for old intervals is no evidence.
"""

from __future__ import annotations

import pytest
from eth_account import Account
from support.chain import fresh_protocol, staked_owner
from web3 import Web3

from gridflex.chain.anvil import increase_time
from gridflex.rules.attestation import MeterUnit, meter_domain_separator, sign_unit
from gridflex.rules.baselines import EventWindow
from gridflex.rules.eip712 import secp256k1_device_key
from gridflex.rules.measurement import AwardedBid, RequestFacts, measure_device
from gridflex.rules.reports import build_report_trees, used_readings_leaf
from gridflex.rules.types import BaselineMethod, DeviceKind, Direction, zone_id
from gridflex.verify import (
    DeviceData,
    PostedReport,
    PublishedReport,
    Verdict,
    check_report,
    device_histories,
)

pytestmark = pytest.mark.integration

INTERVAL = 900
CAPACITY_W = 4_000
ZONE = zone_id("NL-AMS-01")
HONEST = (800, 500, 500, 500, 500)  # the interval before the window (MBMA), then 4 in it


def _now(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


class Rotated:
    """One device registered with key A, metered from `first`, then rotated to key B."""

    def __init__(self, w3: Web3) -> None:
        self.governance = fresh_protocol(w3)
        owner = staked_owner(self.governance, 1_000 * 10**18)
        chain_id, registry = w3.eth.chain_id, self.governance.registry.address
        self.domain = meter_domain_separator(chain_id, registry)
        self.key_a, self.key_b = bytes(Account.create().key), bytes(Account.create().key)
        proof = secp256k1_device_key(self.key_a, owner.address, chain_id, registry)
        self.device_id = owner.register_device(DeviceKind.BATTERY, CAPACITY_W, ZONE, proof)
        self.first = -(-(_now(w3) + 1) // INTERVAL) * INTERVAL  # after the registration
        self.window_start = self.first + INTERVAL
        increase_time(w3, self.first + 6 * INTERVAL - _now(w3))  # every interval is past
        rotation = secp256k1_device_key(self.key_b, owner.address, chain_id, registry)
        owner.send(owner.registry.functions.rotateKey(self.device_id, rotation.as_tuple()))

    def unit(self, key: bytes, values: tuple[int, ...]) -> MeterUnit:
        return sign_unit(
            MeterUnit(self.device_id, self.first, INTERVAL, len(values), values), self.domain, key
        )

    def facts(self) -> RequestFacts:
        bid = AwardedBid(0, CAPACITY_W, {self.device_id: CAPACITY_W})
        registry = self.governance.registry.address
        return RequestFacts(
            request_id=1, round=0, market=registry, chain_id=31337, committee=registry,
            direction=int(Direction.REDUCE_CONSUMPTION), baseline_method=int(BaselineMethod.MBMA),
            window=EventWindow(self.window_start, self.window_start + 4 * INTERVAL, INTERVAL),
            bid_count=1, bids=(bid,),
        )  # fmt: skip

    def verdict(self, units: list[MeterUnit]) -> Verdict:
        """The honest report (the readings key A signed) checked against `units`."""
        facts = self.facts()
        readings = {self.first + i * INTERVAL: v for i, v in enumerate(HONEST)}
        measured = measure_device(facts, facts.bids[0], self.device_id, readings, set())
        used = {self.device_id: measured.used_readings}
        trees = build_report_trees([measured.record], used, 1)
        proof = tuple(
            trees.readings_tree.proof(used_readings_leaf(self.device_id, measured.used_readings))
        )
        data = DeviceData(measured.record, measured.used_readings, proof, tuple(units))
        posted = PostedReport(
            1, 0, tuple(trees.delivered_wh), trees.devices_root, trees.readings_root, 0b1, 0
        )
        published = PublishedReport(
            "http://oracle", 0, None, tuple(trees.delivered_wh), trees.devices_root,
            trees.readings_root, (measured.record,), {self.device_id: data},
        )  # fmt: skip
        histories = device_histories(self.governance, [self.device_id])
        return check_report(facts, posted, [published], histories, self.domain)


@pytest.fixture(scope="module")
def rotated(w3: Web3) -> Rotated:
    return Rotated(w3)


def test_the_honest_report_still_verifies_after_a_key_rotation(rotated: Rotated) -> None:
    histories = device_histories(rotated.governance, [rotated.device_id])
    assert len(histories[rotated.device_id].epochs) == 2  # registration, rotation
    verdict = rotated.verdict([rotated.unit(rotated.key_a, HONEST)])
    assert verdict.ok, verdict.differences
    assert verdict.readings_checked == len(HONEST)


def test_a_unit_the_new_key_signs_for_old_intervals_is_no_evidence(rotated: Rotated) -> None:
    """The owner, after rotating, signs other values for intervals the old key attested:
    judged by the current key it would contradict the honest report (a challenge the
    resolver refuses: the unit does not verify against `deviceAt`'s key)."""
    rewritten = rotated.unit(rotated.key_b, (800, 500, 4_000, 500, 500))
    verdict = rotated.verdict([rotated.unit(rotated.key_a, HONEST), rewritten])
    assert verdict.ok, verdict.differences
    assert not verdict.challenges and verdict.best_proof is None

    alone = rotated.verdict([rewritten])
    assert not alone.ok
    assert {d.kind for d in alone.differences} == {"unsigned-reading"}
    assert not alone.challenges
