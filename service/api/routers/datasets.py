"""Datasets: list, detail, create by upload, delete, and export in the original format."""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from embeddings.store import check_name
from service.analyses.report import delete_report, incomplete_message, interrupted_writeback
from service.api import reports
from service.api.deps import DatasetName, StateDep, WorkspaceDep, Writer
from service.api.errors import READ_ERRORS, WRITE_ERRORS
from service.api.exporting import EXPORT_FORMATS, MEDIA, SUFFIX, export_format, export_stream
from service.api.schemas import DatasetDetail, DatasetSummary, Page, UploadOut
from service.api.state import ApiState
from service.api.uploads import receive_upload
from service.datasets.readers import FORMATS, detect_format
from service.errors import Conflict, InvalidInput, NotFound, invalid
from service.runs.steps import UploadedFile
from service.workspace import dataset_counts

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["datasets"], responses=READ_ERRORS)

# How long an upload with wait=true waits for its ingest before answering 202 with the run to poll.
UPLOAD_WAIT_SECONDS = 50.0
UPLOAD_FIELDS = ("name", "format", "text_column", "label_column", "split_column", "id_column", "split",
                 "skip_invalid", "defer_index", "wait")
_COLUMN = {"type": "string", "minLength": 1, "maxLength": 200}
UPLOAD_SCHEMA = {
    "type": "object",
    "required": ["file", "name"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "Humanloop JSON, CSV/TSV, JSONL or Parquet"},
        "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,57}$", "description": "Dataset name"},
        "format": {"type": "string", "enum": list(FORMATS), "description": "Default: from the file name"},
        "text_column": _COLUMN, "label_column": _COLUMN, "split_column": _COLUMN, "id_column": _COLUMN,
        "split": {"type": "string", "enum": ["training", "validation", "testing"],
                  "description": "One split for every record of the file"},
        "skip_invalid": {"type": "boolean", "default": False,
                         "description": "Ingest the good records and keep the rejects (else a bad record is a 422)"},
        "defer_index": {"type": "boolean", "default": False,
                        "description": "Leave the vector index to analyze (when predict and analyze follow)"},
        "wait": {"type": "boolean", "default": True,
                 "description": "Answer when ingested (201/200); false, or an ingest not done within "
                 f"{UPLOAD_WAIT_SECONDS:.0f} s, answers 202 with the run to poll"},
    },
}


def summary_of(ws, name: str) -> dict[str, Any]:
    entry = ws.catalog.get(name)
    counts = dataset_counts(ws.collection(name))
    keep = ("format", "embedding_model", "dim", "created_at", "updated_at")
    return {"name": name, **{k: entry.get(k) for k in keep}, **counts}


def detail_of(state: ApiState, name: str) -> dict[str, Any]:
    """Counts by split/label/prediction/status, the last analysis and the model versions seen."""
    ws = state.workspace
    out = summary_of(ws, name)
    collection = ws.collection(name)
    entry = ws.catalog.get(name)
    out["by_prediction"] = dict(sorted(collection.facet("prediction").items(), key=lambda kv: (-kv[1], kv[0])))
    out["by_status"] = dict(sorted(collection.facet("prediction_status").items()))
    out["last_ingest_at"] = entry.get("last_ingest_at")
    report = reports.maybe_report(state, name)
    out["last_analysis_at"] = report.get("created_at") if report else None
    out["analysis_run"] = report.get("run_id") if report else None
    marker = interrupted_writeback(state.settings, name)
    out["analysis_state"] = "incomplete" if marker else "complete" if report else "none"
    out["analysis_warning"] = incomplete_message(name, marker) if marker else None
    out["model_versions"] = reports.model_versions(state, name)
    out["label_revision"] = len(state.audit(name))
    return out


@router.get("/datasets", operation_id="list_datasets", response_model=Page[DatasetSummary])
def list_datasets(ws: WorkspaceDep) -> dict[str, Any]:
    """Every dataset with its counts by split and label."""
    items = []
    for name in ws.catalog.names():
        try:
            items.append(summary_of(ws, name))
        except NotFound:  # a catalog entry whose collection a crashed delete removed
            log.warning("dataset %s has a catalog entry but no collection; skipped", name)
    return {"data": items, "count": len(items), "next_cursor": None}


@router.get("/datasets/{dataset}", operation_id="get_dataset", response_model=DatasetDetail)
def get_dataset(dataset: DatasetName, state: StateDep) -> dict[str, Any]:
    """One dataset: counts by split, label, prediction and status, last analysis, model versions."""
    return detail_of(state, dataset)


def _flag(fields: dict[str, str], name: str, default: bool) -> bool:
    raw = fields.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise invalid(f"form.{name}", f"must be true or false, got {raw!r}")


def _upload_options(fields: dict[str, str]) -> tuple[str, dict[str, Any], bool]:
    unknown = sorted(set(fields) - set(UPLOAD_FIELDS))
    if unknown:
        raise invalid(f"form.{unknown[0]}", f"unknown form field(s) {unknown}; the fields are file, "
                      f"{', '.join(UPLOAD_FIELDS)}")
    name = (fields.get("name") or "").strip()
    if not name:
        raise invalid("form.name", "is missing: name the dataset")
    try:
        check_name(name)
    except InvalidInput as exc:
        raise invalid("form.name", str(exc)) from exc
    fmt = fields.get("format") or None
    if fmt is not None and fmt not in FORMATS:
        raise invalid("form.format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    options: dict[str, Any] = {"format": fmt, "skip_invalid": _flag(fields, "skip_invalid", False),
                               "defer_index": _flag(fields, "defer_index", False)}
    for key in ("text_column", "label_column", "split_column", "id_column", "split"):
        value = (fields.get(key) or "").strip()
        if value:
            options[key] = value
    return name, options, _flag(fields, "wait", True)


@router.post(
    "/datasets", operation_id="create_dataset", response_model=UploadOut, status_code=201,
    dependencies=[Writer],
    responses={**WRITE_ERRORS, 200: {"model": UploadOut, "description": "Records added to an existing dataset"},
               202: {"model": UploadOut, "description": "Accepted (wait=false): poll the run"}},
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": UPLOAD_SCHEMA}}}},
)
async def create_dataset(request: Request, response: Response, state: StateDep) -> dict[str, Any]:
    """Upload a file and ingest it with the CLI's readers and validation (a new name creates the dataset;
    an existing one gets the records added or updated). The body streams to disk under a size limit."""
    folder = state.settings.home / "uploads"
    path, original, fields = await receive_upload(request, state.settings.max_upload_bytes, folder)
    try:
        name, options, wait = _upload_options(fields)
        if options["format"] is None:
            try:
                detect_format(path)
            except InvalidInput as exc:
                raise invalid("form.format", f"cannot tell the format of {original!r} from its name; send the "
                              f"form field `format` ({', '.join(FORMATS)})") from exc
        ws = await run_in_threadpool(lambda: state.workspace)
        existed = await run_in_threadpool(ws.catalog.exists, name)
        run, future = state.runs.submit(name, "ingest", options, cleanup=(path.parent,),
                                        upload=UploadedFile(path, original))
    except BaseException:
        shutil.rmtree(path.parent, ignore_errors=True)
        raise
    if wait:
        try:
            # Shielded: a client that gives up does not cancel the ingest, only its wait.
            done = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), UPLOAD_WAIT_SECONDS)
        except TimeoutError:
            wait = False  # queued behind other runs, or a big file: answer with the run to poll
    if not wait:
        response.status_code = 202
        return {"dataset": None, "run": run.to_dict()}
    if done.status != "succeeded":
        raise state.runs.exception(done.id) or Conflict(done.error["message"] if done.error else "ingest failed")
    response.status_code = 200 if existed else 201
    detail = await run_in_threadpool(detail_of, state, name)
    return {"dataset": detail, "run": done.to_dict()}


@router.delete("/datasets/{dataset}", operation_id="delete_dataset", status_code=204,
               dependencies=[Writer], responses=WRITE_ERRORS)
def delete_dataset(dataset: DatasetName, state: StateDep) -> Response:
    """Delete a dataset with its audit log and analysis report (trained models stay in the registry)."""
    ws = state.workspace
    ws.catalog.get(dataset)
    active = [r for r in state.runs.list(dataset) if r.status in ("queued", "running")]
    if active:
        raise Conflict(f"dataset {dataset!r} has {len(active)} run(s) queued or running ({active[0].id}); "
                       "wait for them to finish")
    with state.dataset_lock(dataset):
        ws.catalog.drop(dataset)
        state.audits.drop(ws.store, dataset)
    delete_report(state.settings, dataset)
    state.views.invalidate(dataset)
    return Response(status_code=204)


@router.get(
    "/datasets/{dataset}/export", operation_id="export_dataset",
    response_class=StreamingResponse,
    responses={200: {"description": "The dataset file", "content": {m: {} for m in MEDIA.values()}}},
)
def export_dataset(
    dataset: DatasetName, ws: WorkspaceDep,
    format: Annotated[str | None, Query(description=f"One of {', '.join(EXPORT_FORMATS)}; default: "
                                       "the dataset's own format")] = None,
    spreadsheet_safe: Annotated[bool, Query(description="csv/tsv only: prefix text cells that a spreadsheet "
                                            "would run as a formula (=, +, -, @, tab, CR, LF) with '. Default "
                                            "false: the file is the data, exactly, and reads back as it was")] = False,
) -> StreamingResponse:
    """The corrected dataset (current labels) in its original format, streamed."""
    entry = ws.catalog.get(dataset)
    fmt = export_format(entry, format)
    collection = ws.collection(dataset)
    headers = {"Content-Disposition": f'attachment; filename="{dataset}.{SUFFIX[fmt]}"'}
    body = export_stream(collection, entry, fmt, spreadsheet_safe)
    return StreamingResponse(body, media_type=MEDIA[fmt], headers=headers)
