"""The Record every reader yields, and the checks every record passes before anything is written."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from service.errors import RecordProblem

SPLITS = ("training", "validation", "testing")
# Integer record ids are point ids as they are (Qdrant's are unsigned 64-bit; we stay within signed range).
MAX_INT_ID = 2**63 - 1
# Common spellings users' files carry; anything else is an error naming these.
SPLIT_ALIASES = {
    "training": "training", "train": "training",
    "validation": "validation", "valid": "validation", "val": "validation", "dev": "validation",
    "testing": "testing", "test": "testing",
}


@dataclass
class Record:
    """One data point as read from a file, before embedding."""

    id: int | str
    text: str
    label: str | None
    split: str | None
    source: dict[str, Any] = field(default_factory=dict)  # the source's own fields, kept for export
    position: int = 0  # 1-based record number in the file
    line: int | None = None

    def content_hash(self) -> str:
        """Identity of everything ingest stores: equal hashes mean nothing to update."""
        return content_hash(self.text, self.label, self.split, self.source)


def content_hash(text: str | None, label: str | None, split: str | None, source: dict[str, Any]) -> str:
    """The hash of what ingest stores of a record (its id aside: the id says which point, not what it holds)."""
    blob = json.dumps([text, label, split, source], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def stored_source(payload: dict[str, Any]) -> dict[str, Any]:
    """The record's own fields as ingest stored them. A `source_json` string, where ingest keeps one, is
    preferred: the store rounds payload floats in the last digit (qdrant-edge 0.9), a JSON string keeps them."""
    raw = payload.get("source_json")
    if isinstance(raw, str):
        return json.loads(raw)
    return dict(payload.get("source") or {})


def current_content_hash(payload: dict[str, Any]) -> str:
    """The content hash of the record a stored point stands for now, edits through the API included (its
    label may have changed since ingest): what re-reading the dataset's own export would give."""
    return content_hash(payload.get("text"), payload.get("label"), payload.get("split"), stored_source(payload))


class RawRecord:
    """What a reader extracted from one row, not yet validated; `problem` is set when it could not parse."""

    __slots__ = ("id", "text", "label", "split", "source", "position", "line", "problem")

    def __init__(self, position: int, line: int | None = None, *, id: Any = None, text: Any = None,
                 label: Any = None, split: Any = None, source: dict[str, Any] | None = None,
                 problem: RecordProblem | None = None):
        self.id = id
        self.text = text
        self.label = label
        self.split = split
        self.source = source or {}
        self.position = position
        self.line = line
        self.problem = problem


def normalise_split(value: Any) -> str | None:
    """training / validation / testing, or None for no split; raises ValueError on anything else."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from pandas-like sources
        return None
    text = str(value).strip().lower()
    if text in ("", "none", "null", "unlabelled", "unlabeled"):
        return None
    if text not in SPLIT_ALIASES:
        raise ValueError(f"unknown split {value!r}; use one of {', '.join(SPLITS)} (or empty for none)")
    return SPLIT_ALIASES[text]


def validate(raw: RawRecord) -> tuple[Record | None, list[RecordProblem]]:
    """A Record, or the problems that stop it from being one."""
    if raw.problem is not None:
        return None, [raw.problem]
    problems: list[RecordProblem] = []

    def bad(field_name: str | None, message: str) -> None:
        problems.append(RecordProblem(raw.position, message, raw.line, field_name))

    text = raw.text
    if text is None:
        bad("text", "is missing; every record needs a non-empty text")
    elif not isinstance(text, str):
        bad("text", f"must be a string, got {type(text).__name__} {text!r}")
    elif not text.strip():
        bad("text", "is empty; remove the record or give it a text")

    label = raw.label
    if isinstance(label, float) and label != label:
        label = None
    if label is not None and not isinstance(label, str):
        if isinstance(label, int) and not isinstance(label, bool):
            label = str(label)
        else:
            bad("label", f"must be a string or empty, got {type(label).__name__} {label!r}")
            label = None
    if isinstance(label, str):
        label = label.strip() or None

    try:
        split = normalise_split(raw.split)
    except ValueError as exc:
        bad("split", str(exc))
        split = None

    rid = raw.id
    if rid is None or (isinstance(rid, str) and not rid.strip()) or isinstance(rid, bool | float | dict | list):
        bad("id", f"must be a non-empty string or an integer, got {rid!r}")
    elif isinstance(rid, int) and not 0 <= rid <= MAX_INT_ID:
        bad("id", f"{rid} is outside 0..{MAX_INT_ID}, the integers a point id can be; write it as a string")

    if problems:
        return None, problems
    return Record(rid, text, label, split, raw.source, raw.position, raw.line), []
