"""Untrusted webhook bodies at the edge: size cap, JSON-object parsing, secret comparison.

Shared by the Trello and Figma receivers (`syncd.trello.webhooks`, `syncd.figma.webhooks`) and
the HTTP layer (`syncd.web`). Nothing here trusts a byte before it is checked.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

MAX_BODY_BYTES = 1 << 20  # 1 MiB


def secret_equals(given: str | None, expected: str | None) -> bool:
    """Constant-time equality of a presented secret (passcode, token); False when unset."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class BadDelivery(ValueError):
    """A delivery body that is not what Trello or Figma sends (answered 400)."""


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A delivery body as a JSON object (Figma's payload as is)."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadDelivery("body is not JSON") from None
    if not isinstance(payload, dict):
        raise BadDelivery("body is not a JSON object")
    return payload
