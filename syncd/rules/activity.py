"""A card's activity as the rules see it: Trello's ``dateLastActivity`` without syncd's comments.

Trello moves a card's ``dateLastActivity`` when syncd comments on it (write-back). The mirror
keeps Trello's value; the rules (staleness, which of two dashboard cards is the active one) use
`activity_without_own_comments` instead. Pure.

Trello's value is kept unless syncd's own comment may explain it: it is no later than the last
posted comment of syncd on the card (plus `BUMP_SLACK`, Trello's clock against the action's
date), or a comment of syncd is in flight on the card. Then the activity is the latest of what
syncd knew just before commenting (``activity_before``, itself computed this way) and of the
card's mirrored actions that are not syncd's comments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from state.timestamps import parse_iso
from syncd.writeback.marker import is_own_comment

BUMP_SLACK = timedelta(seconds=30)


@dataclass(frozen=True)
class OwnComment:
    """One of syncd's comments on a card, posted (``posted_at``) or in flight."""

    intent_id: str
    card_id: str
    comment_id: str | None
    posted_at: datetime | None
    attempted_at: datetime | None
    activity_before: datetime | None


def own_comments_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[OwnComment]:
    return [
        OwnComment(
            intent_id=row["id"],
            card_id=row["card_id"],
            comment_id=row["comment_id"],
            posted_at=parse_iso(row["posted_at"]),
            attempted_at=parse_iso(row["attempted_at"]),
            activity_before=parse_iso(row["activity_before"]),
        )
        for row in rows
    ]


def activity_without_own_comments(
    trello_activity: datetime | None,
    own: Iterable[OwnComment],
    card_actions: Iterable[Mapping[str, Any]],
) -> datetime | None:
    """The card's activity leaving syncd's own comments out (see the module docstring).

    `own` are syncd's comments on this card, `card_actions` the card's mirrored actions
    (``id``, ``type``, ``date``, ``data``) including syncd's comments.
    """
    comments = list(own)
    if trello_activity is None or not comments:
        return trello_activity
    posted = [c.posted_at for c in comments if c.posted_at is not None]
    in_flight = [c for c in comments if c.posted_at is None and c.attempted_at is not None]
    explained = (posted and trello_activity <= max(posted) + BUMP_SLACK) or any(
        c.attempted_at is not None and trello_activity >= c.attempted_at for c in in_flight
    )
    if not explained:
        return trello_activity
    intents = {c.intent_id: c.comment_id for c in comments}
    known: list[datetime] = [c.activity_before for c in comments if c.activity_before]
    for action in card_actions:
        if is_own_comment(action, intents):
            continue
        moment = parse_iso(action.get("date"))
        if moment is not None:
            known.append(moment)
    if not known:
        return trello_activity
    return min(trello_activity, max(known))
