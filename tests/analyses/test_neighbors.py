"""The shared kNN graph: exact against brute force, approximate with measured recall, and its two shapes."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.neighbors import KnnGraph, build_knn_graph, measure_recall, normalize, query_knn
from service.errors import InvalidInput


def clustered(n: int, dim: int = 24, centres: int = 20, noise: float = 0.5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim))
    return (c[rng.integers(0, centres, n)] + noise * rng.standard_normal((n, dim))).astype(np.float32)


def brute_force(x: np.ndarray, k: int) -> np.ndarray:
    u = normalize(x)
    sims = u @ u.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def test_exact_graph_matches_brute_force_and_excludes_self():
    x = clustered(400)
    graph = build_knn_graph(x, k=8, kind="exact")
    assert graph.kind == "exact" and graph.recall is None
    assert graph.indices.shape == (400, 8)
    assert not (graph.indices == np.arange(400)[:, None]).any()
    truth = brute_force(x, 8)
    overlap = np.mean([len(set(a) & set(b)) / 8 for a, b in zip(graph.indices, truth, strict=True)])
    assert overlap > 0.99  # float ties may order differently
    assert (np.diff(graph.distances, axis=1) >= -1e-6).all()
    u = normalize(x)
    expected = 1.0 - np.einsum("ij,ij->i", u, u[graph.indices[:, 0]])
    np.testing.assert_allclose(graph.distances[:, 0], expected, atol=1e-5)


def test_exact_duplicates_keep_their_twin_and_never_themselves():
    x = clustered(50)
    x[10] = x[20]
    x[30] = x[20]
    graph = build_knn_graph(x, k=3, kind="exact")
    for row, twins in ((10, {20, 30}), (20, {10, 30}), (30, {10, 20})):
        assert row not in graph.indices[row]
        assert twins <= set(graph.indices[row][:2].tolist())
        assert graph.distances[row][0] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_index_reports_its_measured_recall(kind):
    x = clustered(6000, centres=60, noise=0.8)
    graph = build_knn_graph(x, k=10, kind=kind, recall_sample=300)
    assert graph.kind == kind
    assert graph.recall_sample == 300
    recomputed, _ = measure_recall(normalize(x), graph.indices, 10, 300)
    assert graph.recall == pytest.approx(recomputed)
    assert graph.recall >= 0.9
    assert not (graph.indices == np.arange(6000)[:, None]).any()


def test_recall_measurement_detects_a_bad_graph():
    x = clustered(1000)
    good = build_knn_graph(x, k=5, kind="exact")
    assert measure_recall(normalize(x), good.indices, 5, 200)[0] == pytest.approx(1.0)
    shuffled = np.random.default_rng(0).permutation(good.indices)
    assert measure_recall(normalize(x), shuffled, 5, 200)[0] < 0.2


def test_auto_switches_to_an_approximate_index_above_the_threshold():
    x = clustered(3000)
    assert build_knn_graph(x, k=5, exact_threshold=5000).kind == "exact"
    graph = build_knn_graph(x, k=5, exact_threshold=2000, recall_sample=100)
    assert graph.kind == "ivf" and graph.recall is not None


def test_csr_is_what_cleanlab_reads():
    x = clustered(300)
    x[7] = 50 * np.random.default_rng(1).standard_normal(x.shape[1])  # far from every centre
    graph = build_knn_graph(x, k=10)
    csr = graph.to_csr()
    assert csr.shape == (300, 300)
    assert (np.diff(csr.indptr) == 10).all()
    assert csr.diagonal().sum() == 0
    from cleanlab import Datalab

    lab = Datalab(data={"label": np.zeros(300, int)}, label_name="label", verbosity=0)
    lab.find_issues(knn_graph=csr, issue_types={"outlier": {"k": 10}})
    scores = lab.get_issues("outlier")["outlier_score"].to_numpy()
    assert int(np.argmin(scores)) == 7


def test_umap_shape_puts_each_point_first():
    graph = build_knn_graph(clustered(100), k=14)
    idx, dist = graph.for_umap(15)
    assert idx.shape == dist.shape == (100, 15)
    assert (idx[:, 0] == np.arange(100)).all() and (dist[:, 0] == 0).all()
    assert (idx[:, 1:] == graph.indices).all()
    with pytest.raises(InvalidInput, match="holds 14"):
        graph.for_umap(20)


def test_top_and_query():
    x = clustered(200)
    graph = build_knn_graph(x, k=10)
    top = graph.top(3)
    assert isinstance(top, KnnGraph) and top.k == 3 and (top.indices == graph.indices[:, :3]).all()
    idx, sims = query_knn(x[:50], x[:5], k=1)
    assert (idx[:, 0] == np.arange(5)).all() and np.allclose(sims[:, 0], 1.0, atol=1e-5)


def test_bad_input_is_named():
    x = clustered(20)
    x[3, 2] = np.nan
    with pytest.raises(InvalidInput, match="point 3"):
        build_knn_graph(x)
    with pytest.raises(InvalidInput, match="at least 2"):
        build_knn_graph(clustered(1))
    with pytest.raises(InvalidInput, match="kind 'annoy'"):
        build_knn_graph(clustered(10), kind="annoy")
    assert build_knn_graph(clustered(6), k=50).k == 5  # clipped to n - 1
