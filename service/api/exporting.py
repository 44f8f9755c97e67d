"""The (corrected) dataset written back in its original format, streamed: Humanloop JSON for Humanloop
data, else CSV / TSV / JSONL / Parquet with the columns it was read with. Labels are the current ones;
everything else is what ingest kept of the source record."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from embeddings.store import Collection, iter_points
from service.datasets.records import stored_source
from service.errors import InvalidInput

EXPORT_FORMATS = ("humanloop", "csv", "tsv", "jsonl", "parquet")
MEDIA = {"humanloop": "application/json", "csv": "text/csv; charset=utf-8",
         "tsv": "text/tab-separated-values; charset=utf-8", "jsonl": "application/x-ndjson",
         "parquet": "application/vnd.apache.parquet"}
SUFFIX = {"humanloop": "json", "csv": "csv", "tsv": "tsv", "jsonl": "jsonl", "parquet": "parquet"}
# The field order of a Humanloop export record.
HUMANLOOP_ORDER = ("id", "project_id", "complete", "usage", "score")


def export_format(entry: dict[str, Any], requested: str | None) -> str:
    """The format to write: the requested one, else the dataset's own (mixed sources export as JSONL)."""
    if requested is not None:
        if requested not in EXPORT_FORMATS:
            raise InvalidInput(f"query.format {requested!r} is not one of {', '.join(EXPORT_FORMATS)}")
        return requested
    own = entry.get("format")
    return own if own in EXPORT_FORMATS else "jsonl"


def _points(collection: Collection) -> Iterator[dict[str, Any]]:
    for page in iter_points(collection, batch=2000):
        for p in page:
            yield p.payload


def humanloop_record(payload: dict[str, Any]) -> dict[str, Any]:
    """One Humanloop export record: the source fields, with `data` rebuilt around the current label."""
    source = stored_source(payload)
    extra = source.pop("data_extra", None) or {}
    data = {"text": payload.get("text"), "intent": payload.get("label") or "", **extra}
    record = {k: source.pop(k) for k in HUMANLOOP_ORDER if k in source}
    record.update(source)
    if "id" not in record:
        record["id"] = payload.get("record_id")
    if "usage" not in record:  # a record that came from another format (a CSV added to Humanloop data)
        record["usage"] = payload.get("split")
    record["data"] = json.dumps(data)  # the export's own spelling: ASCII, ", " and ": " separators
    return record


def _humanloop(collection: Collection) -> Iterator[bytes]:
    yield b"["
    first = True
    for payload in _points(collection):
        item = json.dumps(humanloop_record(payload), ensure_ascii=False, indent=2)
        yield (("\n  " if first else ",\n  ") + item.replace("\n", "\n  ")).encode()
        first = False
    yield b"\n]\n"


def tabular_record(payload: dict[str, Any], columns: dict[str, Any]) -> dict[str, Any]:
    """A row with the column names the file was read with, then the source's other columns."""
    row: dict[str, Any] = {columns.get("id") or "id": payload.get("record_id"),
                           columns.get("text") or "text": payload.get("text"),
                           columns.get("label") or "label": payload.get("label")}
    if not columns.get("fixed_split"):
        row[columns.get("split") or "split"] = payload.get("split")
    for key, value in stored_source(payload).items():
        row.setdefault(key, value)
    return row


def _tabular_rows(collection: Collection, columns: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for payload in _points(collection):
        yield tabular_record(payload, columns)


def _delimited(collection: Collection, columns: dict[str, Any], delimiter: str) -> Iterator[bytes]:
    rows = _tabular_rows(collection, columns)
    first = next(rows, None)
    if first is None:
        return
    header = list(first)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, delimiter=delimiter, extrasaction="ignore")
    writer.writeheader()
    writer.writerow(first)
    for n, row in enumerate(rows, start=1):
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in header})
        if n % 1000 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _jsonl(collection: Collection, columns: dict[str, Any]) -> Iterator[bytes]:
    for row in _tabular_rows(collection, columns):
        yield (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode()


def _parquet(collection: Collection, columns: dict[str, Any]) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(list(_tabular_rows(collection, columns)))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    yield sink.getvalue()


def export_stream(collection: Collection, entry: dict[str, Any], fmt: str) -> Iterator[bytes]:
    """The dataset's bytes in `fmt`, page by page."""
    columns = entry.get("columns") or {}
    if fmt == "humanloop":
        return _humanloop(collection)
    if fmt in ("csv", "tsv"):
        return _delimited(collection, columns, "," if fmt == "csv" else "\t")
    if fmt == "jsonl":
        return _jsonl(collection, columns)
    return _parquet(collection, columns)
