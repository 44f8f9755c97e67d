"""What annotators chose in Label Studio, applied as review actions.

Per task, each annotator's latest annotation counts; a skipped (cancelled) or empty one abstains. The
choice, when the annotators agree, becomes:

    reviewed    it is the point's current label: the label is confirmed and the point leaves the issue list
    accept      it is the point's suggestion (suggested_label, else prediction)
    relabel     anything else
    unchanged   the point already carries that label and a review decision (a re-import, or agreement
                with a later edit)
    stale       the point changed after the task was made (data.revision): nothing is applied, and the
                report names who changed it and when; `force` applies the choice anyway

Tasks that cannot apply (no point, another dataset, several labels, annotators who disagree, an unknown
label) are listed in `skipped` with the reason and the fix. Every applied action goes through the review
core, so it is checked against the point's revision and logged like any other change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from service.errors import Conflict, InvalidInput, NotFound
from service.labelstudio.tasks import object_field
from service.review.actions import ActionName, ReviewAction
from service.review.actions import resolve_point as resolve_id

if TYPE_CHECKING:
    from service.review.core import ReviewCore

log = logging.getLogger(__name__)

# The review core's statuses for our outcomes (an unchanged point keeps what it had).
OUTCOMES = ("accepted", "reviewed", "relabelled")
ACTION_OUTCOME = {"accept": "accepted", "reviewed": "reviewed", "relabel": "relabelled"}
# A numeric Label Studio user id -> the user's email (a connected server), or None when unknown.
UserLookup = Callable[[int], str | None]


class Skip(ValueError):
    """A task that cannot apply; the message says why and what to do."""


@dataclass
class Choice:
    """The label a task's annotators chose, and who chose it."""

    label: str
    annotator: str | None
    annotation_id: Any
    annotators: list[str] = field(default_factory=list)


def annotator_name(who: Any, users: UserLookup | None = None) -> str | None:
    """The annotator as the audit log names them: the email where the export or the server gives it."""
    if isinstance(who, dict):
        email = who.get("email")
        if email:
            return str(email)
        who = who.get("id")
    if who in (None, ""):
        return None
    if isinstance(who, str) and not who.strip().isdigit():
        return who.strip()
    try:
        number = int(who)
    except (TypeError, ValueError):
        return str(who)
    email = users(number) if users is not None else None
    return email or f"label-studio user {number}"


def _choices(annotation: dict[str, Any]) -> list[str]:
    results = annotation.get("result")
    for result in results if isinstance(results, list) else []:
        value = result.get("value") if isinstance(result, dict) else None
        choices = value.get("choices") if isinstance(value, dict) else None
        if isinstance(choices, str):
            choices = [choices]
        if isinstance(choices, list) and choices:
            return [str(c) for c in choices]
    return []


def _annotator_key(annotation: dict[str, Any]) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("id", who.get("email"))
    return str(who)


def task_choice(task: dict[str, Any], users: UserLookup | None = None) -> Choice | None:
    """The choice the task's annotators agree on; None when none chose; Skip when they chose several labels or
    disagree (a point has one label, and the import does not pick for them)."""
    latest: dict[str, dict[str, Any]] = {}
    given = task.get("annotations")
    annotations = [a for a in given if isinstance(a, dict)] if isinstance(given, list) else []
    annotations.sort(key=lambda a: str(a.get("updated_at") or a.get("created_at") or ""))
    for annotation in annotations:  # each annotator's latest annotation wins over their earlier ones
        latest[_annotator_key(annotation)] = annotation
    chosen = [(a, _choices(a)) for a in latest.values() if not a.get("was_cancelled")]
    chosen = [(a, c) for a, c in chosen if c]
    if not chosen:
        return None
    for _, choices in chosen:
        if len(set(choices)) > 1:
            raise Skip(f"the annotation chose {len(choices)} labels ({', '.join(choices)}); a point has one: "
                       "use a single-choice labelling config, or fix the annotation in Label Studio")
    names = [annotator_name(a.get("completed_by"), users) or "unknown" for a, _ in chosen]
    labels = {c[0] for _, c in chosen}
    if len(labels) > 1:
        said = ", ".join(f"{n} chose {c[0]!r}" for n, (_, c) in zip(names, chosen, strict=True))
        raise Skip(f"the annotators disagree ({said}); settle it in Label Studio (delete or update one "
                   "annotation) and import again")
    last, choices = chosen[-1]
    return Choice(label=choices[0], annotator=names[-1] if names[-1] != "unknown" else None,
                  annotation_id=last.get("id"), annotators=sorted(set(names)))


def task_point(task: dict[str, Any]) -> Any:
    """The point a task is about: data.point_id, else data.record_id, else data.id (tasks of older exports)."""
    data, meta = object_field(task, "data"), object_field(task, "meta")
    keys = ("point_id",) if task.get("format") else ("point_id", "record_id", "id")
    for source in (data, meta):
        for key in keys:
            if source.get(key) not in (None, ""):
                return source[key]
    return None


def _revision(task: dict[str, Any]) -> int | None:
    value = (task.get("data") or {}).get("revision")
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value if isinstance(value, int) and value >= 0 else None


class Importer:
    """Applies tasks to one dataset; keeps the counts and lists of one import."""

    def __init__(self, state: ReviewCore, dataset: str, *, user: str = "label-studio", allow_new_label: bool = False,
                 force: bool = False, users: UserLookup | None = None, reason: str = "label_studio_import"):
        self.state, self.dataset = state, dataset
        self.user, self.allow_new_label, self.force, self.users, self.reason = (
            user, allow_new_label, force, users, reason)
        self.collection = state.workspace.collection(dataset)
        self.known = set(self.collection.facet("label"))
        self.counts = {"applied": 0, "unchanged": 0, **{o: 0 for o in OUTCOMES}}
        self.stale: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self.changes: list[int] = []
        self._history: dict[Any, list[dict[str, Any]]] | None = None

    def result(self, fmt: str = "JSON") -> dict[str, Any]:
        """What the import did, as the API answers it."""
        return {"format": fmt, **self.counts, "stale": self.stale, "skipped": self.skipped, "changes": self.changes}

    def apply_all(self, tasks: list[Any]) -> dict[str, Any]:
        """Apply every task; returns `result()`."""
        for index, task in enumerate(tasks):
            self.apply(index, task)
        log.info("label studio import into %s: %s, %d stale, %d skipped", self.dataset,
                 ", ".join(f"{v} {k}" for k, v in self.counts.items()), len(self.stale), len(self.skipped))
        return self.result()

    def apply(self, index: int, task: Any) -> str:
        """Apply one task; returns its outcome (accepted/reviewed/relabelled/unchanged/stale/skipped)."""
        if not isinstance(task, dict):
            self.skipped.append({"task": index, "reason": "not a JSON object"})
            return "skipped"
        where = {"task": index, "task_id": task.get("id")}
        try:
            return self._apply(task, where)
        except (Skip, InvalidInput, NotFound, Conflict) as exc:
            self.skipped.append({**where, "reason": str(exc)})
        except ValueError as exc:  # pydantic: a label too long
            self.skipped.append({**where, "reason": str(exc).splitlines()[0]})
        return "skipped"

    def _apply(self, task: dict[str, Any], where: dict[str, Any]) -> str:
        data = object_field(task, "data")
        other = data.get("dataset")
        if other not in (None, "") and other != self.dataset:
            raise Skip(f"the task is from dataset {other!r}, not {self.dataset!r}; import it into {other!r}")
        raw = task_point(task)
        if raw is None:
            raise Skip("no data.point_id / data.record_id / data.id to find the point")
        pid = resolve_id(raw)
        where["point_id"] = pid
        choice = task_choice(task, self.users)
        if choice is None:
            raise Skip("no annotation with a choice (every annotation was skipped, or chose nothing)")
        found = self.collection.retrieve([pid])
        if not found:
            raise NotFound(f"no point {pid!r} in dataset {self.dataset!r}")
        payload = found[0].payload
        label = payload.get("label")
        current = int(payload.get("revision") or 0)
        if choice.label == label and payload.get("review_status"):
            self.counts["unchanged"] += 1
            return "unchanged"
        exported = _revision(task)
        if exported is not None and exported != current and not self.force:
            change = foreign_change(self._changes_of(pid), task, exported)
            if change is not None:
                self.stale.append({**where, **_stale(pid, exported, current, change), "choice": choice.label,
                                   "annotator": choice.annotator})
                return "stale"
        suggestion = payload.get("suggested_label") or payload.get("prediction")
        action: ActionName = ("reviewed" if choice.label == label else "accept" if choice.label == suggestion
                              else "relabel")
        evidence = {"label_studio_task": task.get("id"), "label_studio_annotation": choice.annotation_id,
                    "annotators": choice.annotators, "exported_revision": exported}
        body = ReviewAction(action=action, label=choice.label if action != "reviewed" else None,
                            reason=self.reason, user=choice.annotator or self.user, revision=current,
                            evidence=evidence, allow_new_label=self.allow_new_label or choice.label in self.known)
        change = self.state.apply_review(self.dataset, pid, body, source="label-studio").change
        self.changes.append(int(change["change_id"]))
        if self._history is not None:  # a later task of the same point sees this change
            self._history.setdefault(pid, []).append(change)
        outcome = ACTION_OUTCOME[action]
        self.counts[outcome] += 1
        self.counts["applied"] += 1
        self.known.add(choice.label)
        return outcome

    def _changes_of(self, pid: Any) -> list[dict[str, Any]]:
        """The point's entries of the audit log, oldest first (the log is read once per import)."""
        if self._history is None:
            self._history = {}
            for entry in self.state.audit(self.dataset).all():
                self._history.setdefault(entry.get("point_id"), []).append(entry)
        return self._history.get(pid, [])


def shown(entry: dict[str, Any]) -> dict[str, Any]:
    """What an import told the review core about a change (its task and annotation), from the audit entry."""
    return object_field(object_field(entry, "evidence"), "shown")


def annotation_ids(task: dict[str, Any]) -> set[str]:
    given = task.get("annotations")
    return {str(a.get("id")) for a in (given if isinstance(given, list) else [])
            if isinstance(a, dict) and a.get("id") is not None}


def foreign_change(history: list[dict[str, Any]], task: dict[str, Any], revision: int) -> dict[str, Any] | None:
    """The latest change after `revision` that this task's own annotations did not make (an edit in Data
    Debugger, an undo, another task, an annotation not in hand): an updated annotation is not stale against the
    change it made itself, and annotators of one task are weighed together by `task_choice`."""
    task_id, own = task.get("id"), annotation_ids(task)

    def ours(entry: dict[str, Any]) -> bool:
        evidence = shown(entry)
        return (task_id is not None and evidence.get("label_studio_task") == task_id
                and str(evidence.get("label_studio_annotation")) in own)

    later = [e for e in history if int(e.get("revision_after") or 0) > revision and not ours(e)]
    return later[-1] if later else None


def _stale(pid: Any, exported: int, current: int, change: dict[str, Any]) -> dict[str, Any]:
    """The stale report of a task: who changed the point after it was made, and when."""
    what = f"{change.get('action')} by {change.get('user')} at {change.get('at')} (change {change.get('change_id')})"
    return {"exported_revision": exported, "revision": current, "changed_by": change.get("user"),
            "changed_at": change.get("at"), "change": change.get("change_id"), "action": change.get("action"),
            "reason": f"point {pid!r} changed after this task was made (revision {exported}, now {current}): "
                      f"{what}; nothing applied. Re-export the task, or import with force to apply the annotation "
                      "over that change"}


def retract(state: ReviewCore, dataset: str, annotation_ids: list[Any], user: str = "label-studio") -> dict[str, Any]:
    """Annotations deleted in Label Studio: undo the changes they made, where nothing changed the point since."""
    ids = {str(a) for a in annotation_ids}
    audit = state.audit(dataset)
    undone: list[int] = []
    kept: list[dict[str, Any]] = []
    for entry in reversed(audit.all()):  # newest first: an annotation updated twice is undone back to front
        annotation = shown(entry).get("label_studio_annotation")
        if annotation is None or str(annotation) not in ids or entry.get("action") == "undo":
            continue
        if audit.undone_by(int(entry["change_id"])) is not None:
            continue
        try:
            change = state.undo_review(dataset, int(entry["change_id"]), user,
                                       "label_studio_annotation_deleted").change
            undone.append(int(change["change_id"]))
        except Conflict as exc:
            kept.append({"change": entry["change_id"], "annotation": annotation, "reason": str(exc)})
    return {"undone": undone, "kept": kept}


def after_import(state: ReviewCore, dataset: str, result: dict[str, Any]) -> dict[str, Any]:
    """Labels changed: let the improvement loop queue a retrain when enough changed (as any review write does)."""
    if result.get("applied") or (result.get("retracted") or {}).get("undone") or result.get("undone"):
        from service.api.loop import queue_retrain_if_due

        queue_retrain_if_due(state, dataset)
    return result


def import_tasks(state: ReviewCore, dataset: str, tasks: list[Any], *, fmt: str = "JSON",
                 **options: Any) -> dict[str, Any]:
    """Apply a Label Studio export (already parsed into tasks); see the module docstring for the outcomes."""
    return after_import(state, dataset, {**Importer(state, dataset, **options).apply_all(tasks), "format": fmt})
