"""Projection and density clustering behind small Protocols: UMAP (or PCA) and HDBSCAN, heavy imports inside.

For large datasets both are fitted on a seeded sample; every other point is placed through the shared kNN
graph (its coordinates and cluster are the similarity-weighted mean / vote of its already-placed
neighbours, iterated outward from the sample), so a million-point map costs a sample-sized fit.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from embeddings.neighbors import KnnGraph, build_knn_graph, query_knn

log = logging.getLogger(__name__)

MIN_UMAP_POINTS = 30


class Projector(Protocol):
    """Vectors -> low-dimensional coordinates."""

    def fit_transform(self, vectors: np.ndarray, knn: KnnGraph | None, dims: int, min_dist: float) -> np.ndarray:
        """(n, dims) float32 coordinates."""


class Clusterer(Protocol):
    """Low-dimensional coordinates -> cluster ids."""

    def fit_predict(self, coords: np.ndarray) -> np.ndarray:
        """A cluster id per row; -1 = noise."""


@dataclass(frozen=True)
class UmapProjector:
    """UMAP over cosine distances, seeded, reusing the run's kNN graph instead of computing its own."""

    n_neighbors: int = 15
    seed: int = 0
    n_epochs: int | None = 200  # UMAP's default is 500 below 10k points: slower, and no better for clustering

    def fit_transform(self, vectors, knn, dims, min_dist):
        """(n, dims) float32 coordinates."""
        from service.numba_cache import load_umap

        umap = load_umap()  # compiled functions come from the data home's numba cache when the entry point set it

        n_neighbors = min(self.n_neighbors, len(vectors) - 1)
        precomputed = knn.for_umap(n_neighbors) if knn is not None and knn.k >= n_neighbors - 1 else None
        with warnings.catch_warnings():
            # A seed makes UMAP single-threaded and it says so; a precomputed graph cannot transform new data.
            warnings.simplefilter("ignore")
            reducer = umap.UMAP(
                n_components=dims, n_neighbors=n_neighbors, min_dist=min_dist, metric="cosine",
                random_state=self.seed, low_memory=True, n_epochs=self.n_epochs,
                precomputed_knn=precomputed if precomputed is not None else (None, None, None),
                force_approximation_algorithm=precomputed is not None,
            )
            return np.asarray(reducer.fit_transform(vectors), dtype=np.float32)


@dataclass(frozen=True)
class PcaProjector:
    """A linear projection: instant, for quick looks and tests; clusters less well than UMAP."""

    seed: int = 0

    def fit_transform(self, vectors, knn, dims, min_dist):
        """(n, dims) float32 coordinates."""
        from sklearn.decomposition import PCA

        fitted = min(dims, vectors.shape[1], len(vectors))
        coords = PCA(n_components=fitted, random_state=self.seed).fit_transform(vectors).astype(np.float32)
        return np.pad(coords, ((0, 0), (0, dims - fitted)))  # tiny inputs: zero columns keep the shape


@dataclass(frozen=True)
class HdbscanClusterer:
    """HDBSCAN on the low-dimensional coordinates."""

    min_cluster_size: int = 10
    min_samples: int | None = None
    selection: str = "eom"

    def fit_predict(self, coords):
        """A cluster id per row; -1 = noise."""
        import hdbscan

        size = max(2, min(self.min_cluster_size, len(coords)))
        model = hdbscan.HDBSCAN(min_cluster_size=size, min_samples=self.min_samples,
                                cluster_selection_method=self.selection, core_dist_n_jobs=1)
        return model.fit_predict(coords.astype(np.float64)).astype(np.int64)


def warm_up() -> float:
    """Fit UMAP once on a few random points so numba compiles now (about 25 s), not in the first request."""
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 16)).astype(np.float32)
    graph = build_knn_graph(x, k=14)
    for dims, min_dist in ((2, 0.1), (5, 0.0)):
        UmapProjector().fit_transform(x, graph, dims, min_dist)
    seconds = time.perf_counter() - started
    log.info("UMAP warm-up: %.1f s", seconds)
    return seconds


@dataclass
class Layout:
    """Map and clustering coordinates and a cluster per point, and how they were made."""

    xy: np.ndarray
    clusters: np.ndarray
    fitted_on: int
    seconds: dict[str, float]


def layout(vectors: np.ndarray, knn: KnnGraph, projector: Projector, clusterer: Clusterer, cluster_dims: int,
           sample_size: int, seed: int) -> Layout:
    """2-D map and clusters of every point; fitted on a sample of `sample_size` when there are more."""
    n = len(vectors)
    seconds: dict[str, float] = {}
    if n > sample_size:
        sample = np.sort(np.random.default_rng(seed).choice(n, size=sample_size, replace=False))
        started = time.perf_counter()
        sample_knn = build_knn_graph(vectors[sample], k=knn.k, exact_threshold=5_000, recall_sample=0, seed=seed)
        seconds["sample_knn"] = time.perf_counter() - started
    else:
        sample, sample_knn = np.arange(n), knn
    fit_vectors = vectors[sample]
    if len(fit_vectors) < MIN_UMAP_POINTS:
        # UMAP's spectral start needs more points than dimensions; a handful of points needs no manifold.
        log.info("%d points: projecting with PCA instead of UMAP", len(fit_vectors))
        projector = PcaProjector(seed)
    started = time.perf_counter()
    low = projector.fit_transform(fit_vectors, sample_knn, cluster_dims, 0.0)
    seconds["project_cluster_dims"] = time.perf_counter() - started
    started = time.perf_counter()
    xy = projector.fit_transform(fit_vectors, sample_knn, 2, 0.1)
    seconds["project_2d"] = time.perf_counter() - started
    started = time.perf_counter()
    clusters = clusterer.fit_predict(low)
    seconds["cluster"] = time.perf_counter() - started
    if len(sample) == n:
        return Layout(xy, clusters, n, seconds)
    started = time.perf_counter()
    full_xy, full_clusters = place(vectors, knn, sample, xy, clusters)
    seconds["place"] = time.perf_counter() - started
    return Layout(full_xy, full_clusters, len(sample), seconds)


def place(vectors: np.ndarray, knn: KnnGraph, sample: np.ndarray, xy: np.ndarray, clusters: np.ndarray,
          max_rounds: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates and clusters for points outside the fitted sample, spread outward through the kNN graph."""
    from scipy.sparse import coo_matrix

    n = len(vectors)
    out_xy = np.zeros((n, xy.shape[1]), np.float32)
    out_c = np.full(n, -1, np.int64)
    out_xy[sample], out_c[sample] = xy, clusters
    placed = np.zeros(n, bool)
    placed[sample] = True
    sims = np.clip(knn.similarities, 1e-6, None)
    n_clusters = int(clusters.max()) + 2 if len(clusters) else 1
    for _ in range(max_rounds):
        todo = np.flatnonzero(~placed)
        if not len(todo):
            break
        nbr = knn.indices[todo]
        w = sims[todo] * placed[nbr]
        ok = w.sum(axis=1) > 0
        if not ok.any():
            break
        rows, nbr, w = todo[ok], nbr[ok], w[ok]
        total = w.sum(axis=1, keepdims=True)
        out_xy[rows] = (w[:, :, None] * out_xy[nbr]).sum(axis=1) / total
        votes = coo_matrix((w.reshape(-1), (np.repeat(np.arange(len(rows)), nbr.shape[1]),
                                            (out_c[nbr] + 1).reshape(-1))), shape=(len(rows), n_clusters)).tocsr()
        out_c[rows] = np.asarray(votes.argmax(axis=1)).reshape(-1) - 1
        placed[rows] = True  # after the round: a round reads only points placed before it
    rest = np.flatnonzero(~placed)
    if len(rest):  # points whose whole neighbourhood is cut off from the sample: ask the sample directly
        idx, s = query_knn(vectors[sample], vectors[rest], k=5)
        w = np.clip(s, 1e-6, None)
        out_xy[rest] = (w[:, :, None] * xy[idx]).sum(axis=1) / w.sum(axis=1, keepdims=True)
        out_c[rest] = clusters[idx[:, 0]]
    return out_xy, out_c
