"""The improvement loop in the service: how far the labels have moved since the champion, and the retrain
it queues by itself after DATA_DEBUGGER_RETRAIN_AFTER changes (one at a time per dataset)."""

from __future__ import annotations

import logging
from typing import Any

from service.predictions.registry import ModelRegistry
from service.predictions.triggers import changes_since, counts_as_change

log = logging.getLogger(__name__)

PAGE = 200


def _newest(audit) -> Any:
    offset = 0
    while True:
        page = audit.newest(offset, PAGE)
        if not page:
            return
        yield from page
        offset += len(page)


# `state` is the service's ApiState; not imported even for the type checker, since the review paths of
# service.labelstudio call in here and the state builds the run steps that call them (an import cycle).
def loop_state(state: Any, dataset: str) -> dict[str, Any]:
    """The champion, the label changes since its data, the threshold, and a retrain queued or running."""
    registry = ModelRegistry(state.settings.models_dir)
    champion = registry.get(dataset) if registry.default_version(dataset) else None
    newest = registry.latest(dataset)
    threshold = state.settings.retrain_after
    cap = max(threshold, 1) * 4 if threshold else 10_000
    # Counted from the newest version's data: the champion's, or a refused challenger's (a refusal is not
    # retried on every later review, only after another `retrain_after` changes).
    since_change = newest.meta.get("data_read_change") if newest else None
    since_at = (newest.meta.get("data_read_at") or newest.created_at) if newest else None
    changes = changes_since(_newest(state.audit(dataset)), since_change, since_at, cap)
    active = state.runs.active(dataset, "retrain")
    return {"champion": champion.version if champion else None, "newest": newest.version if newest else None,
            "changes_since": changes,
            "changes_capped": changes >= cap, "retrain_after": threshold,
            "active_run": active.to_dict() if active else None}


def queue_retrain_if_due(state: Any, dataset: str) -> dict[str, Any] | None:
    """After a review write: queue a retrain when the changes since the champion reach the threshold and no
    retrain of the dataset is queued or running. Returns the queued run, or None. Never fails the write."""
    threshold = state.settings.retrain_after
    if not threshold or state.runs.active(dataset, "retrain") is not None:
        return None
    try:
        now = loop_state(state, dataset)
        if now["champion"] is None or now["changes_since"] < threshold:
            return None
        run, _ = state.runs.submit(dataset, "retrain", {}, trigger="changes")
        log.info("%s: %d label changes since %s; retrain %s queued", dataset, now["changes_since"],
                 now["champion"], run.id)
        return run.to_dict()
    except Exception as exc:  # noqa: BLE001 - the reviewer's write succeeded; the trigger tries again next time
        log.warning("could not queue a retrain of %s: %s", dataset, exc)
        return None


def reviews_per_version(state: Any, dataset: str, history: list[dict[str, Any]]) -> None:
    """Add to each history row (newest first) `reviewed_added`: the label changes logged between the previous
    version reading its labels and this one doing so, i.e. the reviews this version was the first to learn.
    Versions are placed by the audit log's length when they read (`data_read_change`)."""
    marks = sorted({int(row["data_read_change"]) for row in history if row.get("data_read_change") is not None})
    counts = dict.fromkeys(marks, 0)
    if marks:
        for entry in state.audit(dataset).all():
            change = int(entry.get("change_id", 0))
            first = next((m for m in marks if m >= change), None)  # the first version whose read saw it
            if first is not None and counts_as_change(entry):
                counts[first] += 1
    for row in history:
        mark = row.get("data_read_change")
        row["reviewed_added"] = counts.get(int(mark), 0) if mark is not None else None
