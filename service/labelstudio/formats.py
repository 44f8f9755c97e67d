"""Label Studio exports in the formats it writes, turned into tasks of one shape for the importer.

    JSON      a list of tasks ({"data", "annotations", ...}): taken as is
    JSON_MIN  a list of flat rows, one per annotation: the task's data, the choice under the control's name,
              `annotator`, `annotation_id`; data.id is Label Studio's task id there, so rows map to points
              through `point_id` only
    CSV/TSV   the same flat rows as text

A flat export whose rows carry no `point_id` cannot be mapped to points: it is refused, naming the format
and what to export instead. Anything else is refused naming what it looks like.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from service.errors import invalid
from service.labelstudio.tasks import FROM_NAME

FLAT_KEYS = ("annotator", "annotation_id", "lead_time")


def parse_body(raw: bytes, content_type: str | None) -> tuple[str, list[Any]]:
    """(format, tasks) of an uploaded export: JSON (any of its shapes) or CSV/TSV text."""
    text = raw.decode("utf-8-sig", errors="replace")
    stripped = text.lstrip()
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in ("text/csv", "text/tab-separated-values") or (stripped and stripped[0] not in "[{"):
        return flat_text(text)
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise invalid("body", f"is not JSON ({exc.msg} at line {exc.lineno}); send Label Studio's JSON export "
                      "(a list of tasks), or a CSV export with Content-Type text/csv") from None
    return from_json(body)


def from_json(body: Any) -> tuple[str, list[Any]]:
    """(format, tasks) of a parsed JSON export: a list of tasks (JSON) or of flat rows (JSON_MIN)."""
    if not isinstance(body, list):
        raise invalid("body", f"is a JSON {type(body).__name__}, not a Label Studio export; export the project "
                      "as JSON (a list of tasks) and send that file")
    dicts = [t for t in body if isinstance(t, dict)]
    if dicts and not any("data" in t or "annotations" in t for t in dicts):
        return "JSON_MIN", flat_rows(dicts, "JSON_MIN")
    return "JSON", body


def flat_text(text: str) -> tuple[str, list[Any]]:
    """(format, tasks) of a CSV or TSV export."""
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    name = "TSV" if delimiter == "\t" else "CSV"
    try:
        rows = list(csv.DictReader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:  # a NUL byte, a field over the csv module's limit
        raise invalid("body", f"is not a readable {name} export ({exc}); export the project again") from None
    if not rows:
        raise invalid("body", f"this {name} export has no rows; export the project again after annotating")
    return name, flat_rows([{k: _cell(v) for k, v in row.items() if k is not None} for row in rows], name)


def _cell(value: Any) -> Any:
    """A CSV cell as JSON when it is a JSON object or list (a multi-choice), a number when it is one."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return value
    return value


def flat_rows(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Flat rows (one per annotation) grouped into tasks with `data` and `annotations`."""
    if not any(str(r.get("point_id") or "").strip() for r in rows):
        raise invalid("body", f"this is a {name} export, whose rows carry no point_id: its tasks were not made by "
                      "Data Debugger (or by a version before point ids), and in this format data.id is Label "
                      "Studio's task id, so nothing maps a row to a point. Export the project as JSON instead "
                      "(it keeps each task's data)")
    tasks: dict[Any, dict[str, Any]] = {}
    for index, row in enumerate(rows):
        key = row.get("id") if row.get("id") not in (None, "") else f"row-{index}"
        task = tasks.setdefault(key, {"id": row.get("id"), "data": {}, "annotations": [], "format": name})
        revision = row.get("revision")
        revision_text = "" if revision is None else str(revision).strip()
        task["data"].update({
            "point_id": row.get("point_id"), "dataset": row.get("dataset") or None, "text": row.get("text"),
            "revision": int(revision_text) if revision_text.isdigit() else None,
        })
        choice = row.get(FROM_NAME)
        if choice in (None, "", [], {}):
            continue
        choices = choice.get("choices") if isinstance(choice, dict) else choice
        choices = choices if isinstance(choices, list) else [choices]
        annotator = row.get("annotator")
        task["annotations"].append({
            "id": row.get("annotation_id"), "completed_by": annotator, "was_cancelled": False,
            "created_at": row.get("created_at"), "updated_at": row.get("updated_at"),
            "result": [{"from_name": FROM_NAME, "type": "choices", "value": {"choices": [str(c) for c in choices]}}],
        })
    return list(tasks.values())
