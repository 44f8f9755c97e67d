"""Label Studio imports: each task's latest choice becomes a relabel, applied through the review core
(service.review.actions) like any other change."""

from __future__ import annotations

import logging
from typing import Any

from service.api.queries import resolve_id
from service.api.schemas import LabelIn
from service.api.state import ApiState
from service.errors import Conflict, InvalidInput, NotFound
from service.review.actions import ReviewAction

log = logging.getLogger(__name__)


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
            found = collection.retrieve([pid])
            if not found:
                raise NotFound(f"no point {pid!r} in dataset {dataset!r}")
            if found[0].payload.get("label") == label:
                unchanged += 1
                continue
            done = state.apply_review(dataset, raw, ReviewAction(**body.model_dump()), source="label-studio")
            applied.append(int(done.change["change_id"]))
        except (InvalidInput, NotFound, Conflict) as exc:
            skipped.append({**where, "reason": str(exc)})
        except ValueError as exc:  # pydantic: a label too long
            skipped.append({**where, "reason": str(exc).splitlines()[0]})
    log.info("label studio import into %s: %d applied, %d unchanged, %d skipped", dataset, len(applied),
             unchanged, len(skipped))
    return {"applied": len(applied), "unchanged": unchanged, "skipped": skipped, "changes": applied}
