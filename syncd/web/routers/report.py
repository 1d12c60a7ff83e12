"""The report for readers: ``GET /api/report`` (the report JSON) and ``GET /`` (the dashboard).

Both take ``?since=``, ``?lang=`` and ``?at=`` (`syncd.web.deps.ReportQueryDep`; a moment before
the store's history is a 400) and sit behind the one
access check (`syncd.web.deps.READER`). The dashboard escapes every text (the HTML renderer's
templates autoescape) and, for a logged-in reader, shows who it is and a logout button.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse

from syncd.history.moment import BeforeHistory
from syncd.report.build import build_report
from syncd.report.model import Report
from syncd.report.render import render
from syncd.web.context import WebContext
from syncd.web.deps import (
    READER,
    AuthDep,
    ContextDep,
    ReaderDep,
    ReportQuery,
    ReportQueryDep,
)
from syncd.web.security import page_csp

router = APIRouter(dependencies=[READER])


def _report(context: WebContext, query: ReportQuery) -> Report:
    try:
        return build_report(
            context.store,
            context.settings,
            now=context.clock(),
            since=query.since,
            lang=query.lang,
            at=query.at,
        )
    except BeforeHistory as exc:  # a date the store cannot describe: the client's mistake
        raise HTTPException(400, str(exc)) from None


@router.get("/api/report")
def api_report(context: ContextDep, query: ReportQueryDep) -> JSONResponse:
    return JSONResponse(_report(context, query))


@router.get("/", response_class=HTMLResponse)
def dashboard(
    context: ContextDep, query: ReportQueryDep, auth: AuthDep, reader: ReaderDep
) -> HTMLResponse:
    viewer = auth.viewer(reader)
    page = page_csp(auth.form_action(), meta=True)  # its date picker submits here (?at=)
    report = _report(context, query)
    return HTMLResponse(render(report, "html", lang=query.lang, viewer=viewer, dashboard_csp=page))
