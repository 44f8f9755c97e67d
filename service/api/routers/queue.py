"""The labelling queue as a streamed download (CSV, JSONL or Label Studio tasks)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from service.api.deps import DatasetName, StateDep
from service.api.errors import READ_ERRORS
from service.errors import Unavailable

router = APIRouter(prefix="/api/datasets/{dataset}", tags=["queue"], responses=READ_ERRORS)

QueueFormat = Literal["csv", "jsonl", "label-studio"]
Strategy = Literal["entropy", "margin", "least_confidence", "random", "knn_disagreement", "hybrid"]
MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson", "label-studio": "application/json"}
SUFFIX = {"csv": "csv", "jsonl": "jsonl", "label-studio": "json"}


def _encoded(chunks: Iterator[str]) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk.encode("utf-8")


@router.get(
    "/queue", operation_id="download_queue", response_class=StreamingResponse,
    responses={200: {"description": "The queue file", "content": {m: {} for m in MEDIA.values()}}},
)
def download_queue(
    dataset: DatasetName, state: StateDep,
    strategy: Annotated[Strategy, Query(description="hybrid: uncertainty + diversity across clusters, "
                                        "weighted to high-error clusters, no near-duplicates")] = "hybrid",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    format: QueueFormat = "csv",
    seed: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> StreamingResponse:
    """The next unlabelled points to label, chosen by `strategy`, as a download; Label Studio tasks carry
    the suggestion as a pre-annotation and import back through POST /annotations/label-studio."""
    try:
        from service import exports
        from service.queue import build_queue
    except ModuleNotFoundError as exc:
        raise Unavailable("the labelling queue is not part of this installation") from exc
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
    headers = {"Content-Disposition": f'attachment; filename="{dataset}-queue-{strategy}.{SUFFIX[format]}"'}
    return StreamingResponse(_encoded(chunks), media_type=MEDIA[format], headers=headers)
