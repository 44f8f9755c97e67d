"""Relabelling with an audit trail: review actions on a point, the change log, undo (Label Studio imports:
routers/labelstudio.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query

from service.api.deps import DatasetName, StateDep, Writer
from service.api.errors import READ_ERRORS, WRITE_ERRORS
from service.api.loop import queue_retrain_if_due
from service.api.queries import decode_cursor, encode_cursor, point_out
from service.api.schemas import ChangeOut, LabelIn, Page, PointOut, UndoIn
from service.review.actions import ReviewAction, Reviewed, resolve_point

router = APIRouter(prefix="/api/datasets/{dataset}", tags=["review"], responses=READ_ERRORS)


class ReviewedPoint(PointOut):
    """The point after the change, and the change as logged."""

    change: ChangeOut


def _answer(done: Reviewed) -> dict[str, Any]:
    return {**point_out(done.point_id, done.payload), "change": done.change}


@router.post("/points/{point_id}/label", operation_id="label_point", response_model=ReviewedPoint,
             dependencies=[Writer], responses=WRITE_ERRORS)
def label_point(
    dataset: DatasetName, state: StateDep, body: LabelIn,
    point_id: Annotated[str, Path(min_length=1, max_length=200, description="Point id or record id",
                                  examples=["601188"])],
) -> dict[str, Any]:
    """Relabel, accept the suggestion, or mark reviewed/ambiguous, with a reason; the change is appended to
    the audit log. Send the `revision` you saw: a stale one answers 409 and changes nothing."""
    done = state.apply_review(dataset, point_id, ReviewAction(**body.model_dump()))
    queue_retrain_if_due(state, dataset)
    return _answer(done)


@router.get("/changes", operation_id="list_changes", response_model=Page[ChangeOut])
def list_changes(
    dataset: DatasetName, state: StateDep,
    point: Annotated[str | None, Query(max_length=200, description="Only changes of this point")] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """The audit log, newest first. `status` says whether each change reached its point: `applied`,
    `pending` (being written) or `not_applied` (the service stopped before the point was written)."""
    state.workspace.catalog.get(dataset)
    audit = state.audit(dataset)
    offset = decode_cursor(cursor, int) or 0
    if point is None:
        data = audit.newest(offset, limit)
        count = len(audit)
    else:
        pid = resolve_point(point)
        matching = [e for e in reversed(audit.all()) if e.get("point_id") == pid]
        data, count = matching[offset: offset + limit], len(matching)
    nxt = offset + limit
    return {"data": data, "count": count, "next_cursor": encode_cursor(nxt) if nxt < count else None}


@router.post("/changes/{change_id}/undo", operation_id="undo_change", response_model=ReviewedPoint,
             dependencies=[Writer], responses=WRITE_ERRORS)
def undo_change(
    dataset: DatasetName, state: StateDep,
    change_id: Annotated[int, Path(ge=1, le=2**53)],
    body: Annotated[UndoIn | None, Body()] = None,
) -> dict[str, Any]:
    """Revert a change by appending its inverse (the log is never rewritten). 409 when it was already
    undone, never applied, or the point changed after it."""
    body = body or UndoIn()
    state.workspace.catalog.get(dataset)
    return _answer(state.undo_review(dataset, change_id, body.user, body.reason))
