"""The opened store, catalog and embedder of one process, built from Settings once and shared."""

from __future__ import annotations

import threading
from typing import Any

from embeddings.cache import CachedEmbedder, EmbeddingCache
from embeddings.embedder import Embedder, build_embedder
from embeddings.store import Collection, PointFilter, Store, open_store
from service.datasets.catalog import Catalog
from service.diskspace import UNWRITABLE, ensure_space, unwritable_home
from service.settings import Settings


class Workspace:
    """One per process: an embedded store admits one process, so everything in it shares this."""

    def __init__(self, settings: Settings, store: Store | None = None, embedder: Embedder | None = None):
        self.settings = settings
        try:
            settings.home.mkdir(parents=True, exist_ok=True)
            if store is None and settings.resolved_backend == "edge":
                # Opening an embedded store replays its write-ahead log into segments: a write (see diskspace).
                ensure_space(settings, f"opening the store under {settings.home}")
            self.store = store or open_store(settings)
        except OSError as exc:
            if exc.errno not in UNWRITABLE:  # e.g. a Qdrant server that refuses connections: not the home's fault
                raise
            raise unwritable_home(settings.home, exc) from exc
        self.catalog = Catalog(self.store)
        self._base_embedder = embedder
        self._embedder: CachedEmbedder | None = None
        self._lock = threading.Lock()
        self._opened: set[str] = set()  # datasets whose collection this process has opened

    @property
    def embedder(self) -> CachedEmbedder:
        """The cached embedder; the model itself loads only when a text misses the cache."""
        with self._lock:
            if self._embedder is None:
                base = self._base_embedder or build_embedder(self.settings)
                self._embedder = CachedEmbedder(base, EmbeddingCache(self.settings.cache_path))
            return self._embedder

    def collection(self, dataset: str) -> Collection:
        """The dataset's collection. An embedded one's first opening in a process writes (~150 MiB of segment
        files after an ingest, measured), so it needs the free-space reserve even for a read."""
        if dataset not in self._opened and self.store.backend == "edge":
            ensure_space(self.settings, f"opening dataset {dataset!r}")
        collection = self.catalog.collection(dataset)
        self._opened.add(dataset)
        return collection

    def ensure_space(self, what: str, need_bytes: int = 0) -> None:
        """Refuse a write (InsufficientStorage) while the home's disk is below the free-space reserve."""
        ensure_space(self.settings, what, need_bytes)

    def close(self) -> None:
        if self._embedder is not None:
            self._embedder.cache.close()
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def dataset_counts(collection: Collection) -> dict[str, Any]:
    """Totals by split and label, from the store's payload indexes."""
    total = collection.count()
    unlabelled = collection.count(PointFilter(empty={"label": True}))
    splits = collection.facet("split")
    no_split = total - sum(splits.values())
    if no_split:
        splits["none"] = no_split
    labels = collection.facet("label")
    return {
        "points": total,
        "labelled": total - unlabelled,
        "unlabelled": unlabelled,
        "labels": len(labels),
        "by_split": dict(sorted(splits.items())),
        "by_label": dict(sorted(labels.items(), key=lambda kv: (-kv[1], kv[0]))),
    }
