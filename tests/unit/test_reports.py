"""Report leaves equal OpenZeppelin StandardMerkleTree leaves of `abi.encode`d values, and
used readings pack and unpack losslessly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gridflex.rules.keccak import keccak256
from gridflex.rules.merkle import leaf_hash, verify_proof
from gridflex.rules.reports import (
    DEVICE_RECORD_TYPES,
    USED_READINGS_TYPES,
    DeviceRecord,
    Quality,
    build_report_trees,
    pack_used_readings,
    unpack_used_readings,
    used_readings_leaf,
)

wh = st.integers(-(2**62), 2**62)


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**64), st.integers(0, 2**16 - 1), wh, wh, wh, st.sampled_from(Quality))
def test_device_record_leaf_is_the_standard_merkle_tree_leaf(
    device_id: int, bid: int, baseline: int, metered: int, delivered: int, quality: Quality
) -> None:
    record = DeviceRecord(device_id, bid, baseline, metered, delivered, quality)
    assert record.leaf() == leaf_hash(DEVICE_RECORD_TYPES, record.values())
    assert DeviceRecord.from_json(record.to_json()) == record


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**64),
    st.lists(st.tuples(st.integers(0, 2**40), st.integers(-(2**63), 2**63 - 1)), max_size=50,
             unique_by=lambda pair: pair[0]),
)  # fmt: skip
def test_used_readings_pack_sorted_and_leaf_matches_abi(device_id: int, pairs: list) -> None:
    packed = pack_used_readings(pairs)
    assert unpack_used_readings(packed) == sorted(pairs)
    expected = leaf_hash(USED_READINGS_TYPES, [device_id, keccak256(packed)])
    assert used_readings_leaf(device_id, packed) == expected


def test_report_trees_sum_delivery_per_bid_and_prove_each_record() -> None:
    records = [
        DeviceRecord(1, 0, 5_000, 3_000, 2_000, Quality.OK),
        DeviceRecord(2, 0, 4_000, 3_500, 500, Quality.FALLBACK),
        DeviceRecord(3, 2, 0, 0, 0, Quality.INSUFFICIENT_DATA),
    ]
    used = {r.device_id: pack_used_readings([(900 * r.device_id, 1)]) for r in records}
    trees = build_report_trees(records, used, bid_count=3)
    assert trees.delivered_wh == [2_500, 0, 0]
    for record in records:
        assert verify_proof(
            trees.devices_root, record.leaf(), trees.devices_tree.proof(record.leaf())
        )
