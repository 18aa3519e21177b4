"""`gridflex verify` / `gridflex watch` input errors exit 2 with a readable message
(the verdict exits 0 and 1 are exercised on a real committee in
tests/integration/test_fraud_challenge.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app
from gridflex.chain.anvil import free_port


def test_verify_without_an_oracle_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["verify", "1"])
    assert result.exit_code == 2
    assert "--oracle" in result.output


def test_verify_with_no_chain_says_so() -> None:
    rpc = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        app, ["verify", "1", "--oracle", "http://127.0.0.1:9", "--rpc-url", rpc]
    )
    assert result.exit_code == 2
    assert f"no chain answers at {rpc}" in result.output


def test_watch_needs_the_challenger_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRIDFLEX_WATCH_KEY", raising=False)
    result = CliRunner().invoke(app, ["watch", "--oracle", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "GRIDFLEX_WATCH_KEY" in result.output
