"""Push a labelling queue to a Label Studio project and pull the annotations back.

What each dataset's project holds is remembered in `<home>/label-studio/<dataset>.json`: the server URL, the
project id, each point's task (and the revision it was made from), and the annotations already applied, so
a push sends no duplicate and a pull applies only what is new or updated since the last one.

    push: create the project (or update its labelling config), mark or remove tasks whose points were changed
          in Data Debugger since (removed when nobody annotated them yet), send the new points of the queue
          (or of the issues, the suggestions)
    pull: every task whose annotations are new or updated goes through the importer (accept / reviewed /
          relabel / stale); annotations deleted in Label Studio undo what they applied
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.choices import DEFAULT_STRATEGY
from service.datasets.catalog import now_iso
from service.errors import InvalidInput
from service.labelstudio.client import LabelStudioClient
from service.labelstudio.importer import Importer, after_import, foreign_change, retract
from service.labelstudio.tasks import config_labels, label_studio_config, label_studio_task

if TYPE_CHECKING:
    from service.review.core import ReviewCore
    from service.settings import Settings
    from service.workspace import Workspace

log = logging.getLogger(__name__)

BATCH = 100


@dataclass
class SyncState:
    """What Data Debugger knows of a dataset's Label Studio project."""

    url: str = ""
    project_id: int | None = None
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # str(point id) -> {"task", "revision"}
    pulled: dict[str, dict[str, Any]] = field(default_factory=dict)  # str(annotation id) -> {"task", "updated_at"}
    last_push: str | None = None
    last_pull: str | None = None


def state_path(settings: Settings, dataset: str) -> Path:
    return settings.home / "label-studio" / f"{dataset}.json"


def load_state(settings: Settings, dataset: str) -> SyncState:
    """The dataset's sync state (empty when it never pushed)."""
    path = state_path(settings, dataset)
    if not path.exists():
        return SyncState()
    raw = json.loads(path.read_text())
    return SyncState(**{k: v for k, v in raw.items() if k in SyncState.__dataclass_fields__})


def save_state(settings: Settings, dataset: str, sync: SyncState) -> None:
    """Written to a temporary file and renamed, so a crash never leaves half a state."""
    path = state_path(settings, dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(asdict(sync), indent=1, default=str))
    os.replace(tmp, path)


class _Quiet:
    """Progress for callers that show none (the CLI logs instead)."""

    def update(self, **_: Any) -> None:
        pass


def _audit_by_point(state: ReviewCore, dataset: str) -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = {}
    for entry in state.audit(dataset).all():
        out.setdefault(entry.get("point_id"), []).append(entry)
    return out


KINDS = ("queue", "issues", "suggestions")


def _rows(ws: Workspace, dataset: str, kind: str, strategy: str, limit: int, seed: int) -> list[dict[str, Any]]:
    """The points to send: the labelling queue, the issues not yet reviewed, or the suggestions."""
    from service import exports

    if kind not in KINDS:
        raise InvalidInput(f"push kind {kind!r} is unknown; use one of {', '.join(KINDS)}")
    if kind != "queue":
        exports.load_report(ws.settings, dataset)  # never analysed: say so, rather than push nothing
    return list(exports.ROWS[kind][1](ws, dataset, strategy=strategy, limit=limit, seed=seed))


def push(state: ReviewCore, dataset: str, strategy: str = DEFAULT_STRATEGY, limit: int = 50, seed: int = 0,
         kind: str = "queue", progress=None, client: LabelStudioClient | None = None) -> dict[str, Any]:
    """Send the queue's (or the issues', the suggestions') points to the dataset's project (made or updated
    here); see the module docstring."""
    progress = progress or _Quiet()
    ws = state.workspace
    collection = ws.collection(dataset)
    client = client or LabelStudioClient.from_settings(ws.settings)
    sync = load_state(ws.settings, dataset)
    if sync.url and sync.url != client.url:
        log.info("%s was synced with %s; starting a new project on %s", dataset, sync.url, client.url)
        sync = SyncState()
    sync.url = client.url
    config = label_studio_config(config_labels(ws, dataset))
    progress.update(stage="project")
    project = client.project(sync.project_id) if sync.project_id else None
    if sync.project_id is None or project is None:
        sync = SyncState(url=client.url)
        sync.project_id = client.create_project(f"Data Debugger: {dataset}", config,
                                                f"Points of dataset {dataset} to label, sent by Data Debugger")
        log.info("created Label Studio project %d for %s", sync.project_id, dataset)
    elif project.get("label_config") != config:
        client.set_label_config(sync.project_id, config)
    project_id = int(sync.project_id)
    save_state(ws.settings, dataset, sync)  # the project exists now, whatever happens next

    progress.update(stage="check tasks")
    present: dict[str, dict[str, Any]] = {}
    removed = marked = 0
    history: dict[Any, list[dict[str, Any]]] | None = None
    for task in client.tasks(project_id):
        data = task.get("data") or {}
        if data.get("point_id") is None:
            continue
        key = str(data["point_id"])
        revision = int(data.get("revision") or 0)
        found = collection.retrieve([_point_key(data["point_id"])])
        changed = found and int(found[0].payload.get("revision") or 0) != revision
        if changed:
            history = history if history is not None else _audit_by_point(state, dataset)
            change = foreign_change(history.get(found[0].id, []), task, revision)
            if change is not None:
                if not task.get("annotations"):
                    client.delete_task(int(task["id"]))
                    removed += 1
                    continue
                note = (f"changed in Data Debugger after this task was made: {change.get('action')} by "
                        f"{change.get('user')} at {change.get('at')}")
                if (task.get("meta") or {}).get("data_debugger") != note:
                    client.update_task_meta(int(task["id"]), {**(task.get("meta") or {}), "data_debugger": note})
                    marked += 1
        present[key] = {"task": int(task["id"]), "revision": revision}
    sync.tasks = present

    progress.update(stage="queue")
    rows = _rows(ws, dataset, kind, strategy, limit, seed)
    new = [r for r in rows if str(r.get("point_id", r.get("id"))) not in present]
    progress.update(stage="send", done=0, total=len(new))
    sent = 0
    for start in range(0, len(new), BATCH):
        batch = new[start:start + BATCH]
        ids = client.import_tasks(project_id, [label_studio_task(r, dataset) for r in batch])
        for row, task_id in zip(batch, ids, strict=False):
            sync.tasks[str(row.get("point_id", row.get("id")))] = {"task": task_id,
                                                                  "revision": int(row.get("revision") or 0)}
        sent += len(batch)
        progress.update(done=sent)
        save_state(ws.settings, dataset, sync)
    webhook = _ensure_webhook(ws.settings, client, project_id, dataset)
    sync.last_push = now_iso()
    save_state(ws.settings, dataset, sync)
    result = {"project_id": project_id, "project_url": f"{client.url}/projects/{project_id}", "sent": sent,
              "already_there": len(rows) - len(new), "removed": removed, "marked": marked,
              "tasks": len(sync.tasks), "webhook": webhook}
    log.info("pushed %s to Label Studio project %d: %s", dataset, project_id, result)
    return result


def _point_key(raw: Any) -> Any:
    from service.review.actions import resolve_point as resolve_id

    return resolve_id(raw)


def _ensure_webhook(settings: Settings, client: LabelStudioClient, project_id: int, dataset: str) -> str | None:
    """Register this service's webhook on the project when its public URL and secret are configured."""
    base, secret = settings.label_studio_webhook_base, settings.label_studio_webhook_secret
    if not base or secret is None:
        return None
    url = f"{base.rstrip('/')}/api/datasets/{dataset}/label-studio/webhook"
    if not any(w.get("url") == url for w in client.webhooks(project_id)):
        client.add_webhook(project_id, url, secret.get_secret_value())
    return url


def pull(state: ReviewCore, dataset: str, force: bool = False, progress=None,
         client: LabelStudioClient | None = None) -> dict[str, Any]:
    """Apply the annotations made or updated since the last pull (all of them, re-applied, with `force`)."""
    progress = progress or _Quiet()
    ws = state.workspace
    ws.collection(dataset)
    client = client or LabelStudioClient.from_settings(ws.settings)
    sync = load_state(ws.settings, dataset)
    if sync.project_id is None or sync.url != client.url:
        raise InvalidInput(f"dataset {dataset!r} has no Label Studio project on {client.url} yet; run "
                           f"`data-debugger label-studio push --dataset {dataset}` first")
    progress.update(stage="fetch")
    importer = Importer(state, dataset, users=client.email_of, force=force, reason="label_studio_pull")
    seen = changed = 0
    gone: list[Any] = []
    for task in client.tasks(int(sync.project_id)):
        seen += 1
        annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict)]
        now = {str(a.get("id")): {"task": task.get("id"), "updated_at": a.get("updated_at")} for a in annotations}
        before = [k for k, v in sync.pulled.items() if v.get("task") == task.get("id")]
        gone.extend(k for k in before if k not in now)
        fresh = [k for k, v in now.items() if sync.pulled.get(k, {}).get("updated_at") != v["updated_at"]]
        if fresh or (force and annotations):
            changed += 1
            importer.apply(changed - 1, task)
            sync.pulled.update(now)
        for k in gone:
            sync.pulled.pop(k, None)
        progress.update(stage="apply", done=seen)
    retracted = retract(state, dataset, gone) if gone else {"undone": [], "kept": []}
    sync.last_pull = now_iso()
    save_state(ws.settings, dataset, sync)
    result = {**importer.result(), "project_id": sync.project_id, "tasks_seen": seen, "tasks_changed": changed,
              "retracted": retracted}
    log.info("pulled %s from Label Studio project %s: %d task(s) changed, %d applied, %d stale, %d skipped",
             dataset, sync.project_id, changed, result["applied"], len(result["stale"]), len(result["skipped"]))
    return after_import(state, dataset, result)
