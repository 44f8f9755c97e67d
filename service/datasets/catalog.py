"""The catalog of datasets, kept in the store itself so a Qdrant server carries it for every machine."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np

from embeddings.store import Collection, Store, check_name, point_id
from service.errors import Conflict, NotFound

CATALOG = "catalog"
DATA_PREFIX = "data."


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def data_collection_name(dataset: str) -> str:
    return DATA_PREFIX + check_name(dataset)


@lru_cache(maxsize=1024)
def _entry_id(name: str):
    """The catalog point of a dataset (checked name; memoised: every API request looks one up)."""
    return point_id("dataset:" + check_name(name))


class Catalog:
    """Dataset metadata (embedding model, dimension, format, times) as points of a 1-d collection."""

    def __init__(self, store: Store):
        self.store = store
        exists = store.exists(CATALOG)
        self._entries: Collection = store.get(CATALOG) if exists else store.create(CATALOG, 1, indexed={})

    def names(self) -> list[str]:
        out: list[str] = []
        offset = None
        while True:
            page, offset = self._entries.scroll_page(limit=1000, offset=offset)
            out.extend(p.payload["name"] for p in page)
            if offset is None:
                return sorted(out)

    def get(self, name: str) -> dict[str, Any]:
        found = self._entries.retrieve([_entry_id(name)])
        if not found:
            raise NotFound(f"dataset {name!r} does not exist; list them with `data-debugger datasets`")
        return found[0].payload

    def exists(self, name: str) -> bool:
        return bool(self._entries.retrieve([_entry_id(name)]))

    def create(self, name: str, dim: int, embedding_model: str, fmt: str) -> Collection:
        if self.exists(name):
            raise Conflict(f"dataset {name!r} already exists")
        collection_name = data_collection_name(name)
        if self.store.exists(collection_name):  # left by a create that died before its catalog entry
            self.store.drop(collection_name)
        from service.analyses.registry import indexed_fields  # the fields ingest, predict and the analyses filter on

        collection = self.store.create(collection_name, dim, indexed=indexed_fields())
        stamp = now_iso()
        entry = {"name": name, "dim": dim, "embedding_model": embedding_model, "format": fmt,
                 "created_at": stamp, "updated_at": stamp}
        self._entries.upsert([_entry_id(name)], np.ones((1, 1), np.float32), [entry])
        self._entries.flush()
        return collection

    def update(self, name: str, **fields: Any) -> None:
        self.get(name)
        self._entries.set_payloads({_entry_id(name): {**fields, "updated_at": now_iso()}})
        self._entries.flush()

    def collection(self, name: str) -> Collection:
        self.get(name)
        return self.store.get(data_collection_name(name))

    def drop(self, name: str) -> None:
        self.get(name)
        # The entry goes first: a crash after it leaves an orphan collection that create() cleans up.
        self._entries.delete([_entry_id(name)])
        self._entries.flush()
        if self.store.exists(data_collection_name(name)):
            self.store.drop(data_collection_name(name))
