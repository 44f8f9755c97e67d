"""The project's own records (catalog entries, audit entries, run records) kept in a store collection.

Keeping them in the store, not in local files, means a Qdrant server carries them for every service
process that uses it. Qdrant holds points, so each record is the payload of a point with a 1-d placeholder
vector; the point id is derived from the record's string key (`point_id`), so keys stay readable and
lookups are id lookups, not scans. This module is the only one that knows about the placeholder.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from embeddings.errors import Conflict
from embeddings.store.base import Collection, Store
from embeddings.store.ids import PointId, point_id

_PAGE = 1000


@lru_cache(maxsize=4096)
def _point(key: str) -> PointId:
    # Memoised: the catalog looks its entry up on every API request.
    return point_id(key)


class MetadataStore:
    """JSON records under string keys in the collection `name`: put, get, scan, update, delete.

    With `create=False` the collection is made by the first write; until then reads find nothing (and
    look again each time, so records another process writes meanwhile are seen).
    """

    def __init__(self, store: Store, name: str, create: bool = False):
        self.store = store
        self.name = name
        self._collection: Collection | None = None
        self._guard = threading.Lock()
        if create:
            self._open(create=True)

    def _open(self, create: bool) -> Collection | None:
        if self._collection is not None:
            return self._collection
        with self._guard:
            if self._collection is None:
                if self.store.exists(self.name):
                    self._collection = self.store.get(self.name)
                elif create:
                    try:
                        self._collection = self.store.create(self.name, 1, indexed={})
                    except Conflict:  # another process created it between our look and our create
                        self._collection = self.store.get(self.name)
            return self._collection

    def put(self, key: str, record: dict[str, Any]) -> None:
        """Store `record` under `key`, replacing any record there."""
        self.put_many({key: record})

    def put_many(self, records: Mapping[str, dict[str, Any]]) -> None:
        """Store several records in one write, in the order given."""
        if not records:
            return
        collection = self._open(create=True)
        assert collection is not None
        collection.upsert([_point(k) for k in records], np.ones((len(records), 1), np.float32), list(records.values()))

    def get(self, key: str) -> dict[str, Any] | None:
        """The record under `key`, or None."""
        found = self.get_many([key])
        return found[0] if found else None

    def get_many(self, keys: Iterable[str]) -> list[dict[str, Any]]:
        """The records that exist among `keys`, in the order asked."""
        keys = list(keys)
        collection = self._open(create=False) if keys else None
        if collection is None:
            return []
        out: list[dict[str, Any]] = []
        for start in range(0, len(keys), _PAGE):
            out.extend(p.payload for p in collection.retrieve([_point(k) for k in keys[start:start + _PAGE]]))
        return out

    def scan(self) -> Iterator[dict[str, Any]]:
        """Every record, in point-id order (not insertion order)."""
        collection = self._open(create=False)
        offset: PointId | None = None
        while collection is not None:
            page, offset = collection.scroll_page(limit=_PAGE, offset=offset)
            yield from (p.payload for p in page)
            if offset is None:
                return

    def update(self, key: str, fields: dict[str, Any]) -> None:
        """Merge `fields` into the record under `key` (its other fields are kept)."""
        collection = self._open(create=True)
        assert collection is not None
        collection.set_payloads({_point(key): fields})

    def delete(self, keys: Iterable[str]) -> None:
        """Remove the records under `keys` (absent ones are ignored)."""
        keys = list(keys)
        collection = self._open(create=False) if keys else None
        if collection is None:
            return
        for start in range(0, len(keys), _PAGE):
            collection.delete([_point(k) for k in keys[start:start + _PAGE]])

    def flush(self) -> None:
        """Make the writes so far durable now (the store's write-ahead log already keeps them)."""
        collection = self._open(create=False)
        if collection is not None:
            collection.flush()
