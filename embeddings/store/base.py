"""The store interface every backend implements: collections of points, filters, and the read helpers.

A *collection* holds one dataset's points (or one of the project's own record kinds, such as the audit
log; see `metadata.py`). Point id = record id (an unsigned int, or a UUID derived from a string id, see
`ids.point_id`).

Payload conventions every backend relies on:
- unlabelled points have `label: None`; filter them with `PointFilter(empty={"label": True})`;
- qdrant-edge 0.9 coerces booleans to integers in filters, so no filterable field is a boolean: flags
  are keyword lists (`flags: ["label_issue", "outlier"]`) and two-valued states are keywords.
"""

from __future__ import annotations

from collections.abc import Collection as AbstractCollection
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, overload

import numpy as np

from embeddings.errors import InvalidInput
from embeddings.store.ids import PointId

# HNSW beam width for searches: as accurate as the engine's default at a lower cost (README, "Search
# latency"); it must be >= k.
SEARCH_EF = 64
# A filtered walk only steps through points the filter keeps, so it needs a wider beam: at 1M points a filter
# on one label (0.9 % of the points) found 0.760 of the exact ten with 64 and 0.935 with 256, one cluster
# (2.6 %) 0.784 and 0.890, for +0 to 0.5 ms a search (scripts/bench_filtered_search.py).
FILTERED_SEARCH_EF = 256
# The embedded store answers a search under a filter that selects at most this many points by scoring each of
# them (at 1M points: 1.7 ms for 9k, 4-5 ms for 26-33k), and walks the graph otherwise (EdgeCollection.search).
EXACT_FILTER_POINTS = 50_000
# Vectors are also kept as int8 (scalar quantisation, in RAM): the graph is walked on those and the best
# OVERSAMPLING * k candidates are rescored on the float vectors, for nearly the float recall at about half
# the time (README, "Search latency"). Collections created before this keep float-only search.
QUANTILE = 0.99
OVERSAMPLING = 2.0


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
        """True when the filter has no condition (it matches every point)."""
        return not (self.match or self.exclude or self.ranges or self.text or self.empty or self.ids is not None)

    def validate(self) -> None:
        """Refuse conditions no backend can answer faithfully (boolean matches)."""
        for key, value in [*self.match.items(), *self.exclude.items()]:
            values = value if isinstance(value, list | tuple | set) else [value]
            if any(isinstance(v, bool) for v in values):
                raise InvalidInput(f"filter on {key!r}: boolean values cannot be matched; use keywords")


@dataclass
class StoredPoint:
    """A point as read back: its id, payload and (when asked for) vector."""

    id: PointId
    payload: dict[str, Any]
    vector: np.ndarray | None = None


@dataclass
class Hit:
    """A search result: the point id, its similarity score and payload."""

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
        with_vectors: bool = False, fields: Sequence[str] | None = None,
    ) -> tuple[list[StoredPoint], PointId | None]:
        """One page in id order and the offset of the next page (None at the end); `fields`: only these
        payload keys (None: the whole payload)."""

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

    def create(self, name: str, dim: int, indexed: Mapping[str, str] | None = None,
               json_fields: AbstractCollection[str] = ()) -> Collection:
        """A new collection; `indexed`: payload field -> index type, the caller's schema (the store knows no fields).
        `json_fields`: fields never filtered on whose values are nested (lists of objects, objects); a backend may
        hold them as JSON text (edge does, see EdgeCollection), every backend reads back the values written."""

    def get(self, name: str) -> Collection: ...

    def drop(self, name: str) -> None: ...

    def close(self) -> None: ...


def iter_points(
    collection: Collection, filter: PointFilter | None = None, with_vectors: bool = False, batch: int = 2000,
    fields: Sequence[str] | None = None,
) -> Iterator[list[StoredPoint]]:
    """Every point matching `filter`, page by page; `fields`: only these payload keys (None: all). A reader
    that names its fields skips building the rest (the source record, n_best) for every point."""
    offset: PointId | None = None
    while True:
        page, offset = collection.scroll_page(filter, limit=batch, offset=offset, with_vectors=with_vectors,
                                              fields=fields)
        if page:
            yield page
        if offset is None:
            return


@overload
def load_all(
    collection: Collection, filter: PointFilter | None = None, with_vectors: Literal[True] = True,
    fields: Sequence[str] | None = None,
) -> tuple[list[PointId], list[dict[str, Any]], np.ndarray]: ...
@overload
def load_all(
    collection: Collection, filter: PointFilter | None = None, *, with_vectors: Literal[False],
    fields: Sequence[str] | None = None,
) -> tuple[list[PointId], list[dict[str, Any]], None]: ...
@overload
def load_all(
    collection: Collection, filter: PointFilter | None = None, with_vectors: bool = True,
    fields: Sequence[str] | None = None,
) -> tuple[list[PointId], list[dict[str, Any]], np.ndarray | None]: ...
def load_all(
    collection: Collection, filter: PointFilter | None = None, with_vectors: bool = True,
    fields: Sequence[str] | None = None,
) -> tuple[list[PointId], list[dict[str, Any]], np.ndarray | None]:
    """ids, payloads (only `fields`, when given) and (optionally) an (n, dim) float32 matrix of every
    matching point."""
    ids: list[PointId] = []
    payloads: list[dict[str, Any]] = []
    vectors: list[np.ndarray] = []
    for page in iter_points(collection, filter, with_vectors=with_vectors, batch=10_000, fields=fields):
        for p in page:
            ids.append(p.id)
            payloads.append(p.payload)
            if with_vectors:
                assert p.vector is not None, "a page read with_vectors carries every point's vector"
                vectors.append(p.vector)
    matrix = None
    if with_vectors:
        matrix = np.vstack(vectors).astype(np.float32) if vectors else np.zeros((0, collection.dim), np.float32)
    return ids, payloads, matrix


def load_vectors(collection: Collection, ids: Sequence[PointId], batch: int = 10_000) -> np.ndarray:
    """The (len(ids), dim) float32 matrix of the stored vectors of `ids`, in their order."""
    found: dict[PointId, np.ndarray] = {}
    for start in range(0, len(ids), batch):
        for point in collection.retrieve(ids[start:start + batch], with_vectors=True):
            assert point.vector is not None, "a point retrieved with_vectors carries its vector"
            found[point.id] = point.vector
    if not ids:
        return np.zeros((0, collection.dim), np.float32)
    return np.vstack([found[i] for i in ids]).astype(np.float32)


def search_ef(filter: PointFilter | None, k: int) -> int:
    """The HNSW beam for a search of k hits: SEARCH_EF, or FILTERED_SEARCH_EF when a condition filters it."""
    return max(SEARCH_EF if filter is None or filter.is_empty() else FILTERED_SEARCH_EF, k)


def as_vector(vector: Any) -> np.ndarray:
    """A returned vector as float32: qdrant-edge gives a list (or a {"": list} dict for named vectors)."""
    if isinstance(vector, dict):
        vector = next(iter(vector.values()))
    return np.asarray(vector, dtype=np.float32)
