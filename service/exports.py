"""Exports of what analyze wrote: points, issues, suggestions, clusters and the labelling queue, as CSV,
JSONL or Label Studio tasks, written to a path or stream, or yielded as text chunks for an HTTP download.

    write_export(kind, ws, dataset, out, fmt, **options) -> rows written (out: a path, "-" or a text stream)
    stream_export(kind, ws, dataset, fmt, **options)    -> iterator of str chunks (a StreamingResponse body)

Label Studio tasks (service.labelstudio.tasks) carry the point id, its revision and the dataset, and the
suggested label as a pre-annotation, so they import straight into a text-classification project and back.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from embeddings.store import Collection, PointFilter, iter_points
from service.analyses.registry import declared_fields, flag_values
from service.analyses.report import load_report
from service.choices import DEFAULT_STRATEGY, EXPORT_KINDS, FORMATS
from service.errors import InvalidInput

# The Label Studio writer lives in service.labelstudio; its names stay importable from here.
from service.labelstudio.tasks import label_studio_chunks, label_studio_config, label_studio_task  # noqa: F401
from service.spreadsheet import safe_cell

if TYPE_CHECKING:
    from service.workspace import Workspace

KINDS = EXPORT_KINDS
# Kinds whose rows carry a text and a suggested label, so they can become Label Studio tasks.
LABEL_STUDIO_KINDS = ("issues", "suggestions", "queue")

POINT_COLUMNS = [
    "id", "text", "label", "split", "prediction", "confidence", "entropy", "cluster", "x", "y",
    "mislabel_score", "suggested_label", "triage", "flags", *flag_values(),
    "label_quality", "knn_agreement", "knn_majority_label", "knn_majority_share", "outlier_score",
    "duplicate_group", "suggestion_confidence", "suggestion_agreement", "reasons", "model_version",
    "analysis_run",
]
POINT_COLUMNS += [name for name in declared_fields() if name not in POINT_COLUMNS]  # an analysis added since
FLAG_COLUMNS = [flag for flag in flag_values() if flag in POINT_COLUMNS]
ISSUE_COLUMNS = ["id", "text", "label", "split", "suggested_label", "mislabel_score", "triage", "reasons"]
SUGGESTION_COLUMNS = ["id", "text", "suggested_label", "confidence", "agreement"]
CLUSTER_COLUMNS = [
    "id", "name", "size", "labelled", "purity", "dominant_label", "error_rate", "issue_rate", "unlabelled_share",
    "mean_entropy", "candidate_new_intent", "keywords", "representatives", "label_distribution",
]
QUEUE_COLUMNS = [
    "rank", "id", "text", "score", "strategy", "suggested_label", "suggestion_confidence", "prediction",
    "confidence", "entropy", "margin", "cluster",
]


def _record_id(pid: Any, payload: dict[str, Any]) -> Any:
    return payload.get("record_id", pid)


def _points(collection: Collection, filter: PointFilter | None = None) -> Iterator[tuple[Any, dict[str, Any]]]:
    for page in iter_points(collection, filter, with_vectors=False, batch=5000):
        for p in page:
            yield p.id, p.payload


def point_rows(ws: Workspace, dataset: str, **_: Any) -> Iterator[dict[str, Any]]:
    """One row per point, in id order."""
    for pid, p in _points(ws.collection(dataset)):
        flags = p.get("flags") or []
        row = {c: p.get(c) for c in POINT_COLUMNS}
        row["id"] = _record_id(pid, p)
        row["flags"] = flags
        row.update({flag: flag in flags for flag in FLAG_COLUMNS})
        yield row


def issue_rows(ws: Workspace, dataset: str, only_flagged: bool = False, limit: int | None = None,
               **_: Any) -> Iterator[dict[str, Any]]:
    """Labelled points not yet reviewed, most suspicious first (highest mislabel_score; unscored points last)."""
    rows = []
    filter = PointFilter(empty={"label": False}, match={"flags": "label_issue"} if only_flagged else {})
    for pid, p in _points(ws.collection(dataset), filter):
        if p.get("review_status"):  # a reviewer decided (confirmed, relabelled, accepted): no longer an issue
            continue
        row = {c: p.get(c) for c in ISSUE_COLUMNS}
        row["id"] = _record_id(pid, p)
        row.update(point_id=pid, revision=int(p.get("revision") or 0), model_version=p.get("model_version"))
        rows.append(row)
    rows.sort(key=lambda r: -r["mislabel_score"] if r["mislabel_score"] is not None else math.inf)
    yield from rows[:limit] if limit else rows


def suggestion_rows(ws: Workspace, dataset: str, limit: int | None = None, **_: Any) -> Iterator[dict[str, Any]]:
    """Unlabelled points with their suggestion, most confident first."""
    rows = []
    for pid, p in _points(ws.collection(dataset), PointFilter(empty={"label": True})):
        rows.append({"id": _record_id(pid, p), "text": p.get("text"), "suggested_label": p.get("suggested_label"),
                     "confidence": p.get("suggestion_confidence"), "agreement": p.get("suggestion_agreement"),
                     "model_version": p.get("model_version"), "point_id": pid,
                     "revision": int(p.get("revision") or 0)})
    rows.sort(key=lambda r: -r["confidence"] if r["confidence"] is not None else math.inf)
    yield from rows[:limit] if limit else rows


def cluster_rows(ws: Workspace, dataset: str, **_: Any) -> Iterator[dict[str, Any]]:
    """The report's clusters, highest error rate first, then the noise points' row (id -1)."""
    report = load_report(ws.settings, dataset)
    rows = list(report.get("clusters") or [])
    if report.get("noise"):
        rows.append(report["noise"])
    for row in rows:
        yield {c: row.get(c) for c in CLUSTER_COLUMNS}


def queue_rows(ws: Workspace, dataset: str, strategy: str = DEFAULT_STRATEGY, limit: int = 50, seed: int = 0,
               **_: Any) -> Iterator[dict[str, Any]]:
    """The labelling queue (service.queue.build_queue)."""
    from service.queue import build_queue

    yield from build_queue(ws, dataset, strategy, limit, seed=seed)


ROWS: dict[str, tuple[list[str], Callable[..., Iterator[dict[str, Any]]]]] = {
    "points": (POINT_COLUMNS, point_rows),
    "issues": (ISSUE_COLUMNS, issue_rows),
    "suggestions": (SUGGESTION_COLUMNS, suggestion_rows),
    "clusters": (CLUSTER_COLUMNS, cluster_rows),
    "queue": (QUEUE_COLUMNS, queue_rows),
}


def _cell(value: Any) -> Any:
    """A CSV cell: lists joined by '; ', dicts as JSON, booleans as true/false, None as empty, and text that
    a spreadsheet would run as a formula prefixed with `'` (service.spreadsheet)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return safe_cell("; ".join(json.dumps(v) if isinstance(v, dict) else str(v) for v in value))
    if isinstance(value, dict):
        return safe_cell(json.dumps(value, ensure_ascii=False))
    return safe_cell(value)


def csv_chunks(columns: list[str], rows: Iterable[dict[str, Any]], batch: int = 1000) -> Iterator[str]:
    """CSV text in chunks of `batch` rows, header first; every cell spreadsheet-safe (see `_cell`)."""
    buffer = io.StringIO()
    # CRLF line ends (RFC 4180): with "\n" Python < 3.12 leaves a lone CR in a text unquoted, and every reader
    # then splits the row there.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for count, row in enumerate(rows, 1):
        writer.writerow([_cell(row.get(c)) for c in columns])
        if count % batch == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def jsonl_chunks(columns: list[str], rows: Iterable[dict[str, Any]], batch: int = 1000) -> Iterator[str]:
    """JSON lines in chunks of `batch` rows."""
    lines: list[str] = []
    for row in rows:
        lines.append(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False))
        if len(lines) >= batch:
            yield "\n".join(lines) + "\n"
            lines = []
    if lines:
        yield "\n".join(lines) + "\n"


def check(kind: str, fmt: str) -> None:
    """Raise InvalidInput for an unknown kind or format, or a format the kind cannot take."""
    if kind not in KINDS:
        raise InvalidInput(f"export kind {kind!r} is unknown; use one of {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise InvalidInput(f"export format {fmt!r} is unknown; use one of {', '.join(FORMATS)}")
    if fmt == "label-studio" and kind not in LABEL_STUDIO_KINDS:
        raise InvalidInput(f"label-studio export is for {', '.join(LABEL_STUDIO_KINDS)}; use csv or jsonl for {kind}")


def stream_export(kind: str, ws: Workspace, dataset: str, fmt: str = "csv", **options: Any) -> Iterator[str]:
    """The export as text chunks. Checks run (and errors raise) before the first chunk is asked for."""
    check(kind, fmt)
    ws.collection(dataset)  # an unknown dataset raises NotFound now, not inside the first chunk
    if kind in ("issues", "suggestions", "clusters"):
        load_report(ws.settings, dataset)  # never analysed: NotFound saying to analyze, not a file of blanks
    columns, rows_of = ROWS[kind]
    rows = rows_of(ws, dataset, **options)
    if fmt == "csv":
        return csv_chunks(columns, rows)
    if fmt == "jsonl":
        return jsonl_chunks(columns, rows)
    return label_studio_chunks(rows, dataset)


@contextmanager
def _opened(out: Path | str | IO[str]) -> Iterator[IO[str]]:
    if isinstance(out, str | Path):
        if str(out) == "-":
            yield sys.stdout
            return
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as fh:
            yield fh
    else:
        yield out


class _Counter:
    def __init__(self, rows: Iterable[dict[str, Any]]):
        self.rows, self.count = rows, 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self.rows:
            self.count += 1
            yield row


def write_export(kind: str, ws: Workspace, dataset: str, out: Path | str | IO[str], fmt: str = "csv",
                 **options: Any) -> int:
    """Write an export to a path ("-" = stdout) or an open text stream; returns the number of rows."""
    check(kind, fmt)
    columns, rows_of = ROWS[kind]
    counted = _Counter(list(rows_of(ws, dataset, **options)))  # computed before the file is opened
    chunks = (csv_chunks(columns, counted) if fmt == "csv" else jsonl_chunks(columns, counted) if fmt == "jsonl"
              else label_studio_chunks(counted, dataset))
    with _opened(out) as fh:
        for chunk in chunks:
            fh.write(chunk)
    return counted.count
