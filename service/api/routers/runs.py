"""Runs: start ingest / train / predict / analyze for a dataset in the background, and poll them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from embeddings.store import check_name
from service.api.deps import DatasetName, StateDep, Writer
from service.api.errors import READ_ERRORS, WRITE_ERRORS
from service.api.queries import decode_cursor, encode_cursor
from service.api.schemas import Page, RunIn, RunOut, RunStatus
from service.errors import NotFound

router = APIRouter(prefix="/api", tags=["runs"], responses=READ_ERRORS)


@router.post("/datasets/{dataset}/runs", operation_id="start_run", response_model=RunOut, status_code=202,
             dependencies=[Writer], responses=WRITE_ERRORS)
def start_run(dataset: DatasetName, body: RunIn, state: StateDep) -> dict[str, Any]:
    """Queue a step; runs execute one at a time off the event loop. Poll GET /api/runs/{id}."""
    check_name(dataset)
    if body.step != "ingest":
        state.workspace.catalog.get(dataset)  # 404 now rather than a failed run later
    options = {**body.options, **(body.model_extra or {})}
    run, _ = state.runs.submit(dataset, body.step, options)
    return run.to_dict()


@router.get("/runs", operation_id="list_runs", response_model=Page[RunOut])
def list_runs(
    state: StateDep,
    dataset: Annotated[str | None, Query(max_length=64)] = None,
    status: RunStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Runs, newest first."""
    runs = state.runs.list(dataset, status)
    offset = decode_cursor(cursor, int) or 0
    page = [r.to_dict() for r in runs[offset: offset + limit]]
    nxt = offset + limit
    return {"data": page, "count": len(runs), "next_cursor": encode_cursor(nxt) if nxt < len(runs) else None}


@router.get("/runs/{run_id}", operation_id="get_run", response_model=RunOut)
def get_run(run_id: Annotated[str, Path(max_length=64)], state: StateDep) -> dict[str, Any]:
    """A run's status, progress (stage, done, total), error and result."""
    run = state.runs.get(run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}; list them with GET /api/runs")
    return run.to_dict()
