"""The (corrected) dataset written back in its original format, streamed: Humanloop JSON for Humanloop
data, else CSV / TSV / JSONL / Parquet with the columns it was read with. Labels are the current ones;
everything else is what ingest kept of the source record, exactly (a CSV export reads back as it was; ask for
`spreadsheet_safe` to open it in a spreadsheet)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from itertools import chain
from typing import Any

from embeddings.store import Collection, iter_points
from service.datasets.records import stored_source
from service.errors import InvalidInput
from service.spreadsheet import safe_cell

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


def _same(value: Any) -> Any:
    return value


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


def _delimited(collection: Collection, columns: dict[str, Any], delimiter: str,
               spreadsheet_safe: bool = False) -> Iterator[bytes]:
    rows = _tabular_rows(collection, columns)
    first = next(rows, None)
    if first is None:
        return
    header = list(first)
    # Exact by default: this file is the dataset, and it must read back (ingest, pandas) as it was. Asked for a
    # spreadsheet, its text cells get the same formula guard as every other CSV (service.spreadsheet).
    cell = safe_cell if spreadsheet_safe else _same
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow([cell(k) for k in header])
    for n, row in enumerate(chain([first], rows), start=1):
        writer.writerow([cell("" if row.get(k) is None else row.get(k)) for k in header])
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


def export_stream(collection: Collection, entry: dict[str, Any], fmt: str,
                  spreadsheet_safe: bool = False) -> Iterator[bytes]:
    """The dataset's bytes in `fmt`, page by page; `spreadsheet_safe` guards CSV/TSV cells against formulas."""
    columns = entry.get("columns") or {}
    if spreadsheet_safe and fmt not in ("csv", "tsv"):
        raise InvalidInput(f"query.spreadsheet_safe is for csv and tsv exports, not {fmt}; add format=csv")
    if fmt == "humanloop":
        return _humanloop(collection)
    if fmt in ("csv", "tsv"):
        return _delimited(collection, columns, "," if fmt == "csv" else "\t", spreadsheet_safe)
    if fmt == "jsonl":
        return _jsonl(collection, columns)
    return _parquet(collection, columns)
