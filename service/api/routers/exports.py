"""The analysis exports (points, issues, suggestions, clusters, the queue) as a streamed download, the same
files `data-debugger export` writes (service/exports.py builds both)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from service import exports
from service.api.deps import DatasetName, StateDep
from service.api.errors import READ_ERRORS
from service.choices import DEFAULT_STRATEGY, EXTENSIONS, MEDIA_TYPES, ExportFormat, ExportKind, QueueStrategy

router = APIRouter(prefix="/api/datasets/{dataset}", tags=["exports"], responses=READ_ERRORS)


def _encoded(chunks: Iterator[str]) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk.encode("utf-8")


@router.get(
    "/exports/{kind}", operation_id="download_export", response_class=StreamingResponse,
    responses={200: {"description": "The export file", "content": {m: {} for m in MEDIA_TYPES.values()}}},
)
def download_export(
    dataset: DatasetName, kind: Annotated[ExportKind, Path(description="What to export")], state: StateDep,
    format: ExportFormat = "csv",
    strategy: Annotated[QueueStrategy, Query(description="queue: how to rank")] = DEFAULT_STRATEGY,
    limit: Annotated[int | None, Query(ge=1, le=100_000_000, description="queue: how many (default 50); issues, "
                                       "suggestions: at most")] = None,
    seed: Annotated[int, Query(ge=0, le=2**31)] = 0,
    only_flagged: Annotated[bool, Query(description="issues: only points flagged label_issue")] = False,
) -> StreamingResponse:
    """One export in CSV, JSONL or (issues, suggestions, the queue) Label Studio tasks, as
    `data-debugger export KIND` writes it."""
    ws = state.workspace
    options = {"strategy": strategy, "seed": seed, "only_flagged": only_flagged}
    if limit is not None:
        options["limit"] = limit
    chunks = exports.stream_export(kind, ws, dataset, format, **options)
    # The first chunk is made now: the rows are chosen (and sorted) before it, so a failure is an error
    # answer rather than a cut file.
    first = next(chunks, "")
    headers = {"Content-Disposition": f'attachment; filename="{dataset}-{kind}.{EXTENSIONS[format]}"'}
    return StreamingResponse(_encoded(chain([first], chunks)), media_type=MEDIA_TYPES[format], headers=headers)
