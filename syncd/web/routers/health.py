"""``GET /healthz`` (liveness: the process answers) and ``GET /readyz`` (the sync is fresh).

`/readyz` is 200 when every configured board synced within 2 × ``poll_seconds``, else 503 with
the reason; its body is the readiness provider's (boards, errors, Figma rate limits, the duties
this replica holds). A store that cannot be read is a 503 with one line, never a 500.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from syncd.web.deps import ContextDep

router = APIRouter()


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(context: ContextDep) -> JSONResponse:
    try:
        ready, body = context.health.readiness()
    except Exception as exc:  # e.g. the store is unreachable
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
    return JSONResponse(body, status_code=200 if ready else 503)
