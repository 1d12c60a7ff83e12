"""The dependencies the routes declare, each written once (the pattern of
full-stack-fastapi-template's ``api/deps.py``: a function, and an ``Annotated`` alias to use it).

- `get_context` / `ContextDep`: the `WebContext` the app was created with;
- `require_reader` / `READER`: **the** access check of every page and the report API (never of
  the webhooks, which carry their own proof, nor of the health checks). Today: when
  ``SYNCD_ADMIN_TOKEN`` is set, ``Authorization: Bearer <token>`` (constant-time comparison),
  else 401; without a token, open. A login (OpenID Connect session) plugs in here;
- `report_query` / `ReportQueryDep`: ``?since=`` and ``?lang=`` of the report routes, checked
  once (400 naming the parameter).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Query, Request
from pydantic import SecretStr

from state.store import parse_iso
from syncd.payloads import secret_equals
from syncd.web.context import WebContext

LANGUAGES = ("fr", "en")


def get_context(request: Request) -> WebContext:
    """The context `create_app` was given."""
    return cast(WebContext, request.app.state.context)


ContextDep = Annotated[WebContext, Depends(get_context)]


def secret_text(value: SecretStr | None) -> str | None:
    """A configured secret's text; None when unset or empty."""
    if value is None:
        return None
    return value.get_secret_value() or None


# -- who may read -------------------------------------------------------------------------


def require_reader(request: Request, context: ContextDep) -> None:
    """Let the request read pages and the report, or answer 401 (see the module docstring)."""
    expected = secret_text(context.settings.secrets.admin_token)
    if expected is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret_equals(token.strip(), expected):
        raise HTTPException(401, "admin token required", headers={"WWW-Authenticate": "Bearer"})


READER = Depends(require_reader)  # for a route's or a router's ``dependencies=[READER]``


# -- report query parameters --------------------------------------------------------------


@dataclass(frozen=True)
class ReportQuery:
    """The report routes' query: changes since when (None: none), and the language."""

    since: datetime | None
    lang: str


def report_query(
    since: Annotated[str | None, Query(description="ISO date: also list changes")] = None,
    lang: Annotated[str, Query(description="fr or en")] = "fr",
) -> ReportQuery:
    """``?since=`` and ``?lang=`` checked (400 with one line naming the bad one)."""
    if lang not in LANGUAGES:
        raise HTTPException(400, "lang must be fr or en")
    since_at = None
    if since:
        try:
            since_at = parse_iso(since)
        except ValueError:
            raise HTTPException(400, f"since: {since!r} is not an ISO date") from None
    return ReportQuery(since=since_at, lang=lang)


ReportQueryDep = Annotated[ReportQuery, Depends(report_query)]
