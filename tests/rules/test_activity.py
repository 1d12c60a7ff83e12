"""A card's activity leaves syncd's own comments out (write-back never counts as activity)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from syncd.rules.activity import OwnComment, activity_without_own_comments

BEFORE = datetime(2026, 10, 1, tzinfo=UTC)
POSTED = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
INTENT = "0123456789abcdef"


def comment(*, posted: datetime | None = POSTED, attempted: datetime | None = POSTED) -> OwnComment:
    return OwnComment(INTENT, "card", "c1" if posted else None, posted, attempted, BEFORE)


def own_action(action_id: str = "c1") -> dict:
    return {
        "id": action_id,
        "type": "commentCard",
        "date": "2026-11-30T08:00:00.000Z",
        "data": {"text": f"(syncd-{INTENT})"},
    }


def test_without_own_comments_trello_activity_stands() -> None:
    assert activity_without_own_comments(POSTED, [], []) == POSTED
    assert activity_without_own_comments(None, [comment()], []) is None


def test_the_bump_of_syncd_comment_is_taken_back() -> None:
    bumped = POSTED + timedelta(milliseconds=3)
    assert activity_without_own_comments(bumped, [comment()], [own_action()]) == BEFORE


def test_in_flight_comment_bump_is_taken_back_too() -> None:
    in_flight = comment(posted=None)
    assert activity_without_own_comments(POSTED, [in_flight], [own_action()]) == BEFORE


def test_someone_elses_action_after_the_comment_counts() -> None:
    later = POSTED + timedelta(hours=2)
    assert activity_without_own_comments(later, [comment()], [own_action()]) == later
    human = {"id": "h1", "type": "commentCard", "date": "2026-11-30T08:00:10.000Z", "data": {}}
    assert activity_without_own_comments(
        POSTED + timedelta(seconds=10), [comment()], [own_action(), human]
    ) == POSTED + timedelta(seconds=10)


def test_a_copy_of_syncd_text_by_someone_is_activity() -> None:
    copy = {**own_action("h2"), "date": "2026-11-30T08:00:05.000Z"}
    moment = POSTED + timedelta(seconds=5)
    assert activity_without_own_comments(moment, [comment()], [own_action(), copy]) == moment
