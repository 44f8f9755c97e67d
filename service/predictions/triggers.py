"""When the service retrains by itself: after enough reviewed label changes since the champion's data, or
when a newly uploaded labelled batch shows the champion doing worse than its test figures promised."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Audit actions that can change what a model trains on (a label or a point's split).
LABEL_FIELDS = ("label", "split")


def changes_since(newest_first: Iterable[dict[str, Any]], since: str | None, cap: int) -> int:
    """Label changes logged after `since` (an ISO timestamp; None = all), not undone and not undos
    themselves, counted newest first and stopping at `cap` (enough to decide)."""
    count = 0
    for entry in newest_first:
        if since is not None and str(entry.get("at", "")) <= since:
            break
        if entry.get("undoes") is not None or entry.get("undone_by") is not None:
            continue
        if any(key in (entry.get("new") or {}) for key in LABEL_FIELDS):
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
