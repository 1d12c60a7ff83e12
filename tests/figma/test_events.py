"""The typed Figma events (`syncd.figma.events`): the passcode first, then every field checked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from syncd.figma.events import FigmaEvent, WrongPasscode, parse_event
from syncd.payloads import BadDelivery

PASSCODE = "figma-passcode"


def _body(**event: Any) -> bytes:
    base = {"event_type": "FILE_UPDATE", "file_key": "JhZCwwrmaw2NYrITCj8QAK", "passcode": PASSCODE}
    return json.dumps({**base, **event}).encode()


def test_an_event_figma_sends_is_read() -> None:
    body = _body(
        event_type="FILE_VERSION_UPDATE",
        timestamp="2026-11-30T08:00:00Z",
        webhook_id="12345",
        file_name="Maquettes RDV",
        triggered_by={"id": "1", "handle": "camille"},
        label="v2",
    )
    event = parse_event(body, PASSCODE)
    assert isinstance(event, FigmaEvent) and event.understood
    assert event.file_key == "JhZCwwrmaw2NYrITCj8QAK"
    assert event.timestamp == "2026-11-30T08:00:00.000Z"
    assert not parse_event(_body(event_type="LIBRARY_PUBLISH"), PASSCODE).understood


@pytest.mark.parametrize(
    "body",
    [
        _body(passcode="nope"),
        _body(passcode=[PASSCODE]),
        json.dumps({"event_type": "PING", "triggered_by": {"passcode": PASSCODE}}).encode(),
        b'{"passcode": "%s", "event_type": "PING", "passcode": "nope"}' % PASSCODE.encode(),
        b'[{"passcode": "%s"}]' % PASSCODE.encode(),
    ],
)
def test_the_passcode_is_the_top_level_one(body: bytes) -> None:
    with pytest.raises(WrongPasscode):
        parse_event(body, PASSCODE)
    with pytest.raises(WrongPasscode):
        parse_event(_body(), None)  # no passcode configured: nothing is accepted


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (_body(event_type=["FILE_UPDATE"]), "event_type: "),  # was "unhashable type"
        (_body(event_type="file update"), "event_type: "),
        (_body(file_key="../x"), "file_key: "),
        (_body(file_key=12), "file_key: "),
        (_body(timestamp="yesterday"), "timestamp: "),
        (_body(file_name="a\x00b"), "file_name: "),
        (_body(webhook_id=-1), "webhook_id"),
        (b'{"passcode": "%s", "deep": ' % PASSCODE.encode() + b"[" * 10_000, "body is not JSON"),
        (b'{"passcode": "%s", "n": ' % PASSCODE.encode() + b"1" * 5_000 + b"}", "body is not"),
    ],
)
def test_with_the_passcode_a_bad_field_is_refused_by_name(body: bytes, where: str) -> None:
    with pytest.raises(BadDelivery) as refused:
        parse_event(body, PASSCODE)
    assert str(refused.value).startswith(where) and "\n" not in str(refused.value)
