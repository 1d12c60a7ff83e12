"""The HTTP surface of `syncd run`: `create_app(context)`, the FastAPI app over a `WebContext`.

The routes live in `syncd.web.routers` (webhooks, health, metrics, report) and, for the login,
`syncd.web.auth` (``/login``, ``/auth/callback``, ``POST /logout``, ``/logged-out``); what they
depend on is declared once in `syncd.web.deps` (the context, the access check, the report
query). `WebAuth` also adds the session cookie and the security headers. The app knows nothing
of the daemon: any `WebContext` serves it, e.g. a store filled by hand in a test. No OpenAPI or
docs routes are served.
"""

from __future__ import annotations

from fastapi import FastAPI

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
    return app
