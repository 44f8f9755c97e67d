"""The relabel audit log: append-only entries in the store collection "audit" (dimension 1), shared by
all datasets (a collection costs seconds to create; an entry costs microseconds).

Each dataset's entries are numbered 1, 2, 3, ... in append order; entry n of dataset d is the point
`point_id("audit:d:n")`, and the point `point_id("audit-head:d")` holds the count. So "newest first" pages
are id lookups, not scans. An entry is never rewritten: an undo is a new entry whose `undoes` names the one
it reverts. Writes rely on the store's write-ahead log for durability, so none waits for a flush.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from embeddings.store import MetadataStore, Store
from service.errors import NotFound

log = logging.getLogger(__name__)

AUDIT_COLLECTION = "audit"


def _entry_id(dataset: str, change_id: int) -> str:
    return f"audit:{dataset}:{change_id}"


def _head_id(dataset: str) -> str:
    return f"audit-head:{dataset}"


class AuditLog:
    """One dataset's log. Appends must be serialised by the caller (the dataset's review lock)."""

    def __init__(self, store: Store, dataset: str):
        self.dataset = dataset
        self._entries = MetadataStore(store, AUDIT_COLLECTION)
        self._guard = threading.Lock()
        self._count = 0
        self._undone_by: dict[int, int] | None = None
        self._sync()

    def __len__(self) -> int:
        return self._count

    def _sync(self) -> None:
        """Catch up with the head in the store: another service process using the same Qdrant server may
        have appended (or deleted the log) since this one last looked. Callers hold the guard."""
        head = self._entries.get(_head_id(self.dataset))
        count = int(head.get("count", 0)) if head else 0
        if count < self._count:  # the log was deleted meanwhile
            self._undone_by = None
        elif count > self._count and self._undone_by is not None:
            for entry in self._retrieve(list(range(self._count + 1, count + 1))):
                if entry.get("undoes") is not None:
                    self._undone_by[int(entry["undoes"])] = int(entry["change_id"])
        self._count = count

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Store a new entry; returns it with its change_id."""
        with self._guard:
            self._sync()
            change_id = self._count + 1
            stored = {**entry, "dataset": self.dataset, "change_id": change_id}
            # Entry first, then the head: a crash between leaves an entry the head does not count yet,
            # which the next append overwrites with the same number (never a counted hole).
            self._entries.put(_entry_id(self.dataset, change_id), stored)
            self._entries.put(_head_id(self.dataset), {"dataset": self.dataset, "count": change_id, "head": True})
            self._count = change_id
            if self._undone_by is not None and stored.get("undoes") is not None:
                self._undone_by[int(stored["undoes"])] = change_id
        return self._decorate(stored)

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
        """The id of the entry that undid `change_id`, if any."""
        return self._undo_index().get(change_id)

    def _undo_index(self) -> dict[int, int]:
        with self._guard:
            if self._undone_by is None:
                index: dict[int, int] = {}
                for start in range(1, self._count + 1, 1000):
                    for entry in self._retrieve(list(range(start, min(start + 1000, self._count + 1)))):
                        if entry.get("undoes") is not None:
                            index[int(entry["undoes"])] = int(entry["change_id"])
                self._undone_by = index
            return self._undone_by

    def _decorate(self, entry: dict[str, Any]) -> dict[str, Any]:
        return {**entry, "undone_by": self.undone_by(int(entry["change_id"]))}

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
        self._undone_by = {}


class AuditBook:
    """The open logs of a workspace's datasets."""

    def __init__(self) -> None:
        self._logs: dict[tuple[int, str], AuditLog] = {}
        self._guard = threading.Lock()

    def get(self, store: Store, dataset: str) -> AuditLog:
        key = (id(store), dataset)
        with self._guard:
            log_ = self._logs.get(key)
            if log_ is None:
                log_ = self._logs[key] = AuditLog(store, dataset)
            return log_

    def drop(self, store: Store, dataset: str) -> None:
        """Delete a dataset's log (the dataset is being deleted)."""
        audit = self.get(store, dataset)
        audit.delete()
        with self._guard:
            self._logs.pop((id(store), dataset), None)
