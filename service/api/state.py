"""What the service holds between requests: the workspace (opened once, reopened after an outage), locks,
per-dataset generations, the snapshot cache, the run manager and the query embedder."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from service.api.audit import AuditBook
from service.errors import Unavailable
from service.settings import Settings
from service.workspace import Workspace

if TYPE_CHECKING:
    from service.api.query_embedder import QueryEmbedder
    from service.api.runs import RunManager
    from service.api.snapshots import SnapshotCache

log = logging.getLogger(__name__)


@dataclass
class ApiState:
    """One per app; typed, instead of loose attributes on app.state."""

    settings: Settings
    workspace_given: Workspace | None = None
    embedder: Any = None  # base embedder for a workspace the app opens itself (tests pass the fake)
    _workspace: Workspace | None = None
    _open_lock: threading.Lock = field(default_factory=threading.Lock)
    _dataset_locks: dict[str, threading.RLock] = field(default_factory=lambda: defaultdict(threading.RLock))
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)
    _generations: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    audits: AuditBook = field(default_factory=AuditBook)
    snapshots: SnapshotCache | None = None
    runs: RunManager | None = None
    query_embedder: QueryEmbedder | None = None

    @property
    def workspace(self) -> Workspace:
        """The open workspace; opens it on first use, so a store that was locked or down answers 503
        until it is back, and then the service recovers without a restart."""
        if self.workspace_given is not None:
            return self.workspace_given
        ws = self._workspace
        if ws is not None:
            return ws
        with self._open_lock:
            if self._workspace is None:
                try:
                    self._workspace = Workspace(self.settings, embedder=self.embedder)
                except Unavailable:
                    raise
                except Exception as exc:  # a server store that is down raises transport errors
                    raise Unavailable(f"the store cannot be opened: {exc}") from exc
                log.info("store opened (%s)", self._workspace.store.backend)
            return self._workspace

    @property
    def workspace_open(self) -> bool:
        return self.workspace_given is not None or self._workspace is not None

    def dataset_lock(self, dataset: str) -> threading.RLock:
        """Serialises review writes of one dataset, so a revision check and its write are atomic."""
        with self._locks_guard:
            return self._dataset_locks[dataset]

    def generation(self, dataset: str) -> int:
        return self._generations[dataset]

    def bump(self, dataset: str) -> None:
        """Something wrote to the dataset outside a review (a run, an upload): cached views are stale."""
        with self._locks_guard:
            self._generations[dataset] += 1

    def close(self) -> None:
        """Close what the app opened itself (a workspace passed in belongs to the caller)."""
        with self._open_lock:
            if self._workspace is not None:
                self._workspace.close()
                self._workspace = None
