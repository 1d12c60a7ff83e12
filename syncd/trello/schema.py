"""The Trello webhook deliveries syncd understands, typed and checked (pydantic, strict).

`parse_delivery(body, now=…)` is the pure step between the signature check and the delivery
intake: the raw bytes are parsed with bounds (`syncd.payloads.parse_json`) into a
`TrelloDelivery`, or refused with `BadDelivery` (one line naming the field, answered 400). The
intake and the applier only ever see a `TrelloAction`, never the body.

What is checked (the value types of `syncd.payloads`):

- every id is 24 hexadecimal digits (Trello's ObjectIds), a board's short link alphanumeric;
- every name and text is a string of at most 16,384 characters, without NUL, valid Unicode;
- every date is ISO-8601, kept in the store's shape; an action's own ``date`` is not more than
  a day ahead of the receiving clock (a date from the future would outrank every later change);
- every number is finite and bounded (``pos`` within ±2^53, counts 0…2^31-1, custom-field
  numbers written as text likewise); booleans are JSON booleans;
- check-item states are ``complete`` or ``incomplete``.

A key syncd does not model is dropped (a value not checked is a value not kept); in
``data.old`` the key is kept (its value becomes null), so an ``updateCard`` of a field syncd
does not model is still recognised as one and refetched. `TrelloAction.as_trello` gives the
checked action back in Trello's JSON shape, which is what the one conversion
(`syncd.trello.rows`) reads; a value it needs and the model did not keep is simply absent, so
such an action is refetched rather than applied. An action type outside `KNOWN_ACTION_TYPES`
is `understood` False: never applied directly, counted in ``/metrics``. What the store keeps of
any action's ``data``, a webhook's or a poll's, is the same checked dump (`stored_action_data`).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from state.timestamps import parse_iso
from syncd.payloads import (
    BadDelivery,
    Count,
    Key,
    Moment,
    NumberText,
    PayloadModel,
    Position,
    ShortLink,
    Text,
    TrelloId,
    Url,
    parse_json,
    validate_payload,
)

# Action types whose shape this module models (Trello's card, list, label, checklist, custom
# field, comment, attachment and board actions). Any other type is accepted but never applied
# directly: its card is refetched, or its board synced, or only its row is kept.
KNOWN_ACTION_TYPES = frozenset(
    {
        "createCard",
        "updateCard",
        "deleteCard",
        "copyCard",
        "emailCard",
        "moveCardToBoard",
        "moveCardFromBoard",
        "convertToCardFromCheckItem",
        "addMemberToCard",
        "removeMemberFromCard",
        "addLabelToCard",
        "removeLabelFromCard",
        "createLabel",
        "updateLabel",
        "deleteLabel",
        "addChecklistToCard",
        "removeChecklistFromCard",
        "updateChecklist",
        "copyChecklist",
        "createCheckItem",
        "updateCheckItem",
        "deleteCheckItem",
        "updateCheckItemStateOnCard",
        "createList",
        "updateList",
        "moveListToBoard",
        "moveListFromBoard",
        "addAttachmentToCard",
        "deleteAttachmentFromCard",
        "commentCard",
        "updateComment",
        "deleteComment",
        "createCustomField",
        "updateCustomField",
        "deleteCustomField",
        "updateCustomFieldItem",
        "addMemberToBoard",
        "removeMemberFromBoard",
        "makeNormalMemberOfBoard",
        "makeAdminOfBoard",
        "updateBoard",
        "copyBoard",
    }
)
FUTURE_SLACK = timedelta(days=1)  # clock skew allowed on an action's date
MAX_OLD_KEYS = 64
MAX_IDS = 1000
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_HEX24 = re.compile(r"[0-9a-fA-F]{24}")

Color = Annotated[StrictStr, Field(pattern=r"^[a-z][a-z_]{0,31}$")]
"""A label colour: a lower-case word (``green``, ``sky_light``)."""


# -- the parts of an action ---------------------------------------------------------------


class BoardRef(PayloadModel):
    id: TrelloId | None = None
    shortLink: ShortLink | None = None
    name: Text = ""


class ListRef(PayloadModel):
    id: TrelloId
    name: Text = ""
    closed: bool = False
    pos: Position = 0.0


class CardData(PayloadModel):
    """``data.card``: the card an action is about, with the new values it carries."""

    id: TrelloId
    name: Text = ""
    desc: Text = ""
    idList: TrelloId = ""
    idBoard: TrelloId = ""
    closed: bool = False
    due: Moment | None = None
    start: Moment | None = None
    dueComplete: bool = False
    pos: Position = 0.0
    idShort: Count = 0
    shortLink: ShortLink = ""
    idLabels: tuple[TrelloId, ...] = Field((), max_length=MAX_IDS)
    idMembers: tuple[TrelloId, ...] = Field((), max_length=MAX_IDS)


class CardRef(PayloadModel):
    id: TrelloId
    name: Text = ""


class LabelRef(PayloadModel):
    id: TrelloId
    name: Text = ""
    color: Color | None = None


class MemberRef(PayloadModel):
    id: TrelloId
    fullName: Text = ""
    username: Text = ""
    initials: Text = ""


class ChecklistRef(PayloadModel):
    id: TrelloId
    name: Text = ""
    pos: Position = 0.0


class CheckItemRef(PayloadModel):
    id: TrelloId
    name: Text = ""
    state: Literal["complete", "incomplete"] = "incomplete"
    pos: Position = 0.0
    idChecklist: TrelloId = ""


class CustomFieldRef(PayloadModel):
    id: TrelloId
    name: Text = ""
    type: Key = "text"


class CustomFieldValue(PayloadModel):
    """A custom field's value: Trello writes numbers and checkboxes as text."""

    text: Text | None = None
    number: NumberText | None = None
    date: Moment | None = None
    checked: Literal["true", "false"] | None = None


class CustomFieldItem(PayloadModel):
    id: TrelloId | None = None
    idCustomField: TrelloId | None = None
    idModel: TrelloId | None = None
    modelType: Key = "card"
    idValue: TrelloId | None = None
    value: CustomFieldValue | None = None


class AttachmentRef(PayloadModel):
    id: TrelloId
    name: Text = ""
    url: Url = ""


class CommentRef(PayloadModel):
    id: TrelloId
    text: Text = ""


class OldValues(PayloadModel, extra="allow"):
    """``data.old``: the previous values of what changed. Every key is kept (it says what
    changed); the values of keys not modelled here are dropped (null)."""

    name: Text = ""
    desc: Text = ""
    idList: TrelloId | None = None
    closed: bool = False
    due: Moment | None = None
    start: Moment | None = None
    dueComplete: bool = False
    pos: Position = 0.0
    state: Literal["complete", "incomplete"] = "incomplete"
    color: Color | None = None
    text: Text = ""
    idValue: TrelloId | None = None
    value: CustomFieldValue | None = None

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data  # refused by the model itself
        if len(data) > MAX_OLD_KEYS:
            raise ValueError(f"more than {MAX_OLD_KEYS} keys")
        known = cls.model_fields
        kept: dict[str, Any] = {}
        for key, value in data.items():
            if not isinstance(key, str) or not _KEY.fullmatch(key):
                raise ValueError("a key that is not a field name")
            kept[key] = value if key in known else None
        return kept


class ActionData(PayloadModel):
    """``action.data``: the objects an action names, each checked."""

    board: BoardRef | None = None
    card: CardData | None = None
    list: ListRef | None = None
    listBefore: ListRef | None = None
    listAfter: ListRef | None = None
    old: OldValues | None = None
    label: LabelRef | None = None
    idLabel: TrelloId | None = None
    idMember: TrelloId | None = None
    member: MemberRef | None = None
    checklist: ChecklistRef | None = None
    checkItem: CheckItemRef | None = None
    customField: CustomFieldRef | None = None
    customFieldItem: CustomFieldItem | None = None
    attachment: AttachmentRef | None = None
    text: Text | None = None
    action: CommentRef | None = None
    boardSource: BoardRef | None = None
    boardTarget: BoardRef | None = None
    cardSource: CardRef | None = None
    deactivated: bool | None = None


# -- the action and the delivery ----------------------------------------------------------


class TrelloAction(PayloadModel):
    """One Trello action, every value syncd keeps checked (see the module docstring)."""

    id: TrelloId
    type: Key
    date: Moment
    idMemberCreator: TrelloId | None = None
    data: ActionData = ActionData()
    member: MemberRef | None = None
    memberCreator: MemberRef | None = None

    @field_validator("date")
    @classmethod
    def _not_from_the_future(cls, value: str, info: ValidationInfo) -> str:
        now = (info.context or {}).get("now")
        moment = parse_iso(value)
        if isinstance(now, datetime) and moment is not None and moment > now + FUTURE_SLACK:
            raise ValueError("a date more than a day ahead")
        return value

    @property
    def understood(self) -> bool:
        """Whether syncd models this action type (else it is never applied directly)."""
        return self.type in KNOWN_ACTION_TYPES

    @property
    def card_id(self) -> str | None:
        return self.data.card.id if self.data.card is not None else None

    @cached_property
    def _trello(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)

    def as_trello(self) -> dict[str, Any]:
        """The checked action in Trello's JSON shape (only what was given and checked)."""
        return _copy(self._trello)


class DeliveryModel(PayloadModel):
    """``model``: the watched object (a board; a card for a card webhook)."""

    id: TrelloId | None = None
    idBoard: TrelloId | None = None
    shortLink: ShortLink | None = None


class TrelloDelivery(PayloadModel):
    """A webhook delivery: ``{action, model, webhook}`` (the webhook object is not kept)."""

    action: TrelloAction
    model: DeliveryModel | None = None

    def board(self) -> tuple[str | None, str | None]:
        """(board id, short link) the action happened on (the watched model as a fallback)."""
        board = self.action.data.board
        if board is not None and (board.id or board.shortLink):
            return board.id, board.shortLink
        model = self.model
        if model is None:
            return None, None
        if model.idBoard:  # a card webhook: the model is the card
            return model.idBoard, None
        return model.id, model.shortLink


def parse_delivery(body: bytes, *, now: datetime | None = None) -> TrelloDelivery:
    """The signed body as a checked `TrelloDelivery`, or `BadDelivery` (one line)."""
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise BadDelivery("body is not a JSON object")
    return validate_payload(TrelloDelivery, payload, now=now)


def parse_action(action: Any, *, now: datetime | None = None) -> TrelloAction:
    """One action (already parsed JSON, e.g. a test's or the sandbox's) as a `TrelloAction`."""
    return validate_payload(TrelloAction, action, now=now)


def stored_action_data(data: Any) -> dict[str, Any]:
    """What the store keeps of an action's ``data`` (the webhook's or the poll's alike): the
    checked objects `ActionData` models, or, when some value is refused (a poll never is), the
    ids of its board, card, list and checklist alone."""
    try:
        return ActionData.model_validate(data).model_dump(mode="json", exclude_unset=True)
    except ValidationError:
        pass
    kept: dict[str, Any] = {}
    for key in ("board", "card", "list", "checklist"):
        ref = data.get(key) if isinstance(data, dict) else None
        if isinstance(ref, dict) and isinstance(ref.get("id"), str) and _HEX24.fullmatch(ref["id"]):
            kept[key] = {"id": ref["id"]}
    return kept


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
