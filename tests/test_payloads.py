"""The edge of every webhook (`syncd.payloads`): the bounded parser, secrets compared as bytes,
the Figma passcode found before parsing, one-line reasons, and the checked value types."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.payloads import (
    MAX_BODY_BYTES,
    BadDelivery,
    Moment,
    NumberText,
    PayloadModel,
    Position,
    Text,
    TrelloId,
    figma_passcode_in,
    one_line,
    parse_json,
    secret_equals,
    validate_payload,
)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"[" * 10_000 + b"]" * 10_000, "recursion limit"),  # RecursionError before
        (b'{"a": ' + b"1" * 5_000 + b"}", "number out of range"),  # the int-string limit
        (b"-" + b"9" * 5_000, "number out of range"),
        (b'{"a": NaN}', "body is not JSON"),
        (b'{"a": -Infinity}', "body is not JSON"),
        (b'"\\ud800"', "hex escape"),
        (b'"\\udc00"', "surrogate"),
        (b'"\xed\xa0\x80"', "invalid unicode"),  # a surrogate written as UTF-8 bytes
        (b'"\xff"', "invalid unicode"),
        (b"", "body is not JSON"),
        (b"{", "body is not JSON"),
    ],
)
def test_parse_json_refuses_what_cannot_be_read_in_bounds(body: bytes, why: str) -> None:
    with pytest.raises(BadDelivery) as refused:
        parse_json(body)
    assert why in str(refused.value)
    assert "\n" not in str(refused.value) and len(str(refused.value)) <= 160


def test_parse_json_reads_what_is_within_bounds() -> None:
    nested = b"[" * 150 + b"]" * 150
    assert parse_json(nested) is not None
    assert parse_json(b"9" * 4_000) == int("9" * 4_000)
    assert parse_json(b"1." + b"1" * 5_000) == pytest.approx(10 / 9)  # read in linear time
    assert parse_json(b'{"a": "\\ud83d\\ude00", "b": "\\u0000"}') == {"a": "😀", "b": "\x00"}
    assert math.isinf(parse_json(b"1e400"))  # finite numbers are the models' rule (Position)
    with pytest.raises(BadDelivery, match="over 1 MiB"):
        parse_json(b" " * (MAX_BODY_BYTES + 1))


def test_secret_equals_compares_bytes_and_never_raises() -> None:
    assert secret_equals("passcode", "passcode")
    assert secret_equals(b"passcode", "passcode")
    assert secret_equals("é", "é")
    for given_ in ("passcode\ud800", "\udfff", "passcod", "", None, b"\xff"):
        assert not secret_equals(given_, "passcode")
    assert not secret_equals("passcode", None) and not secret_equals("passcode", "")


@pytest.mark.parametrize(
    ("body", "found"),
    [
        (b'{"event_type": "PING", "passcode": "secret"}', True),
        (b'{"passcode" :\n "secret", "event_type": ["x"]}', True),
        (b'{"passcode": "secre\\u0074"}', True),  # an escape is decoded, then compared
        (b'{"passcode": "wrong"}', False),
        (b'{"passcode": "secret\\ud800"}', False),  # a lone surrogate: unequal, no error
        (b'{"passcode": "secret\xed\xa0\x80"}', False),  # not UTF-8: unequal, no error
        (b'{"passcode": ["secret"]}', False),
        (b'{"event_type": "PING"}', False),
        (b"[" * 10_000, False),  # never parsed: no passcode in it
        (b'{"a": ' + b"1" * 5_000 + b"}", False),
        (b'{"note": "\\"passcode\\": \\"secret\\""}', False),  # inside a string
    ],
)
def test_figma_passcode_is_found_in_the_raw_bytes(body: bytes, found: bool) -> None:
    assert figma_passcode_in(body, "secret") is found
    assert not figma_passcode_in(body, None)


def test_one_line() -> None:
    assert one_line("a\nb\r\n  c\td") == "a b c d"
    assert one_line("x\x00y\ud800z\u202e") == "x\\x00y\\ud800z\\u202e"
    assert one_line("é" * 500, 10) == "é" * 9 + "…"
    json.dumps(one_line("\ud800" * 3)).encode("utf-8")  # any answer or log line can carry it


class _Values(PayloadModel):
    text: Text = ""
    id: TrelloId = ""
    moment: Moment = ""
    position: Position = 0.0
    number: NumberText = ""


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("text", "a\x00b", "NUL"),
        ("text", "a\ud800", "unicode"),
        ("text", "x" * 16_385, "at most 16384"),
        ("text", 3, "valid string"),
        ("id", "5f00000000000000000000bz", "pattern"),
        ("id", "5f00", "pattern"),
        ("moment", "yesterday", "not an ISO-8601 date"),
        ("moment", "2026-02-30", "not an ISO-8601 date"),
        ("moment", 1_700_000_000, "valid string"),
        ("position", float("inf"), "less than or equal"),
        ("position", float("nan"), "less than or equal"),
        ("position", 2.0**60, "less than or equal"),
        ("position", "12", "valid number"),
        ("position", True, "valid number"),
        ("number", "1e400", "finite"),
        ("number", "NaN", "finite"),
        ("number", "twelve", "not a number"),
    ],
)
def test_value_types_refuse_with_the_field_named(field: str, value: object, why: str) -> None:
    with pytest.raises(BadDelivery) as refused:
        validate_payload(_Values, {field: value})
    assert str(refused.value).startswith(f"{field}: ")
    assert why in str(refused.value)


def test_value_types_normalise() -> None:
    values = validate_payload(
        _Values,
        {
            "text": "<b>Drôme</b> 😀",
            "id": "5F0000000000000000000BAD",
            "moment": "0001-01-01T00:00:00+01:00",  # clamped to what the store holds
            "position": 16384,
            "number": " 12.5 ",
        },
    )
    assert values.moment == "0001-01-01T00:00:00.000Z"
    assert values.position == 16384.0 and values.number == "12.5"
    assert validate_payload(_Values, {"moment": "2026-11-30T09:00:00+01:00"}).moment == (
        "2026-11-30T08:00:00.000Z"
    )


@given(st.text())
def test_a_text_is_kept_or_refused_never_anything_else(text: str) -> None:
    try:
        kept = validate_payload(_Values, {"text": text}).text
    except BadDelivery:
        assert "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    else:
        assert kept == text
