"""``GET /metrics``: the Prometheus text exposition, gauges refreshed from the store first.

Behind the one access check (`syncd.web.deps.READER`), as before this layout.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from syncd.web.deps import READER, ContextDep

router = APIRouter()


@router.get("/metrics", dependencies=[READER])
def prometheus(context: ContextDep) -> Response:
    boards = [board.id for board in context.settings.trello.boards]
    context.metrics.refresh(context.store, boards, context.health.last_success())
    payload, content_type = context.metrics.render()
    return Response(payload, media_type=content_type)
