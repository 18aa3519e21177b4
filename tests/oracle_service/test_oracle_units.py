"""Pure oracle pieces: the settings refuse what would break later, and the batch answer
maps to the right status."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from oracle.config import OracleSettings
from oracle.ingest import BatchResult, Rejection, UnitResult, UnitStatus

REGISTRY = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"


def test_database_url_comes_from_plain_database_url_and_is_normalised(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgres://oracle@db.internal/gridflex")
    assert OracleSettings().resolved_database_url == (
        "postgresql+psycopg://oracle@db.internal/gridflex"
    )
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("GRIDFLEX_ORACLE_DATA_DIR", "/var/lib/oracle")
    assert OracleSettings().resolved_database_url == "sqlite:////var/lib/oracle/oracle.db"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("database_url", "mysql://root@localhost/oracle", "unsupported database URL 'mysql'"),
        ("plausibility_margin", 0.5, "between 1.0 and 100.0"),
        ("rpc_url", "ws://127.0.0.1:8545", "http(s) JSON-RPC URL"),
        ("clock", "sundial", "'wall' or 'chain'"),
    ],
)
def test_settings_refuse_unusable_values_with_a_clear_message(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        OracleSettings(**{field: value})


def test_margin_is_an_exact_fraction() -> None:
    assert OracleSettings(plausibility_margin=1.5).margin_ratio.as_integer_ratio() == (3, 2)


def test_batch_with_a_conflict_answers_409_and_plain_rejections_422() -> None:
    conflict = BatchResult(
        [
            UnitResult(0, UnitStatus.VALID),
            UnitResult(1, UnitStatus.REJECTED, "conflicting reading", Rejection.CONFLICT),
        ]
    )
    forged = BatchResult(
        [UnitResult(0, UnitStatus.REJECTED, "bad signature", Rejection.BAD_SIGNATURE)]
    )
    assert conflict.has_conflict and not conflict.stored
    assert "1 of 2 units rejected" in conflict.summary
    assert not forged.has_conflict and not forged.stored


def test_serve_refuses_bad_settings_before_listening(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("DATABASE_URL", "mysql://root@localhost/oracle")
    result = CliRunner().invoke(app, ["oracle", "serve", "--port", "1"])
    assert result.exit_code == 2
    assert "unsupported database URL 'mysql'" in result.output
