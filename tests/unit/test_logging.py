"""Logs are structured: with `json_lines` every line on stderr, from structlog and from
stdlib loggers alike (uvicorn, SQLAlchemy), is one JSON object a collector can parse."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from gridflex.logging import configure_logging


@pytest.fixture(autouse=True)
def _restore_console_logging() -> Iterator[None]:
    yield
    configure_logging("INFO")


def test_json_lines_render_structlog_and_stdlib_records_as_json_objects(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", json_lines=True)
    structlog.get_logger("oracle.ingest").warning("batch refused", units=3, reason="locked")
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    structlog.get_logger("oracle.ingest").debug("below the level, not written")

    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert len(records) == 2
    refused, startup = records
    assert refused["event"] == "batch refused" and refused["level"] == "warning"
    assert (refused["units"], refused["reason"]) == (3, "locked")
    assert startup["event"] == "Application startup complete."
    assert startup["level"] == "info" and startup["logger"] == "uvicorn.error"
    assert all(record["timestamp"].endswith("Z") for record in records)


def test_console_lines_stay_key_value_text(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    structlog.get_logger().info("oracle ready", chain_id=31337)
    line = capsys.readouterr().err.strip()
    assert "oracle ready" in line and "chain_id=31337" in line
    with pytest.raises(ValueError):
        json.loads(line)
