"""The marker of syncd's own comments: ``syncd-<intent id>`` written in each comment's text.

Pure and dependency-free (the rules import it). A ``commentCard`` action is syncd's own when its
text carries the marker of a known write-back row and either that row's comment id is this
action's id, or the row has no comment id yet (posted, but the id not recorded: in flight, or a
crash between the request and the commit). The comment id, recorded after the request, is what
tells syncd's comment from a copy of its text.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

COMMENT_TYPE = "commentCard"
_MARKER = re.compile(r"\bsyncd-([0-9a-f]{16})\b")


def new_intent_id() -> str:
    """A fresh intent id: 16 hex characters (random: never one a previous store used)."""
    return secrets.token_hex(8)


def marker(intent_id: str) -> str:
    return f"syncd-{intent_id}"


def intent_of_text(text: Any) -> str | None:
    """The intent id a comment text carries (the last marker in it), if any."""
    if not isinstance(text, str):
        return None
    found = _MARKER.findall(text)
    return found[-1] if found else None


def intent_of_action(action: Mapping[str, Any]) -> str | None:
    """The intent id of a ``commentCard`` action's text; None for any other action."""
    if action.get("type") != COMMENT_TYPE:
        return None
    data = action.get("data")
    return intent_of_text(data.get("text") if isinstance(data, Mapping) else None)


def is_own_comment(action: Mapping[str, Any], intents: Mapping[str, str | None]) -> bool:
    """Whether `action` is syncd's own comment, given the known intents (id → comment id)."""
    intent = intent_of_action(action)
    if intent is None or intent not in intents:
        return False
    comment_id = intents[intent]
    return comment_id is None or comment_id == action.get("id")


def candidate_intents(actions: Iterable[Mapping[str, Any]]) -> set[str]:
    """The intent ids named by these actions (to look up in the store in one query)."""
    return {intent for action in actions if (intent := intent_of_action(action)) is not None}


def own_comment_ids(
    actions: Iterable[Mapping[str, Any]],
    lookup: Callable[[set[str]], Mapping[str, str | None]],
) -> set[str]:
    """The ids of syncd's own comments among `actions`; `lookup` gives the known intents of a
    set of intent ids (`Store.writeback_intents`), asked only when some action carries one."""
    listed = list(actions)
    wanted = candidate_intents(listed)
    if not wanted:
        return set()
    intents = lookup(wanted)
    return {str(action.get("id")) for action in listed if is_own_comment(action, intents)}
