"""The verify check on a real settled event: the honest oracle's record verifies; the same
record served with one number changed, or with a used reading the device never signed,
fails with the reason, because the roots come from the chain, not from the oracle. The
check runs once per report round: later views of any of its devices fetch nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from explorer_event import SettledEvent
from sqlalchemy import Engine
from sqlmodel import Session

from explorer.models import DeviceCheck
from explorer.verification import verify_device
from gridflex.rules.reports import pack_used_readings, unpack_used_readings
from gridflex.verify import fetch_report_summary

pytestmark = pytest.mark.integration


def _tampering_client(tamper: Callable[[dict[str, Any]], None]) -> httpx.Client:
    """Forwards to the real oracle; the device-record answers pass through `tamper`."""
    upstream = httpx.Client(timeout=10)

    def handle(request: httpx.Request) -> httpx.Response:
        answer = upstream.get(str(request.url))
        if "/devices/" not in request.url.path or answer.status_code != 200:
            return httpx.Response(answer.status_code, content=answer.content)
        body = answer.json()
        tamper(body)
        return httpx.Response(200, content=json.dumps(body).encode())

    return httpx.Client(transport=httpx.MockTransport(handle))


def _device(event: SettledEvent) -> int:
    return event.device_ids[0]


def test_the_honest_record_verifies(event: SettledEvent) -> None:
    with httpx.Client(timeout=10) as http:
        result = verify_device(
            event.protocol, [event.oracle.url], event.request_id, _device(event), http
        )
    assert result.verdict == "verified", result.reasons
    assert result.record_proof.ok and result.readings_proof.ok and result.request_verdict_ok
    assert all(reading.ok for reading in result.readings)


def test_a_changed_delivery_figure_fails_the_proof(event: SettledEvent) -> None:
    def inflate(body: dict[str, Any]) -> None:
        body["record"]["deliveredWh"] += 1_000

    with _tampering_client(inflate) as http:
        result = verify_device(
            event.protocol, [event.oracle.url], event.request_id, _device(event), http
        )
    assert result.verdict == "failed"
    assert not result.record_proof.ok
    assert any("devicesRoot" in reason for reason in result.reasons)


def test_a_used_reading_the_device_never_signed_fails(event: SettledEvent) -> None:
    def rewrite(body: dict[str, Any]) -> None:
        used = unpack_used_readings(bytes.fromhex(body["usedReadings"].removeprefix("0x")))
        used[-1] = (used[-1][0], used[-1][1] + 500)
        body["usedReadings"] = "0x" + pack_used_readings(used).hex()

    with _tampering_client(rewrite) as http:
        result = verify_device(
            event.protocol, [event.oracle.url], event.request_id, _device(event), http
        )
    assert result.verdict == "failed"
    assert not result.readings_proof.ok
    assert [r.ok for r in result.readings][-1] is False


def test_the_request_is_checked_once_and_a_second_view_fetches_nothing(
    event: SettledEvent, engine: Engine
) -> None:
    """Before issue 13 every view fetched its device, then every device again from every
    oracle (2 + N per view with one oracle); now one pass of the report's oracle data
    (1 + N) serves every device's page, and later views ask no oracle."""
    with httpx.Client(timeout=10) as http:
        summary = fetch_report_summary(http, event.oracle.url, event.request_id, 0)
    devices = [r.device_id for r in summary.records]
    asked: list[str] = []

    def count(request: httpx.Request) -> None:
        asked.append(request.url.path)

    with httpx.Client(timeout=10, event_hooks={"request": [count]}) as http:

        def view(device_id: int) -> str:
            return verify_device(
                event.protocol, [event.oracle.url], event.request_id, device_id, http, engine
            ).verdict

        assert view(devices[0]) == "verified"
        first = len(asked)
        assert [view(d) for d in devices] == ["verified"] * len(devices)
    assert len(devices) >= 2
    assert first == 1 + len(devices)
    assert len(asked) == first


def test_a_stored_check_of_other_roots_is_not_served(event: SettledEvent, engine: Engine) -> None:
    """A check stored for roots the chain no longer holds (a reorg re-posted the round) is
    checked again against the posted ones and replaced."""
    device_id = _device(event)
    with httpx.Client(timeout=10) as http:
        honest = verify_device(
            event.protocol, [event.oracle.url], event.request_id, device_id, http
        )
        stale = honest.model_copy(update={"verdict": "failed", "reasons": ["stale"]})
        with Session(engine) as session:
            session.add(
                DeviceCheck(
                    request_id=event.request_id, round=honest.round, device_id=device_id,
                    devices_root="0x" + "ab" * 32, readings_root="0x" + "cd" * 32,
                    body=stale.model_dump_json(),
                )
            )  # fmt: skip
            session.commit()
        checked = verify_device(
            event.protocol, [event.oracle.url], event.request_id, device_id, http, engine
        )
    assert checked.verdict == "verified"
    with Session(engine) as session:
        row = session.get(DeviceCheck, (event.request_id, honest.round, device_id))
        assert row is not None and row.devices_root == honest.record_proof.onchain_root
