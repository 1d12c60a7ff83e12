"""The HTTP surface of `syncd run`: `create_app(context)`, the FastAPI app over a `WebContext`.

The routes live in `syncd.web.routers` (webhooks, health, metrics, report) and, for the login,
`syncd.web.auth` (``/login``, ``/auth/callback``, ``POST /logout``, ``/logged-out``); what they
depend on is declared once in `syncd.web.deps` (the context, the access check, the report
query). `WebAuth` also adds the session cookie and the security headers. The app knows nothing
of the daemon: any `WebContext` serves it, e.g. a store filled by hand in a test. No OpenAPI or
docs routes are served. A request refused for what it asked (400, 422: a bad query parameter)
is one line at INFO with the reason, never a traceback.
"""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from syncd.payloads import one_line
from syncd.web.auth import WebAuth
from syncd.web.context import WebContext
from syncd.web.routers import health, metrics, report, webhooks


def create_app(context: WebContext) -> FastAPI:
    """The FastAPI application serving the contract's routes over `context`."""
    app = FastAPI(title="syncd", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.context = context
    for module in (webhooks, health, metrics, report):
        app.include_router(module.router)
    auth = WebAuth(context.settings)
    app.state.auth = auth
    auth.start()
    auth.install(app)
    _log_refusals(app)
    return app


def _log_refusals(app: FastAPI) -> None:
    """One INFO line per request refused for what it asked (400, 422), then FastAPI's answer."""
    log = structlog.get_logger("syncd.server")

    async def refused(request: Request, exc: Exception) -> Response:
        if isinstance(exc, RequestValidationError):
            first = (exc.errors() or [{}])[0]
            where = ".".join(str(part) for part in first.get("loc", ()))
            path = one_line(request.scope["path"], 200)
            log.info("request refused", path=path, status=422, reason=one_line(where))
            return await request_validation_exception_handler(request, exc)
        assert isinstance(exc, HTTPException)
        if exc.status_code in (400, 422):
            path, reason = one_line(request.scope["path"], 200), one_line(str(exc.detail))
            log.info("request refused", path=path, status=exc.status_code, reason=reason)
        return await http_exception_handler(request, exc)

    app.add_exception_handler(HTTPException, refused)
    app.add_exception_handler(RequestValidationError, refused)
