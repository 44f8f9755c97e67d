"""The embedded backend: qdrant-edge, one shard per collection under a folder owned by one process."""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import uuid
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.errors import Conflict, NotFound, StoreLocked
from embeddings.store.base import (
    OVERSAMPLING,
    QUANTILE,
    Hit,
    PointFilter,
    StoredPoint,
    as_vector,
    search_ef,
)
from embeddings.store.filters import FilterVocabulary, translate
from embeddings.store.ids import PointId, check_name

# qdrant-edge reads segments on a search thread pool sized to the CPUs; with one process and a few cores
# the hand-off to that pool costs more than the parallel segment reads win (README, "Search latency").
EDGE_SEARCH_THREADS = 1


@cache
def _vocabulary() -> FilterVocabulary:
    import qdrant_edge as qe  # imported on first use: the server backend never needs it

    return FilterVocabulary(
        match_value=lambda key, value: qe.FieldCondition(key=key, match=qe.MatchValue(value)),
        match_any=lambda key, values: qe.FieldCondition(key=key, match=qe.MatchAny(values)),
        range=lambda key, lo, hi: qe.FieldCondition(key=key, range=qe.RangeFloat(gte=lo, lte=hi)),
        text=lambda key, words: qe.FieldCondition(key=key, match=qe.MatchText(words)),
        is_empty=qe.IsEmptyCondition,
        has_id=lambda ids: qe.HasIdCondition(set(ids)),
        filter=lambda must, must_not: qe.Filter(must=must, must_not=must_not),
    )


def _edge_filter(f: PointFilter | None) -> Any:
    return translate(f, _vocabulary())


class _ProcessLock:
    """An exclusive lock on the store folder: an embedded store admits one process at a time."""

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / ".lock"
        self._fh = self.path.open("a+")
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._fh.seek(0)
            holder = self._fh.read().strip() or "another process"
            self._fh.close()
            raise StoreLocked(
                f"the embedded store {root} is in use by {holder}; an embedded store admits one process. "
                "Stop it, or reach the data through its running service (data-debugger serve) over HTTP"
            ) from exc
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(f"pid {os.getpid()}")
        self._fh.flush()

    def release(self) -> None:
        if not self._fh.closed:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()


def _edge_schema(kind: str):
    import qdrant_edge as qe

    # Word and range indexes get no payload-aware graph links (enable_hnsw=False). Qdrant builds extra graph
    # links for every block of more than ~6,700 points an index can select: for the text index that is every
    # frequent word, for a float every slice of its range. At 100k analysed points the text index alone added
    # 24 s to a 5 s vector-index build (scripts/bench_index_build.py). A search filtered by words or a range is
    # answered exactly instead (EdgeCollection.search).
    if kind == "text":
        return qe.TextIndexParams(tokenizer=qe.TokenizerType.Word, lowercase=True, enable_hnsw=False)
    if kind == "float":
        return qe.FloatIndexParams(enable_hnsw=False)
    return {"keyword": qe.PayloadSchemaType.Keyword, "integer": qe.PayloadSchemaType.Integer}[kind]


class EdgeCollection:
    """One qdrant-edge shard. Calls are serialised by a lock: the shard is shared by the service's threads."""

    def __init__(self, name: str, shard, dim: int):
        self.name = name
        self._shard = shard
        self._dim = dim
        self._lock = threading.RLock()

    @property
    def dim(self) -> int:
        return self._dim

    def _update(self, op) -> None:
        with self._lock:
            self._shard.update(op)

    def ensure_indexes(self, indexed: Mapping[str, str]) -> None:
        import qdrant_edge as qe

        for key, kind in indexed.items():
            self._update(qe.UpdateOperation.create_field_index(key, _edge_schema(kind)))

    def upsert(self, ids, vectors, payloads) -> None:
        import qdrant_edge as qe

        vectors = np.asarray(vectors, dtype=np.float32)
        points = [
            qe.Point(pid, vec.tolist(), payload) for pid, vec, payload in zip(ids, vectors, payloads, strict=True)
        ]
        if points:
            self._update(qe.UpdateOperation.upsert_points(points))

    def set_payloads(self, updates) -> None:
        import qdrant_edge as qe

        with self._lock:
            for pid, payload in updates.items():
                self._shard.update(qe.UpdateOperation.set_payload([pid], payload))

    def delete_payload_keys(self, ids, keys) -> None:
        import qdrant_edge as qe

        if ids and keys:
            self._update(qe.UpdateOperation.delete_payload(list(ids), list(keys)))

    def delete(self, ids) -> None:
        import qdrant_edge as qe

        if ids:
            self._update(qe.UpdateOperation.delete_points(list(ids)))

    def retrieve(self, ids, with_vectors=False) -> list[StoredPoint]:
        if not ids:
            return []
        with self._lock:
            records = self._shard.retrieve(list(ids), True, with_vectors)
        by_id = {_norm_id(r.id): r for r in records}
        out = []
        for pid in ids:
            r = by_id.get(pid)
            if r is not None:
                out.append(StoredPoint(pid, dict(r.payload or {}), as_vector(r.vector) if with_vectors else None))
        return out

    def scroll_page(self, filter=None, limit=100, offset=None, with_vectors=False, fields=None):
        import qdrant_edge as qe

        request = qe.ScrollRequest(
            offset=offset, limit=limit, filter=_edge_filter(filter),
            with_payload=True if fields is None else list(fields), with_vector=with_vectors,
        )
        with self._lock:
            records, next_offset = self._shard.scroll(request)
        next_offset = None if next_offset is None else _norm_id(next_offset)
        page = [
            StoredPoint(_norm_id(r.id), dict(r.payload or {}), as_vector(r.vector) if with_vectors else None)
            for r in records
        ]
        return page, next_offset

    def search(self, vector, k=10, filter=None, with_payload=True) -> list[Hit]:
        import qdrant_edge as qe

        request = qe.QueryRequest(
            limit=k,
            query=qe.Query.Nearest(np.asarray(vector, dtype=np.float32).tolist()),
            filter=_edge_filter(filter),
            with_payload=with_payload,
            params=qe.SearchParams(
                hnsw_ef=search_ef(filter, k),
                # Word and range conditions have no graph links (_edge_schema): walking the graph under a
                # selective filter without them found 1-2 of 10 neighbours at 1M points, so such a search
                # scores the points the filter selects (found by the payload index) and is exact.
                exact=filter is not None and bool(filter.ranges or filter.text),
                quantization=qe.QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING),
            ),
        )
        with self._lock:
            hits = self._shard.query(request)
        return [Hit(_norm_id(h.id), float(h.score), dict(h.payload or {})) for h in hits]

    def count(self, filter=None) -> int:
        import qdrant_edge as qe

        with self._lock:
            return int(self._shard.count(qe.CountRequest(exact=True, filter=_edge_filter(filter))))

    def facet(self, key, filter=None, limit=10_000) -> dict[Any, int]:
        import qdrant_edge as qe

        with self._lock:
            response = self._shard.facet(qe.FacetRequest(key, limit=limit, exact=True, filter=_edge_filter(filter)))
        return {hit.value: int(hit.count) for hit in response.hits}

    def flush(self) -> None:
        with self._lock:
            self._shard.flush()

    def optimize(self) -> None:
        """Build the HNSW index; before it, search is a plain scan (fine for small collections)."""
        with self._lock:
            self._shard.optimize()

    def close(self) -> None:
        with self._lock:
            self._shard.flush()
            self._shard.close()


def _norm_id(pid) -> PointId:
    # qdrant-edge hands UUID ids back as uuid.UUID; the rest of the code speaks str.
    return str(pid) if isinstance(pid, uuid.UUID) else pid


def _edge_config(dim: int, hnsw: Any = None):
    """The shard configuration every collection opens with; `hnsw` (a qe.HnswIndexConfig) only for benchmarks
    that try other index settings."""
    import qdrant_edge as qe

    return qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
        quantization_config=qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=QUANTILE, always_ram=True),
        max_search_threads=EDGE_SEARCH_THREADS,
        **({"hnsw_config": hnsw} if hnsw is not None else {}),
    )


class EdgeStore:
    """Collections as qdrant-edge shards in `root/<name>/`, owned by this process."""

    backend = "edge"

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self._lock = _ProcessLock(self.root)
        self._open: dict[str, EdgeCollection] = {}
        self._guard = threading.Lock()

    def list_collections(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and (p / "dim").exists())

    def exists(self, name: str) -> bool:
        return (self.root / check_name(name) / "dim").exists()

    def create(self, name: str, dim: int, indexed: Mapping[str, str] | None = None) -> EdgeCollection:
        import qdrant_edge as qe

        with self._guard:
            if self.exists(name):
                raise Conflict(f"collection {name!r} already exists")
            path = self.root / name
            shard_path = path / "shard"
            if path.exists():  # a create that died half-way; nothing in it was committed
                shutil.rmtree(path)
            shard = qe.EdgeShard.create(str(shard_path), _edge_config(dim))
            collection = EdgeCollection(name, shard, dim)
            collection.ensure_indexes(indexed or {})
            collection.flush()
            # Written last: a folder without it is not a collection yet.
            (path / "dim").write_text(str(dim))
            self._open[name] = collection
            return collection

    def get(self, name: str) -> EdgeCollection:
        import qdrant_edge as qe

        with self._guard:
            if name in self._open:
                return self._open[name]
            if not self.exists(name):
                raise NotFound(f"dataset {name!r} does not exist")
            path = self.root / name
            dim = int((path / "dim").read_text())
            shard = qe.EdgeShard.load(str(path / "shard"), _edge_config(dim))
            collection = EdgeCollection(name, shard, dim)
            self._open[name] = collection
            return collection

    def drop(self, name: str) -> None:
        with self._guard:
            collection = self._open.pop(name, None)
            if collection is not None:
                collection.close()
            if not self.exists(name):
                raise NotFound(f"dataset {name!r} does not exist")
            # Remove the marker first, so a crash mid-delete leaves no half collection that looks whole.
            (self.root / name / "dim").unlink()
            shutil.rmtree(self.root / name)

    def close(self) -> None:
        with self._guard:
            for collection in self._open.values():
                collection.close()
            self._open.clear()
        self._lock.release()


def open_edge(settings: Any) -> EdgeStore:
    """The embedded store under the data home (store_backend "edge")."""
    return EdgeStore(settings.store_dir)
