"""The webhook receivers: ``HEAD``/``POST /webhooks/trello`` and ``POST /webhooks/figma``.

- ``HEAD /webhooks/trello`` 200 (Trello's check before it creates a webhook);
- ``POST /webhooks/trello``: body capped at 1 MiB (413), ``X-Trello-Webhook`` checked over the
  raw bytes + ``public_url/webhooks/trello`` (401, nothing stored), JSON with ``action.id``
  (400), a board that is not ours 410 (Trello then deletes that webhook; 202 while some
  configured board is not resolved yet), else handed to the delivery intake and answered 200 at
  once (a replay too: the intake applies it once);
- ``POST /webhooks/figma``: Figma webhook V2, ``passcode`` checked (401), the file's refresh
  handed to the intake.

Every answer is counted in ``syncd_webhook_deliveries_total``. Nothing here logs a secret, a
signature or a body.
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from syncd.config import secret_text
from syncd.figma.webhooks import FIGMA_EVENTS, FIGMA_PATH
from syncd.payloads import MAX_BODY_BYTES, BadDelivery, parse_json_object, secret_equals
from syncd.trello.webhooks import (
    TRELLO_PATH,
    action_board,
    parse_trello,
    signature_ok,
    trello_callback_url,
)
from syncd.web.context import IntakeClosed, WebContext
from syncd.web.deps import ContextDep

log = structlog.get_logger("syncd.server")

router = APIRouter()


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, refusing more than `limit` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise HTTPException(400, "bad Content-Length")
        if int(declared) > limit:
            raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


def _reject(
    context: WebContext, outcome: str, status: int, message: str, source: str = "trello"
) -> JSONResponse:
    context.metrics.delivery(outcome, source)
    log.info("webhook rejected", source=source, reason=outcome, status=status)
    return JSONResponse({"status": "rejected", "reason": message}, status_code=status)


# -- Trello -------------------------------------------------------------------------------


@router.head(TRELLO_PATH)
def trello_head() -> Response:
    return Response(status_code=200)


@router.post(TRELLO_PATH)
async def trello_webhook(request: Request, context: ContextDep) -> JSONResponse:
    try:
        body = await _read_body(request)
    except _TooLarge:
        return _reject(context, "too_large", 413, "body over 1 MiB")
    settings = context.settings
    if not signature_ok(
        body,
        request.headers.get("x-trello-webhook"),
        secret_text(settings.secrets.trello_api_secret),
        trello_callback_url(settings),
    ):
        return _reject(context, "bad_signature", 401, "bad or missing X-Trello-Webhook signature")
    try:
        payload = parse_trello(body)
    except BadDelivery as exc:
        return _reject(context, "bad_json", 400, str(exc))
    action = payload["action"]
    board_id, short_link = action_board(payload)
    if board_id is None and short_link is None:
        return _reject(context, "bad_json", 400, "no board in the action")
    try:
        match = context.boards.resolve(board_id, short_link)
    except Exception as exc:  # the store is unreachable: let Trello retry later
        log.warning("webhook board lookup failed", error=str(exc)[:200])
        return JSONResponse({"status": "unavailable"}, status_code=503)
    if match is None:
        if context.boards.complete:
            return _reject(context, "unknown_board", 410, "not a board this daemon mirrors")
        # Some configured board is not resolved yet: never 410 a webhook that may be ours.
        return _reject(
            context, "unknown_board", 202, "board not resolved yet; the poll will catch up"
        )
    board, real_id = match
    try:
        fresh = context.intake.offer_trello(action, board, real_id)
    except IntakeClosed:
        return JSONResponse({"status": "stopping"}, status_code=503)
    outcome = "accepted" if fresh else "replay"
    context.metrics.delivery(outcome)
    return JSONResponse({"status": outcome, "action": action["id"]})


# -- Figma --------------------------------------------------------------------------------


@router.post(FIGMA_PATH)
async def figma_webhook(request: Request, context: ContextDep) -> JSONResponse:
    try:
        body = await _read_body(request)
    except _TooLarge:
        return _reject(context, "too_large", 413, "body over 1 MiB", "figma")
    try:
        payload = parse_json_object(body)
    except BadDelivery:
        # No passcode could be checked: answer as for a wrong one, store nothing.
        return _reject(context, "bad_json", 400, "body is not a JSON object", "figma")
    passcode = payload.get("passcode")
    expected = secret_text(context.settings.secrets.figma_webhook_passcode)
    if not isinstance(passcode, str) or not secret_equals(passcode, expected):
        return _reject(context, "bad_signature", 401, "wrong passcode", "figma")
    event = payload.get("event_type")
    key = payload.get("file_key")
    metrics = context.metrics
    if event == "PING":
        metrics.delivery("accepted", "figma")
        return JSONResponse({"status": "pong"})
    if event not in FIGMA_EVENTS or not isinstance(key, str):
        metrics.delivery("ignored", "figma")
        return JSONResponse({"status": "ignored"})
    if key not in context.settings.figma.files:
        metrics.delivery("unknown_file", "figma")
        return JSONResponse({"status": "ignored", "reason": "file not configured"})
    try:
        context.intake.offer_figma(key, str(event))
    except IntakeClosed:
        return JSONResponse({"status": "stopping"}, status_code=503)
    metrics.delivery("accepted", "figma")
    return JSONResponse({"status": "accepted"})
