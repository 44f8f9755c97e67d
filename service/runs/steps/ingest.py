"""Ingest: read a file (an upload, a file under the import roots, or the Humanloop export) into a dataset."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
from pydantic import Field, field_validator

from service.errors import InvalidInput, InvalidRecords, invalid
from service.progress import ProgressFn
from service.runs.steps.base import FollowUp, Step, StepContext, StepOptions, UploadedFile
from service.server_files import allowed_server_file
from service.workspace import Workspace

# Above this many points an ingest builds the HNSW index, so search stops being a scan.
OPTIMIZE_ABOVE = 20_000
_COLUMN = Field(None, max_length=200)


class IngestOptions(StepOptions):
    """A server file to read (inside the import roots) and how to read it."""

    path: str | None = None
    format: str | None = None
    text_column: str | None = _COLUMN
    label_column: str | None = _COLUMN
    split_column: str | None = _COLUMN
    id_column: str | None = _COLUMN
    split: Literal["training", "validation", "testing"] | None = None
    skip_invalid: bool | None = None
    defer_index: bool | None = None

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str | None) -> str | None:
        from service.datasets.readers import FORMATS

        if value is not None and value not in FORMATS:
            raise ValueError(f"{value!r} is not one of {', '.join(FORMATS)}")
        return value

    def resolved(self, ws: Workspace, dataset: str, upload: UploadedFile | None) -> Self:
        if upload is not None:
            if self.path:
                raise invalid("options.path", "an uploaded file is ingested; name no server path beside it")
            return self
        if self.path:
            return self.model_copy(update={"path": str(allowed_server_file(ws.settings, self.path, "options.path"))})
        if dataset != ws.settings.default_dataset:
            raise invalid("options.path", "is required to ingest into a dataset other than the default one")
        return self


class _CountingEmbedder:
    """Passes texts to the real embedder and reports how many were embedded (ingest progress)."""

    def __init__(self, inner: Any, progress: ProgressFn):
        self._inner = inner
        self._progress = progress

    def embed(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        vectors = self._inner.embed(texts, show_progress=False)
        self._progress(stage="embed + upsert", advance=len(texts))
        return vectors

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def run(ctx: StepContext, options: IngestOptions) -> dict[str, Any]:
    """Ingest the file; the result is the ingest report (problems cut to 50)."""
    from service.datasets.ingest import ingest, make_sources
    from service.datasets.readers import ColumnMap
    from service.fetch import humanloop_export

    ws, upload, progress = ctx.ws, ctx.upload, ctx.progress
    fmt = options.format
    if upload is not None:
        path = upload.path
    elif options.path:
        path = Path(options.path)
    else:
        path, fmt = humanloop_export(ws.settings), "humanloop"
    columns = ColumnMap(text=options.text_column or "text", label=options.label_column or "label",
                        split=options.split_column or "split", id=options.id_column or "id",
                        fixed_split=options.split or None)
    sources = make_sources([path], fmt, columns)
    existed = ws.catalog.exists(ctx.dataset)
    rejects = ws.settings.home / "rejects" / f"{ctx.dataset}-{ctx.run_id}.jsonl"
    progress(stage="validate")
    try:
        report = ingest(ws.catalog, _CountingEmbedder(ws.embedder, progress), ctx.dataset, sources,
                        skip_invalid=bool(options.skip_invalid), rejects_path=rejects,
                        batch_size=ws.settings.ingest_batch_size, defer_index=bool(options.defer_index))
    except InvalidInput as exc:
        if upload is None:
            raise
        raise _in_upload_terms(exc, path, upload.original_name) from exc
    # Remember how the file was read, so an export writes the same columns back.
    ws.catalog.update(ctx.dataset, columns={"text": columns.text, "label": columns.label, "split": columns.split,
                                             "id": columns.id, "fixed_split": columns.fixed_split},
                      source_name=upload.original_name if upload is not None else path.name)
    collection = ws.collection(ctx.dataset)
    if collection.count() > OPTIMIZE_ABOVE and hasattr(collection, "optimize"):
        progress(stage="index")
        collection.optimize()
    result = dataclasses.asdict(report)
    result["problems"] = result["problems"][:50]
    if existed and (report.inserted or report.updated) and ws.settings.retrain_accuracy_drop > 0:
        from service.predictions.triggers import check_batch

        progress(stage="check the champion on the new batch")
        # A labelled batch the champion does poorly on is news: the loop retrains (see `follow_up`).
        result["champion_check"] = check_batch(ws, ctx.dataset, path, fmt, columns,
                                               ws.settings.retrain_accuracy_drop)
    return result


def follow_up(result: dict[str, Any]) -> FollowUp | None:
    """A retrain when the champion scored worse on the new labelled batch than its test figures promised."""
    check = result.get("champion_check")
    return FollowUp("retrain", trigger="batch") if check and check.get("retrain_due") else None


# The readers speak to the command line; an upload's client knows its form fields and its own file name.
_COLUMN_FIELDS = ("text_column", "label_column", "split_column", "id_column")


def _in_upload_terms(exc: InvalidInput, path: Path, original: str) -> InvalidInput:
    """An ingest error about an uploaded file, reworded for the client: its file name rather than the
    server's temp path, form fields rather than CLI flags, and the form field at fault."""
    message = str(exc).replace(str(path), original)
    field = "form.file"
    for name in _COLUMN_FIELDS:
        flag = f"--{name.replace('_', '-')} NAME"
        if flag in message:
            message, field = message.replace(flag, f"the form field `{name}`"), f"form.{name}"
    out: InvalidInput
    if isinstance(exc, InvalidRecords):
        out = InvalidRecords(original, exc.problems, hint="fix these records, or send the form field "
                             "`skip_invalid=true` to ingest the rest and keep the rejects")
    else:
        out = InvalidInput(message)
    out.field = field
    return out


STEP = Step("ingest", "service.datasets.ingest", IngestOptions, run, takes_upload=True, follow_up=follow_up)
