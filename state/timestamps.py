"""The one date module: the store's timestamp shape and every parser of ISO-8601 text.

Owns three things, used by the store and by everything in `syncd/` (adapters, a leaf, never
import it):

- `utc_iso`: the store's one timestamp shape, ``2026-11-30T08:00:00.000Z`` (UTC, milliseconds,
  four-digit year), the shape Trello uses. Text of this shape sorts like the moments it names,
  on SQLite and PostgreSQL alike.
- `parse_iso`: a tolerant reader for stored and remote values (Trello, Figma, our own rows):
  ``Z`` or an offset, naive meaning UTC, a bare date meaning its midnight UTC. Anything
  unreadable (``None``, ``""``, garbage, a non-string) gives ``None``: a remote value never
  breaks a sync or a report.
- `parse_user_date`: a strict reader for dates a person types (``--since``, ``?since=``,
  ``--at``): unreadable text raises `BadDate` with a one-line message (quoting at most 40
  characters of it); a readable date outside
  what `utc_iso` can write (``0001-01-01T00:00:00+01:00`` is year 0 in UTC) is clamped to
  `EARLIEST` or `LATEST` instead of overflowing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["EARLIEST", "LATEST", "BadDate", "parse_iso", "parse_user_date", "utc_iso"]

EARLIEST = datetime.min.replace(tzinfo=UTC)  # 0001-01-01T00:00:00.000Z
LATEST = datetime.max.replace(microsecond=999_000, tzinfo=UTC)  # 9999-12-31T23:59:59.999Z


class BadDate(ValueError):
    """A date typed by a person is not ISO-8601; the message is one line quoting it."""


def utc_iso(moment: datetime | None = None) -> str:
    """The one timestamp shape of the store: ``2026-11-30T08:00:00.000Z`` (now when None)."""
    moment = _clamped(moment or datetime.now(UTC))
    # Not strftime: it writes year 1 as "1", which would sort after "2026".
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}."
        f"{moment.microsecond // 1000:03d}Z"
    )


def parse_iso(value: Any) -> datetime | None:
    """A stored or remote ISO-8601 value as an aware UTC datetime; None when unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return _clamped(_read(value))
    except ValueError:
        return None


def parse_user_date(value: str) -> datetime:
    """A date a person gave, as an aware UTC datetime within [`EARLIEST`, `LATEST`].

    Raises `BadDate` (one line) when `value` is not an ISO-8601 date or date-time.
    """
    try:
        return _clamped(_read(value))
    except ValueError:
        raise BadDate(f"{_quoted(value)} is not an ISO date") from None


def _quoted(value: str, limit: int = 40) -> str:
    """`value` quoted for a one-line message, at most `limit` characters of it."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + "…"


def _read(text: str) -> datetime:
    text = text.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


def _clamped(moment: datetime) -> datetime:
    """`moment` in UTC (naive means UTC); before year 1 or after 9999 in UTC, the bound."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    offset = moment.utcoffset() or timedelta(0)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return EARLIEST if offset > timedelta(0) else LATEST
