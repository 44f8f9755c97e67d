"""The labelling queue as a streamed download (CSV, JSONL or Label Studio tasks)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from service import exports
from service.api.deps import DatasetName, StateDep
from service.api.errors import READ_ERRORS
from service.choices import DEFAULT_STRATEGY, EXTENSIONS, MEDIA_TYPES, ExportFormat, QueueStrategy
from service.queue import build_queue

router = APIRouter(prefix="/api/datasets/{dataset}", tags=["queue"], responses=READ_ERRORS)



def _encoded(chunks: Iterator[str]) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk.encode("utf-8")


STRATEGY_HELP = ("margin (default): the model's hesitation between its top two answers; hybrid: that plus the "
                 "neighbours' contradiction, weighted to high-error clusters, diverse, no near-duplicates")


@router.get(
    "/queue", operation_id="download_queue", response_class=StreamingResponse,
    responses={200: {"description": "The queue file", "content": {m: {} for m in MEDIA_TYPES.values()}}},
)
def download_queue(
    dataset: DatasetName, state: StateDep,
    strategy: Annotated[QueueStrategy, Query(description=STRATEGY_HELP)] = DEFAULT_STRATEGY,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    format: ExportFormat = "csv",
    seed: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> StreamingResponse:
    """The next unlabelled points to label, chosen by `strategy`, as a download; Label Studio tasks carry
    the suggestion as a pre-annotation and import back through POST /annotations/label-studio."""
    ws = state.workspace
    ws.catalog.get(dataset)
    # Chosen before the response starts, so a bad request is an error answer, not a truncated file.
    rows = build_queue(ws, dataset, strategy, limit, seed=seed)
    if format == "csv":
        chunks = exports.csv_chunks(exports.QUEUE_COLUMNS, rows)
    elif format == "jsonl":
        chunks = exports.jsonl_chunks(exports.QUEUE_COLUMNS, rows)
    else:
        chunks = exports.label_studio_chunks(rows, dataset)
    headers = {"Content-Disposition": f'attachment; filename="{dataset}-queue-{strategy}.{EXTENSIONS[format]}"'}
    return StreamingResponse(_encoded(chunks), media_type=MEDIA_TYPES[format], headers=headers)
