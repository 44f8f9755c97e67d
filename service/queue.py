"""The labelling queue: which unlabelled points to annotate next, by one of several strategies.

entropy, margin, least_confidence   the model's uncertainty (from the predict step's payload fields)
random                              a seeded shuffle: the baseline every strategy should beat
knn_disagreement                    the model's prediction against the labelled neighbours' majority
hybrid                              (1 - margin + the neighbours' contradiction) x cluster weight (clusters
                                    with high error and low label coverage weigh more), picked greedily; a
                                    cluster's picks lose pull past its share of the uncertainty (diversity),
                                    near-duplicates of points already picked are skipped
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from embeddings.store import Collection, PointFilter, load_all
from service.choices import DEFAULT_STRATEGY, STRATEGIES
from service.errors import Conflict, InvalidInput, NotFound

log = logging.getLogger(__name__)

MAX_LIMIT = 100_000


def _probabilities(payload: dict[str, Any]) -> list[float]:
    return sorted((float(e["probability"]) for e in payload.get("n_best") or []), reverse=True)


def _entropy(payload: dict[str, Any]) -> float | None:
    if payload.get("entropy") is not None:
        return float(payload["entropy"])
    probs = _probabilities(payload)
    return -sum(p * math.log(p) for p in probs if p > 0) if probs else None


def _margin(payload: dict[str, Any]) -> float | None:
    probs = _probabilities(payload)
    if not probs:
        return None
    return probs[0] - (probs[1] if len(probs) > 1 else 0.0)


def _confidence(payload: dict[str, Any]) -> float | None:
    if payload.get("confidence") is not None:
        return float(payload["confidence"])
    probs = _probabilities(payload)
    return probs[0] if probs else None


Score = Callable[[dict[str, Any]], float | None]


def _one_minus(score: Score) -> Score:
    """1 − `score` (None where it is None): low margin or confidence ranks first."""
    def inverted(payload: dict[str, Any]) -> float | None:
        value = score(payload)
        return None if value is None else 1.0 - value
    return inverted


def _knn_disagreement(payload: dict[str, Any]) -> float | None:
    """Disagreeing points first (the surer the neighbours, the higher), then agreeing ones with split votes."""
    majority, share = payload.get("knn_majority_label"), payload.get("knn_majority_share")
    prediction = payload.get("prediction")
    if majority is None or share is None or prediction is None:
        return None
    return 0.5 + 0.5 * float(share) if prediction != majority else 0.5 * (1.0 - float(share))


def _hesitation(payload: dict[str, Any]) -> float | None:
    """1 − margin: how unsure the model is between its top two answers. Predictions stored without their n-best
    list (a prediction API that answers the top label only) rank by 1 − confidence, what there is of it."""
    margin = _margin(payload)
    if margin is not None:
        return 1.0 - margin
    confidence = _confidence(payload)
    return None if confidence is None else 1.0 - confidence


def _hybrid_score(payload: dict[str, Any]) -> float | None:
    """How unsure the model is between its top two answers (1 − margin) plus how strongly the labelled
    neighbours contradict its prediction (0 to 1): a point the model hesitates on AND its neighbourhood argues
    about is worth more than either alone. Margin rather than entropy: over scripts/simulate_loop.py's rounds
    it was the stronger uncertainty signal (README, The improvement loop)."""
    hesitation = _hesitation(payload)
    return None if hesitation is None else hesitation + (_knn_disagreement(payload) or 0.0)


def cluster_weights(payloads: list[dict[str, Any]], report: dict[str, Any] | None) -> dict[int, float]:
    """Weight per cluster id: 1 + error rate + unlabelled share (from the report, else from the payloads)."""
    weights: dict[int, float] = {}
    rows = list((report or {}).get("clusters") or [])
    if report and report.get("noise"):
        rows.append(report["noise"])
    for row in rows:
        weights[int(row["id"])] = 1.0 + float(row.get("error_rate") or 0.0) + float(row.get("unlabelled_share") or 0.0)
    if weights:
        return weights
    # No report: judge clusters from the stored fields (served-model errors are optimistic on training data).
    stats: dict[int, list[int]] = {}
    for p in payloads:
        if p.get("cluster") is None:
            continue
        s = stats.setdefault(int(p["cluster"]), [0, 0, 0])  # size, labelled, wrong
        s[0] += 1
        if p.get("label") is not None:
            s[1] += 1
            s[2] += int(p.get("prediction") is not None and p["prediction"] != p["label"])
    return {c: 1.0 + (w / lab if lab else 0.0) + (1.0 - lab / size) for c, (size, lab, w) in stats.items()}


def _row(rank: int, pid: Any, payload: dict[str, Any], score: float, strategy: str) -> dict[str, Any]:
    return {
        "rank": rank, "id": payload.get("record_id", pid), "point_id": pid,
        "revision": int(payload.get("revision") or 0), "text": payload.get("text"),
        "score": round(float(score), 6), "strategy": strategy,
        "suggested_label": payload.get("suggested_label") or payload.get("prediction"),
        "suggestion_confidence": payload.get("suggestion_confidence", payload.get("confidence")),
        "prediction": payload.get("prediction"), "confidence": payload.get("confidence"),
        "entropy": _entropy(payload), "margin": _margin(payload), "cluster": payload.get("cluster"),
        "knn_majority_label": payload.get("knn_majority_label"), "model_version": payload.get("model_version"),
    }


def build_queue(source, dataset: str | None = None, strategy: str = DEFAULT_STRATEGY, limit: int = 50, *,
                seed: int = 0, report: dict[str, Any] | None = None, dedupe_threshold: float = 0.9,
                ) -> list[dict[str, Any]]:
    """The `limit` unlabelled points to annotate next, best first, as rows (rank, id, text, score, ...).

    `source` is a Workspace (with `dataset`) or a Collection; with a Workspace the dataset's analysis report
    supplies the hybrid strategy's cluster error rates.
    """
    if strategy not in STRATEGIES:
        raise InvalidInput(f"queue strategy {strategy!r} is unknown; use one of {', '.join(STRATEGIES)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"queue limit {limit} is out of range; use 1 to {MAX_LIMIT}")
    collection: Collection
    if hasattr(source, "collection") and hasattr(source, "settings"):
        if dataset is None:
            raise InvalidInput("build_queue needs the dataset name when given a workspace")
        collection = source.collection(dataset)
        if report is None:
            from service.analyses.report import load_report

            try:
                report = load_report(source.settings, dataset)
            except NotFound:
                report = None
    else:
        collection = source
    ids, payloads, _ = load_all(collection, PointFilter(empty={"label": True}), with_vectors=False)
    # Points a reviewer already handled (any review action) are not queued again.
    keep = [i for i, p in enumerate(payloads)
            if "reviewed" not in (p.get("flags") or []) and not p.get("review_status")]
    ids, payloads = [ids[i] for i in keep], [payloads[i] for i in keep]
    if not ids:
        return []
    if strategy == "hybrid":
        if (report or {}).get("clusters"):
            weights = cluster_weights([], report)
        else:  # no report: judge clusters by all their points, labelled ones included
            _, labelled, _ = load_all(collection, PointFilter(empty={"label": False}), with_vectors=False)
            weights = cluster_weights(payloads + labelled, None)
    else:
        weights = {}

    def vector_of(wanted: list[Any]) -> dict[Any, np.ndarray]:
        return {p.id: p.vector for p in collection.retrieve(wanted, with_vectors=True) if p.vector is not None}

    return rank_unlabelled(ids, payloads, strategy, limit, seed=seed, weights=weights, vector_of=vector_of,
                           dedupe_threshold=dedupe_threshold)


def rank_unlabelled(ids: list[Any], payloads: list[dict[str, Any]], strategy: str, limit: int, *, seed: int = 0,
                    weights: dict[int, float] | None = None,
                    vector_of: Callable[[list[Any]], dict[Any, np.ndarray]] | None = None,
                    dedupe_threshold: float = 0.9) -> list[dict[str, Any]]:
    """The ranking itself, on points already loaded: the `limit` best of `ids` (with their payloads) for
    `strategy`. `weights` are the hybrid's cluster weights; `vector_of` fetches vectors by id for its
    near-duplicate check (None: no check). Pure, so a simulation can call it round after round."""
    if strategy == "random":
        order = np.random.default_rng(seed).permutation(len(ids))[:limit]
        return [_row(r + 1, ids[i], payloads[i], 1.0 - r / len(ids), strategy) for r, i in enumerate(order)]
    scorer = {
        "entropy": _entropy,
        "margin": _hesitation,
        "least_confidence": _one_minus(_confidence),
        "knn_disagreement": _knn_disagreement,
        "hybrid": _hybrid_score,
    }[strategy]
    # Row -> score, for the rows the strategy can score at all.
    scores = {i: s for i, p in enumerate(payloads) if (s := scorer(p)) is not None}
    scored = list(scores)
    if not scored:
        need = "the kNN fields of `data-debugger analyze`" if strategy == "knn_disagreement" else "predictions"
        # A step that has not run yet is a conflict with the dataset's state (409), as in every view.
        raise Conflict(f"strategy {strategy!r} needs {need} on the unlabelled points of the dataset; "
                           "run `data-debugger run` (or predict and analyze) first, or use strategy 'random'")
    if strategy != "hybrid":
        # Ties (equal scores) keep id order, so a queue is reproducible.
        scored.sort(key=lambda i: -scores[i])
        return [_row(r + 1, ids[i], payloads[i], scores[i], strategy) for r, i in enumerate(scored[:limit])]
    return _hybrid(vector_of, ids, payloads, scores, scored, limit, weights or {}, dedupe_threshold)


def _hybrid(vector_of: Callable[[list[Any]], dict[Any, np.ndarray]] | None, ids: list[Any],
            payloads: list[dict[str, Any]], scores: dict[int, float], scored: list[int], limit: int,
            weights: dict[int, float], dedupe_threshold: float) -> list[dict[str, Any]]:
    # Groups for diversity: a cluster's points share one; a point in no cluster (HDBSCAN noise) is a group of
    # its own, since noise is not one region and must not compete for a single slot.
    by_group: dict[Any, list[tuple[float, int]]] = {}
    for i in scored:
        c = payloads[i].get("cluster")
        c = int(c) if c is not None else -1
        value = scores[i] * weights.get(c, 1.0)
        by_group.setdefault(c if c >= 0 else ("noise", i), []).append((value, i))
    # A bounded pool per group: the greedy pass never needs more than `limit` from one group.
    pool: dict[Any, list[tuple[float, int]]] = {
        g: sorted(items, key=lambda t: (-t[0], t[1]))[: 3 * limit] for g, items in by_group.items()
    }
    # Each group's quota: its share of the uncertainty on offer (its best `limit` values), in picks. A group
    # holding half of it may take half the batch before its next point loses pull; a group with little
    # uncertainty gets one pick at most at full strength. Diversity without spending labels on sure points.
    mass = {g: sum(v for v, _ in items[:limit]) for g, items in pool.items()}
    total = sum(mass.values()) or 1.0
    quota = {g: max(1.0, limit * m / total) for g, m in mass.items()}
    pool_rows = [i for items in pool.values() for _, i in items]
    vectors = vector_of([ids[i] for i in pool_rows]) if vector_of is not None else {}
    heap = [(-items[0][0], n, 0) for n, items in enumerate(pool.values())]
    groups = list(pool)
    heapq.heapify(heap)
    taken: dict[Any, int] = {}
    chosen: list[tuple[int, float]] = []
    chosen_vecs: list[np.ndarray] = []
    seen_text: set[str] = set()
    while heap and len(chosen) < limit:
        _, n, pos = heapq.heappop(heap)
        g = groups[n]
        value, i = pool[g][pos]
        text = " ".join(str(payloads[i].get("text", "")).lower().split())
        vec = vectors.get(ids[i])
        duplicate = text in seen_text
        if not duplicate and vec is not None and chosen_vecs:
            v = vec / (np.linalg.norm(vec) or 1.0)
            duplicate = bool((np.stack(chosen_vecs) @ v).max() >= dedupe_threshold)
        if not duplicate:
            chosen.append((i, value))
            seen_text.add(text)
            if vec is not None:
                chosen_vecs.append(vec / (np.linalg.norm(vec) or 1.0))
            taken[g] = taken.get(g, 0) + 1
        if pos + 1 < len(pool[g]):
            # Diminishing returns past the group's quota: its next point's pull shrinks as it takes more.
            nxt = pool[g][pos + 1][0] / (1 + taken.get(g, 0) / quota[g])
            heapq.heappush(heap, (-nxt, n, pos + 1))
    return [_row(r + 1, ids[i], payloads[i], value, "hybrid") for r, (i, value) in enumerate(chosen)]
