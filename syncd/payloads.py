"""Untrusted webhook bodies at the edge: the size cap, secrets compared on bytes, the one bounded
JSON parser, and the checked value types the delivery models are made of.

Shared by the Trello and Figma delivery models (`syncd.trello.schema`, `syncd.figma.events`)
and the HTTP layer (`syncd.web`). Nothing here trusts a byte before it is checked:

- **secrets** (`secret_equals`, `figma_passcode_in`) are compared as bytes, in constant time,
  before the body is parsed: a wrong credential never reaches the parser, and text that is not
  UTF-8 (a lone surrogate) compares unequal instead of raising;
- **the parser** (`parse_json`) takes at most `MAX_BODY_BYTES`, nests at most 200 levels and
  reads numbers of at most 4,300 digits (pydantic-core's Rust parser, jiter: it never recurses
  on the Python stack and refuses what it cannot read in linear time); ``NaN``/``Infinity``,
  invalid UTF-8 and lone surrogates (``"\\ud800"``) are refused;
- **the value types** (`Text`, `TrelloId`, `Moment`, `Position`, …) check every value a model
  keeps: texts bounded and free of NUL, ids of their shape, dates parsed by the one date module
  and written in the store's shape, numbers finite and bounded. A model is validated with
  `validate_payload`, which turns any refusal into `BadDelivery` with one line naming the field.
"""

from __future__ import annotations

import hmac
import json
import math
import re
from typing import Annotated, Any, TypeVar

import pydantic_core
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, ValidationError

from state.timestamps import BadDate, parse_user_date, utc_iso

MAX_BODY_BYTES = 1 << 20  # 1 MiB
MAX_TEXT = 16_384  # Trello's longest free text (a card's name or description)
MAX_REASON = 160  # a refusal's one line, at most


class BadDelivery(ValueError):
    """A delivery body that is not what Trello or Figma sends (answered 400); one line."""


# -- secrets ------------------------------------------------------------------------------


def _utf8(text: str) -> bytes:
    # surrogatepass: a lone surrogate gives bytes that are not UTF-8, so never equal, no error
    return text.encode("utf-8", "surrogatepass")


def secret_equals(given: str | bytes | None, expected: str | None) -> bool:
    """Constant-time equality of a presented secret and the configured one, as UTF-8 bytes;
    False when either is unset or empty."""
    if not given or not expected:
        return False
    presented = given if isinstance(given, bytes) else _utf8(given)
    return hmac.compare_digest(presented, _utf8(expected))


# A top-level-looking "passcode" member whose value is a flat JSON string of bounded length.
_PASSCODE = re.compile(rb'"passcode"[ \t\r\n]*:[ \t\r\n]*"((?:[^"\\\x00-\x1f]|\\.){0,1024})"')


def figma_passcode_in(body: bytes, expected: str | None) -> bool:
    """Whether the raw body carries the configured Figma passcode, read before any parsing.

    The first ``"passcode": "…"`` member is located in the bytes; only that flat, bounded
    string token is decoded, and compared as bytes in constant time. The parsed event is
    checked again after parsing (`syncd.figma.events`), so a passcode nested elsewhere or
    given twice buys nothing.
    """
    if not expected:
        return False
    found = _PASSCODE.search(body)
    if found is None:
        return False
    try:
        given = json.loads(b'"' + found.group(1) + b'"')
    except ValueError:
        return False
    return isinstance(given, str) and secret_equals(given, expected)


# -- parsing ------------------------------------------------------------------------------


def parse_json(body: bytes) -> Any:
    """The body as JSON, bounded (see the module docstring), or `BadDelivery`."""
    if len(body) > MAX_BODY_BYTES:
        raise BadDelivery("body over 1 MiB")
    try:
        return pydantic_core.from_json(body, allow_inf_nan=False, cache_strings=False)
    except ValueError as exc:
        raise BadDelivery(one_line(f"body is not JSON ({exc})")) from None


Model = TypeVar("Model", bound=BaseModel)


def validate_payload(model: type[Model], data: Any, **context: Any) -> Model:
    """`data` (parsed JSON) as `model`, or `BadDelivery` naming the first refused field."""
    try:
        return model.model_validate(data, context=context or None)
    except ValidationError as exc:
        raise BadDelivery(refusal(exc)) from None


def refusal(exc: ValidationError) -> str:
    """One line for a refused payload: the field's path and why (never the value itself)."""
    error = exc.errors(include_url=False, include_input=False, include_context=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "body"
    return one_line(f"{where}: {error['msg']}")


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """`text` on one line of at most `limit` printable characters (a control character or a
    lone surrogate written as its escape, so any JSON answer or log line can carry it)."""
    flat = " ".join(text.split())
    printable = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in flat)
    return printable if len(printable) <= limit else printable[: limit - 1] + "…"


# -- checked values -----------------------------------------------------------------------


class PayloadModel(BaseModel):
    """Base of the delivery models: immutable, strict types, unknown keys ignored (not kept)."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


def _clean_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text holds a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text is not valid Unicode (a lone surrogate)") from None
    return value


def _moment(value: str) -> str:
    try:
        return utc_iso(parse_user_date(value))
    except BadDate:
        raise ValueError("not an ISO-8601 date") from None


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return float(value)


def _number_text(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(number) or abs(number) > 2**53:
        raise ValueError("not a finite number within ±2^53")
    return value.strip()


Text = Annotated[StrictStr, Field(max_length=MAX_TEXT), AfterValidator(_clean_text)]
"""Free text: at most 16,384 characters, no NUL, valid Unicode."""

Url = Annotated[StrictStr, Field(max_length=2048), AfterValidator(_clean_text)]

Key = Annotated[StrictStr, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]
"""A field or event name: a letter, then up to 63 letters, digits or underscores."""

TrelloId = Annotated[StrictStr, Field(pattern=r"^[0-9a-fA-F]{24}$")]
"""A Trello object id: 24 hexadecimal digits (a Mongo ObjectId), as Trello guarantees."""

ShortLink = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9]{1,32}$")]

Moment = Annotated[StrictStr, Field(max_length=64), AfterValidator(_moment)]
"""A date: ISO-8601, read by `state.timestamps.parse_user_date` (clamped to what the store
holds) and kept in the store's shape (``2026-11-30T08:00:00.000Z``)."""

Position = Annotated[float, Field(ge=-(2**53), le=2**53), AfterValidator(_finite)]
"""A Trello ``pos``: a finite number within ±2^53."""

Count = Annotated[int, Field(ge=0, le=2**31 - 1)]

NumberText = Annotated[StrictStr, Field(max_length=64), AfterValidator(_number_text)]
"""A number written as text (Trello's custom-field numbers): finite, within ±2^53."""
