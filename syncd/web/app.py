"""The HTTP surface of `syncd run` (FastAPI): webhooks, health, metrics, report, dashboard.

Owns `create_app`, the routes of the contract:

- ``HEAD /webhooks/trello`` 200 (Trello's check before it creates a webhook);
- ``POST /webhooks/trello``: body capped at 1 MiB (413), ``X-Trello-Webhook`` checked over the
  raw bytes + ``public_url/webhooks/trello`` (401, nothing stored), JSON with ``action.id``
  (400), a board that is not ours 410 (Trello then deletes that webhook), else queued for the
  webhook worker and answered 200 at once (a replay too, applied once);
- ``POST /webhooks/figma``: Figma webhook V2, ``passcode`` checked (401), the file refreshed;
- ``GET /healthz`` (liveness), ``GET /readyz`` (every board synced within 2 × poll_seconds);
- ``GET /metrics`` (Prometheus text), ``GET /api/report`` (the report JSON), ``GET /`` (HTML).

When ``SYNCD_ADMIN_TOKEN`` is set, every route but the webhooks and the health checks needs
``Authorization: Bearer <token>`` (constant-time comparison). Nothing here logs a secret, a
signature or a body.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from syncd.figma.webhooks import FIGMA_EVENTS, FIGMA_PATH
from syncd.history.moment import BeforeHistory
from syncd.payloads import MAX_BODY_BYTES, BadDelivery, parse_json_object, secret_equals
from syncd.report.build import build_report
from syncd.report.render import render
from syncd.trello.apply import ApplyError
from syncd.trello.webhooks import TRELLO_PATH, action_board, parse_trello, signature_ok

if TYPE_CHECKING:
    from syncd.daemon.run import Daemon

log = structlog.get_logger("syncd.server")


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


def create_app(daemon: Daemon) -> FastAPI:
    """The FastAPI application over a `Daemon` (its store, worker, metrics and settings)."""
    app = FastAPI(
        title="syncd",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    metrics = daemon.metrics
    settings = daemon.settings

    def require_admin(request: Request) -> None:
        expected = daemon.admin_token
        if expected is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not secret_equals(token.strip(), expected):
            raise HTTPException(401, "admin token required", headers={"WWW-Authenticate": "Bearer"})

    def reject(outcome: str, status: int, message: str, source: str = "trello") -> JSONResponse:
        metrics.delivery(outcome, source)
        log.info("webhook rejected", source=source, reason=outcome, status=status)
        return JSONResponse({"status": "rejected", "reason": message}, status_code=status)

    # -- Trello -------------------------------------------------------------------------

    @app.head(TRELLO_PATH)
    def trello_head() -> Response:
        return Response(status_code=200)

    @app.post(TRELLO_PATH)
    async def trello_webhook(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request)
        except _TooLarge:
            return reject("too_large", 413, "body over 1 MiB")
        if not signature_ok(
            body, request.headers.get("x-trello-webhook"), daemon.trello_secret, daemon.callback_url
        ):
            return reject("bad_signature", 401, "bad or missing X-Trello-Webhook signature")
        try:
            payload = parse_trello(body)
        except BadDelivery as exc:
            return reject("bad_json", 400, str(exc))
        action = payload["action"]
        board_id, short_link = action_board(payload)
        if board_id is None and short_link is None:
            return reject("bad_json", 400, "no board in the action")
        try:
            match = daemon.boards.resolve(board_id, short_link)
        except Exception as exc:  # the store is unreachable: let Trello retry later
            log.warning("webhook board lookup failed", error=str(exc)[:200])
            return JSONResponse({"status": "unavailable"}, status_code=503)
        if match is None:
            if daemon.boards.complete:
                return reject("unknown_board", 410, "not a board this daemon mirrors")
            # Some configured board is not resolved yet: never 410 a webhook that may be ours.
            return reject("unknown_board", 202, "board not resolved yet; the poll will catch up")
        board, real_id = match
        try:
            fresh = daemon.worker.offer_trello(action, board, real_id)
        except ApplyError:
            return JSONResponse({"status": "stopping"}, status_code=503)
        outcome = "accepted" if fresh else "replay"
        metrics.delivery(outcome)
        return JSONResponse({"status": outcome, "action": action["id"]})

    # -- Figma --------------------------------------------------------------------------

    @app.post(FIGMA_PATH)
    async def figma_webhook(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request)
        except _TooLarge:
            return reject("too_large", 413, "body over 1 MiB", "figma")
        try:
            payload = parse_json_object(body)
        except BadDelivery:
            # No passcode could be checked: answer as for a wrong one, store nothing.
            return reject("bad_json", 400, "body is not a JSON object", "figma")
        passcode = payload.get("passcode")
        if not isinstance(passcode, str) or not secret_equals(passcode, daemon.figma_passcode):
            return reject("bad_signature", 401, "wrong passcode", "figma")
        event = payload.get("event_type")
        key = payload.get("file_key")
        if event == "PING":
            metrics.delivery("accepted", "figma")
            return JSONResponse({"status": "pong"})
        if event not in FIGMA_EVENTS or not isinstance(key, str):
            metrics.delivery("ignored", "figma")
            return JSONResponse({"status": "ignored"})
        if key not in settings.figma.files or daemon.runtime.figma is None:
            metrics.delivery("unknown_file", "figma")
            return JSONResponse({"status": "ignored", "reason": "file not configured"})
        try:
            daemon.worker.offer_figma(key, str(event))
        except ApplyError:
            return JSONResponse({"status": "stopping"}, status_code=503)
        metrics.delivery("accepted", "figma")
        return JSONResponse({"status": "accepted"})

    # -- health -------------------------------------------------------------------------

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        try:
            ready, body = daemon.readiness()
        except Exception as exc:  # e.g. the store is unreachable
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
        return JSONResponse(body, status_code=200 if ready else 503)

    # -- admin routes -------------------------------------------------------------------

    @app.get("/metrics", dependencies=[Depends(require_admin)])
    def prometheus() -> Response:
        metrics.refresh(
            daemon.store, [board.id for board in settings.trello.boards], daemon.last_success()
        )
        payload, content_type = metrics.render()
        return Response(payload, media_type=content_type)

    def user_date(name: str, value: str | None) -> datetime | None:
        if not value:
            return None
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise HTTPException(400, f"{name}: {value!r} is not an ISO date") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def report(since: str | None, lang: str, at: str | None = None) -> dict[str, Any]:
        if lang not in ("fr", "en"):
            raise HTTPException(400, "lang must be fr or en")
        since_at = user_date("since", since)
        at_moment = user_date("at", at)
        if since_at and at_moment and since_at > at_moment:
            raise HTTPException(400, "since must not be after at")
        try:
            return build_report(
                daemon.store, settings, now=daemon.clock(), since=since_at, lang=lang, at=at_moment
            )
        except BeforeHistory as exc:
            raise HTTPException(400, str(exc)) from None

    @app.get("/api/report", dependencies=[Depends(require_admin)])
    def api_report(
        since: str | None = Query(default=None, description="ISO date: also list changes"),
        lang: str = Query(default="fr"),
        at: str | None = Query(default=None, description="ISO date: the report as it stood"),
    ) -> JSONResponse:
        return JSONResponse(report(since, lang, at))

    @app.get("/", dependencies=[Depends(require_admin)], response_class=HTMLResponse)
    def dashboard(
        since: str | None = Query(default=None),
        lang: str = Query(default="fr"),
        at: str | None = Query(default=None),
    ) -> HTMLResponse:
        return HTMLResponse(render(report(since, lang, at), "html", lang=lang, dashboard=True))

    return app
