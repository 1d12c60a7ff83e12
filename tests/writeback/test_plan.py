"""Write-back's pure parts: which comments the flags owe, their French text, the marker."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from syncd.rules.governance import DepartmentStatus, PriorityAction, Rules
from syncd.writeback.marker import (
    intent_of_text,
    is_own_comment,
    marker,
    new_intent_id,
    own_comment_ids,
)
from syncd.writeback.plan import plan_comments
from syncd.writeback.text import opened_comment, resolved_comment

RULES = Rules()
URL = "https://syncd.example.fr"
CODES = ("TOO_MANY_PRIORITIES", "NO_REFERENT", "STALE_PRIORITY")


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"{next(counter):016x}"


def flag(
    flag_id: int,
    code: str = "TOO_MANY_PRIORITIES",
    department: str = "77",
    since: str = "2026-11-30T08:00:00.000Z",
    resolved_at: str | None = None,
) -> dict:
    return {
        "id": flag_id,
        "department": department,
        "code": code,
        "message": "",
        "since": since,
        "resolved_at": resolved_at,
    }


def status(code: str = "77", card: str | None = "card77", titles: int = 4) -> DepartmentStatus:
    return DepartmentStatus(
        code=code,
        name="Seine-et-Marne",
        dashboard_card_id=card,
        dashboard_card_url=f"https://trello.com/c/{card}",
        priority_actions=[
            PriorityAction(f"Action {n}", "checklist", card or "", "") for n in range(1, titles + 1)
        ],
    )


def plan(flags, existing=(), statuses=None, open_cards=None, enabled_since=None):  # type: ignore[no-untyped-def]
    statuses = {"77": status()} if statuses is None else statuses
    return plan_comments(
        flags,
        list(existing),
        statuses,
        {"card77"} if open_cards is None else open_cards,
        codes=CODES,
        enabled_since=enabled_since,
        rules=RULES,
        public_url=URL,
        now="2026-11-30T09:00:00.000Z",
        new_id=ids(),
    )


def test_an_open_flag_owes_one_opening_on_the_dashboard_card() -> None:
    result = plan([flag(1)])
    (row,) = result.new_rows
    assert (row["flag_id"], row["event"], row["card_id"]) == (1, "opened", "card77")
    assert row["event_at"] == "2026-11-30T08:00:00.000Z"
    assert intent_of_text(row["text"]) == row["id"]


def test_an_opening_already_planned_is_not_planned_again() -> None:
    existing = [{**plan([flag(1)]).new_rows[0], "comment_id": None, "attempt": None}]
    assert plan([flag(1)], existing).new_rows == []


def test_codes_outside_writeback_flags_and_flags_without_dashboard_owe_nothing() -> None:
    assert plan([flag(1, code="NO_DASHBOARD")]).new_rows == []
    assert plan([flag(1)], statuses={"77": status(card=None)}).new_rows == []
    assert plan([flag(1)], statuses={}).new_rows == []


def test_a_resolution_follows_its_opening_on_the_same_card() -> None:
    opened = {**plan([flag(1)]).new_rows[0], "comment_id": "c1", "attempt": None}
    resolved = flag(1, resolved_at="2026-12-02T10:00:00.000Z")
    (row,) = plan([resolved], [opened], statuses={"77": status(card="new")}).new_rows
    assert (row["event"], row["card_id"], row["event_at"]) == (
        "resolved",
        "card77",
        "2026-12-02T10:00:00.000Z",
    )
    assert "levé" in row["text"]


def test_a_resolution_goes_to_the_current_dashboard_when_the_first_card_is_gone() -> None:
    opened = {**plan([flag(1)]).new_rows[0], "comment_id": "c1", "attempt": None}
    resolved = flag(1, resolved_at="2026-12-02T10:00:00.000Z")
    result = plan([resolved], [opened], statuses={"77": status(card="new")}, open_cards={"new"})
    assert [row["card_id"] for row in result.new_rows] == ["new"]


def test_a_flag_resolved_before_write_back_was_enabled_owes_nothing() -> None:
    resolved = flag(1, since="2026-11-01T00:00:00.000Z", resolved_at="2026-11-02T00:00:00.000Z")
    assert plan([resolved], enabled_since="2026-11-20T00:00:00.000Z").new_rows == []


def test_a_flag_opened_and_resolved_between_two_rounds_owes_both_comments() -> None:
    quick = flag(1, since="2026-11-25T00:00:00.000Z", resolved_at="2026-11-25T00:05:00.000Z")
    rows = plan([quick], enabled_since="2026-11-20T00:00:00.000Z").new_rows
    assert [row["event"] for row in rows] == ["opened", "resolved"]
    assert "puis levé avant" in rows[0]["text"]


def test_an_owed_comment_follows_the_dashboard_card_when_its_card_goes() -> None:
    owed = {**plan([flag(1)]).new_rows[0], "comment_id": None, "attempt": None}
    result = plan([flag(1)], [owed], statuses={"77": status(card="new")}, open_cards={"new"})
    assert result.retargets == [(owed["id"], "new")]
    posting = {**owed, "attempt": "elsewhere"}  # being posted: left where it is
    assert plan([flag(1)], [posting], {"77": status(card="new")}, {"new"}).retargets == []


def test_the_opening_comment_says_what_why_since_when_and_where() -> None:
    text = opened_comment(
        flag(1), status(), rules=RULES, public_url=URL, intent_id="00000000000000ab"
    )
    assert "Trop d'actions prioritaires" in text
    assert "Seine-et-Marne (77)" in text
    assert "4 actions prioritaires ouvertes (maximum 3)" in text
    assert all(f"- Action {n}" in text for n in range(1, 5))
    assert "depuis le 30/11/2026 08:00 UTC" in text
    assert "Tableau de bord : https://syncd.example.fr/" in text
    assert marker("00000000000000ab") in text


def test_board_text_in_a_comment_is_inert_markdown() -> None:
    evil = status()
    evil.priority_actions[0] = PriorityAction("[clic](javascript:alert(1))", "card", "x", "")
    text = opened_comment(flag(1), evil, rules=RULES, public_url=URL, intent_id="0" * 16)
    assert "[clic](" not in text and "\\[clic\\]" in text


def test_a_long_list_stays_a_postable_comment() -> None:
    many = status(titles=300)
    many.priority_actions[0] = PriorityAction("x" * 20000, "card", "x", "")
    text = opened_comment(flag(1), many, rules=RULES, public_url=URL, intent_id="0" * 16)
    assert "300 actions prioritaires ouvertes" in text and "- … et 280 autre(s)" in text
    assert len(text) < 16384 and intent_of_text(text) == "0" * 16


def test_the_other_flags_say_why() -> None:
    no_referent = opened_comment(
        flag(1, code="NO_REFERENT"), status(), rules=RULES, public_url=URL, intent_id="0" * 16
    )
    assert "aucun référent" in no_referent and "« Référent territorial »" in no_referent
    stale = status()
    stale.stale_priorities = [("Signer la convention", 45)]
    text = opened_comment(
        flag(1, code="STALE_PRIORITY"), stale, rules=RULES, public_url=URL, intent_id="0" * 16
    )
    assert "plus de 30 jours" in text and "Signer la convention (45 jours)" in text


def test_the_resolution_comment_says_since_and_until_when() -> None:
    resolved = flag(1, resolved_at="2026-12-02T10:15:00.000Z")
    text = resolved_comment(
        resolved, status(titles=3), rules=RULES, public_url=URL, intent_id="0" * 16
    )
    assert "levé : Trop d'actions prioritaires" in text
    assert "ouvert le 30/11/2026 08:00 UTC, levé le 02/12/2026 10:15 UTC" in text
    assert "Actions prioritaires ouvertes : 3 (maximum 3)." in text


def test_own_comments_are_told_by_marker_and_comment_id() -> None:
    intent = new_intent_id()
    action = {"id": "a1", "type": "commentCard", "data": {"text": f"… ({marker(intent)})."}}
    assert is_own_comment(action, {intent: None})  # posted, id not recorded yet
    assert is_own_comment(action, {intent: "a1"})
    assert not is_own_comment(action, {intent: "a0"})  # a copy of syncd's text by someone
    assert not is_own_comment(action, {})  # unknown intent
    assert not is_own_comment({**action, "type": "updateCard"}, {intent: None})
    looked_up: list[set[str]] = []

    def lookup(wanted: set[str]) -> dict[str, str | None]:
        looked_up.append(wanted)
        return {intent: "a1"}

    other = {"id": "a2", "type": "commentCard", "data": {"text": "merci"}}
    assert own_comment_ids([action, other], lookup) == {"a1"}
    assert own_comment_ids([other], lookup) == set()
    assert looked_up == [{intent}]  # no store query without a marker
