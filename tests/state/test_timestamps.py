"""Tests of state.timestamps: the store's one shape, the tolerant and the user-date parsers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from state.timestamps import EARLIEST, LATEST, BadDate, parse_iso, parse_user_date, utc_iso


def test_the_store_shape() -> None:
    moment = datetime(2026, 11, 30, 9, 0, 0, 123_456, tzinfo=timezone(timedelta(hours=1)))
    assert utc_iso(moment) == "2026-11-30T08:00:00.123Z"
    assert utc_iso(datetime(2026, 11, 30, 8, 0)) == "2026-11-30T08:00:00.000Z"  # naive = UTC
    # four-digit years, so the text sorts like the moments
    assert utc_iso(EARLIEST) == "0001-01-01T00:00:00.000Z"
    assert utc_iso(LATEST) == "9999-12-31T23:59:59.999Z"
    assert utc_iso(EARLIEST) < utc_iso(datetime(2026, 1, 1)) < utc_iso(LATEST)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T08:00:00.000Z", "2026-11-30T08:00:00.000Z"),  # Trello, the store
        ("2026-11-28T10:00:00Z", "2026-11-28T10:00:00.000Z"),  # Figma
        ("2026-11-30T09:00:00+01:00", "2026-11-30T08:00:00.000Z"),
        ("2026-11-30T08:00:00", "2026-11-30T08:00:00.000Z"),  # naive = UTC
        ("2026-11-30", "2026-11-30T00:00:00.000Z"),
        (" 2026-11-30T08:00:00z ", "2026-11-30T08:00:00.000Z"),
    ],
)
def test_parse_iso_reads_remote_and_stored_values(text: str, expected: str) -> None:
    parsed = parse_iso(text)
    assert parsed is not None and parsed.tzinfo is UTC
    assert utc_iso(parsed) == expected


@pytest.mark.parametrize("value", [None, "", "   ", "yesterday", "2026-13-01", 1733000000, {}])
def test_parse_iso_is_tolerant(value: object) -> None:
    assert parse_iso(value) is None


def test_parse_user_date_clamps_to_what_the_store_holds() -> None:
    assert parse_user_date("0001-01-01T00:00:00+01:00") == EARLIEST
    assert parse_user_date("9999-12-31T23:59:59-01:00") == LATEST
    assert utc_iso(parse_user_date("0001-01-01T00:00:00+01:00")) == "0001-01-01T00:00:00.000Z"
    assert parse_user_date("2026-11-30T09:00:00+01:00") == datetime(2026, 11, 30, 8, tzinfo=UTC)


@pytest.mark.parametrize("text", ["yesterday", "", "30/11/2026", "2026-11-31", "0"])
def test_parse_user_date_refuses_in_one_line(text: str) -> None:
    with pytest.raises(BadDate) as caught:
        parse_user_date(text)
    message = str(caught.value)
    assert "\n" not in message and repr(text) in message and "not an ISO date" in message
