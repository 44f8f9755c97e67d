"""The catalog of datasets, kept in the store itself so a Qdrant server carries it for every machine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from embeddings.store import Collection, MetadataStore, Store, check_name
from service.errors import Conflict, NotFound

CATALOG = "catalog"
DATA_PREFIX = "data."


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def data_collection_name(dataset: str) -> str:
    return DATA_PREFIX + check_name(dataset)


def _key(name: str) -> str:
    """The catalog key of a dataset (its name checked first)."""
    return "dataset:" + check_name(name)


class Catalog:
    """Dataset metadata (embedding model, dimension, format, times), one record per dataset."""

    def __init__(self, store: Store):
        self.store = store
        self._entries = MetadataStore(store, CATALOG, create=True)

    def names(self) -> list[str]:
        return sorted(entry["name"] for entry in self._entries.scan())

    def get(self, name: str) -> dict[str, Any]:
        found = self._entries.get(_key(name))
        if found is None:
            raise NotFound(f"dataset {name!r} does not exist; list them with `data-debugger datasets`")
        return found

    def exists(self, name: str) -> bool:
        return self._entries.get(_key(name)) is not None

    def create(self, name: str, dim: int, embedding_model: str, fmt: str) -> Collection:
        if self.exists(name):
            raise Conflict(f"dataset {name!r} already exists")
        collection_name = data_collection_name(name)
        if self.store.exists(collection_name):  # left by a create that died before its catalog entry
            self.store.drop(collection_name)
        # the fields ingest, predict and the analyses filter on, and the nested ones nothing filters on
        from service.analyses.registry import indexed_fields, json_fields

        collection = self.store.create(collection_name, dim, indexed=indexed_fields(), json_fields=json_fields())
        stamp = now_iso()
        entry = {"name": name, "dim": dim, "embedding_model": embedding_model, "format": fmt,
                 "created_at": stamp, "updated_at": stamp}
        self._entries.put(_key(name), entry)
        self._entries.flush()
        return collection

    def update(self, name: str, **fields: Any) -> None:
        self.get(name)
        self._entries.update(_key(name), {**fields, "updated_at": now_iso()})
        self._entries.flush()

    def collection(self, name: str) -> Collection:
        self.get(name)
        return self.store.get(data_collection_name(name))

    def drop(self, name: str) -> None:
        self.get(name)
        # The entry goes first: a crash after it leaves an orphan collection that create() cleans up.
        self._entries.delete([_key(name)])
        self._entries.flush()
        if self.store.exists(data_collection_name(name)):
            self.store.drop(data_collection_name(name))
