"""Request pieces shared by routers: API filters to store filters, cursors, and points as JSON."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any

from embeddings.store import PointFilter, PointId
from service.api.schemas import MAX_INT64, MAX_POINT_ID, PointFilters
from service.errors import InvalidInput, invalid
from service.jsonable import jsonable


def to_point_filter(f: PointFilters, words_from: str = "text", location: str = "query") -> PointFilter:
    """The store filter for the API filters; `words_from` names the field holding the words every text must
    contain (`text` for point lists; search uses `contains`, its `text` being the query); `location` is where
    the filters came from (query or body), for the field an error names."""
    match: dict[str, Any] = {}
    ranges: dict[str, tuple[float | None, float | None]] = {}
    empty: dict[str, bool] = {}
    words = getattr(f, words_from)
    for name, key in (("label", "label"), ("split", "split"), ("prediction", "prediction"),
                      ("cluster", "cluster"), ("triage", "triage"), ("flag", "flags")):
        values = getattr(f, name)
        if values:
            match[key] = list(values) if len(values) > 1 else values[0]
    if f.status is not None:
        match["prediction_status"] = f.status
    if f.has_label is not None:
        empty["label"] = not f.has_label
    for key, lo, hi, field_lo, field_hi in (
        ("mislabel_score", f.min_score, f.max_score, "min_score", "max_score"),
        ("confidence", f.min_confidence, f.max_confidence, "min_confidence", "max_confidence"),
    ):
        if lo is not None and hi is not None and lo > hi:
            raise invalid(f"{location}.{field_lo}", f"{lo} is greater than {field_hi} ({hi}); swap them")
        if lo is not None or hi is not None:
            ranges[key] = (lo, hi)
    text_filter = {}
    if words is not None and words.strip():
        text_filter["text"] = words.strip()
    return PointFilter(match=match, ranges=ranges, text=text_filter, empty=empty)


def encode_cursor(value: Any) -> str:
    """An opaque cursor for a value (a point id or an offset)."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def bad_cursor(cursor: str) -> InvalidInput:
    return invalid("query.cursor", f"{cursor[:40]!r} is not a cursor of this list; pass the next_cursor of the "
                   "previous page, or none for the first page")


def decode_cursor(cursor: str | None, kind: type | tuple[type, ...], maximum: int = MAX_INT64) -> Any:
    """The value inside a cursor from encode_cursor; a tampered cursor (or an integer past `maximum`, which
    the store cannot take) is a 422 naming `query.cursor`."""
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise bad_cursor(cursor) from exc
    if not isinstance(value, kind) or isinstance(value, bool) or (isinstance(value, int) and not 0 <= value <= maximum):
        raise bad_cursor(cursor)
    return value


def decode_offset(cursor: str | None) -> PointId | None:
    """A point-id cursor (an int, or a UUID string), validated before it reaches the store."""
    value = decode_cursor(cursor, (int, str), maximum=MAX_POINT_ID)
    if isinstance(value, str):
        try:
            value = str(uuid.UUID(value))
        except ValueError as exc:
            raise bad_cursor(cursor or "") from exc
    return value


def point_out(pid: PointId, payload: dict[str, Any]) -> dict[str, Any]:
    """A point as the API shows it: {"id": ..., **payload, "revision": n}."""
    out = {"id": pid, **jsonable(payload)}
    out["revision"] = int(out.get("revision") or 0)
    return out
