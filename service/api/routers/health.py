"""Health: whether the store answers, for load balancers and the dashboard's start-up wait."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.api.deps import StateDep
from service.api.schemas import HealthOut

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["health"])

VERSION = "0.1.0"


@router.get("/health", operation_id="api_health", response_model=HealthOut,
            responses={503: {"model": HealthOut, "description": "The store cannot be reached"}})
def health(state: StateDep) -> JSONResponse:
    """200 when the store answers; 503 (same shape) while it cannot be opened or reached."""
    pending = state.runs.pending()
    backend = state.settings.resolved_backend
    try:
        datasets = len(state.workspace.catalog.names())
    except Exception as exc:  # noqa: BLE001 - any failure to reach the store means unavailable
        log.warning("health: store unavailable: %s", exc)
        body = HealthOut(status="unavailable", store=backend, runs_pending=pending, version=VERSION)
        return JSONResponse(body.model_dump(), status_code=503)
    ready = state.query_embedder.ready
    body = HealthOut(status="ok", store=backend, datasets=datasets, runs_pending=pending, embedder_ready=ready,
                     version=VERSION)
    return JSONResponse(body.model_dump())
