"""The embedded backend: qdrant-edge, one shard per collection under a folder owned by one process."""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import uuid
from collections.abc import Collection, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from embeddings.errors import Conflict, NotFound, StoreLocked
from embeddings.store.base import (
    EXACT_FILTER_POINTS,
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

# Where a collection lists its JSON-text fields (see EdgeCollection); written at create, before the `dim` marker.
JSON_FIELDS_FILE = "json_fields"
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


def _edge_schema(kind: str, keyword_links: bool = True):
    import qdrant_edge as qe

    # Word and range indexes get no payload-aware graph links (enable_hnsw=False). Qdrant builds extra graph
    # links for every block of more than ~6,700 points an index can select: for the text index that is every
    # frequent word, for a float every slice of its range. At 100k analysed points the text index alone added
    # 24 s to a 5 s vector-index build (scripts/bench_index_build.py). A search filtered by words or a range is
    # answered exactly instead (EdgeCollection.search). Keyword and integer indexes keep their links
    # (`keyword_links=False` only for scripts/bench_index_build.py): without them the 1M build took 515 s instead
    # of 903, but the graph alone does not hold near-duplicate texts together (unfiltered recall@10 0.684, a
    # filter to the validation split 0.04; HNSW m=32 instead of 16: 0.82).
    if kind == "text":
        return qe.TextIndexParams(tokenizer=qe.TokenizerType.Word, lowercase=True, enable_hnsw=False)
    if kind == "float":
        return qe.FloatIndexParams(enable_hnsw=False)
    if kind == "keyword":
        return qe.PayloadSchemaType.Keyword if keyword_links else qe.KeywordIndexParams(enable_hnsw=False)
    if kind == "integer":
        return (qe.PayloadSchemaType.Integer if keyword_links
                else qe.IntegerIndexParams(lookup=True, range=True, enable_hnsw=False))
    raise ValueError(f"unknown payload index kind {kind!r}")


class EdgeCollection:
    """One qdrant-edge shard. Calls are serialised by a lock: the shard is shared by the service's threads.

    `json_fields` (the caller's, see Store.create) are held in the shard as JSON text and handed back as the
    values written. Two costs of a nested value (a list of objects such as `n_best`) make that worth it:
    qdrant-edge converts one from Python at ~80 µs a point against ~14 µs for its JSON text (predict writes
    one per point), and Qdrant parses every point's whole payload once per payload index when it builds the
    index, where a string is one value to skip (scripts/bench_index_build.py: 100k 45.7 -> 37.0 s, though the
    1M rebuild did not change; README, "A million points").
    """

    def __init__(self, name: str, shard, dim: int, json_fields: frozenset[str] = frozenset()):
        self.name = name
        self._shard = shard
        self._dim = dim
        self._lock = threading.RLock()
        self._json_fields = json_fields

    def _to_shard(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        if not self._json_fields:
            return dict(payload)
        return {key: (orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
                      if key in self._json_fields and value is not None else value)
                for key, value in payload.items()}

    def _from_shard(self, payload: Mapping[str, Any] | None) -> dict[str, Any]:
        out = dict(payload or {})
        for key in self._json_fields.intersection(out):
            value = out[key]
            if isinstance(value, str):
                try:
                    out[key] = orjson.loads(value)
                except orjson.JSONDecodeError:
                    pass  # not JSON text (written by other means than this class): handed back as it is
        return out

    @property
    def dim(self) -> int:
        return self._dim

    def _update(self, op) -> None:
        with self._lock:
            self._shard.update(op)

    def ensure_indexes(self, indexed: Mapping[str, str], keyword_links: bool = True) -> None:
        import qdrant_edge as qe

        for key, kind in indexed.items():
            self._update(qe.UpdateOperation.create_field_index(key, _edge_schema(kind, keyword_links)))

    def upsert(self, ids, vectors, payloads) -> None:
        import qdrant_edge as qe

        vectors = np.asarray(vectors, dtype=np.float32)
        points = [
            qe.Point(pid, vec.tolist(), self._to_shard(payload))
            for pid, vec, payload in zip(ids, vectors, payloads, strict=True)
        ]
        if points:
            self._update(qe.UpdateOperation.upsert_points(points))

    def set_payloads(self, updates) -> None:
        import qdrant_edge as qe

        with self._lock:
            for pid, payload in updates.items():
                self._shard.update(qe.UpdateOperation.set_payload([pid], self._to_shard(payload)))

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
                out.append(StoredPoint(pid, self._from_shard(r.payload), as_vector(r.vector) if with_vectors else None))
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
            StoredPoint(_norm_id(r.id), self._from_shard(r.payload), as_vector(r.vector) if with_vectors else None)
            for r in records
        ]
        return page, next_offset

    def search(self, vector, k=10, filter=None, with_payload=True) -> list[Hit]:
        import qdrant_edge as qe

        exact = self._scores_every_selected_point(filter)
        request = qe.QueryRequest(
            limit=k,
            query=qe.Query.Nearest(np.asarray(vector, dtype=np.float32).tolist()),
            filter=_edge_filter(filter),
            with_payload=with_payload,
            params=qe.SearchParams(
                hnsw_ef=search_ef(filter, k),
                exact=exact,
                quantization=qe.QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING),
            ),
        )
        with self._lock:
            hits = self._shard.query(request)
        return [Hit(_norm_id(h.id), float(h.score), self._from_shard(h.payload)) for h in hits]

    def _scores_every_selected_point(self, filter: PointFilter | None) -> bool:
        """Whether a search under `filter` scores the points it selects (exact) rather than walking the graph.

        Words and ranges have no graph links (_edge_schema); a keyword filter that selects few of the points
        leaves a walk through them poorly connected even with its links (at 1M, one label: 0.935 of the exact
        ten). Both are answered exactly from the points the payload index finds; the count is the index's
        estimate, which costs microseconds."""
        import qdrant_edge as qe

        if filter is None or filter.is_empty():
            return False
        if filter.ranges or filter.text:
            return True
        with self._lock:
            selected = self._shard.count(qe.CountRequest(exact=False, filter=_edge_filter(filter)))
        return int(selected) <= EXACT_FILTER_POINTS

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

    def create(self, name: str, dim: int, indexed: Mapping[str, str] | None = None,
               json_fields: Collection[str] = ()) -> EdgeCollection:
        import qdrant_edge as qe

        with self._guard:
            if self.exists(name):
                raise Conflict(f"collection {name!r} already exists")
            path = self.root / name
            shard_path = path / "shard"
            if path.exists():  # a create that died half-way; nothing in it was committed
                shutil.rmtree(path)
            shard = qe.EdgeShard.create(str(shard_path), _edge_config(dim))
            collection = EdgeCollection(name, shard, dim, frozenset(json_fields))
            collection.ensure_indexes(indexed or {})
            collection.flush()
            (path / JSON_FIELDS_FILE).write_text(orjson.dumps(sorted(json_fields)).decode())
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
            listed = path / JSON_FIELDS_FILE  # absent in collections made before JSON-text fields
            json_fields = frozenset(orjson.loads(listed.read_bytes())) if listed.exists() else frozenset()
            shard = qe.EdgeShard.load(str(path / "shard"), _edge_config(dim))
            collection = EdgeCollection(name, shard, dim, json_fields)
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
