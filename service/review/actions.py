"""Review writes: relabel / accept / reviewed / ambiguous, and undo.

Every write runs under the dataset's lock: read the point, check its `revision`, append the change to the
audit log as pending, write the point, then mark the entry applied. A stop between the two writes leaves a
pending entry that the next opening of the log settles against the point (`settle_by_point`): applied if
the point reached the change's revision (finishing a half-done key removal), not applied otherwise.

    from service.review.actions import ReviewAction, apply_action, open_audit
    done = apply_action(ws, threading.RLock(), "banking", 42, ReviewAction("relabel", label="lost_card"),
                        audit=open_audit(ws, "banking"))
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal

from embeddings.store import Collection, PointId, Store, point_id
from service.datasets.catalog import data_collection_name, now_iso
from service.errors import Conflict, InvalidInput, NotFound, invalid
from service.review.audit import APPLIED, AuditBook, AuditLog, Settle, status_of
from service.workspace import Workspace

log = logging.getLogger(__name__)

# What the reviewer saw, kept with each change.
EVIDENCE_FIELDS = (
    "prediction", "confidence", "n_best", "model_version", "suggested_label", "suggestion_confidence",
    "mislabel_score", "label_quality", "triage", "reasons", "knn_majority_label", "knn_majority_share",
    "knn_agreement", "cluster", "duplicate_group", "analysis_run",
)
ActionName = Literal["relabel", "accept", "reviewed", "ambiguous"]
STATUS_OF = {"relabel": "relabelled", "accept": "accepted", "reviewed": "reviewed", "ambiguous": "ambiguous"}
MAX_EVIDENCE_CHARS = 20_000


@dataclass(frozen=True)
class ReviewAction:
    """One review decision on a point. `revision` is the revision the reviewer saw (None skips the check)."""

    action: ActionName
    label: str | None = None
    reason: str = ""
    user: str = "anonymous"
    revision: int | None = None
    evidence: dict[str, Any] | None = None
    allow_new_label: bool = False

    def __post_init__(self) -> None:
        """The API's bounds (service.api.schemas.LabelIn), held here too for callers that are not the API."""
        for name, value, low, high in (("label", self.label or "x", 1, 200), ("reason", self.reason or "", 0, 200),
                                       ("user", self.user, 1, 100)):
            if not low <= len(value) <= high:
                raise invalid(f"body.{name}", f"is {len(value)} characters; it must be {low} to {high}")
        if self.revision is not None and self.revision < 0:
            raise invalid("body.revision", f"is {self.revision}; it must be 0 or more")


@dataclass(frozen=True)
class PointWrite:
    """A review write that reached a point, for whoever keeps views of the dataset (they patch, not rebuild)."""

    dataset: str
    point_id: PointId
    set_fields: dict[str, Any]
    removed: list[str]
    label_revision: int


@dataclass(frozen=True)
class Reviewed:
    """A point after a review write, and the change as logged."""

    point_id: PointId
    payload: dict[str, Any]
    change: dict[str, Any]


OnWrite = Callable[[PointWrite], None]


def _nobody(write: PointWrite) -> None:
    """Nobody keeps views (the CLI)."""


def settle_by_point(store: Store, dataset: str) -> Settle:
    """How a pending entry of `dataset` is decided: by whether its point reached the change."""

    name = data_collection_name(dataset)

    def settle(entry: dict[str, Any]) -> bool:
        if not store.exists(name):
            return False
        collection = store.get(name)
        found = collection.retrieve([entry["point_id"]])
        if not found:
            return False
        payload = found[0].payload
        if int(payload.get("revision") or 0) != int(entry["revision_after"]):
            return False  # the single set_payloads carrying the revision never happened
        # The fields and the revision land together; a removal is a second call: finish it.
        left = [k for k in entry.get("removed") or [] if k in payload]
        if left:
            collection.delete_payload_keys([entry["point_id"]], left)
        return True

    return settle


def open_audits() -> AuditBook:
    """An audit book whose logs settle pending entries by their points when opened."""
    return AuditBook(settle_for=settle_by_point)


def open_audit(ws: Workspace, dataset: str) -> AuditLog:
    """A dataset's audit log on its own (the CLI), settled on opening."""
    return AuditLog(ws.store, dataset, settle_by_point(ws.store, dataset))


def resolve_point(raw: str | int) -> PointId:
    """The point id of what a client sent: a point id, or a record id (string ids map to UUIDs)."""
    if isinstance(raw, str):
        raw = raw.strip()
        if not raw:
            raise invalid("point_id", "is empty; pass a point id or record id")
    return point_id(raw)


def _status_for(prediction: Any, label: str | None) -> str | None:
    if prediction is None:
        return None
    if label is None:
        return "unlabelled"
    return "correct" if prediction == label else "incorrect"


def _with_flag(flags: Any, flag: str) -> list[str]:
    out = list(flags) if isinstance(flags, list) else []
    if flag not in out:
        out.append(flag)
    return out


def _client_evidence(evidence: dict[str, Any] | None) -> dict[str, Any]:
    if not evidence:
        return {}
    text = json.dumps(evidence, default=str)
    if len(text) > MAX_EVIDENCE_CHARS:
        raise InvalidInput(f"body.evidence is {len(text)} characters; keep it under {MAX_EVIDENCE_CHARS}")
    return json.loads(text)


def _changes_for(payload: dict[str, Any], act: ReviewAction, known_labels: set[str],
                 validation_share: float = 0.0, pid: PointId | None = None) -> dict[str, Any]:
    """The fields an action sets on a point."""
    label = payload.get("label")
    new: str | None
    if act.action == "relabel":
        new = (act.label or "").strip()
        if not new:
            raise InvalidInput("body.label is required for action 'relabel': give the new label")
        if new == label:
            raise InvalidInput(f"the point already has label {new!r}; to confirm it use action 'reviewed'")
        if new not in known_labels and not act.allow_new_label:
            raise InvalidInput(
                f"body.label {new!r} is not a label of this dataset ({', '.join(sorted(known_labels)[:20])}); "
                "check the spelling, or pass allow_new_label: true to introduce it"
            )
    elif act.action == "accept":
        new = payload.get("suggested_label") or payload.get("prediction")
        if new is None:
            raise InvalidInput("this point has no suggested_label or prediction to accept; use action 'relabel'")
        if act.label is not None and act.label.strip() != new:
            raise InvalidInput(
                f"body.label {act.label!r} differs from the suggestion {new!r}; use action 'relabel' for another label"
            )
    else:
        new = label
    fields: dict[str, Any] = {"review_status": STATUS_OF[act.action]}
    flag = "ambiguous" if act.action == "ambiguous" else "reviewed"
    fields["flags"] = _with_flag(payload.get("flags"), flag)
    if new != label:
        fields["label"] = new
        if "original_label" not in payload:
            fields["original_label"] = label
        if label is None:
            # A newly labelled point trains the next version; evaluation splits never grow silently.
            fields["split"] = split_for_new_label(pid if pid is not None else payload.get("record_id"),
                                                  validation_share)
        status = _status_for(payload.get("prediction"), new)
        if status is not None:
            fields["prediction_status"] = status
    return fields


def split_for_new_label(pid: Any, validation_share: float) -> str:
    """training, or validation for a stable seeded share of ids (DATA_DEBUGGER_NEW_LABEL_VALIDATION_SHARE)."""
    if validation_share <= 0:
        return "training"
    draw = int.from_bytes(hashlib.sha256(f"new-label:{pid}".encode()).digest()[:8], "big") / 2**64
    return "validation" if draw < validation_share else "training"


def _write(ws: Workspace, audit: AuditLog, collection: Collection, pid: PointId, payload: dict[str, Any],
           on_write: OnWrite, *, set_fields: dict[str, Any], remove: list[str], action: str, user: str, reason: str,
           evidence: dict[str, Any], undoes: int | None = None, source: str = "api") -> Reviewed:
    """Log the change as pending, write the point, mark the change applied."""
    touched = list(dict.fromkeys([*set_fields, *remove]))
    revision = int(payload.get("revision") or 0)
    entry = {
        "point_id": pid, "record_id": payload.get("record_id"), "action": action, "user": user,
        "reason": reason, "at": now_iso(),
        "old": {k: payload[k] for k in touched if k in payload},
        "absent_before": [k for k in touched if k not in payload],
        "new": set_fields, "removed": remove,
        "revision_before": revision, "revision_after": revision + 1,
        "evidence": evidence, "undoes": undoes, "source": source,
    }
    pending = audit.append(entry)
    try:
        # Fields and revision in one call, so the revision alone says whether the point took the change.
        collection.set_payloads({pid: {**set_fields, "revision": revision + 1}})
        present_remove = [k for k in remove if k in payload]
        if present_remove:
            collection.delete_payload_keys([pid], present_remove)
    except Exception:
        # Decide now what the point holds: a change it took whole (its removal finished by the check)
        # stands and is answered; otherwise the entry says not applied (or stays pending) and the error goes up.
        if audit.settle(pending, settle_by_point(ws.store, audit.dataset)) != APPLIED:
            raise
        change = audit.get(int(pending["change_id"]))
    else:
        # No flush: the store's write-ahead log already makes the write durable, and a flush costs ~0.3 s.
        change = audit.confirm(pending)
    updated = {k: v for k, v in payload.items() if k not in remove}
    updated.update(set_fields)
    updated["revision"] = revision + 1
    on_write(PointWrite(audit.dataset, pid, {**set_fields, "revision": revision + 1}, remove, len(audit)))
    return Reviewed(pid, updated, change)


def _point(collection: Collection, dataset: str, pid: PointId) -> dict[str, Any]:
    found = collection.retrieve([pid])
    if not found:
        raise NotFound(f"no point {pid!r} in dataset {dataset!r}")
    return found[0].payload


def _check_revision(payload: dict[str, Any], expected: int | None, pid: PointId) -> None:
    current = int(payload.get("revision") or 0)
    if expected is not None and expected != current:
        raise Conflict(
            f"point {pid!r} is at revision {current}, not {expected}: someone changed it since you loaded it; "
            "reload the point and decide again"
        )


def apply_action(ws: Workspace, lock: AbstractContextManager[Any], dataset: str, raw_id: str | int,
                 act: ReviewAction, *, audit: AuditLog, on_write: OnWrite = _nobody,
                 source: str = "api") -> Reviewed:
    """Apply one review action under `lock` (the dataset's); Conflict when `act.revision` is stale."""
    collection = ws.collection(dataset)
    pid = resolve_point(raw_id)
    with lock:
        payload = _point(collection, dataset, pid)
        _check_revision(payload, act.revision, pid)
        known = set(collection.facet("label")) if act.action == "relabel" else set()
        fields = _changes_for(payload, act, known, ws.settings.new_label_validation_share, pid)
        evidence = {k: payload[k] for k in EVIDENCE_FIELDS if k in payload}
        shown = _client_evidence(act.evidence)
        if shown:
            evidence["shown"] = shown
        return _write(ws, audit, collection, pid, payload, on_write, set_fields=fields, remove=[], action=act.action,
                      user=act.user, reason=act.reason, evidence=evidence, source=source)


def _still_applied(payload: dict[str, Any], change: dict[str, Any]) -> bool:
    """Whether the point still holds exactly what the change set (later changes were all undone)."""
    missing = object()
    if any(payload.get(k, missing) != v for k, v in (change.get("new") or {}).items()):
        return False
    return not any(k in payload for k in change.get("removed") or [])


def undo(ws: Workspace, lock: AbstractContextManager[Any], dataset: str, change_id: int, user: str, reason: str, *,
         audit: AuditLog, on_write: OnWrite = _nobody) -> Reviewed:
    """Revert a change by appending its inverse; Conflict if already undone, never applied, or if a later
    change of the point is still in effect (undo those first: the log is a stack per point)."""
    collection = ws.collection(dataset)
    with lock:
        change = audit.get(change_id)
        if status_of(change) != APPLIED:
            raise Conflict(f"change {change_id} is {status_of(change).replace('_', ' ')}: it never changed the "
                           "point, so there is nothing to undo")
        if change.get("undone_by") is not None:
            raise Conflict(f"change {change_id} was already undone by change {change['undone_by']}")
        pid = change["point_id"]
        payload = _point(collection, dataset, pid)
        current = int(payload.get("revision") or 0)
        if current != change["revision_after"] and not _still_applied(payload, change):
            raise Conflict(
                f"point {pid!r} changed after change {change_id} (it is at revision {current}, the change left it "
                f"at {change['revision_after']}, and its fields differ from what the change set); undo the later "
                "changes first (GET /changes?point=...)"
            )
        restore = dict(change.get("old") or {})
        remove = [k for k in change.get("absent_before") or [] if k not in restore]
        evidence = {"undone_change": {k: change.get(k) for k in ("action", "user", "reason", "at", "old", "new")}}
        return _write(ws, audit, collection, pid, payload, on_write, set_fields=restore, remove=remove,
                      action="undo", user=user, reason=reason, evidence=evidence, undoes=change_id)
