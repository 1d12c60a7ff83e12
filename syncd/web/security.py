"""Security headers on every HTTP response of `syncd run` (a pure ASGI middleware).

Owns the Content-Security-Policy of the served pages and the headers that go with it:

- HTML pages: ``default-src 'none'`` (no script at all, inline CSS and ``data:`` images only),
  ``frame-ancestors 'none'``, ``base-uri 'none'`` and ``form-action`` limited to syncd itself
  and the login provider (the logout form ends the provider session too);
- every other response (JSON, text, metrics): ``default-src 'none'; frame-ancestors 'none'``;
- always: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
  ``X-Frame-Options: DENY`` (older browsers), ``Cache-Control: no-store`` unless the route set
  its own (the pages name people), and ``Strict-Transport-Security`` when ``public_url`` is
  https.

`page_csp` is also what the dashboard template puts in its ``<meta>`` policy, so the header and
the page never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

OTHER_CSP = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000"


def page_csp(form_action: Iterable[str] = ("'self'",), *, meta: bool = False) -> str:
    """The policy of an HTML page; `form_action` lists where its forms may post/redirect.

    `meta`: for a ``<meta>`` element, where browsers ignore ``frame-ancestors``.
    """
    sources = " ".join(form_action) or "'none'"
    policy = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
        f"form-action {sources}"
    )
    return policy if meta else policy + "; frame-ancestors 'none'"


class SecurityHeaders:
    """Adds the headers above to each response; `form_action` is asked once per page."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        https: bool,
        form_action: Callable[[], Iterable[str]] = lambda: ("'self'",),
    ) -> None:
        self.app = app
        self.https = https
        self.form_action = form_action

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                html = headers.get("content-type", "").startswith("text/html")
                headers["Content-Security-Policy"] = (
                    page_csp(self.form_action()) if html else OTHER_CSP
                )
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Frame-Options"] = "DENY"
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                if self.https:
                    headers["Strict-Transport-Security"] = HSTS
            await send(message)

        await self.app(scope, receive, send_with_headers)
