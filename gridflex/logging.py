"""Structured logging to stderr, so stdout stays free for command output and pipes:
key=value lines for people (`console`, the default) or one JSON object per line for log
collectors (`json`: GRIDFLEX_LOG_FORMAT=json or `gridflex --log-format json`), with the
stdlib loggers (uvicorn, SQLAlchemy...) rendered the same way."""

from __future__ import annotations

import logging
import sys

import structlog


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at write time, so logs survive a caller swapping
    stderr (test runners, CliRunner) instead of writing to a closed stream."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str | int = "INFO", *, json_lines: bool = False) -> None:
    """Route both structlog and stdlib `logging` to stderr at `level`, as key=value lines
    or (`json_lines`) one JSON object per line with `timestamp`, `level` and `event`."""
    numeric_level = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric_level, int):
        numeric_level = logging.INFO
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    handler = logging.StreamHandler(_CurrentStderr())  # type: ignore[arg-type]
    if json_lines:
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    renderer,
                ],
                foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            )
        )
    logging.basicConfig(
        level=numeric_level,
        handlers=[handler],
        format="%(message)s",
        force=True,
    )
    # Per-request lines from HTTP/RPC libraries drown the protocol's own logs.
    for noisy_logger in ("httpx", "httpcore", "urllib3", "web3", "asyncio"):
        logging.getLogger(noisy_logger).setLevel(max(numeric_level, logging.WARNING))
    structlog.configure(
        processors=[
            *shared,
            *([structlog.processors.format_exc_info] if json_lines else []),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
