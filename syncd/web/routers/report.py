"""The report for readers: ``GET /api/report`` (the report JSON) and ``GET /`` (the dashboard).

Both take ``?since=`` and ``?lang=`` (`syncd.web.deps.ReportQueryDep`) and sit behind the one
access check (`syncd.web.deps.READER`). The dashboard escapes every text (the HTML renderer's
templates autoescape) and, for a logged-in reader, shows who it is and a logout button.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse

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

router = APIRouter(dependencies=[READER])


def _report(context: WebContext, query: ReportQuery) -> Report:
    return build_report(
        context.store, context.settings, now=context.clock(), since=query.since, lang=query.lang
    )


@router.get("/api/report")
def api_report(context: ContextDep, query: ReportQueryDep) -> JSONResponse:
    return JSONResponse(_report(context, query))


@router.get("/", response_class=HTMLResponse)
def dashboard(
    context: ContextDep, query: ReportQueryDep, auth: AuthDep, reader: ReaderDep
) -> HTMLResponse:
    viewer = auth.viewer(reader)
    return HTMLResponse(render(_report(context, query), "html", lang=query.lang, viewer=viewer))
