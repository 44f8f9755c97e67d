"""When the service retrains by itself: after enough reviewed label changes since the champion's data, or
when a newly uploaded labelled batch shows the champion doing worse than its test figures promised."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from service.datasets.readers import ColumnMap
    from service.workspace import Workspace

# Audit actions that can change what a model trains on (a label or a point's split).
LABEL_FIELDS = ("label", "split")


def counts_as_change(entry: dict[str, Any]) -> bool:
    """An applied, not undone, non-undo entry that changed a label or a split: what a model would learn."""
    if entry.get("undoes") is not None or entry.get("undone_by") is not None:
        return False
    if entry.get("status", "applied") != "applied":  # pending, or never reached its point
        return False
    return any(key in (entry.get("new") or {}) for key in LABEL_FIELDS)


def changes_since(newest_first: Iterable[dict[str, Any]], since_change: int | None, since_at: str | None,
                  cap: int) -> int:
    """Label changes logged after a version read its labels, counted newest first and stopping at `cap`
    (enough to decide). `since_change` is the audit log's length then (exact); versions from before it was
    recorded fall back to `since_at`, their ISO time of reading (None and None: every change)."""
    count = 0
    for entry in newest_first:
        if since_change is not None:
            if int(entry.get("change_id", 0)) <= since_change:
                break
        elif since_at is not None and str(entry.get("at", "")) <= since_at:
            break
        if counts_as_change(entry):
            count += 1
            if count >= cap:
                break
    return count


def accuracy_drop(champion_test_accuracy: float | None, batch_accuracy: float, threshold: float) -> float | None:
    """How far the champion's accuracy on a new labelled batch falls below its test accuracy, when that is
    more than `threshold` (None otherwise, or when the champion has no test figure)."""
    if champion_test_accuracy is None:
        return None
    drop = champion_test_accuracy - batch_accuracy
    return drop if drop > threshold else None


def check_batch(ws: Workspace, dataset: str, path: Path, fmt: str | None, columns: ColumnMap | None,
                threshold: float) -> dict[str, Any] | None:
    """The champion's accuracy on the labelled records of a just-ingested file against its own test accuracy;
    None when there is no champion or the file holds no labelled record. `retrain_due` says whether the drop
    is beyond `threshold` (DATA_DEBUGGER_RETRAIN_ACCURACY_DROP)."""
    from service.datasets.readers import read_records
    from service.datasets.records import validate
    from service.predictions.registry import ModelRegistry

    registry = ModelRegistry(ws.settings.models_dir)
    if registry.default_version(dataset) is None:
        return None
    champion = registry.get(dataset)
    texts, labels = [], []
    for raw in read_records(path, fmt, columns):
        record, _ = validate(raw)
        if record is not None and record.label is not None:
            texts.append(record.text)
            labels.append(record.label)
    if not texts:
        return None
    vectors = np.asarray(ws.embedder.embed(texts), np.float32) if champion.needs_vectors else None
    proba = champion.predict_proba(texts, vectors)
    predicted = np.asarray(champion.labels, dtype=object)[proba.argmax(axis=1)]
    accuracy = float(np.mean(predicted == np.asarray(labels, dtype=object)))
    test = (champion.metrics.get("test") or {}).get("accuracy")
    drop = accuracy_drop(test, accuracy, threshold)
    return {"champion": champion.version, "labelled": len(texts), "accuracy": accuracy, "test_accuracy": test,
            "threshold": threshold, "retrain_due": drop is not None}
