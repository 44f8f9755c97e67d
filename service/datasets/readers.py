"""Readers per file format: each streams RawRecords from a path, with positions for error messages."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.datasets.records import MAX_INT_ID, RawRecord
from service.errors import InvalidInput, RecordProblem

FORMATS = ("humanloop", "csv", "tsv", "jsonl", "parquet")


@dataclass(frozen=True)
class ColumnMap:
    """Which columns of a tabular file hold what; `split` may instead be given for the whole file."""

    text: str = "text"
    label: str | None = "label"
    split: str | None = "split"
    id: str | None = "id"
    fixed_split: str | None = None


def detect_format(path: Path) -> str:
    """The format from the file name, peeking inside a .json to tell a Humanloop export from JSONL."""
    suffix = path.suffix.lower()
    if suffix in (".csv",):
        return "csv"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".json":
        with path.open("rb") as fh:
            head = fh.read(4096).lstrip()
        return "humanloop" if head.startswith(b"[") else "jsonl"
    raise InvalidInput(f"{path}: cannot tell the format from {suffix!r}; pass --format ({', '.join(FORMATS)})")


def _check_not_empty(path: Path) -> None:
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InvalidInput(f"{path}: the file is empty; nothing to ingest")


def _decode_error(path: Path, exc: UnicodeDecodeError, line: int | None = None) -> InvalidInput:
    where = f"line {line}" if line else f"byte {exc.start}"
    return InvalidInput(
        f"{path}: not valid UTF-8 at {where} ({exc.reason}); re-save the file as UTF-8 "
        "(e.g. iconv -f latin1 -t utf-8)"
    )


def read_humanloop(path: Path, columns: ColumnMap | None = None) -> Iterator[RawRecord]:
    """The Humanloop export: a JSON list of objects whose `data` is a JSON string of text and intent."""
    import ijson

    _check_not_empty(path)
    position = 0
    try:
        with path.open("rb") as fh:
            for item in ijson.items(fh, "item", use_float=True):
                position += 1
                yield _humanloop_item(item, position)
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc) from exc
    except ijson.common.IncompleteJSONError as exc:
        raise InvalidInput(
            f"{path}: malformed JSON after record {position}: {exc}; the file must be a JSON list of records"
        ) from exc
    if position == 0:
        raise InvalidInput(f"{path}: the JSON list holds no records; nothing to ingest")


def _humanloop_item(item: Any, position: int) -> RawRecord:
    if not isinstance(item, dict):
        return RawRecord(position, problem=RecordProblem(position, f"must be a JSON object, got {item!r:.60}"))
    data = item.get("data")
    if data is None:
        return RawRecord(position, problem=RecordProblem(position, "is missing", field="data"))
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            return RawRecord(position, problem=RecordProblem(
                position, f"is not valid JSON ({exc.msg} at char {exc.pos}); it must be a JSON string "
                'like {"text": "...", "intent": "..."}', field="data"))
    if not isinstance(data, dict):
        return RawRecord(position, problem=RecordProblem(position, "must hold a JSON object", field="data"))
    source = {k: v for k, v in item.items() if k != "data"}
    # Keep any other keys of `data` for a faithful export.
    extra = {k: v for k, v in data.items() if k not in ("text", "intent")}
    if extra:
        source["data_extra"] = extra
    return RawRecord(
        position, id=item.get("id"), text=data.get("text"), label=data.get("intent"),
        split=item.get("usage"), source=source,
    )


# How a plain non-negative integer is spelt: no sign, no leading zeros.
_CANONICAL_INT = re.compile(r"0|[1-9][0-9]*")


def _tabular_record(row: dict[str, Any], position: int, line: int | None, columns: ColumnMap,
                    default_id: str) -> RawRecord:
    used = {columns.text, columns.label, columns.split, columns.id}
    source = {k: v for k, v in row.items() if k not in used}
    split = columns.fixed_split if columns.fixed_split is not None else (
        row.get(columns.split) if columns.split else None)
    rid = row.get(columns.id) if columns.id and columns.id in row else default_id
    if isinstance(rid, str) and _CANONICAL_INT.fullmatch(rid.strip()) and int(rid) <= MAX_INT_ID:
        rid = int(rid)  # "123" from a CSV is the record 123; "00123" or "-5" keep their spelling as strings
    return RawRecord(
        position, line, id=rid, text=row.get(columns.text),
        label=row.get(columns.label) if columns.label else None, split=split, source=source,
    )


def _check_columns(path: Path, present: list[str], columns: ColumnMap) -> None:
    if columns.text not in present:
        raise InvalidInput(
            f"{path}: no text column {columns.text!r}; columns are {present}. Pass --text-column NAME"
        )
    for kind, name, default in (("label", columns.label, "label"), ("split", columns.split, "split"),
                                ("id", columns.id, "id")):
        # A column the user named must be there; a default one may be absent (unlabelled data, no splits).
        if name and name != default and name not in present:
            raise InvalidInput(
                f"{path}: no {kind} column {name!r}; columns are {present}. Pass --{kind}-column NAME"
            )


def _effective(columns: ColumnMap, present: list[str]) -> ColumnMap:
    """Optional columns that the file does not have are simply absent (default names only)."""
    return ColumnMap(
        text=columns.text,
        label=columns.label if columns.label in present else None,
        split=columns.split if columns.split in present else None,
        id=columns.id if columns.id in present else None,
        fixed_split=columns.fixed_split,
    )


def read_csv(path: Path, columns: ColumnMap | None = None, delimiter: str = ",") -> Iterator[RawRecord]:
    """CSV or TSV with a header row; ids default to '<file stem>:<row number>'."""
    columns = columns or ColumnMap()
    _check_not_empty(path)
    reader = None
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            # strict: an unterminated quote is an error, not a cell that swallows the rest of the file
            reader = csv.DictReader(fh, delimiter=delimiter, strict=True)
            present = list(reader.fieldnames or [])
            if not present:
                raise InvalidInput(f"{path}: no header row; the first line must name the columns")
            _check_columns(path, present, columns)
            effective = _effective(columns, present)
            position = 0
            for row in reader:
                position += 1
                if None in row:  # more cells than header columns
                    yield RawRecord(position, reader.line_num, problem=RecordProblem(
                        position, f"has {len(present) + len(row[None])} cells but the header has "
                        f"{len(present)}; quote cells that contain the delimiter", reader.line_num))
                    continue
                yield _tabular_record(row, position, reader.line_num, effective, f"{path.stem}:{position}")
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc) from exc
    except csv.Error as exc:
        where = f"the row after line {reader.line_num}" if reader is not None and reader.line_num else "the header"
        raise InvalidInput(f"{path}: malformed CSV in {where} ({exc}); check that every quote "
                           "that opens a cell closes it, and that cells with the delimiter are quoted") from exc
    if position == 0:
        raise InvalidInput(f"{path}: has a header but no rows; nothing to ingest")


def read_jsonl(path: Path, columns: ColumnMap | None = None) -> Iterator[RawRecord]:
    """One JSON object per line; blank lines are skipped."""
    columns = columns or ColumnMap()
    _check_not_empty(path)
    position = 0
    keys: set[str] = set()
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _decode_error(path, exc, line_no) from exc
            if not line.strip():
                continue
            position += 1
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield RawRecord(position, line_no, problem=RecordProblem(
                    position, f"malformed JSON ({exc.msg} at column {exc.colno})", line_no))
                continue
            if not isinstance(row, dict):
                yield RawRecord(position, line_no, problem=RecordProblem(
                    position, "must be a JSON object", line_no))
                continue
            keys.update(row)
            yield _tabular_record(row, position, line_no, _effective(columns, list(row)), f"{path.stem}:{position}")
    if position == 0:
        raise InvalidInput(f"{path}: holds no records; nothing to ingest")
    # Rows may leave out optional keys, but a key the user named that no row has is a misspelt option,
    # which would otherwise ingest every record without its label (or split, or id).
    _check_columns(path, sorted(keys), columns)


def read_parquet(path: Path, columns: ColumnMap | None = None) -> Iterator[RawRecord]:
    """Parquet, read in record batches so memory stays bounded."""
    import pyarrow.parquet as pq

    columns = columns or ColumnMap()
    _check_not_empty(path)
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise InvalidInput(f"{path}: not a readable Parquet file: {exc}") from exc
    present = pf.schema_arrow.names
    _check_columns(path, present, columns)
    effective = _effective(columns, present)
    position = 0
    for batch in pf.iter_batches(batch_size=10_000):
        for row in batch.to_pylist():
            position += 1
            yield _tabular_record(row, position, None, effective, f"{path.stem}:{position}")
    if position == 0:
        raise InvalidInput(f"{path}: holds no rows; nothing to ingest")


def read_records(path: Path | str, fmt: str | None = None, columns: ColumnMap | None = None) -> Iterator[RawRecord]:
    """Stream the raw records of a file in any supported format."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt == "humanloop":
        return read_humanloop(path, columns)
    if fmt == "csv":
        return read_csv(path, columns)
    if fmt == "tsv":
        return read_csv(path, columns, delimiter="\t")
    if fmt == "jsonl":
        return read_jsonl(path, columns)
    if fmt == "parquet":
        return read_parquet(path, columns)
    raise InvalidInput(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
