"""Who may read the dashboard and the report API: the contract's "Who may read what", pure.

Owns the access mode (from the configuration alone), the e-mail allow-list check and the
decision for one request. No HTTP, no cookies, no clock here: `syncd.web.auth` gathers what a
request presents (a bearer token, a valid session's e-mail) and turns the `Decision` into a
response; `syncd check` prints `describe_mode`.

- The webhooks, ``/healthz``, ``/readyz`` and ``/metrics`` never ask (they are not guarded).
- A guarded route is allowed with ``Authorization: Bearer SYNCD_ADMIN_TOKEN`` or a logged-in
  session whose e-mail is (still) allowed. Without either: with a login configured, a page
  redirects to ``/login`` and an API route answers 401; with only the admin token, 401.
- With neither a login nor an admin token configured, guarded routes are served when
  ``server.host`` is a loopback address, and answer 403 with `CLOSED_MESSAGE` otherwise.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    LOGIN = "login"  # an OpenID Connect login is configured (the admin token may be too)
    TOKEN = "token"  # only SYNCD_ADMIN_TOKEN: scripts only, browsers cannot read
    LOOPBACK = "loopback"  # neither, on a loopback host: whoever can reach the port reads
    CLOSED = "closed"  # neither, on any other host: guarded routes answer 403


class Bearer(StrEnum):
    ABSENT = "absent"  # no bearer header, or no admin token configured to compare with
    VALID = "valid"
    INVALID = "invalid"


class Outcome(StrEnum):
    ALLOW = "allow"
    LOGIN = "login"  # redirect to /login
    UNAUTHORIZED = "unauthorized"  # 401
    FORBIDDEN = "forbidden"  # 403


CLOSED_MESSAGE = (
    "syncd serves the dashboard and the report API only to logged-in readers: configure a login "
    "([auth] oidc_issuer, oidc_client_id, SYNCD_OIDC_CLIENT_SECRET, SYNCD_SESSION_SECRET) or set "
    "SYNCD_ADMIN_TOKEN, or bind server.host to 127.0.0.1"
)
ADMIN_READER = "admin token"


@dataclass(frozen=True)
class Allowlist:
    """Who may log in: exact addresses or whole domains (case-insensitive)."""

    emails: frozenset[str]
    domains: frozenset[str]

    @classmethod
    def of(cls, emails: Iterable[str], domains: Iterable[str]) -> Allowlist:
        return cls(
            frozenset(e.strip().lower() for e in emails),
            frozenset(d.strip().lower().removeprefix("@") for d in domains),
        )

    @property
    def empty(self) -> bool:
        return not self.emails and not self.domains

    def allows(self, email: str | None) -> bool:
        if not email:
            return False
        address = email.strip().lower()
        local, at, domain = address.rpartition("@")
        if not local or not at or not domain or "@" in local:
            return False
        return address in self.emails or domain in self.domains


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reader: str | None = None  # who reads: an e-mail, ADMIN_READER, or None (loopback)
    reason: str = ""  # one line, for the response and the log


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for 0.0.0.0, :: and every name."""
    text = host.strip().strip("[]").lower()
    if text == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def access_mode(*, login: bool, token: bool, host: str) -> Mode:
    if login:
        return Mode.LOGIN
    if token:
        return Mode.TOKEN
    return Mode.LOOPBACK if is_loopback(host) else Mode.CLOSED


def describe_mode(mode: Mode, *, token: bool, host: str, allowlist: Allowlist) -> str:
    """One line for `syncd check` and the start-up log."""
    if mode is Mode.LOGIN:
        who = (
            f"{len(allowlist.emails)} allowed e-mail(s), {len(allowlist.domains)} allowed domain(s)"
            if not allowlist.empty
            else "no allowed e-mail or domain yet: nobody can log in"
        )
        scripts = "; the admin token also works for scripts" if token else ""
        return f"access: OpenID Connect login ({who}){scripts}"
    if mode is Mode.TOKEN:
        return "access: admin token only (SYNCD_ADMIN_TOKEN); browsers cannot read the dashboard"
    if mode is Mode.LOOPBACK:
        return f"access: open on loopback host {host} (no login, no admin token configured)"
    return (
        f"access: closed: server.host {host} is not loopback and neither a login nor "
        "SYNCD_ADMIN_TOKEN is configured; the dashboard and /api/report answer 403"
    )


def decide(
    mode: Mode,
    *,
    page: bool,
    bearer: Bearer,
    session_email: str | None,
    allowlist: Allowlist,
) -> Decision:
    """May this request read a guarded route? `page`: a browser page (else an API route)."""
    if bearer is Bearer.VALID:
        return Decision(Outcome.ALLOW, ADMIN_READER)
    if bearer is Bearer.INVALID:
        return Decision(Outcome.UNAUTHORIZED, reason="bad admin token")
    if mode is Mode.LOGIN:
        if session_email is not None and allowlist.allows(session_email):
            return Decision(Outcome.ALLOW, session_email)
        reason = (
            f"{session_email} is no longer allowed"
            if session_email is not None
            else "login required"
        )
        return Decision(Outcome.LOGIN if page else Outcome.UNAUTHORIZED, reason=reason)
    if mode is Mode.TOKEN:
        return Decision(Outcome.UNAUTHORIZED, reason="admin token required")
    if mode is Mode.LOOPBACK:
        return Decision(Outcome.ALLOW)
    return Decision(Outcome.FORBIDDEN, reason=CLOSED_MESSAGE)
