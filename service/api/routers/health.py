"""Health: whether the store answers and the home's disk has room, for load balancers and the dashboard's
start-up wait."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.api.deps import StateDep
from service.api.schemas import DiskOut, HealthOut
from service.api.state import ApiState
from service.diskspace import home_space, human

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["health"])

VERSION = "0.1.0"


@router.get("/health", operation_id="api_health", response_model=HealthOut,
            responses={503: {"model": HealthOut, "description": "The store cannot be reached"}})
def health(state: StateDep) -> JSONResponse:
    """200 when the store answers; 503 (same shape, with the reason) while it cannot be opened or reached.
    `disk.low` says the home's disk is below the free-space reserve: writes answer 507, reads go on."""
    pending = state.runs.pending()
    backend = state.settings.resolved_backend
    disk = _disk(state)
    try:
        datasets = len(state.workspace.catalog.names())
    except Exception as exc:  # noqa: BLE001 - any failure to reach the store means unavailable
        log.warning("health: store unavailable: %s", exc)
        body = HealthOut(status="unavailable", store=backend, runs_pending=pending, version=VERSION, disk=disk,
                         reason=str(exc))
        return JSONResponse(body.model_dump(), status_code=503)
    ready = state.query_embedder.ready
    body = HealthOut(status="ok", store=backend, datasets=datasets, runs_pending=pending, embedder_ready=ready,
                     version=VERSION, disk=disk)
    return JSONResponse(body.model_dump())


def _disk(state: ApiState) -> DiskOut | None:
    try:
        space = home_space(state.settings)
    except OSError as exc:  # the home's file system is gone (an unmounted volume): say so, keep answering
        log.warning("health: free space under %s unknown: %s", state.settings.home, exc)
        return None
    if space.low:
        log.warning("health: %s has %s free, below the reserve of %s: writes are refused", space.path,
                    human(space.free_bytes), human(space.reserve_bytes))
    return DiskOut(path=str(space.path), free_bytes=space.free_bytes, reserve_bytes=space.reserve_bytes,
                   low=space.low)
