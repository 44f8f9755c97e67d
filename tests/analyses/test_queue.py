"""The labelling queue: every strategy on the analysed planted dataset, and the hybrid's promises
(diversity across clusters, weight toward weak clusters, no near-duplicates) on a hand-made collection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from embeddings.store import ClientStore, point_id
from service.errors import Conflict, InvalidInput
from service.queue import STRATEGIES, build_queue
from tests.analyses.conftest import DATASET


@pytest.fixture(scope="module")
def queues(analysed_master):
    """Every strategy's queue of 12 on the planted dataset, and the unlabelled payloads by record id."""
    from embeddings.store import PointFilter, load_all

    with analysed_master.workspace() as ws:
        out = {s: build_queue(ws, DATASET, s, 12) for s in STRATEGIES}
        out["random-again"] = build_queue(ws, DATASET, "random", 12)
        out["random-seed-1"] = build_queue(ws, DATASET, "random", 12, seed=1)
        _, payloads, _ = load_all(ws.collection(DATASET), PointFilter(empty={"label": True}), with_vectors=False)
    return out, {p["record_id"]: p for p in payloads}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_ranks_unlabelled_points(queues, strategy):
    out, unlabelled = queues
    rows = out[strategy]
    assert len(rows) == 12
    assert [r["rank"] for r in rows] == list(range(1, 13))
    assert len({r["id"] for r in rows}) == 12
    assert all(r["id"] in unlabelled for r in rows)
    assert all(r["strategy"] == strategy and r["text"] for r in rows)
    scores = [r["score"] for r in rows]
    if strategy != "hybrid":  # hybrid trades score for diversity
        assert scores == sorted(scores, reverse=True)


def test_uncertainty_strategies_take_the_most_uncertain(queues):
    out, unlabelled = queues

    def top(key, reverse):
        values = sorted((key(p) for p in unlabelled.values()), reverse=reverse)
        return values[:12]

    def margin(p):
        probs = sorted((e["probability"] for e in p["n_best"]), reverse=True)
        return probs[0] - probs[1]

    assert [r["entropy"] for r in out["entropy"]] == pytest.approx(top(lambda p: p["entropy"], True))
    assert [r["margin"] for r in out["margin"]] == pytest.approx(top(margin, False))
    assert [r["confidence"] for r in out["least_confidence"]] == pytest.approx(top(lambda p: p["confidence"], False))


def test_random_is_seeded(queues):
    out, _ = queues
    ids = [r["id"] for r in out["random"]]
    assert ids == [r["id"] for r in out["random-again"]]
    assert ids != [r["id"] for r in out["random-seed-1"]]


def test_knn_disagreement_puts_disagreements_first(queues):
    out, unlabelled = queues
    disagreeing = [rid for rid, p in unlabelled.items()
                   if p.get("knn_majority_label") and p["knn_majority_label"] != p["prediction"]]
    rows = out["knn_disagreement"]
    flags = [r["knn_majority_label"] != r["prediction"] for r in rows]
    assert flags == sorted(flags, reverse=True)  # all disagreements before any agreement
    assert sum(flags) == min(12, len(disagreeing))


def make_collection(points):
    """An in-memory Qdrant collection holding hand-made analysed points."""
    store = ClientStore(":memory:")
    collection = store.create("queue", 4)
    ids = [point_id(p["record_id"]) for p in points]
    vectors = np.array([p.pop("vector") for p in points], np.float32)
    collection.upsert(ids, vectors, points)
    return collection


def point(rid, cluster, entropy, vector, text=None, label=None, flags=()):
    p1 = 1.0 - entropy / 3
    return {"record_id": rid, "text": text or f"text {rid}", "label": label, "cluster": cluster, "entropy": entropy,
            "prediction": "a", "confidence": p1, "flags": list(flags),
            "n_best": [{"label": "a", "probability": p1}, {"label": "b", "probability": 1 - p1}], "vector": vector}


def test_hybrid_is_diverse_weighted_and_free_of_near_duplicates():
    rng = np.random.default_rng(0)
    directions = {c: rng.standard_normal(4) for c in range(3)}
    points = []
    rid = 1
    # Cluster 0: the most uncertain points, but all near-duplicates of one another.
    for _ in range(6):
        points.append(point(rid, 0, 0.69, directions[0] + 0.001 * rng.standard_normal(4)))
        rid += 1
    # Clusters 1 and 2: less uncertain, spread out; cluster 2 is where the model errs (report below).
    for c in (1, 2):
        for _ in range(6):
            points.append(point(rid, c, 0.5, rng.standard_normal(4)))
            rid += 1
    points.append(point(rid, 1, 0.9, rng.standard_normal(4), label="a"))  # labelled: never queued
    points.append(point(rid + 1, 1, 0.9, rng.standard_normal(4), flags=["reviewed"]))  # reviewed: never
    points.append({**point(rid + 2, 1, 0.9, rng.standard_normal(4)), "review_status": "ambiguous"})  # nor this
    collection = make_collection(points)
    report = {"clusters": [{"id": 0, "error_rate": 0.0, "unlabelled_share": 0.2},
                           {"id": 1, "error_rate": 0.0, "unlabelled_share": 0.2},
                           {"id": 2, "error_rate": 0.8, "unlabelled_share": 0.2}]}
    rows = build_queue(collection, strategy="hybrid", limit=6, report=report)
    ids = [r["id"] for r in rows]
    assert not {rid, rid + 1, rid + 2} & set(ids)
    clusters = [r["cluster"] for r in rows]
    assert clusters.count(0) == 1  # one representative of the duplicates, not six
    assert clusters[0] in (0, 2)
    assert clusters.count(2) > clusters.count(1)  # the weak cluster weighs more
    vectors = {p.id: p.vector for p in collection.retrieve([point_id(i) for i in ids], with_vectors=True)}
    unit = np.stack([v / np.linalg.norm(v) for v in vectors.values()])
    sims = unit @ unit.T
    np.fill_diagonal(sims, 0)
    assert sims.max() < 0.9
    # Plain entropy, by contrast, queues the six duplicates.
    assert [r["cluster"] for r in build_queue(collection, strategy="entropy", limit=6)] == [0] * 6


def test_hybrid_without_a_report_weighs_clusters_from_the_payloads():
    rng = np.random.default_rng(1)
    points = [point(i, i % 3, 0.5, rng.standard_normal(4)) for i in range(1, 13)]
    # Labelled points of cluster 2, all mispredicted: cluster 2 is weak.
    points += [point(100 + i, 2, 0.1, rng.standard_normal(4), label="b") for i in range(4)]
    rows = build_queue(make_collection(points), strategy="hybrid", limit=3)
    assert rows[0]["cluster"] == 2


def test_bad_requests_are_explained():
    rng = np.random.default_rng(2)
    bare = [{"record_id": i, "text": f"t {i}", "label": None, "vector": rng.standard_normal(4)} for i in range(1, 5)]
    collection = make_collection(bare)
    with pytest.raises(InvalidInput, match="strategy 'smart' is unknown"):
        build_queue(collection, strategy="smart", limit=5)
    with pytest.raises(InvalidInput, match="limit 0"):
        build_queue(collection, strategy="random", limit=0)
    with pytest.raises(Conflict, match="needs predictions.*'random'"):
        build_queue(collection, strategy="entropy", limit=2)
    assert len(build_queue(collection, strategy="random", limit=10)) == 4
    assert math.isclose(build_queue(collection, strategy="random", limit=1)[0]["score"], 1.0)


def test_hybrid_ranks_by_hesitation_and_neighbour_contradiction_even_without_n_best():
    from service.queue import rank_unlabelled

    # Only `confidence` stored (no n-best list): the hybrid falls back to 1 - confidence.
    payloads = [{"text": f"t{i}", "prediction": "a", "confidence": c, "cluster": 0}
                for i, c in enumerate((0.9, 0.4, 0.7))]
    rows = rank_unlabelled([10, 11, 12], payloads, "hybrid", 3)
    assert [r["point_id"] for r in rows] == [11, 12, 10]
    # A point its labelled neighbours contradict outranks a slightly less sure one they agree with.
    payloads[0].update(knn_majority_label="b", knn_majority_share=1.0)
    assert rank_unlabelled([10, 11, 12], payloads, "hybrid", 1)[0]["point_id"] == 10


def test_margin_the_default_ranks_by_confidence_when_predictions_carry_no_n_best():
    from service.choices import DEFAULT_STRATEGY
    from service.queue import rank_unlabelled

    # A prediction API that answers the top label only: the default queue still ranks, least sure first,
    # instead of refusing for want of an n-best list.
    payloads = [{"text": f"t{i}", "prediction": "a", "confidence": c} for i, c in enumerate((0.9, 0.4, 0.7))]
    rows = rank_unlabelled([10, 11, 12], payloads, DEFAULT_STRATEGY, 3)
    assert [r["point_id"] for r in rows] == [11, 12, 10]
    # With n-best lists, margin is the gap between the top two answers, not the top answer's confidence.
    payloads[0]["n_best"] = [{"label": "a", "probability": 0.5}, {"label": "b", "probability": 0.49}]
    assert rank_unlabelled([10, 11, 12], payloads, "margin", 1)[0]["point_id"] == 10
