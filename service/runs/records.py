"""Run records: one `Run` per step run, kept in the store collection "runs" (dimension 1) so they survive a
restart; a run that was queued or running when the service stopped is marked "interrupted" on the next start."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embeddings.store import MetadataStore
from service.datasets.catalog import now_iso
from service.jsonable import jsonable as json_value
from service.workspace import Workspace

log = logging.getLogger(__name__)

RUNS_COLLECTION = "runs"
ACTIVE = ("queued", "running")
INTERRUPTED = {"status": 503, "code": "interrupted", "field": None, "problems": [],
               "message": "the service stopped during this run; start it again"}


@dataclass
class Run:
    """One step run for one dataset."""

    id: str
    dataset: str
    step: str
    params: dict[str, Any]
    status: str = "queued"
    progress: dict[str, Any] = field(default_factory=lambda: {"stage": "queued", "done": 0, "total": None})
    created_at: str = field(default_factory=now_iso)
    started_at: str | None = None
    finished_at: str | None = None
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Run:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in payload.items() if k in names})


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe, bounded copy of a step's result (dataclasses, numpy values, long lists cut)."""
    if depth > 6:
        return str(value)[:200]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in list(value.items())[:200]}
    if isinstance(value, list | tuple):
        return [jsonable(v, depth + 1) for v in value[:100]]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist()[:100], depth + 1)
    return json_value(value, default=lambda v: str(v)[:500])


def valid_id(run_id: str) -> bool:
    return len(run_id) == 16 and all(c in "0123456789abcdef" for c in run_id)


class RunRecords:
    """The persisted runs of a workspace (opened on use: the store may come up after the service)."""

    def __init__(self, workspace: Callable[[], Workspace]):
        self._workspace = workspace

    def _records(self) -> MetadataStore:
        """The run records, keyed by run id (the collection is made by the first write)."""
        return MetadataStore(self._workspace().store, RUNS_COLLECTION)

    def save(self, run: Run) -> None:
        try:
            self._records().put(run.id, jsonable(run.to_dict()))
        except Exception as exc:  # noqa: BLE001 - a run record is not worth failing the run for
            log.warning("could not persist run %s: %s", run.id, exc)

    def mark_interrupted(self, keep: set[str]) -> int:
        """Mark runs left queued or running by a previous process (not in `keep`) as interrupted."""
        runs = self._records()
        stale = [r for r in runs.scan() if r.get("status") in ACTIVE and r["id"] not in keep]
        for r in stale:
            runs.update(r["id"], {"status": "interrupted", "finished_at": now_iso(), "error": INTERRUPTED})
        if stale:
            runs.flush()
            log.warning("%d run(s) were interrupted by the last shutdown", len(stale))
        return len(stale)

    def get(self, run_id: str) -> Run | None:
        found = self._records().get(run_id) if valid_id(run_id) else None
        return None if found is None else Run.from_payload(found)

    def all(self) -> list[Run]:
        return [Run.from_payload(payload) for payload in self._records().scan()]
