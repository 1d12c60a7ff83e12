"""The Figma webhook V2 events syncd understands, typed and checked (pydantic, strict).

`parse_event(body, passcode)` is the pure step between the passcode check on the raw bytes
(`syncd.payloads.figma_passcode_in`) and the delivery intake: the body is parsed with bounds
(`syncd.payloads.parse_json`); its own top-level ``passcode`` must be the configured one too,
before anything else of it is looked at (a second key, or one nested elsewhere, buys nothing:
`WrongPasscode`, answered 401); then it is checked into a `FigmaEvent`, or refused with
`BadDelivery` (one line naming the field, answered 400).

Checked: ``event_type`` is a word of capitals (``FILE_UPDATE``), ``file_key`` alphanumeric,
``timestamp`` an ISO-8601 date, names bounded texts without NUL. syncd acts on
`FIGMA_EVENTS`; any other well-formed event type is answered and ignored (`understood`
False, counted in ``/metrics``). The delivery's other keys (comments, mentions, …) are not kept:
the file's refresh reads what it needs from Figma's API.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictInt, StrictStr

from syncd.payloads import (
    Moment,
    PayloadModel,
    Text,
    parse_json,
    secret_equals,
    validate_payload,
)

FIGMA_PATH = "/webhooks/figma"
FIGMA_EVENTS = frozenset({"FILE_UPDATE", "FILE_VERSION_UPDATE", "FILE_COMMENT", "PING"})

EventType = Annotated[StrictStr, Field(pattern=r"^[A-Z][A-Z_]{0,63}$")]
FileKey = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9]{1,128}$")]
WebhookId = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class WrongPasscode(Exception):
    """The event's passcode is not the configured one (answered 401)."""


class FigmaEvent(PayloadModel):
    """One Figma webhook V2 event (see the module docstring)."""

    event_type: EventType
    passcode: Annotated[Text, Field(max_length=1024)] = ""
    file_key: FileKey | None = None
    file_name: Text | None = None
    timestamp: Moment | None = None
    webhook_id: WebhookId | Annotated[StrictInt, Field(ge=0, le=2**63 - 1)] | None = None

    @property
    def understood(self) -> bool:
        return self.event_type in FIGMA_EVENTS


def parse_event(body: bytes, passcode: str | None) -> FigmaEvent:
    """The body as a checked `FigmaEvent` carrying `passcode`; `BadDelivery` or
    `WrongPasscode`."""
    payload: Any = parse_json(body)
    given = payload.get("passcode") if isinstance(payload, dict) else None
    if not isinstance(given, str) or not secret_equals(given, passcode):
        raise WrongPasscode
    return validate_payload(FigmaEvent, payload)
