"""Settings for the shared core and the CLI, from `GRIDFLEX_*` env vars or a `.env` file,
so every component is configured the same way and nothing is hard-coded."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SettingsSourceError

from gridflex.errors import ConfigurationError

SettingsT = TypeVar("SettingsT", bound=BaseSettings)
SECRET_FIELD_WORDS = ("key", "password", "secret", "token")


def settings_config(env_prefix: str, **options: Any) -> SettingsConfigDict:
    """How every GridFlex settings object is read: `<env_prefix><FIELD>` env vars, then a
    `.env` file in the working directory; unknown variables are ignored."""
    return SettingsConfigDict(
        env_prefix=env_prefix, env_file=".env", env_file_encoding="utf-8", extra="ignore",
        **options,
    )  # fmt: skip


def fallback_field(default: Any, *env_names: str) -> Any:
    """A field read from the first of `env_names` that is set (a component's own variable,
    then a shared one), else `default`. The field's own name is no alias on purpose:
    pydantic-settings would match it case-insensitively against the environment, so a
    stray `DATABASE_URL` or `RPC_URL` would win over the component's own variable. Keyword
    arguments still work by field name (`populate_by_name=True`)."""
    return Field(default=default, validation_alias=AliasChoices(*env_names))


def database_url_field(env_prefix: str) -> Any:
    """A component's `database_url`: its own `<env_prefix>DATABASE_URL`, else the
    conventional `DATABASE_URL`; None (the default) means the component's SQLite file."""
    return fallback_field(None, f"{env_prefix}DATABASE_URL", "DATABASE_URL")


class Settings(BaseSettings):
    """Core GridFlex settings. Each field maps to `GRIDFLEX_<FIELD>` (e.g. GRIDFLEX_RPC_URL)."""

    model_config = settings_config("GRIDFLEX_")

    rpc_url: str | None = None
    """JSON-RPC endpoint of the chain; None means "start or use a local anvil"."""

    data_dir: Path = Path(".gridflex")
    """Local state: compiler build cache, keystores, node outbox."""

    deployments_dir: Path = Path("deployments")
    """Where `<chainId>.json` deployment records are read and written."""

    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"
    """`console` (key=value lines, coloured on a terminal) or `json` (one object a line)."""

    @property
    def build_dir(self) -> Path:
        """Cache of compiled artifacts, keyed by a hash of sources, settings and compiler."""
        return self.data_dir / "build"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process; tests build `Settings(...)` directly instead."""
    return load_settings(Settings)


def load_settings(settings_class: type[SettingsT], **overrides: Any) -> SettingsT:
    """`settings_class(**overrides)`, or ConfigurationError with one line per bad setting
    named as the user sets it (`GRIDFLEX_NODE_BATCH_SIZE: ...`), so a misconfigured
    process stops at start with a message instead of a traceback."""
    prefix = str(settings_class.model_config.get("env_prefix", ""))
    try:
        return settings_class(**overrides)
    except ValidationError as error:
        raise ConfigurationError(
            "; ".join(_setting_problem(prefix, item) for item in error.errors())
        ) from error
    except SettingsSourceError as error:  # e.g. a list setting that is not valid JSON
        raise ConfigurationError(str(error).replace('"', "")) from error


def _setting_problem(prefix: str, item: Any) -> str:
    field = ".".join(str(part) for part in item["loc"])
    name = field if field.isupper() else f"{prefix}{field.upper()}"
    message = str(item["msg"]).removeprefix("Value error, ")
    given = repr(item.get("input"))
    if any(word in field.lower() for word in SECRET_FIELD_WORDS) or given in message:
        return f"{name}: {message}"
    return f"{name}: {message} (got {given})"
