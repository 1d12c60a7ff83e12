"""Login sessions and the guard in front of the dashboard and the report API.

Owns `WebAuth`, built once per app from the settings:

- **the session cookie** ``syncd_session``: Starlette's `SessionMiddleware` (itsdangerous,
  signed with ``SYNCD_SESSION_SECRET``, so every replica with the same secret accepts it),
  HttpOnly, SameSite=Lax, Secure when ``public_url`` is https, Max-Age ``session_hours``, and an
  absolute expiry stored inside it. It carries the pending login (state, nonce, PKCE verifier)
  and, once logged in, the e-mail and the ID token (the provider's logout wants it back);
- **the routes** ``GET /login``, ``GET /auth/callback``, ``POST /logout`` and ``GET /logged-out``
  (the page the provider sends the browser back to after its own logout);
- **`require_reader`**, the access check behind `syncd.web.deps.require_reader` (the one
  dependency of every guarded route): it gathers what the request presents (admin bearer,
  session) and applies `syncd.web.access.decide`;
- the security headers (`syncd.web.security`) and the start-up line saying which access mode
  is active and whether the provider answers.

Refusals are one line in the log (never a token, a cookie or a secret) and a 4xx, or a 503
when the provider cannot be reached; team leads see the French pages of `render_notice`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response

from syncd.config import Settings, secret_text
from syncd.payloads import one_line, secret_equals
from syncd.report.render import Viewer, render_notice
from syncd.report.strings import STRINGS
from syncd.web.access import (
    Allowlist,
    Bearer,
    Decision,
    Mode,
    Outcome,
    access_mode,
    decide,
    describe_mode,
)
from syncd.web.oidc import LoginRefused, OidcClient, ProviderUnavailable, origin
from syncd.web.security import SecurityHeaders, page_csp

log = structlog.get_logger("syncd.auth")

SESSION_COOKIE = "syncd_session"
LOGIN_PATH = "/login"
CALLBACK_PATH = "/auth/callback"
LOGOUT_PATH = "/logout"
LOGGED_OUT_PATH = "/logged-out"
API_PREFIX = "/api/"
LANG = "fr"  # what team leads read


@dataclass(frozen=True)
class Reader:
    """Who may read this request: an e-mail, the admin token, or None on an open loopback."""

    who: str | None
    logged_in: bool = False  # through the login (the dashboard shows a logout button)


class AccessRefused(Exception):
    """Raised by `require_reader`; the app answers with `response`."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class WebAuth:
    """The access mode, the login and the guard of one app (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        auth = settings.auth
        secrets = settings.secrets
        self.public_url = settings.server.public_url
        self.https = self.public_url.startswith("https://")
        self.host = settings.server.host
        self.admin_token = secret_text(secrets.admin_token)
        self.allowlist = Allowlist.of(auth.allowed_emails, auth.allowed_domains)
        self.session_seconds = max(60, int(auth.session_hours * 3600))
        self.mode = access_mode(
            login=auth.login_configured, token=self.admin_token is not None, host=self.host
        )
        self.oidc: OidcClient | None = None
        self._session_secret = secret_text(secrets.session_secret)
        if auth.login_configured:
            self.oidc = OidcClient(
                auth,
                client_secret=secret_text(secrets.oidc_client_secret),
                redirect_uri=self.public_url + CALLBACK_PATH,
            )

    # -- set-up ---------------------------------------------------------------------------

    def describe(self) -> str:
        return describe_mode(
            self.mode, token=self.admin_token is not None, host=self.host, allowlist=self.allowlist
        )

    def start(self) -> None:
        """Log the access mode; with a login, read the provider's discovery once (one line)."""
        log.info("access mode", mode=str(self.mode), detail=self.describe())
        if self.mode is Mode.LOGIN and self.allowlist.empty:
            log.warning("no auth.allowed_emails nor auth.allowed_domains: nobody can log in")
        if self.oidc is not None:
            try:
                self.oidc.discover()
            except ProviderUnavailable as exc:
                log.error(
                    "OpenID provider unavailable: /login answers 503 until it answers",
                    error=str(exc),
                )

    def install(self, app: FastAPI) -> None:
        """Add the login routes, the refusal handler, the session and the security headers."""
        app.include_router(self.router())

        async def refused(_request: Request, exc: Exception) -> Response:
            assert isinstance(exc, AccessRefused)
            return exc.response

        app.add_exception_handler(AccessRefused, refused)
        if self.oidc is not None:
            assert self._session_secret is not None  # Settings refuses a login without it
            app.add_middleware(
                SessionMiddleware,
                secret_key=self._session_secret,
                session_cookie=SESSION_COOKIE,
                max_age=self.session_seconds,
                same_site="lax",
                https_only=self.https,
            )
        app.add_middleware(SecurityHeaders, https=self.https, form_action=self.form_action)

    def form_action(self) -> Iterable[str]:
        """Where a page's forms may go: here, and the provider's logout after ours."""
        end_session = self.oidc.end_session_endpoint if self.oidc is not None else None
        return ("'self'", origin(end_session)) if end_session else ("'self'",)

    def viewer(self, reader: Reader) -> Viewer | None:
        """The logged-in reader as the dashboard shows it (None: nobody to log out)."""
        if not reader.logged_in or reader.who is None:
            return None
        return Viewer(
            email=reader.who, csp=page_csp(self.form_action(), meta=True), logout_path=LOGOUT_PATH
        )

    # -- the guard ------------------------------------------------------------------------

    async def require_reader(self, request: Request) -> Reader:
        """FastAPI dependency of every guarded route: the reader, or `AccessRefused`."""
        bearer = self._bearer(request)
        email = self._session_email(request)
        page = not request.url.path.startswith(API_PREFIX)
        decision = decide(
            self.mode, page=page, bearer=bearer, session_email=email, allowlist=self.allowlist
        )
        if decision.outcome is Outcome.ALLOW:
            logged_in = email is not None and decision.reader == email
            return Reader(decision.reader, logged_in=logged_in)
        if email is not None:  # a session whose e-mail was removed from the allow-list
            request.session.clear()
        log.info(
            "access refused",
            path=request.url.path,
            outcome=str(decision.outcome),
            reason=decision.reason,
        )
        raise AccessRefused(self._refusal(decision, page))

    def _bearer(self, request: Request) -> Bearer:
        header = request.headers.get("authorization")
        if self.admin_token is None or header is None:
            return Bearer.ABSENT
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and secret_equals(token.strip(), self.admin_token):
            return Bearer.VALID
        return Bearer.INVALID

    def _session_email(self, request: Request) -> str | None:
        """The e-mail of a valid, unexpired session; logs a cookie that does not verify."""
        if self.oidc is None:
            return None
        session = request.session
        if not session:
            if SESSION_COOKIE in request.cookies:
                log.warning("session cookie refused", reason="bad signature or expired")
            return None
        email, expires_at = session.get("email"), session.get("expires_at")
        if not isinstance(email, str):
            return None  # a login in progress only
        if not isinstance(expires_at, int | float) or expires_at <= time.time():
            log.info("session expired", email=email)
            session.clear()
            return None
        return email

    def _refusal(self, decision: Decision, page: bool) -> Response:
        if decision.outcome is Outcome.LOGIN:
            return RedirectResponse(LOGIN_PATH, status_code=302)
        if decision.outcome is Outcome.UNAUTHORIZED:
            return JSONResponse(
                {"detail": decision.reason},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if page:
            return PlainTextResponse(decision.reason + "\n", status_code=403)
        return JSONResponse({"detail": decision.reason}, status_code=403)

    # -- the login routes -----------------------------------------------------------------

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route(LOGIN_PATH, self.login, methods=["GET"], include_in_schema=False)
        router.add_api_route(CALLBACK_PATH, self.callback, methods=["GET"])
        router.add_api_route(LOGOUT_PATH, self.logout, methods=["POST"])
        router.add_api_route(LOGGED_OUT_PATH, self.logged_out, methods=["GET"])
        return router

    async def login(self, request: Request) -> Response:
        if self.oidc is None:
            return _notice(404, "refused_title", "not_configured")
        if self.allowlist.allows(self._session_email(request)):
            return RedirectResponse("/", status_code=303)
        try:
            return await self.oidc.start(request)
        except ProviderUnavailable as exc:
            log.warning("login unavailable", error=str(exc))
            return _notice(503, "unavailable_title", "unavailable")

    async def callback(self, request: Request) -> Response:
        if self.oidc is None:
            return _notice(404, "refused_title", "not_configured")
        try:
            identity = await self.oidc.finish(request)
        except ProviderUnavailable as exc:
            log.warning("login unavailable", error=str(exc))
            return _notice(503, "unavailable_title", "unavailable")
        except LoginRefused as exc:
            reason = one_line(exc.reason, 300)  # it may quote what the request said
            log.warning("login refused", status=exc.status, reason=reason)
            return _notice(exc.status, "refused_title", "failed", reason)
        if not self.allowlist.allows(identity.email):
            log.warning(
                "login refused", status=403, reason="e-mail not allowed", email=identity.email
            )
            return _notice(403, "refused_title", "not_allowed", email=identity.email)
        session = request.session
        session.clear()
        session["email"] = identity.email
        session["expires_at"] = int(time.time()) + self.session_seconds
        if self.oidc.end_session_endpoint is not None:
            session["id_token"] = identity.id_token  # the provider's logout asks for it back
        log.info("login", email=identity.email, email_from=identity.email_from)
        return RedirectResponse("/", status_code=303)

    async def logout(self, request: Request) -> Response:
        target = LOGGED_OUT_PATH
        if self.oidc is not None:
            session = request.session
            email, id_token = session.get("email"), session.get("id_token")
            session.clear()
            if email is not None:
                log.info("logout", email=email)
                back = self.public_url + LOGGED_OUT_PATH
                target = await self.oidc.logout_url(id_token, back) or LOGGED_OUT_PATH
        return RedirectResponse(target, status_code=303)

    async def logged_out(self) -> Response:
        strings = STRINGS[LANG]["session"]
        link = (LOGIN_PATH, strings["login_again"]) if self.oidc is not None else None
        html = render_notice(
            strings["logged_out_title"], strings["logged_out"], lang=LANG, link=link
        )
        return HTMLResponse(html)


def access_checks(settings: Settings) -> Iterator[tuple[bool, str]]:
    """`syncd check`: the access mode, and with a login, the provider's discovery read once."""
    auth = WebAuth(settings)
    yield True, auth.describe()
    if auth.oidc is None:
        return
    if auth.allowlist.empty:
        yield False, "auth: neither allowed_emails nor allowed_domains is set: nobody can log in"
    try:
        metadata = auth.oidc.discover()
    except ProviderUnavailable as exc:
        yield False, f"oidc provider: {exc}"
        return
    logout = "offers" if auth.oidc.end_session_endpoint else "does not offer"
    yield (
        True,
        f"oidc provider {metadata['issuer']}: discovery ok, {logout} end_session; "
        f"redirect URI to register: {auth.oidc.redirect_uri}",
    )


def _notice(
    status: int,
    title: str,
    message: str,
    detail: str | None = None,
    email: str | None = None,
) -> HTMLResponse:
    strings = STRINGS[LANG]["session"]
    text = strings[message].format(email=email or "")
    link = (LOGIN_PATH, strings["login_again"]) if status in (400, 401, 503) else None
    html = render_notice(strings[title], text, lang=LANG, detail=detail, link=link)
    return HTMLResponse(html, status_code=status)
