"""The webhook receivers: ``HEAD``/``POST /webhooks/trello`` and ``POST /webhooks/figma``.

Each delivery goes through the same steps, in this order, and stops at the first refusal:

1. the body, read with a cap (over 1 MiB, declared or sent: 413; a client gone mid-body: one
   line at INFO, nothing answered);
2. the credential, compared as bytes before any parsing: ``X-Trello-Webhook`` over the raw
   bytes + ``public_url/webhooks/trello``; Figma's ``passcode`` located in the raw bytes
   (401, nothing stored);
3. the typed model, a pure step (`syncd.trello.schema.parse_delivery`,
   `syncd.figma.events.parse_event`): bounded parsing, every id, date, text and number
   checked (400 with one line naming the field);
4. Trello: the board (not ours: 410, so Trello deletes that webhook; 202 while some configured
   board is not resolved yet); then the checked action is handed to the delivery intake and
   answered 200 once the intake has durably queued it (a group commit, awaited: the event
   loop keeps serving; a replay too: it is applied once); the store failing: 503, Trello retries.
   Figma: ``PING`` answered, an event of another file or of a type syncd does not act on
   ignored, else the file's refresh handed to the intake (in memory).

Every answer is counted in ``syncd_webhook_deliveries_total``, and a Trello action type or a
Figma event type syncd does not model in ``syncd_webhook_unknown_shapes_total``. An answer only
echoes checked values. Nothing here logs a secret, a signature or a body; a refusal is one
line at INFO with its reason.
"""

from __future__ import annotations

import asyncio

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from syncd.config import secret_text
from syncd.figma.events import FIGMA_PATH, WrongPasscode, parse_event
from syncd.payloads import MAX_BODY_BYTES, BadDelivery, figma_passcode_in, one_line
from syncd.trello.schema import parse_delivery
from syncd.trello.webhooks import TRELLO_PATH, signature_ok, trello_callback_url
from syncd.web.context import IntakeClosed, WebContext
from syncd.web.deps import ContextDep

log = structlog.get_logger("syncd.server")

router = APIRouter()


class _Refused(Exception):
    """The body cannot be read: (outcome, status, reason)."""

    def __init__(self, outcome: str, status: int, reason: str) -> None:
        super().__init__(reason)
        self.outcome, self.status, self.reason = outcome, status, reason


async def _read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, refusing more than `limit` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        declared = declared.strip()
        if not (declared.isascii() and declared.isdigit()):
            raise _Refused("bad_request", 400, "bad Content-Length")
        if int(declared) > limit:
            raise _Refused("too_large", 413, "body over 1 MiB")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise _Refused("too_large", 413, "body over 1 MiB")
    except ClientDisconnect:
        raise _Refused("disconnected", 400, "client disconnected before the body ended") from None
    return bytes(body)


def _reject(
    context: WebContext, outcome: str, status: int, message: str, source: str = "trello"
) -> JSONResponse:
    context.metrics.delivery(outcome, source)
    reason = one_line(message)
    log.info("webhook rejected", source=source, reason=outcome, status=status, detail=reason)
    return JSONResponse({"status": "rejected", "reason": reason}, status_code=status)


# -- Trello -------------------------------------------------------------------------------


@router.head(TRELLO_PATH)
def trello_head() -> Response:
    return Response(status_code=200)


@router.post(TRELLO_PATH)
async def trello_webhook(request: Request, context: ContextDep) -> JSONResponse:
    try:
        body = await _read_body(request)
    except _Refused as refused:
        return _reject(context, refused.outcome, refused.status, refused.reason)
    settings = context.settings
    if not signature_ok(
        body,
        request.headers.get("x-trello-webhook"),
        secret_text(settings.secrets.trello_api_secret),
        trello_callback_url(settings),
    ):
        return _reject(context, "bad_signature", 401, "bad or missing X-Trello-Webhook signature")
    try:
        delivery = parse_delivery(body, now=context.clock())
    except BadDelivery as exc:
        return _reject(context, "bad_json", 400, str(exc))
    action = delivery.action
    board_id, short_link = delivery.board()
    if board_id is None and short_link is None:
        return _reject(context, "bad_json", 400, "no board in the action")
    try:
        match = context.boards.resolve(board_id, short_link)
    except Exception as exc:  # the store is unreachable: let Trello retry later
        log.warning("webhook board lookup failed", error=one_line(str(exc), 300))
        return JSONResponse({"status": "unavailable"}, status_code=503)
    if match is None:
        if context.boards.complete:
            return _reject(context, "unknown_board", 410, "not a board this daemon mirrors")
        # Some configured board is not resolved yet: never 410 a webhook that may be ours.
        return _reject(
            context, "unknown_board", 202, "board not resolved yet; the poll will catch up"
        )
    board, real_id = match
    try:  # answered once durably queued (a group commit), awaited: the loop keeps serving
        fresh = await asyncio.wrap_future(context.intake.queue_trello(action, board, real_id))
    except IntakeClosed:
        return JSONResponse({"status": "stopping"}, status_code=503)
    except Exception as exc:  # not queued: let Trello retry later
        log.warning("webhook delivery not queued", error=one_line(str(exc), 300))
        return JSONResponse({"status": "unavailable"}, status_code=503)
    outcome = "accepted" if fresh else "replay"
    context.metrics.delivery(outcome)
    if fresh and not action.understood:
        context.metrics.unknown_shape("trello")
        log.info("webhook action type not modelled: never applied directly", action=action.id)
    return JSONResponse({"status": outcome, "action": action.id})


# -- Figma --------------------------------------------------------------------------------


@router.post(FIGMA_PATH)
async def figma_webhook(request: Request, context: ContextDep) -> JSONResponse:
    try:
        body = await _read_body(request)
    except _Refused as refused:
        return _reject(context, refused.outcome, refused.status, refused.reason, "figma")
    expected = secret_text(context.settings.secrets.figma_webhook_passcode)
    if not figma_passcode_in(body, expected):
        return _reject(context, "bad_signature", 401, "wrong or missing passcode", "figma")
    try:
        event = parse_event(body, expected)
    except WrongPasscode:
        return _reject(context, "bad_signature", 401, "wrong or missing passcode", "figma")
    except BadDelivery as exc:
        return _reject(context, "bad_json", 400, str(exc), "figma")
    metrics = context.metrics
    if event.event_type == "PING":
        metrics.delivery("accepted", "figma")
        return JSONResponse({"status": "pong"})
    if not event.understood or event.file_key is None:
        if not event.understood:
            metrics.unknown_shape("figma")
        metrics.delivery("ignored", "figma")
        return JSONResponse({"status": "ignored"})
    if event.file_key not in context.settings.figma.files:
        metrics.delivery("unknown_file", "figma")
        return JSONResponse({"status": "ignored", "reason": "file not configured"})
    try:
        context.intake.offer_figma(event.file_key, event.event_type)
    except IntakeClosed:
        return JSONResponse({"status": "stopping"}, status_code=503)
    metrics.delivery("accepted", "figma")
    return JSONResponse({"status": "accepted"})
