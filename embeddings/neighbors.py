"""The kNN graph of a dataset: faiss over unit vectors (cosine), built once and reused by every analysis.

Exact search (a flat inner-product index) while that is cheap; above `exact_threshold` points an
approximate index (IVF by default, HNSW on request), whose recall against exact search is measured on a
sample of queries. The graph is handed out in the two shapes its consumers accept: cleanlab's `knn_graph`
(a CSR matrix of cosine distances, self excluded) and UMAP's `precomputed_knn` (self in column 0).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import cast

import numpy as np

from embeddings.errors import InvalidInput

log = logging.getLogger(__name__)

KINDS = ("auto", "exact", "ivf", "hnsw")


@dataclass(frozen=True)
class KnnGraph:
    """`indices[i]` are the k nearest other points of point i, nearest first; `distances` are cosine distances."""

    indices: np.ndarray  # (n, k) int64
    distances: np.ndarray  # (n, k) float32, 1 - cosine similarity, ascending per row
    kind: str  # "exact" | "ivf" | "hnsw"
    recall: float | None = None  # recall@k of the approximate index against exact search, on a sample
    recall_sample: int = 0
    seconds: float = 0.0

    @property
    def n(self) -> int:
        """Number of points."""
        return int(self.indices.shape[0])

    @property
    def k(self) -> int:
        """Neighbours per point."""
        return int(self.indices.shape[1])

    @property
    def similarities(self) -> np.ndarray:
        """Cosine similarities, (n, k)."""
        return 1.0 - self.distances

    def top(self, k: int) -> KnnGraph:
        """The same graph keeping only the k nearest neighbours (k <= self.k)."""
        if k > self.k:
            raise InvalidInput(f"the kNN graph holds {self.k} neighbours per point; {k} were asked")
        return replace(self, indices=self.indices[:, :k], distances=self.distances[:, :k])

    def to_csr(self, k: int | None = None):
        """cleanlab's `knn_graph`: an (n, n) CSR matrix of distances, k entries per row, self excluded."""
        from scipy.sparse import csr_matrix

        g = self.top(k) if k is not None else self
        n, kk = g.indices.shape
        indptr = np.arange(0, n * kk + 1, kk)
        # cleanlab reads a zero distance as "no edge" in places; exact duplicates keep a tiny positive one.
        data = np.maximum(g.distances, 1e-12).astype(np.float64).reshape(-1)
        return csr_matrix((data, g.indices.reshape(-1), indptr), shape=(n, n))

    def for_umap(self, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
        """UMAP's `precomputed_knn`: (indices, distances) of n_neighbors columns, each point itself first."""
        if n_neighbors - 1 > self.k:
            raise InvalidInput(f"UMAP asks {n_neighbors} neighbours; the kNN graph holds {self.k} + self")
        n = self.n
        own = np.arange(n, dtype=np.int64)[:, None]
        indices = np.hstack([own, self.indices[:, : n_neighbors - 1]])
        distances = np.hstack([np.zeros((n, 1), np.float32), self.distances[:, : n_neighbors - 1]])
        return indices, np.maximum(distances, 0.0).astype(np.float32)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Unit-length float32 rows (cosine = inner product); zero rows stay zero."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise InvalidInput(f"vectors must be a 2-D array (points x dimensions), got shape {x.shape}")
    if not np.isfinite(x).all():
        bad = int(np.argwhere(~np.isfinite(x))[0, 0])
        raise InvalidInput(f"vector of point {bad} holds NaN or infinity; re-embed that point")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _drop_self(indices: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index from k+1 results (it is not always first: exact duplicates tie with it)."""
    n = indices.shape[0]
    own = np.arange(n)[:, None]
    is_self = indices == own
    # Rows where self was not returned (approximate search, many duplicates) drop their last result instead.
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    # Unfilled slots (-1) sort last; a row cannot keep more than k entries.
    keep = ~is_self
    out_i = indices[keep].reshape(n, k)
    out_s = sims[keep].reshape(n, k)
    return out_i, out_s


def _search_exact(x: np.ndarray, queries: np.ndarray, k: int, batch: int = 16_384) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    sims = np.empty((len(queries), k), np.float32)
    idx = np.empty((len(queries), k), np.int64)
    for start in range(0, len(queries), batch):
        s, i = index.search(queries[start : start + batch], k)
        sims[start : start + batch], idx[start : start + batch] = s, i
    return sims, idx


def _ivf_graph(x: np.ndarray, k: int, seed: int, nprobe: int | None, batch: int = 16_384
               ) -> tuple[np.ndarray, np.ndarray]:
    """All-points search of an IVF index, each point's coarse assignment computed once for add and search."""
    import faiss

    n, d = x.shape
    nlist = int(min(max(64, 4 * math.sqrt(n)), n // 39))
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    # k-means on a seeded sample of 24 points per list, 10 iterations: on perturbed Banking77 embeddings
    # more of either buys no recall, and faiss' defaults (256 per list, 25 iterations) cost several times more.
    train = x[rng.choice(n, size=min(n, nlist * 24), replace=False)]
    index.cp.seed = seed
    index.cp.niter = 10
    index.cp.min_points_per_centroid = 1  # the small sample is deliberate; no warning
    index.train(train)
    # 12 of ~1,300 lists at 100k points: recall@15 0.99 there (8: 0.984, 16: 0.993, 24: 0.996).
    nprobe = min(nprobe or 12, nlist)
    index.nprobe = nprobe
    coarse_d = np.empty((n, nprobe), np.float32)
    coarse_i = np.empty((n, nprobe), np.int64)
    for start in range(0, n, batch):
        coarse_d[start : start + batch], coarse_i[start : start + batch] = quantizer.search(x[start : start + batch],
                                                                                            nprobe)
    # The nearest list is each point's home: adding with it skips a second pass over the quantizer.
    assign = np.ascontiguousarray(coarse_i[:, 0])
    index.add_core(n, faiss.swig_ptr(x), None, faiss.swig_ptr(assign))
    sims = np.empty((n, k), np.float32)
    idx = np.empty((n, k), np.int64)
    # faiss' Python layer replaces search_preassigned with (x, k, Iq, Dq) -> (D, I); the declaration mypy
    # reads is the SWIG one of the C++ method (n, x, k, Iq, Dq, D, I, store_pairs) -> None.
    search = cast(Callable[..., tuple[np.ndarray, np.ndarray]], index.search_preassigned)
    # Queries in the order of their home list: consecutive queries probe mostly the same lists, which then
    # stay in the CPU cache instead of being read from memory again for every query (the all-points search
    # is memory-bound: each query scans ~nprobe * n / nlist vectors). Same lists, same answers.
    order = np.argsort(assign, kind="stable")
    for start in range(0, n, batch):
        rows = order[start:start + batch]
        sims[rows], idx[rows] = search(np.ascontiguousarray(x[rows]), k, coarse_i[rows], coarse_d[rows])
    return sims, idx


def _build_hnsw(x: np.ndarray, ef_search: int):
    import faiss

    index = faiss.IndexHNSWFlat(x.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.add(x)
    index.hnsw.efSearch = ef_search
    return index


def build_knn_graph(
    vectors: np.ndarray,
    k: int = 15,
    kind: str = "auto",
    exact_threshold: int = 20_000,
    recall_sample: int = 1000,
    seed: int = 0,
    nprobe: int | None = None,
) -> KnnGraph:
    """The k nearest other points of every point by cosine similarity.

    kind "auto" is exact below `exact_threshold` points and IVF above; "hnsw" and "ivf" force an index.
    An approximate graph carries its recall@k against exact search on `recall_sample` random queries.
    """
    if kind not in KINDS:
        raise InvalidInput(f"kNN index kind {kind!r} is unknown; use one of {', '.join(KINDS)}")
    x = normalize(vectors)
    n = x.shape[0]
    if n < 2:
        raise InvalidInput(f"a kNN graph needs at least 2 points; the dataset has {n}")
    if k < 1:
        raise InvalidInput(f"k must be at least 1, got {k}")
    k = min(k, n - 1)
    if kind == "auto":
        kind = "exact" if n <= exact_threshold else "ivf"
    if kind == "ivf" and n < 39 * 64:
        kind = "exact"  # too few points to train the coarse quantizer; exact is instant at this size
    started = time.perf_counter()
    if kind == "exact":
        sims, idx = _search_exact(x, x, k + 1)
    elif kind == "ivf":
        sims, idx = _ivf_graph(x, k + 1, seed, nprobe)
    else:
        index = _build_hnsw(x, ef_search=max(64, 4 * k))
        sims = np.empty((n, k + 1), np.float32)
        idx = np.empty((n, k + 1), np.int64)
        for start in range(0, n, 16_384):
            s, i = index.search(x[start : start + 16_384], k + 1)
            sims[start : start + 16_384], idx[start : start + 16_384] = s, i
    idx, sims = _drop_self(idx, sims, k)
    # Approximate search may return -1 when a probe holds too few points; point those at the row itself
    # with distance 1 (dissimilar), so every consumer sees k entries.
    unfilled = idx < 0
    if unfilled.any():
        idx[unfilled] = np.nonzero(unfilled)[0]
        sims[unfilled] = 0.0
    distances = np.clip(1.0 - sims, 0.0, 2.0).astype(np.float32)
    seconds = time.perf_counter() - started
    recall = None
    sample = 0
    if kind != "exact" and recall_sample > 0:
        recall, sample = measure_recall(x, idx, k, recall_sample, seed)
    log.info("kNN graph: %d points, k=%d, %s index in %.1f s%s", n, k, kind, seconds,
             f", recall@{k} {recall:.3f} on {sample} queries" if recall is not None else "")
    return KnnGraph(idx, distances, kind, recall, sample, seconds)


def measure_recall(x: np.ndarray, indices: np.ndarray, k: int, sample: int, seed: int = 0) -> tuple[float, int]:
    """Recall@k of `indices` against exact search, on `sample` random query points."""
    n = x.shape[0]
    rng = np.random.default_rng(seed + 1)
    rows = rng.choice(n, size=min(sample, n), replace=False)
    _, exact = _search_exact(x, x[rows], k + 1)
    hits = 0
    for row, truth in zip(rows, exact, strict=True):
        truth_set = {int(j) for j in truth if j != row}
        if len(truth_set) > k:
            truth_set = set([int(j) for j in truth if j != row][:k])
        hits += len(truth_set & set(indices[row].tolist()))
    return hits / (len(rows) * k), len(rows)


def query_knn(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of `base` for each query (cosine): (indices, similarities)."""
    b = normalize(base)
    q = normalize(queries)
    k = min(k, b.shape[0])
    sims, idx = _search_exact(b, q, k)
    return idx, sims
