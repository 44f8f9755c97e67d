"""Run records: one `Run` per step run, kept in the store collection "runs" (dimension 1) so they survive a
restart; a run that was queued or running when the service stopped is marked "interrupted" on the next start."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.store import Collection, point_id
from service.datasets.catalog import now_iso
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
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist()[:100], depth + 1)
    return str(value)[:500]


def valid_id(run_id: str) -> bool:
    return len(run_id) == 16 and all(c in "0123456789abcdef" for c in run_id)


def run_point(run_id: str) -> str:
    """The store point id of a run's record."""
    return str(point_id(run_id))


class RunRecords:
    """The persisted runs of a workspace (opened on use: the store may come up after the service)."""

    def __init__(self, workspace: Callable[[], Workspace]):
        self._workspace = workspace

    def _collection(self, create: bool = True) -> Collection | None:
        """The runs collection; None when it does not exist yet and `create` is False (reads)."""
        store = self._workspace().store
        if store.exists(RUNS_COLLECTION):
            return store.get(RUNS_COLLECTION)
        return store.create(RUNS_COLLECTION, 1) if create else None

    def save(self, run: Run) -> None:
        try:
            runs = self._collection()
            assert runs is not None
            runs.upsert([run_point(run.id)], np.ones((1, 1), np.float32), [jsonable(run.to_dict())])
        except Exception as exc:  # noqa: BLE001 - a run record is not worth failing the run for
            log.warning("could not persist run %s: %s", run.id, exc)

    def mark_interrupted(self, keep: set[str]) -> int:
        """Mark runs left queued or running by a previous process (not in `keep`) as interrupted."""
        runs = self._collection(create=False)
        if runs is None:
            return 0
        stale = [p for p in self._scroll(runs) if p.payload.get("status") in ACTIVE and p.payload["id"] not in keep]
        for p in stale:
            runs.set_payloads({p.id: {"status": "interrupted", "finished_at": now_iso(), "error": INTERRUPTED}})
        if stale:
            runs.flush()
            log.warning("%d run(s) were interrupted by the last shutdown", len(stale))
        return len(stale)

    def get(self, run_id: str) -> Run | None:
        runs = self._collection(create=False)
        found = runs.retrieve([run_point(run_id)]) if runs is not None and valid_id(run_id) else []
        return Run.from_payload(found[0].payload) if found else None

    def all(self) -> list[Run]:
        runs = self._collection(create=False)
        return [Run.from_payload(p.payload) for p in self._scroll(runs)] if runs is not None else []

    @staticmethod
    def _scroll(runs: Collection) -> list[Any]:
        out: list[Any] = []
        offset = None
        while True:
            page, offset = runs.scroll_page(limit=1000, offset=offset)
            out.extend(page)
            if offset is None:
                return out
