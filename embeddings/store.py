"""Where vectors live: one store interface over Qdrant, embedded (qdrant-edge) or a server (qdrant-client).

A *collection* holds one dataset's points (or one of the project's own record kinds, such as the audit
log). Point id = record id (an unsigned int, or a UUID derived from a string id, see `point_id`).

Payload conventions every backend relies on:
- unlabelled points have `label: None`; filter them with `PointFilter(empty={"label": True})`;
- qdrant-edge 0.9 coerces booleans to integers in filters, so no filterable field is a boolean: flags
  are keyword lists (`flags: ["label_issue", "outlier"]`) and two-valued states are keywords.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from service.errors import Conflict, InvalidInput, NotFound, Unavailable

log = logging.getLogger(__name__)

PointId = int | str
# Namespace for UUIDs derived from string record ids; fixed forever, or ids would change between runs.
_ID_NAMESPACE = uuid.UUID("6f1c3a52-3b1e-4f0e-9d55-0c6a2f7e4a10")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_NAME_RE = re.compile(NAME_PATTERN)
MAX_POINT_ID = 2**64 - 1  # Qdrant's integer ids are unsigned 64-bit

# HNSW beam width for searches. At 100k points (scripts/bench_search.py data) ef 64 keeps recall@11 at
# 0.997, the same as the engine's default, for 0.27 ms a search instead of 0.37 ms; it must be >= k.
SEARCH_EF = 64
# Vectors are also kept as int8 (scalar quantisation, in RAM): the graph is walked on those and the best
# OVERSAMPLING * k candidates are rescored on the float vectors. Measured at 100k points, 384-d, ef 64
# (/tmp scratch run, recall@11 against an exact numpy search): float 0.252 ms a search, recall 0.9915;
# int8 without rescoring 0.114 ms, recall 0.913; int8 rescored x2 0.131 ms, recall 0.989. The index
# also builds faster (5.6 s against 14.9 s). Collections created before this keep float-only search.
QUANTILE = 0.99
OVERSAMPLING = 2.0
# qdrant-edge reads segments on a search thread pool sized to the CPUs; with one process and two cores the
# hand-off to that pool costs more than the parallel segment reads win (0.27 vs 0.38 ms per search).
EDGE_SEARCH_THREADS = 1


def point_id(record_id: Any) -> PointId:
    """The Qdrant point id of a record id: non-negative ints stay, anything else maps to a stable UUID."""
    if isinstance(record_id, bool):
        raise InvalidInput(f"record id {record_id!r} is a boolean; use a number or a string")
    if isinstance(record_id, int) and fits_point_id(record_id):
        return record_id
    text = str(record_id)
    # ASCII digits only: "²" passes isdigit() but not int(), and "١٢" would become the id 12.
    canonical = text.isascii() and text.isdigit() and len(text) <= 20 and (text == "0" or text[0] != "0")
    if canonical and fits_point_id(int(text)):
        return int(text)
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return str(uuid.uuid5(_ID_NAMESPACE, text))


def fits_point_id(number: int) -> bool:
    """Whether an integer can be a Qdrant point id; a larger one is an id like any string (a UUID)."""
    return 0 <= number <= MAX_POINT_ID


def check_name(name: str) -> str:
    """A collection name safe as a folder and a Qdrant collection name."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):  # fullmatch: `$` would pass "name\n"
        raise InvalidInput(
            f"dataset name {name!r} is not allowed: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class PointFilter:
    """A backend-neutral filter; every condition must hold.

    match: field -> value, or a list of values (any of them); exclude: the same, none of them;
    ranges: field -> (min, max), inclusive, either may be None; text: field -> words that must all occur
    (case-insensitive, on a text-indexed field); empty: field -> True for null/missing, False for set;
    ids: restrict to these point ids.
    """

    match: Mapping[str, Any] = field(default_factory=dict)
    exclude: Mapping[str, Any] = field(default_factory=dict)
    ranges: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    text: Mapping[str, str] = field(default_factory=dict)
    empty: Mapping[str, bool] = field(default_factory=dict)
    ids: Sequence[PointId] | None = None

    def is_empty(self) -> bool:
        return not (self.match or self.exclude or self.ranges or self.text or self.empty or self.ids is not None)

    def validate(self) -> None:
        for key, value in [*self.match.items(), *self.exclude.items()]:
            values = value if isinstance(value, list | tuple | set) else [value]
            if any(isinstance(v, bool) for v in values):
                raise InvalidInput(f"filter on {key!r}: boolean values cannot be matched; use keywords")


@dataclass
class StoredPoint:
    id: PointId
    payload: dict[str, Any]
    vector: np.ndarray | None = None


@dataclass
class Hit:
    id: PointId
    score: float
    payload: dict[str, Any]


class Collection(Protocol):
    """One dataset's points."""

    name: str

    @property
    def dim(self) -> int: ...

    def upsert(self, ids: Sequence[PointId], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]) -> None:
        """Insert or replace whole points."""

    def set_payloads(self, updates: Mapping[PointId, dict[str, Any]]) -> None:
        """Merge per-point payload fields into existing points (others are kept)."""

    def delete_payload_keys(self, ids: Sequence[PointId], keys: Sequence[str]) -> None: ...

    def delete(self, ids: Sequence[PointId]) -> None: ...

    def retrieve(self, ids: Sequence[PointId], with_vectors: bool = False) -> list[StoredPoint]:
        """The points that exist among `ids`, in the order asked."""

    def scroll_page(
        self, filter: PointFilter | None = None, limit: int = 100, offset: PointId | None = None,
        with_vectors: bool = False,
    ) -> tuple[list[StoredPoint], PointId | None]:
        """One page in id order and the offset of the next page (None at the end)."""

    def search(
        self, vector: np.ndarray, k: int = 10, filter: PointFilter | None = None, with_payload: bool = True
    ) -> list[Hit]: ...

    def count(self, filter: PointFilter | None = None) -> int: ...

    def facet(self, key: str, filter: PointFilter | None = None, limit: int = 10_000) -> dict[Any, int]:
        """Counts of each value of an indexed keyword/integer field."""

    def flush(self) -> None: ...

    def optimize(self) -> None:
        """Build the vector index now (embedded store); a server optimises by itself."""


class Store(Protocol):
    """A set of collections: embedded (a folder) or a Qdrant server."""

    backend: str

    def list_collections(self) -> list[str]: ...

    def exists(self, name: str) -> bool: ...

    def create(self, name: str, dim: int, indexed: Mapping[str, str] | None = None) -> Collection:
        """A new collection; `indexed`: payload field -> index type, the caller's schema (the store knows no fields)."""

    def get(self, name: str) -> Collection: ...

    def drop(self, name: str) -> None: ...

    def close(self) -> None: ...


def iter_points(
    collection: Collection, filter: PointFilter | None = None, with_vectors: bool = False, batch: int = 2000
) -> Iterator[list[StoredPoint]]:
    """Every point matching `filter`, page by page."""
    offset: PointId | None = None
    while True:
        page, offset = collection.scroll_page(filter, limit=batch, offset=offset, with_vectors=with_vectors)
        if page:
            yield page
        if offset is None:
            return


def load_all(
    collection: Collection, filter: PointFilter | None = None, with_vectors: bool = True
) -> tuple[list[PointId], list[dict[str, Any]], np.ndarray | None]:
    """ids, payloads and (optionally) an (n, dim) float32 matrix of every matching point."""
    ids: list[PointId] = []
    payloads: list[dict[str, Any]] = []
    vectors: list[np.ndarray] = []
    for page in iter_points(collection, filter, with_vectors=with_vectors, batch=10_000):
        for p in page:
            ids.append(p.id)
            payloads.append(p.payload)
            if with_vectors:
                vectors.append(p.vector)
    matrix = None
    if with_vectors:
        matrix = np.vstack(vectors).astype(np.float32) if vectors else np.zeros((0, collection.dim), np.float32)
    return ids, payloads, matrix


# --------------------------------------------------------------------------------------------------------
# Embedded: qdrant-edge, one shard per collection under a folder
# --------------------------------------------------------------------------------------------------------


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
            raise Unavailable(
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


def _edge_filter(f: PointFilter | None):
    if f is None or f.is_empty():
        return None
    import qdrant_edge as qe

    f.validate()
    must: list[Any] = []
    must_not: list[Any] = []
    for key, value in f.match.items():
        if isinstance(value, list | tuple | set):
            must.append(qe.FieldCondition(key=key, match=qe.MatchAny(list(value))))
        else:
            must.append(qe.FieldCondition(key=key, match=qe.MatchValue(value)))
    for key, value in f.exclude.items():
        values = list(value) if isinstance(value, list | tuple | set) else [value]
        must_not.append(qe.FieldCondition(key=key, match=qe.MatchAny(values)))
    for key, (lo, hi) in f.ranges.items():
        must.append(qe.FieldCondition(key=key, range=qe.RangeFloat(gte=lo, lte=hi)))
    for key, words in f.text.items():
        must.append(qe.FieldCondition(key=key, match=qe.MatchText(words)))
    for key, is_empty in f.empty.items():
        (must if is_empty else must_not).append(qe.IsEmptyCondition(key))
    if f.ids is not None:
        must.append(qe.HasIdCondition(set(f.ids)))
    return qe.Filter(must=must or None, must_not=must_not or None)


def _edge_schema(kind: str):
    import qdrant_edge as qe

    if kind == "text":
        return qe.TextIndexParams(tokenizer=qe.TokenizerType.Word, lowercase=True)
    return {
        "keyword": qe.PayloadSchemaType.Keyword,
        "integer": qe.PayloadSchemaType.Integer,
        "float": qe.PayloadSchemaType.Float,
    }[kind]


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
                out.append(StoredPoint(pid, dict(r.payload or {}), _vec(r.vector) if with_vectors else None))
        return out

    def scroll_page(self, filter=None, limit=100, offset=None, with_vectors=False):
        import qdrant_edge as qe

        request = qe.ScrollRequest(
            offset=offset, limit=limit, filter=_edge_filter(filter), with_payload=True, with_vector=with_vectors
        )
        with self._lock:
            records, next_offset = self._shard.scroll(request)
        next_offset = None if next_offset is None else _norm_id(next_offset)
        page = [
            StoredPoint(_norm_id(r.id), dict(r.payload or {}), _vec(r.vector) if with_vectors else None)
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
                hnsw_ef=max(SEARCH_EF, k),
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


def _vec(vector) -> np.ndarray:
    # qdrant-edge returns the default dense vector as a list (or a {"": list} dict for named vectors).
    if isinstance(vector, dict):
        vector = next(iter(vector.values()))
    return np.asarray(vector, dtype=np.float32)


def _edge_config(dim: int):
    import qdrant_edge as qe

    return qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
        quantization_config=qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=QUANTILE, always_ram=True),
        max_search_threads=EDGE_SEARCH_THREADS,
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


# --------------------------------------------------------------------------------------------------------
# Server: qdrant-client against QDRANT_URL (also its in-process ":memory:" mode, used in tests)
# --------------------------------------------------------------------------------------------------------


def _client_filter(f: PointFilter | None):
    if f is None or f.is_empty():
        return None
    from qdrant_client import models as m

    f.validate()
    must: list[Any] = []
    must_not: list[Any] = []
    for key, value in f.match.items():
        if isinstance(value, list | tuple | set):
            must.append(m.FieldCondition(key=key, match=m.MatchAny(any=list(value))))
        else:
            must.append(m.FieldCondition(key=key, match=m.MatchValue(value=value)))
    for key, value in f.exclude.items():
        values = list(value) if isinstance(value, list | tuple | set) else [value]
        must_not.append(m.FieldCondition(key=key, match=m.MatchAny(any=values)))
    for key, (lo, hi) in f.ranges.items():
        must.append(m.FieldCondition(key=key, range=m.Range(gte=lo, lte=hi)))
    for key, words in f.text.items():
        must.append(m.FieldCondition(key=key, match=m.MatchText(text=words)))
    for key, is_empty in f.empty.items():
        (must if is_empty else must_not).append(m.IsEmptyCondition(is_empty=m.PayloadField(key=key)))
    if f.ids is not None:
        must.append(m.HasIdCondition(has_id=list(f.ids)))
    return m.Filter(must=must or None, must_not=must_not or None)


class ClientCollection:
    """One Qdrant collection reached through qdrant-client."""

    def __init__(self, name: str, client, qualified: str, dim: int, in_memory: bool):
        self.name = name
        self._client = client
        self._qualified = qualified
        self._dim = dim
        self._in_memory = in_memory
        # qdrant-client's local mode is not thread-safe; a server is, but the lock costs little there.
        self._lock = threading.RLock() if in_memory else _NullLock()

    @property
    def dim(self) -> int:
        return self._dim

    def ensure_indexes(self, indexed: Mapping[str, str]) -> None:
        from qdrant_client import models as m

        if self._in_memory:  # local mode ignores payload indexes
            return
        for key, kind in indexed.items():
            schema = (
                m.TextIndexParams(type=m.TextIndexType.TEXT, tokenizer=m.TokenizerType.WORD, lowercase=True)
                if kind == "text"
                else {"keyword": m.PayloadSchemaType.KEYWORD, "integer": m.PayloadSchemaType.INTEGER,
                      "float": m.PayloadSchemaType.FLOAT}[kind]
            )
            self._client.create_payload_index(self._qualified, key, field_schema=schema, wait=True)

    def upsert(self, ids, vectors, payloads) -> None:
        from qdrant_client import models as m

        vectors = np.asarray(vectors, dtype=np.float32)
        points = [
            m.PointStruct(id=pid, vector=vec.tolist(), payload=payload)
            for pid, vec, payload in zip(ids, vectors, payloads, strict=True)
        ]
        if points:
            with self._lock:
                self._client.upsert(self._qualified, points=points, wait=True)

    def set_payloads(self, updates) -> None:
        from qdrant_client import models as m

        ops = [
            m.SetPayloadOperation(set_payload=m.SetPayload(payload=payload, points=[pid]))
            for pid, payload in updates.items()
        ]
        with self._lock:
            for start in range(0, len(ops), 1000):
                self._client.batch_update_points(self._qualified, ops[start : start + 1000], wait=True)

    def delete_payload_keys(self, ids, keys) -> None:
        if ids and keys:
            with self._lock:
                self._client.delete_payload(self._qualified, keys=list(keys), points=list(ids), wait=True)

    def delete(self, ids) -> None:
        from qdrant_client import models as m

        if ids:
            with self._lock:
                self._client.delete(self._qualified, m.PointIdsList(points=list(ids)), wait=True)

    def retrieve(self, ids, with_vectors=False) -> list[StoredPoint]:
        if not ids:
            return []
        with self._lock:
            records = self._client.retrieve(self._qualified, list(ids), with_payload=True, with_vectors=with_vectors)
        by_id = {r.id: r for r in records}
        out = []
        for pid in ids:
            r = by_id.get(pid)
            if r is not None:
                out.append(StoredPoint(r.id, dict(r.payload or {}), _vec(r.vector) if with_vectors else None))
        return out

    def scroll_page(self, filter=None, limit=100, offset=None, with_vectors=False):
        with self._lock:
            records, next_offset = self._client.scroll(
                self._qualified, scroll_filter=_client_filter(filter), limit=limit, offset=offset,
                with_payload=True, with_vectors=with_vectors,
            )
        page = [
            StoredPoint(r.id, dict(r.payload or {}), _vec(r.vector) if with_vectors else None) for r in records
        ]
        return page, next_offset

    def search(self, vector, k=10, filter=None, with_payload=True) -> list[Hit]:
        from qdrant_client import models as m

        with self._lock:
            response = self._client.query_points(
                self._qualified, query=np.asarray(vector, dtype=np.float32).tolist(), limit=k,
                query_filter=_client_filter(filter), with_payload=with_payload,
                search_params=m.SearchParams(
                    hnsw_ef=max(SEARCH_EF, k),
                    quantization=m.QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING),
                ),
            )
        return [Hit(p.id, float(p.score), dict(p.payload or {})) for p in response.points]

    def count(self, filter=None) -> int:
        with self._lock:
            return int(self._client.count(self._qualified, count_filter=_client_filter(filter), exact=True).count)

    def facet(self, key, filter=None, limit=10_000) -> dict[Any, int]:
        with self._lock:
            response = self._client.facet(
                self._qualified, key=key, facet_filter=_client_filter(filter), limit=limit, exact=True
            )
        return {hit.value: int(hit.count) for hit in response.hits}

    def flush(self) -> None:
        """Writes use wait=True; nothing to flush."""

    def optimize(self) -> None:
        """The server builds its HNSW index in the background by itself."""

    def close(self) -> None:
        """The client is shared by the store; nothing per collection."""


@dataclass(frozen=True)
class ClusterLayout:
    """How a new collection spreads over a Qdrant cluster: `shards` split the points between nodes (more
    nodes share the searches and the memory), `replicas` copies of each shard keep a dataset readable when a
    node is down, and a write waits for `write_consistency` of them. None leaves the server's default (one
    shard, one copy), which is right for a single server."""

    shards: int | None = None
    replicas: int | None = None
    write_consistency: int | None = None

    def __post_init__(self) -> None:
        for name in ("shards", "replicas", "write_consistency"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InvalidInput(f"qdrant_{name} must be 1 or more, not {value}")
        if self.write_consistency and self.write_consistency > (self.replicas or 1):
            raise InvalidInput(
                f"qdrant_write_consistency ({self.write_consistency}) exceeds qdrant_replicas ({self.replicas or 1}):"
                " a write could never be acknowledged; lower it or add replicas"
            )

    def create_kwargs(self) -> dict[str, int]:
        """The create_collection arguments this layout sets."""
        names = {"shards": "shard_number", "replicas": "replication_factor",
                 "write_consistency": "write_consistency_factor"}
        return {arg: getattr(self, ours) for ours, arg in names.items() if getattr(self, ours) is not None}


class _NullLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class ClientStore:
    """Collections in a Qdrant server or cluster (or qdrant-client's ':memory:' mode, for tests)."""

    def __init__(self, url: str = ":memory:", api_key: str | None = None, prefix: str = "dd_",
                 layout: ClusterLayout | None = None):
        from qdrant_client import QdrantClient

        self.layout = layout or ClusterLayout()
        self.in_memory = url == ":memory:"
        self.backend = "memory" if self.in_memory else "server"
        self.prefix = prefix
        try:
            if self.in_memory:
                self._client = QdrantClient(location=":memory:")
            else:
                self._client = QdrantClient(url=url, api_key=api_key, timeout=30)
                self._client.get_collections()  # fail now, clearly, rather than on first use
        except Exception as exc:
            if self.in_memory:
                raise
            raise Unavailable(
                f"cannot reach the Qdrant server at {url}: {exc}. Is it running (docker compose up)?"
            ) from exc
        self._dims: dict[str, int] = {}

    def _qualified(self, name: str) -> str:
        return self.prefix + check_name(name)

    def list_collections(self) -> list[str]:
        names = [c.name for c in self._client.get_collections().collections]
        return sorted(n[len(self.prefix):] for n in names if n.startswith(self.prefix))

    def exists(self, name: str) -> bool:
        return bool(self._client.collection_exists(self._qualified(name)))

    def create(self, name: str, dim: int, indexed: Mapping[str, str] | None = None) -> ClientCollection:
        from qdrant_client import models as m

        if self.exists(name):
            raise Conflict(f"collection {name!r} already exists")
        self._client.create_collection(
            self._qualified(name),
            vectors_config=m.VectorParams(size=dim, distance=m.Distance.COSINE),
            quantization_config=m.ScalarQuantization(
                scalar=m.ScalarQuantizationConfig(type=m.ScalarType.INT8, quantile=QUANTILE, always_ram=True)
            ),
            **self.layout.create_kwargs(),
        )
        collection = ClientCollection(name, self._client, self._qualified(name), dim, self.in_memory)
        collection.ensure_indexes(indexed or {})
        return collection

    def get(self, name: str) -> ClientCollection:
        if not self.exists(name):
            raise NotFound(f"dataset {name!r} does not exist")
        info = self._client.get_collection(self._qualified(name))
        vectors = info.config.params.vectors
        dim = vectors.size if hasattr(vectors, "size") else next(iter(vectors.values())).size
        return ClientCollection(name, self._client, self._qualified(name), int(dim), self.in_memory)

    def drop(self, name: str) -> None:
        if not self.exists(name):
            raise NotFound(f"dataset {name!r} does not exist")
        self._client.delete_collection(self._qualified(name))

    def close(self) -> None:
        self._client.close()


def open_store(settings) -> Store:
    """The store the settings ask for: edge (default), a Qdrant server (QDRANT_URL), or memory."""
    backend = settings.resolved_backend
    if backend == "edge":
        return EdgeStore(settings.store_dir)
    if backend == "memory":
        return ClientStore(":memory:")
    if not settings.qdrant_url:
        raise InvalidInput("store_backend is 'server' but QDRANT_URL is not set")
    key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    layout = ClusterLayout(settings.qdrant_shards, settings.qdrant_replicas, settings.qdrant_write_consistency)
    return ClientStore(settings.qdrant_url, api_key=key, layout=layout)
