"""The labelling queue as a streamed download (CSV, JSONL or Label Studio tasks)."""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from service.api.deps import DatasetName, StateDep
from service.api.errors import READ_ERRORS
from service.errors import Unavailable

router = APIRouter(prefix="/api/datasets/{dataset}", tags=["queue"], responses=READ_ERRORS)

QueueFormat = Literal["csv", "jsonl", "label-studio"]
MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson", "label-studio": "application/json"}
SUFFIX = {"csv": "csv", "jsonl": "jsonl", "label-studio": "json"}


def _modules() -> tuple[Any, Any]:
    try:
        from service import exports
        from service import queue as queue_module
    except ModuleNotFoundError as exc:
        raise Unavailable("the labelling queue is not part of this installation yet") from exc
    return queue_module, exports


@router.get(
    "/queue", operation_id="download_queue", response_class=StreamingResponse,
    responses={200: {"description": "The queue file", "content": {m: {} for m in MEDIA.values()}}},
)
def download_queue(
    dataset: DatasetName, state: StateDep,
    strategy: Annotated[str, Query(max_length=40, description="entropy, margin, least_confidence, random, "
                                   "knn_disagreement or hybrid")] = "hybrid",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    format: QueueFormat = "csv",
) -> StreamingResponse:
    """The next points to label, chosen by `strategy`, as a download."""
    queue_module, exports = _modules()
    ws = state.workspace
    ws.catalog.get(dataset)
    rows = queue_module.build_queue(ws, dataset, strategy=strategy, limit=limit)
    buffer = io.StringIO()
    exports.write_queue(rows, buffer, format)
    data = buffer.getvalue().encode()
    headers = {"Content-Disposition": f'attachment; filename="{dataset}-queue-{strategy}.{SUFFIX[format]}"'}
    return StreamingResponse(iter([data]), media_type=MEDIA[format], headers=headers)
