"""Logging set-up: structlog to stderr, JSON lines when not a TTY, a readable console on a TTY.

stdout is reserved for each command's own output (`syncd report --format json > r.json`).

When this module is the process's first to import structlog and the logs will be JSON lines,
structlog is imported with Rich hidden: structlog imports Rich (with Pygments and attrs) at
import time only for the console's tracebacks, which JSON lines never render (a fifth of a cold
`syncd sync`'s import time went to it, bench/bench_cold_start.py). Rich stays importable for
anything else afterwards (Typer's help).
"""

from __future__ import annotations

import logging
import os
import sys


def json_lines_by_default() -> bool:
    """JSON lines unless stderr is a terminal; ``SYNCD_LOG_FORMAT=json|console`` decides."""
    fmt = os.environ.get("SYNCD_LOG_FORMAT", "")
    return fmt == "json" or (fmt != "console" and not sys.stderr.isatty())


def _import_structlog_without_rich() -> None:
    hidden = "rich" not in sys.modules
    if hidden:
        sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` fails: structlog
    try:  # falls back to plain tracebacks
        import structlog  # noqa: F401
    finally:
        if hidden and "rich" in sys.modules and sys.modules["rich"] is None:
            del sys.modules["rich"]


if "structlog" not in sys.modules and json_lines_by_default():
    _import_structlog_without_rich()

import structlog  # noqa: E402


def configure_logging(*, debug: bool = False, json_lines: bool | None = None) -> None:
    """Route structlog (and stdlib logging) to stderr at INFO, or DEBUG with `debug`."""
    level_name = "DEBUG" if debug else os.environ.get("SYNCD_LOG_LEVEL", "INFO").upper()
    level = getattr(logging, level_name, logging.INFO)
    if json_lines is None:
        json_lines = json_lines_by_default()
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*processors, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr, force=True)


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    """A logger on the *current* sys.stderr (tests and daemons may swap the stream)."""
    return structlog.PrintLogger(sys.stderr)
