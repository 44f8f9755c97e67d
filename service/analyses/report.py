"""The dataset-level analysis report: one JSON file per dataset, replaced atomically by every run."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from embeddings.store import check_name
from service.errors import NotFound
from service.jsonable import jsonable

REPORT_NAME = "analysis.json"


def report_path(settings, dataset: str) -> Path:
    """Where a dataset's report lives: settings.reports_dir / dataset / analysis.json."""
    return Path(settings.reports_dir) / check_name(dataset) / REPORT_NAME


def save_report(settings, dataset: str, report: dict[str, Any]) -> Path:
    """Write the report atomically (a temp file renamed over the old one): readers never see half a file."""
    path = report_path(settings, dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{REPORT_NAME}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(json.dumps(jsonable(report), ensure_ascii=False, indent=1))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def delete_report(settings, dataset: str) -> None:
    """Remove a dataset's report folder (the dataset is being deleted)."""
    shutil.rmtree(report_path(settings, dataset).parent, ignore_errors=True)


def load_report(settings, dataset: str) -> dict[str, Any]:
    """The last analysis report of a dataset; NotFound when it was never analysed."""
    path = report_path(settings, dataset)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise NotFound(
            f"dataset {dataset!r} has not been analysed yet; run `data-debugger analyze --dataset {dataset}`"
        ) from None
