"""The dependencies the routes declare, each written once (the pattern of
full-stack-fastapi-template's ``api/deps.py``: a function, and an ``Annotated`` alias to use it).

- `get_context` / `ContextDep`: the `WebContext` the app was created with;
- `get_auth` / `AuthDep`: the app's `syncd.web.auth.WebAuth` (access mode, login, sessions);
- `require_reader` / `READER` / `ReaderDep`: **the** access check of every page and the report
  API (never of the webhooks, which carry their own proof, nor of the health checks and the
  metrics): the app's `syncd.web.auth.WebAuth` applies the contract's rules
  (`syncd.web.access`: a login session, ``Authorization: Bearer SYNCD_ADMIN_TOKEN``, or an open
  loopback host) and gives the `Reader`, or answers 302 to ``/login``, 401 or 403;
- `report_query` / `ReportQueryDep`: ``?since=``, ``?lang=`` and ``?at=`` of the report routes,
  checked once (400 naming the parameter).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Query, Request

from state.timestamps import BadDate, parse_user_date
from syncd.report.strings import LANGS
from syncd.web.auth import Reader, WebAuth
from syncd.web.context import WebContext


def get_context(request: Request) -> WebContext:
    """The context `create_app` was given."""
    return cast(WebContext, request.app.state.context)


ContextDep = Annotated[WebContext, Depends(get_context)]


# -- who may read -------------------------------------------------------------------------


def get_auth(request: Request) -> WebAuth:
    """The access rules and login `create_app` installed."""
    return cast(WebAuth, request.app.state.auth)


AuthDep = Annotated[WebAuth, Depends(get_auth)]


async def require_reader(request: Request, auth: AuthDep) -> Reader:
    """Who reads this page or the report, or `AccessRefused` (see the module docstring)."""
    return await auth.require_reader(request)


READER = Depends(require_reader)  # for a route's or a router's ``dependencies=[READER]``
ReaderDep = Annotated[Reader, READER]  # for a route that shows who reads (the dashboard)


# -- report query parameters --------------------------------------------------------------


@dataclass(frozen=True)
class ReportQuery:
    """The report routes' query: changes since when (None: none), the language, and the moment
    the report describes (None: now)."""

    since: datetime | None
    lang: str
    at: datetime | None = None


def _user_date(name: str, value: str | None) -> datetime | None:
    """A date query parameter (`state.timestamps.parse_user_date`, clamped to what the store
    holds); 400 naming the parameter when unreadable."""
    if not value:
        return None
    try:
        return parse_user_date(value)
    except BadDate as exc:
        raise HTTPException(400, f"{name}: {exc}") from None


def report_query(
    since: Annotated[str | None, Query(description="ISO date: also list changes")] = None,
    lang: Annotated[str, Query(description="fr or en")] = "fr",
    at: Annotated[str | None, Query(description="ISO date: the report as it stood")] = None,
) -> ReportQuery:
    """``?since=``, ``?lang=`` and ``?at=`` checked (400 with one line naming the bad one)."""
    if lang not in LANGS:
        raise HTTPException(400, "lang must be fr or en")
    since_at, at_moment = _user_date("since", since), _user_date("at", at)
    if since_at and at_moment and since_at > at_moment:
        raise HTTPException(400, "since must not be after at")
    return ReportQuery(since=since_at, lang=lang, at=at_moment)


ReportQueryDep = Annotated[ReportQuery, Depends(report_query)]
