"""``GET /metrics``: the Prometheus text exposition, gauges refreshed from the store first.

Open, as the contract says (like ``/healthz`` and ``/readyz``): it carries counts, no names.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from syncd.web.deps import ContextDep

router = APIRouter()


@router.get("/metrics")
def prometheus(context: ContextDep) -> Response:
    boards = [board.id for board in context.settings.trello.boards]
    context.metrics.refresh(context.store, boards, context.health.last_success())
    payload, content_type = context.metrics.render()
    return Response(payload, media_type=content_type)
