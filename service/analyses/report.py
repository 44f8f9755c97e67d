"""The dataset-level analysis report: one JSON file per dataset, replaced atomically by every run; and the
write-back marker that says a run has begun writing to the points but not yet written its report."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embeddings.store import check_name
from service.errors import NotFound
from service.jsonable import jsonable

if TYPE_CHECKING:
    from service.settings import Settings

REPORT_NAME = "analysis.json"
WRITEBACK_NAME = "writeback.json"


def report_path(settings: Settings, dataset: str) -> Path:
    """Where a dataset's report lives: settings.reports_dir / dataset / analysis.json."""
    return Path(settings.reports_dir) / check_name(dataset) / REPORT_NAME


def _write_atomically(path: Path, text: str) -> None:
    """A temp file renamed over the old one: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_report(settings: Settings, dataset: str, report: dict[str, Any]) -> Path:
    """Write the report atomically."""
    path = report_path(settings, dataset)
    _write_atomically(path, json.dumps(jsonable(report), ensure_ascii=False, indent=1))
    return path


def delete_report(settings: Settings, dataset: str) -> None:
    """Remove a dataset's report folder (the dataset is being deleted)."""
    shutil.rmtree(report_path(settings, dataset).parent, ignore_errors=True)


def writeback_path(settings: Settings, dataset: str) -> Path:
    """Where a dataset's write-back marker lives, beside its report."""
    return report_path(settings, dataset).with_name(WRITEBACK_NAME)


def begin_writeback(settings: Settings, dataset: str, run_id: str, previous_run: str | None) -> None:
    """Record, before the first payload write, that run `run_id` is writing to the points (fsynced: a
    kill a moment later must still find it)."""
    path = writeback_path(settings, dataset)
    marker = {"run_id": run_id, "previous_run": previous_run, "started_at": datetime.now(UTC).isoformat()}
    _write_atomically(path, json.dumps(marker))
    fd = os.open(path.parent, os.O_RDONLY)
    try:  # the rename itself must reach the disk before any point does
        os.fsync(fd)
    finally:
        os.close(fd)


def end_writeback(settings: Settings, dataset: str) -> None:
    """Clear the marker: called once the report that describes the points is written."""
    writeback_path(settings, dataset).unlink(missing_ok=True)


def interrupted_writeback(settings: Settings, dataset: str) -> dict[str, Any] | None:
    """The marker of a write-back that never finished (its run wrote no report), or None when the points and
    the report agree. A marker whose run did write its report (killed just before clearing it) is stale."""
    try:
        marker = json.loads(writeback_path(settings, dataset).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # unreadable: the state is unknown, so say so rather than trust the points
        return {"run_id": None, "previous_run": None, "started_at": None}
    try:
        finished = json.loads(report_path(settings, dataset).read_text()).get("run_id") == marker.get("run_id")
    except (OSError, ValueError):
        finished = False
    return None if finished else marker


def incomplete_message(dataset: str, marker: dict[str, Any]) -> str:
    """What to tell a user about an interrupted write-back, with the fix."""
    run = f" {marker['run_id']}" if marker.get("run_id") else ""
    return (f"analysis incomplete: re-run analyze. The write-back of analysis run{run} to dataset {dataset!r} "
            f"was interrupted, so its points mix two runs and no report describes them; run "
            f"`data-debugger analyze --dataset {dataset}` (or POST /api/datasets/{dataset}/runs "
            '{"step": "analyze"})')


def load_report(settings: Settings, dataset: str) -> dict[str, Any]:
    """The last analysis report of a dataset; NotFound when it was never analysed."""
    path = report_path(settings, dataset)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise NotFound(
            f"dataset {dataset!r} has not been analysed yet; run `data-debugger analyze --dataset {dataset}`"
        ) from None
