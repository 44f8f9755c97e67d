"""Relabelling with an audit trail: review actions on a point, the change log, undo, Label Studio import."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query

from service.api import review
from service.api.deps import DatasetName, StateDep, Writer, get_audit
from service.api.errors import READ_ERRORS, WRITE_ERRORS
from service.api.loop import queue_retrain_if_due
from service.api.queries import decode_cursor, encode_cursor, resolve_id
from service.api.schemas import ChangeOut, ImportOut, LabelIn, Page, PointOut, UndoIn

router = APIRouter(prefix="/api/datasets/{dataset}", tags=["review"], responses=READ_ERRORS)

MAX_TASKS = 100_000


class ReviewedPoint(PointOut):
    """The point after the change, and the change as logged."""

    change: ChangeOut


@router.post("/points/{point_id}/label", operation_id="label_point", response_model=ReviewedPoint,
             dependencies=[Writer], responses=WRITE_ERRORS)
def label_point(
    dataset: DatasetName, state: StateDep, body: LabelIn,
    point_id: Annotated[str, Path(min_length=1, max_length=200, description="Point id or record id",
                                  examples=["601188"])],
) -> dict[str, Any]:
    """Relabel, accept the suggestion, or mark reviewed/ambiguous, with a reason; the change is appended to
    the audit log. Send the `revision` you saw: a stale one answers 409 and changes nothing."""
    point, change = review.apply_action(state, dataset, point_id, body)
    queue_retrain_if_due(state, dataset)
    return {**point, "change": change}


@router.get("/changes", operation_id="list_changes", response_model=Page[ChangeOut])
def list_changes(
    dataset: DatasetName, state: StateDep,
    point: Annotated[str | None, Query(max_length=200, description="Only changes of this point")] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """The audit log, newest first."""
    state.workspace.catalog.get(dataset)
    audit = get_audit(state, dataset)
    offset = decode_cursor(cursor, int) or 0
    if point is None:
        data = audit.newest(offset, limit)
        count = len(audit)
    else:
        pid = resolve_id(point)
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
    undone or the point changed after it."""
    body = body or UndoIn()
    state.workspace.catalog.get(dataset)
    point, change = review.undo(state, dataset, change_id, body.user, body.reason)
    return {**point, "change": change}


@router.post("/annotations/label-studio", operation_id="import_label_studio", response_model=ImportOut,
             dependencies=[Writer], responses=WRITE_ERRORS)
def import_label_studio(
    dataset: DatasetName, state: StateDep,
    tasks: Annotated[list[Any], Body(max_length=MAX_TASKS, description="A Label Studio JSON export (a list "
                                     "of tasks); tasks that are not objects are skipped")],
    user: Annotated[str, Query(min_length=1, max_length=100, description="Annotator when a task names none")]
    = "label-studio",
    allow_new_label: bool = False,
) -> dict[str, Any]:
    """Apply a Label Studio export: each task's latest choice relabels its point (data.point_id, else
    data.record_id or data.id), logged like any change. Tasks that cannot apply are listed in `skipped`."""
    state.workspace.catalog.get(dataset)
    result = review.import_label_studio(state, dataset, tasks, user, allow_new_label)
    if result.get("applied"):
        queue_retrain_if_due(state, dataset)
    return result
