"""What the service holds between requests, built whole by `ApiState.build`: the workspace (opened on first
use, reopened after an outage), the per-dataset review locks, the audit logs, the cached views, the run
manager and the query embedder."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from service.api.cached_views import CachedViews
from service.api.errors import describe
from service.api.query_embedder import QueryEmbedder
from service.errors import Unavailable
from service.review import actions
from service.review.actions import PointWrite, ReviewAction, Reviewed, open_audits
from service.review.audit import AuditBook, AuditLog
from service.runs.manager import RunManager
from service.runs.records import Run
from service.settings import Settings
from service.workspace import Workspace

log = logging.getLogger(__name__)


class WorkspaceOpener:
    """The workspace, opened on first use: a store that is locked or down answers 503 until it is back, and
    then the service recovers without a restart. A workspace passed in belongs to the caller."""

    def __init__(self, settings: Settings, given: Workspace | None = None, embedder: Any = None):
        self.settings = settings
        self._given = given
        self._embedder = embedder  # base embedder for a workspace opened here (tests pass the fake)
        self._opened: Workspace | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Workspace:
        if self._given is not None:
            return self._given
        ws = self._opened
        if ws is not None:
            return ws
        with self._lock:
            if self._opened is None:
                try:
                    self._opened = Workspace(self.settings, embedder=self._embedder)
                except Unavailable:
                    raise
                except Exception as exc:  # a server store that is down raises transport errors
                    raise Unavailable(f"the store cannot be opened: {exc}") from exc
                log.info("store opened (%s)", self._opened.store.backend)
            return self._opened

    @property
    def is_open(self) -> bool:
        return self._given is not None or self._opened is not None

    def close(self) -> None:
        with self._lock:
            if self._opened is not None:
                self._opened.close()
                self._opened = None


class DatasetLocks:
    """One re-entrant lock per dataset: serialises its review writes, so a revision check and its write are
    atomic."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.RLock] = defaultdict(threading.RLock)
        self._guard = threading.Lock()

    def __call__(self, dataset: str) -> threading.RLock:
        with self._guard:
            return self._locks[dataset]


@dataclass(frozen=True)
class ApiState:
    """One per app; typed, instead of loose attributes on app.state. Every part is there from the start."""

    settings: Settings
    opener: WorkspaceOpener
    locks: DatasetLocks
    audits: AuditBook
    views: CachedViews
    runs: RunManager
    query_embedder: QueryEmbedder

    @classmethod
    def build(cls, settings: Settings, workspace: Workspace | None = None, embedder: Any = None) -> ApiState:
        """The whole state: each part is given the others it needs, none reaches back into this object."""
        opener = WorkspaceOpener(settings, workspace, embedder)
        audits = open_audits()
        views = CachedViews(settings, opener, audits)

        def finished(run: Run) -> None:
            views.after_run(run.dataset, run.status == "succeeded")

        built: list[ApiState] = []  # the Label Studio steps write through this state's review core, once built
        runs = RunManager(opener, describe=lambda exc: describe(exc)[1], on_finished=finished,
                          service=lambda: built[0])
        query_embedder = QueryEmbedder(lambda: opener().embedder)
        built.append(cls(settings, opener, DatasetLocks(), audits, views, runs, query_embedder))
        return built[0]

    @property
    def workspace(self) -> Workspace:
        """The open workspace (503 while the store cannot be opened)."""
        return self.opener()

    @property
    def workspace_open(self) -> bool:
        return self.opener.is_open

    def dataset_lock(self, dataset: str) -> threading.RLock:
        return self.locks(dataset)

    def audit(self, dataset: str) -> AuditLog:
        """The dataset's audit log (pending entries a stopped process left are settled when first opened)."""
        return self.audits.get(self.workspace.store, dataset)

    def _patch_views(self, write: PointWrite) -> None:
        self.views.invalidate(write.dataset, write)

    def apply_review(self, dataset: str, raw_id: str | int, act: ReviewAction, source: str = "api") -> Reviewed:
        """service.review.actions.apply_action with this service's workspace, lock, log and views."""
        return actions.apply_action(self.workspace, self.locks(dataset), dataset, raw_id, act,
                                    audit=self.audit(dataset), on_write=self._patch_views, source=source)

    def undo_review(self, dataset: str, change_id: int, user: str, reason: str) -> Reviewed:
        """service.review.actions.undo with this service's workspace, lock, log and views."""
        return actions.undo(self.workspace, self.locks(dataset), dataset, change_id, user, reason,
                            audit=self.audit(dataset), on_write=self._patch_views)

    def close(self) -> None:
        """Close what the app opened itself."""
        self.opener.close()
