"""The relabel audit log: append-only entries in the store collection "audit" (dimension 1), shared by
all datasets (a collection costs seconds to create; an entry costs microseconds).

Each dataset's entries are numbered 1, 2, 3, ... in append order; entry n of dataset d is the point
`point_id("audit:d:n")`, and the point `point_id("audit-head:d")` holds the count. So "newest first" pages
are id lookups, not scans. An undo is a new entry whose `undoes` names the one it reverts.

An entry is written `pending` before the point changes and marked `applied` once the point holds the change
(or `not_applied` when the write never reached it). A process that stops between the two leaves a pending
entry: it can only be the dataset's newest one, or one the head lists under `pending` (a write that failed
and could not be checked at once); opening the log settles those against the point (see review.actions).
Only applied entries count as changes: undo refuses the others and they undo nothing.

Settling on open assumes no other process is mid-write on the same dataset: true of the embedded store
(one process), and of a server store with one service writing; two services writing one dataset could see
each other's in-flight entry as left behind.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from embeddings.store import MetadataStore, Store
from service.errors import NotFound

log = logging.getLogger(__name__)

AUDIT_COLLECTION = "audit"
PENDING, APPLIED, NOT_APPLIED = "pending", "applied", "not_applied"

# Given a pending entry, whether its point holds the change (finishing it where it half did); raises if the
# point cannot be read. Supplied by whoever opens the log (review.actions).
Settle = Callable[[dict[str, Any]], bool]


def _entry_id(dataset: str, change_id: int) -> str:
    return f"audit:{dataset}:{change_id}"


def _head_id(dataset: str) -> str:
    return f"audit-head:{dataset}"


def status_of(entry: dict[str, Any]) -> str:
    """An entry's status; entries written before statuses existed were applied."""
    return str(entry.get("status") or APPLIED)


class AuditLog:
    """One dataset's log. Appends must be serialised by the caller (the dataset's review lock)."""

    def __init__(self, store: Store, dataset: str, settle: Settle | None = None):
        self.dataset = dataset
        self._entries = MetadataStore(store, AUDIT_COLLECTION)
        self._guard = threading.Lock()
        self._count = 0
        self._unsettled: list[int] = []
        head = self._entries.get(_head_id(dataset))
        if head:
            self._count = int(head.get("count", 0))
            self._unsettled = [int(c) for c in head.get("pending") or []]
        self._undone_by: dict[int, int] | None = None
        if settle is not None:
            self.reconcile(settle)

    def __len__(self) -> int:
        return self._count

    def _sync(self) -> None:
        """Catch up with the count in the store: another service process using the same Qdrant server may
        have appended (or deleted the log) since this one last looked. Callers hold the guard."""
        head = self._entries.get(_head_id(self.dataset))
        count = int(head.get("count", 0)) if head else 0
        if count != self._count:
            self._count = count
            self._undone_by = None  # rebuilt on use, with the other process's undos

    def _write_head(self) -> None:
        self._entries.put(_head_id(self.dataset), {"dataset": self.dataset, "count": self._count, "head": True,
                                                   "pending": self._unsettled})

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Store a new entry as pending; returns it with its change_id. Follow with `confirm` once the
        point holds the change, or `settle` when its write failed."""
        with self._guard:
            self._sync()
            change_id = self._count + 1
            stored = {**entry, "dataset": self.dataset, "change_id": change_id, "status": PENDING}
            # Entry first, then the head: a crash between leaves an entry the head does not count yet,
            # which the next append overwrites with the same number (never a counted hole).
            self._entries.put(_entry_id(self.dataset, change_id), stored)
            self._count = change_id
            self._write_head()
        return self._decorate(stored)

    def _mark(self, change_id: int, status: str) -> None:
        self._entries.update(_entry_id(self.dataset, change_id), {"status": status})

    def confirm(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The point holds the change: the entry is applied (and, for an undo, the undone entry is undone)."""
        change_id = int(entry["change_id"])
        self._mark(change_id, APPLIED)
        with self._guard:
            if change_id in self._unsettled:
                self._unsettled.remove(change_id)
                self._write_head()
            if self._undone_by is not None and entry.get("undoes") is not None:
                self._undone_by[int(entry["undoes"])] = change_id
        return self._decorate({**entry, "status": APPLIED})

    def settle(self, entry: dict[str, Any], settle: Settle) -> str:
        """Decide a pending entry by its point: applied, or not applied. When the point cannot be read the
        entry stays pending and the head lists it, so the next opening of the log settles it."""
        try:
            applied = settle(entry)
        except Exception as exc:  # noqa: BLE001 - the store is failing; decided when the log is next opened
            log.warning("change %s of %s left pending: %s", entry["change_id"], self.dataset, exc)
            with self._guard:
                if int(entry["change_id"]) not in self._unsettled:
                    self._unsettled.append(int(entry["change_id"]))
                try:
                    self._write_head()
                except Exception:  # noqa: BLE001 - then it is the newest entry, which opening checks anyway
                    pass
            return PENDING
        if applied:
            self.confirm(entry)
            return APPLIED
        self._mark(int(entry["change_id"]), NOT_APPLIED)
        with self._guard:
            if int(entry["change_id"]) in self._unsettled:
                self._unsettled.remove(int(entry["change_id"]))
                self._write_head()
        return NOT_APPLIED

    def reconcile(self, settle: Settle) -> dict[str, int]:
        """Settle every entry a stopped process may have left pending; returns {status: count}."""
        candidates = sorted({*self._unsettled, *([self._count] if self._count else [])})
        counts: dict[str, int] = {}
        for entry in self._retrieve(candidates):
            if status_of(entry) != PENDING:
                continue
            outcome = self.settle(entry, settle)
            counts[outcome] = counts.get(outcome, 0) + 1
            log.warning("change %s of %s was pending after a stop: now %s", entry["change_id"], self.dataset,
                        outcome)
        return counts

    def _retrieve(self, change_ids: list[int]) -> list[dict[str, Any]]:
        return self._entries.get_many(_entry_id(self.dataset, c) for c in change_ids)

    def get(self, change_id: int) -> dict[str, Any]:
        with self._guard:
            self._sync()
        found = self._retrieve([change_id]) if 0 < change_id <= self._count else []
        if not found:
            raise NotFound(
                f"change {change_id} does not exist in dataset {self.dataset!r}; list them with GET /changes"
            )
        return self._decorate(found[0])

    def undone_by(self, change_id: int) -> int | None:
        """The id of the applied entry that undid `change_id`, if any."""
        return self._undo_index().get(change_id)

    def _undo_index(self) -> dict[int, int]:
        with self._guard:
            if self._undone_by is None:
                index: dict[int, int] = {}
                for start in range(1, self._count + 1, 1000):
                    for entry in self._retrieve(list(range(start, min(start + 1000, self._count + 1)))):
                        if entry.get("undoes") is not None and status_of(entry) == APPLIED:
                            index[int(entry["undoes"])] = int(entry["change_id"])
                self._undone_by = index
            return self._undone_by

    def _decorate(self, entry: dict[str, Any]) -> dict[str, Any]:
        return {**entry, "status": status_of(entry), "undone_by": self.undone_by(int(entry["change_id"]))}

    def newest(self, offset: int = 0, limit: int = 50) -> list[dict[str, Any]]:
        """Entries newest first, skipping `offset` of them."""
        with self._guard:
            self._sync()
        top = self._count - offset
        return [self._decorate(e) for e in self._retrieve(list(range(top, max(top - limit, 0), -1)))]

    def all(self) -> list[dict[str, Any]]:
        """Every entry, oldest first."""
        with self._guard:
            self._sync()
        out: list[dict[str, Any]] = []
        for start in range(1, self._count + 1, 1000):
            chunk = list(range(start, min(start + 1000, self._count + 1)))
            out.extend(self._decorate(e) for e in self._retrieve(chunk))
        return out

    def delete(self) -> None:
        """Remove every entry of this dataset (the dataset itself is being deleted)."""
        self._entries.delete([*(_entry_id(self.dataset, c) for c in range(1, self._count + 1)),
                              _head_id(self.dataset)])
        self._count = 0
        self._unsettled = []
        self._undone_by = {}


class AuditBook:
    """The open logs of a workspace's datasets; opening one settles what a stopped process left pending."""

    def __init__(self, settle_for: Callable[[Store, str], Settle] | None = None) -> None:
        self._logs: dict[tuple[int, str], AuditLog] = {}
        self._guard = threading.Lock()
        self._settle_for = settle_for

    def get(self, store: Store, dataset: str) -> AuditLog:
        key = (id(store), dataset)
        with self._guard:
            log_ = self._logs.get(key)
            if log_ is None:
                settle = self._settle_for(store, dataset) if self._settle_for is not None else None
                log_ = self._logs[key] = AuditLog(store, dataset, settle)
            return log_

    def drop(self, store: Store, dataset: str) -> None:
        """Delete a dataset's log (the dataset is being deleted)."""
        audit = self.get(store, dataset)
        audit.delete()
        with self._guard:
            self._logs.pop((id(store), dataset), None)
