"""Label Studio over HTTP: import an export (JSON, JSON_MIN or CSV), download issues / suggestions / the queue
as tasks, the labelling config, the webhook receiver, and where the dataset's project stands."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from service.api.deps import DatasetName, StateDep, Writer
from service.api.errors import READ_ERRORS, WRITE_ERRORS
from service.api.schemas import ImportOut
from service.choices import DEFAULT_STRATEGY, QueueStrategy
from service.errors import invalid
from service.labelstudio import formats, importer, webhook
from service.labelstudio.sync import load_state
from service.labelstudio.tasks import config_labels, label_studio_chunks, label_studio_config

router = APIRouter(prefix="/api/datasets/{dataset}", tags=["label-studio"], responses=READ_ERRORS)

TaskKind = Literal["queue", "issues", "suggestions"]
MAX_TASKS = 100_000
IMPORT_BODY = {"requestBody": {"required": True, "description": "A Label Studio export: JSON (a list of tasks), "
                               "JSON_MIN (a list of flat rows) or CSV/TSV (text/csv)", "content": {
                                   "application/json": {"schema": {"type": "array", "items": {},
                                                                   "maxItems": MAX_TASKS}},
                                   "text/csv": {"schema": {"type": "string"}}}}}


def _encoded(chunks: Iterator[str]) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk.encode("utf-8")


@router.post("/annotations/label-studio", operation_id="import_label_studio", response_model=ImportOut,
             dependencies=[Writer], responses=WRITE_ERRORS, openapi_extra=IMPORT_BODY)
async def import_label_studio(
    dataset: DatasetName, state: StateDep, request: Request,
    user: Annotated[str, Query(min_length=1, max_length=100, description="Annotator when a task names none")]
    = "label-studio",
    allow_new_label: bool = False,
    force: Annotated[bool, Query(description="Apply choices even to points changed after the export")] = False,
) -> dict[str, Any]:
    """Apply a Label Studio export: a choice equal to the current label marks it reviewed, one equal to the
    suggestion accepts it, another relabels; points changed after the export are reported as `stale` (who and
    when) and left alone unless `force`. Tasks that cannot apply are listed in `skipped` with the reason."""
    from fastapi.concurrency import run_in_threadpool

    state.workspace.catalog.get(dataset)
    fmt, tasks = formats.parse_body(await request.body(), request.headers.get("content-type"))
    if len(tasks) > MAX_TASKS:
        raise invalid("body", f"holds {len(tasks)} tasks; send at most {MAX_TASKS} per request")
    options = {"user": user, "allow_new_label": allow_new_label, "force": force, "users": webhook.user_lookup(
        state.settings)}
    return await run_in_threadpool(importer.import_tasks, state, dataset, tasks, fmt=fmt, **options)


@router.get(
    "/label-studio/tasks", operation_id="download_label_studio_tasks", response_class=StreamingResponse,
    responses={200: {"description": "A JSON array of Label Studio tasks", "content": {"application/json": {}}}},
)
def download_label_studio_tasks(
    dataset: DatasetName, state: StateDep,
    kind: Annotated[TaskKind, Query(description="queue: points to label next; issues: labelled points not yet "
                                    "reviewed, most suspicious first; suggestions: unlabelled points")] = "queue",
    strategy: Annotated[QueueStrategy, Query(description="queue strategy")] = DEFAULT_STRATEGY,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    seed: Annotated[int, Query(ge=0, le=2**31)] = 0,
    only_flagged: Annotated[bool, Query(description="issues: only points flagged label_issue")] = False,
) -> StreamingResponse:
    """Tasks carrying data.point_id, data.revision and data.dataset, the suggestion as a pre-annotation; they
    import back through POST /annotations/label-studio."""
    from service import exports

    ws = state.workspace
    ws.catalog.get(dataset)
    if kind != "queue":
        exports.load_report(ws.settings, dataset)  # never analysed: 404 saying to analyze, not an empty file
    # Chosen before the response starts, so a bad request is an error answer, not a truncated file.
    rows = list(exports.ROWS[kind][1](ws, dataset, strategy=strategy, limit=limit, seed=seed,
                                      only_flagged=only_flagged))
    headers = {"Content-Disposition": f'attachment; filename="{dataset}-{kind}-tasks.json"'}
    return StreamingResponse(_encoded(label_studio_chunks(rows, dataset)), media_type="application/json",
                             headers=headers)


@router.get("/label-studio/config", operation_id="label_studio_config", response_class=Response,
            responses={200: {"description": "The labelling config (XML)", "content": {"application/xml": {}}}})
def get_label_studio_config(dataset: DatasetName, state: StateDep) -> Response:
    """The labelling config of a project for this dataset's tasks: single choice over its labels."""
    state.workspace.catalog.get(dataset)
    return Response(label_studio_config(config_labels(state.workspace, dataset)), media_type="application/xml")


@router.get("/label-studio", operation_id="label_studio_status")
def label_studio_status(dataset: DatasetName, state: StateDep) -> dict[str, Any]:
    """Where the dataset's Label Studio project stands: server, project, tasks sent, last push and pull."""
    state.workspace.catalog.get(dataset)
    sync = load_state(state.settings, dataset)
    return {"url": sync.url or state.settings.label_studio_url, "project_id": sync.project_id,
            "tasks": len(sync.tasks), "annotations_pulled": len(sync.pulled), "last_push": sync.last_push,
            "last_pull": sync.last_pull, "connected": bool(state.settings.label_studio_url
                                                           and state.settings.label_studio_token),
            "webhook": state.settings.label_studio_webhook_secret is not None}


@router.post("/label-studio/webhook", operation_id="label_studio_webhook",
             responses={**WRITE_ERRORS, 503: {"description": "No webhook secret is configured"}})
async def label_studio_webhook(
    dataset: DatasetName, state: StateDep, request: Request,
    secret: Annotated[str | None, Header(alias=webhook.SECRET_HEADER, max_length=500)] = None,
) -> dict[str, Any]:
    """Label Studio's webhook (annotation created / updated / deleted): applied like a pulled annotation.
    Configure it in Label Studio with the header X-Data-Debugger-Secret set to the service's secret."""
    import json

    from fastapi.concurrency import run_in_threadpool

    webhook.check_secret(state.settings, secret)
    state.workspace.catalog.get(dataset)
    try:
        payload = json.loads(await request.body() or b"null")
    except json.JSONDecodeError as exc:
        raise invalid("body", f"is not JSON ({exc.msg}); Label Studio sends JSON payloads") from None
    return await run_in_threadpool(webhook.handle, state, dataset, payload)
