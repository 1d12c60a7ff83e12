"""Logging set-up: structlog to stderr, JSON lines when not a TTY, a readable console on a TTY.

stdout is reserved for each command's own output (`syncd report --format json > r.json`).
"""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure_logging(*, debug: bool = False, json_lines: bool | None = None) -> None:
    """Route structlog (and stdlib logging) to stderr at INFO, or DEBUG with `debug`."""
    level_name = "DEBUG" if debug else os.environ.get("SYNCD_LOG_LEVEL", "INFO").upper()
    level = getattr(logging, level_name, logging.INFO)
    if json_lines is None:
        fmt = os.environ.get("SYNCD_LOG_FORMAT", "")
        json_lines = fmt == "json" or (fmt != "console" and not sys.stderr.isatty())
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
