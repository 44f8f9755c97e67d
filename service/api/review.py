"""Review writes: relabel / accept / reviewed / ambiguous, undo, and Label Studio imports.

Every write runs under the dataset's review lock: read the point, check its `revision`, append the change
to the audit log, then write the point. The log entry goes first, so a crash between the two leaves a
logged change whose `revision_after` the point never reached (visible), never an unlogged change.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from embeddings.store import Collection, PointId
from service.api.deps import get_audit
from service.api.queries import point_out, resolve_id
from service.api.schemas import LabelIn
from service.api.state import ApiState
from service.datasets.catalog import now_iso
from service.errors import Conflict, InvalidInput, NotFound

log = logging.getLogger(__name__)

# What the reviewer saw, kept with each change.
EVIDENCE_FIELDS = (
    "prediction", "confidence", "n_best", "model_version", "suggested_label", "suggestion_confidence",
    "mislabel_score", "label_quality", "triage", "reasons", "knn_majority_label", "knn_majority_share",
    "knn_agreement", "cluster", "duplicate_group", "analysis_run",
)
STATUS_OF = {"relabel": "relabelled", "accept": "accepted", "reviewed": "reviewed", "ambiguous": "ambiguous"}
MAX_EVIDENCE_CHARS = 20_000


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
    import json

    text = json.dumps(evidence, default=str)
    if len(text) > MAX_EVIDENCE_CHARS:
        raise InvalidInput(f"body.evidence is {len(text)} characters; keep it under {MAX_EVIDENCE_CHARS}")
    return json.loads(text)


def _changes_for(payload: dict[str, Any], body: LabelIn, known_labels: set[str],
                 validation_share: float = 0.0, pid: PointId | None = None) -> dict[str, Any]:
    """The fields an action sets on a point."""
    label = payload.get("label")
    if body.action == "relabel":
        new = (body.label or "").strip()
        if not new:
            raise InvalidInput("body.label is required for action 'relabel': give the new label")
        if new == label:
            raise InvalidInput(f"the point already has label {new!r}; to confirm it use action 'reviewed'")
        if new not in known_labels and not body.allow_new_label:
            raise InvalidInput(
                f"body.label {new!r} is not a label of this dataset ({', '.join(sorted(known_labels)[:20])}); "
                "check the spelling, or pass allow_new_label: true to introduce it"
            )
    elif body.action == "accept":
        new = payload.get("suggested_label") or payload.get("prediction")
        if new is None:
            raise InvalidInput("this point has no suggested_label or prediction to accept; use action 'relabel'")
        if body.label is not None and body.label.strip() != new:
            raise InvalidInput(
                f"body.label {body.label!r} differs from the suggestion {new!r}; use action 'relabel' for another label"
            )
    else:
        new = label
    fields: dict[str, Any] = {"review_status": STATUS_OF[body.action]}
    flag = "ambiguous" if body.action == "ambiguous" else "reviewed"
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


def _write(state: ApiState, dataset: str, collection: Collection, pid: PointId, payload: dict[str, Any], *,
           set_fields: dict[str, Any], remove: list[str], action: str, user: str, reason: str,
           evidence: dict[str, Any], undoes: int | None = None, source: str = "api") -> tuple[dict, dict]:
    """Append the change to the log, then write the point; returns (point, change)."""
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
    audit = get_audit(state, dataset)
    change = audit.append(entry)
    collection.set_payloads({pid: {**set_fields, "revision": revision + 1}})
    present_remove = [k for k in remove if k in payload]
    if present_remove:
        collection.delete_payload_keys([pid], present_remove)
    # No flush: the store's write-ahead log already makes the write durable, and a flush costs ~0.3 s.
    updated = {k: v for k, v in payload.items() if k not in remove}
    updated.update(set_fields)
    updated["revision"] = revision + 1
    if state.snapshots is not None:
        snap = state.snapshots.peek(dataset)
        if snap is not None:
            snap.patch(pid, {**set_fields, "revision": revision + 1}, remove, len(audit))
    return point_out(pid, updated), change


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


def apply_action(state: ApiState, dataset: str, raw_id: str | int, body: LabelIn,
                 source: str = "api") -> tuple[dict[str, Any], dict[str, Any]]:
    """Apply one review action; 409 when `body.revision` is stale."""
    ws = state.workspace
    collection = ws.collection(dataset)
    pid = resolve_id(raw_id)
    with state.dataset_lock(dataset):
        payload = _point(collection, dataset, pid)
        _check_revision(payload, body.revision, pid)
        known = set(collection.facet("label")) if body.action == "relabel" else set()
        fields = _changes_for(payload, body, known, state.settings.new_label_validation_share, pid)
        evidence = {k: payload[k] for k in EVIDENCE_FIELDS if k in payload}
        shown = _client_evidence(body.evidence)
        if shown:
            evidence["shown"] = shown
        return _write(state, dataset, collection, pid, payload, set_fields=fields, remove=[], action=body.action,
                      user=body.user, reason=body.reason, evidence=evidence, source=source)


def _still_applied(payload: dict[str, Any], change: dict[str, Any]) -> bool:
    """Whether the point still holds exactly what the change set (later changes were all undone)."""
    missing = object()
    if any(payload.get(k, missing) != v for k, v in (change.get("new") or {}).items()):
        return False
    return not any(k in payload for k in change.get("removed") or [])


def undo(state: ApiState, dataset: str, change_id: int, user: str, reason: str) -> tuple[dict, dict]:
    """Revert a change by appending its inverse; 409 if already undone, or if a later change of the point is
    still in effect (undo those first: the log is a stack per point)."""
    ws = state.workspace
    collection = ws.collection(dataset)
    audit = get_audit(state, dataset)
    with state.dataset_lock(dataset):
        change = audit.get(change_id)
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
        return _write(state, dataset, collection, pid, payload, set_fields=restore, remove=remove,
                      action="undo", user=user, reason=reason, evidence=evidence, undoes=change_id)


# ---------------------------------------------------------------------------------------------------------
# Label Studio
# ---------------------------------------------------------------------------------------------------------


def _task_point(task: dict[str, Any]) -> Any:
    data = task.get("data") if isinstance(task.get("data"), dict) else {}
    meta = task.get("meta") if isinstance(task.get("meta"), dict) else {}
    for source in (data, meta):
        for key in ("point_id", "record_id", "id"):
            if source.get(key) not in (None, ""):
                return source[key]
    return None


class _SeveralChoices(ValueError):
    """An annotation chose more than one label: a point has one, so the import cannot pick for the annotator."""


def _task_choice(task: dict[str, Any]) -> tuple[str | None, str | None]:
    """(label, annotator) of the task's latest annotation that was not cancelled; _SeveralChoices when that
    annotation chose more than one label."""
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    annotations.sort(key=lambda a: str(a.get("updated_at") or a.get("created_at") or ""))
    for annotation in reversed(annotations):
        for result in annotation.get("result") or []:
            value = result.get("value") if isinstance(result, dict) else None
            choices = value.get("choices") if isinstance(value, dict) else None
            if choices:
                who = annotation.get("completed_by")
                if isinstance(who, dict):
                    who = who.get("email") or who.get("id")
                if len(set(map(str, choices))) > 1:
                    chosen = ", ".join(map(str, choices))
                    raise _SeveralChoices(f"the annotation chose {len(choices)} labels ({chosen}); a point has one: "
                                          "use a single-choice labelling config, or fix the annotation there")
                return str(choices[0]), (str(who) if who is not None else None)
    return None, None


def import_label_studio(state: ApiState, dataset: str, tasks: list[Any], user: str,
                        allow_new_label: bool) -> dict[str, Any]:
    """Apply a Label Studio export: each task's latest choice becomes a relabel (logged like any other)."""
    collection = state.workspace.collection(dataset)
    known = set(collection.facet("label"))
    applied: list[int] = []
    unchanged = 0
    skipped: list[dict[str, Any]] = []
    for index, task in enumerate(tasks):
        if not isinstance(task, dict):
            skipped.append({"task": index, "reason": "not a JSON object"})
            continue
        raw = _task_point(task)
        where = {"task": index, "task_id": task.get("id")}
        try:
            label, annotator = _task_choice(task)
        except _SeveralChoices as exc:
            skipped.append({**where, "reason": str(exc)})
            continue
        if raw is None:
            skipped.append({**where, "reason": "no data.point_id / data.record_id / data.id to find the point"})
            continue
        if label is None:
            skipped.append({**where, "reason": "no annotation with a choice"})
            continue
        revision = (task.get("data") or {}).get("revision")
        try:
            body = LabelIn(action="relabel", label=label, reason="label_studio_import",
                           user=annotator or user, allow_new_label=allow_new_label or label in known,
                           revision=revision if isinstance(revision, int) and revision >= 0 else None,
                           evidence={"label_studio_task": task.get("id")})
            pid = resolve_id(raw)
            payload = _point(collection, dataset, pid)
            if payload.get("label") == label:
                unchanged += 1
                continue
            _, change = apply_action(state, dataset, raw, body, source="label-studio")
            applied.append(int(change["change_id"]))
        except (InvalidInput, NotFound, Conflict) as exc:
            skipped.append({**where, "reason": str(exc)})
        except ValueError as exc:  # pydantic: a label too long
            skipped.append({**where, "reason": str(exc).splitlines()[0]})
    log.info("label studio import into %s: %d applied, %d unchanged, %d skipped", dataset, len(applied),
             unchanged, len(skipped))
    return {"applied": len(applied), "unchanged": unchanged, "skipped": skipped, "changes": applied}
