"""Which part of a queue strategy earns its labels? An ablation over scripts/simulate_loop.py's labelling rounds.

The hybrid queue adds three things to the model's margin: the labelled neighbours' contradiction, cluster
weights (clusters with high error and low label coverage weigh more) and diversity (a cluster's picks lose
pull past its share; near-duplicates are skipped). Each variant below takes one of them away from the hybrid,
or adds one of them (or a density term) to margin alone, and runs the same labelling rounds as
simulate_loop (5 % labelled to start, 1 % of the pool per round, up to 40 %, the same classifier and the
same seeds), so the table says what each part is worth in area under the macro-F1 curve.

    .venv/bin/python scripts/ablate_queue.py --home /tmp/dd-eval-home --datasets humanloop --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import simulate_loop  # noqa: E402
from evaluate_noise import SHARED, embed, load_banking77, load_humanloop  # noqa: E402

from service import queue  # noqa: E402

log = logging.getLogger("ablate_queue")


def _margin_score(payload: dict[str, Any]) -> float:
    return 1.0 - (queue._margin(payload) or 0.0)


def _plus_knn(weight: float):
    """1 − margin + weight × the neighbours' contradiction (the hybrid's score is weight 1)."""
    return lambda payload: _margin_score(payload) + weight * (queue._knn_disagreement(payload) or 0.0)


def _sorted(ids, payloads, score, limit, name, weights=None):
    """Best `limit` by score (× cluster weight when given), no diversity and no near-duplicate check."""
    values = []
    for payload in payloads:
        cluster = payload.get("cluster")
        factor = (weights or {}).get(int(cluster) if cluster is not None else -1, 1.0)
        values.append(score(payload) * factor)
    order = sorted(range(len(ids)), key=lambda i: (-values[i], i))[:limit]
    return [queue._row(r + 1, ids[i], payloads[i], values[i], name) for r, i in enumerate(order)]


def _diverse(ids, payloads, score, limit, weights, vector_of, threshold):
    """The hybrid's greedy pass (quotas per cluster, near-duplicates skipped) over another score."""
    scores = [score(p) for p in payloads]
    return queue._hybrid(vector_of, ids, payloads, scores, list(range(len(ids))), limit, weights, threshold)


# name -> what it is; every variant sees the same payload fields the queue reads in the service.
VARIANTS = {
    "margin": "margin alone (the queue's `margin`)",
    "hybrid": "the queue's `hybrid`: margin + kNN contradiction, × cluster weight, diversity",
    "hybrid-no-weights": "hybrid without cluster weights",
    "hybrid-no-diversity": "hybrid's score × cluster weight, best first",
    "hybrid-score-only": "margin + kNN contradiction, best first",
    "margin+knn/2": "margin + half the kNN contradiction, best first",
    "margin×weight": "margin × cluster weight, best first",
    "margin+diversity": "margin through the hybrid's diversity pass",
    "margin×density": "margin × mean similarity to its 15 nearest neighbours (information density)",
}


def install(density: np.ndarray) -> None:
    """Route simulate_loop's calls of the queue's ranking through the variants above."""
    original = queue.rank_unlabelled

    def rank(ids, payloads, strategy, limit, *, seed=0, weights=None, vector_of=None, dedupe_threshold=0.9):
        if strategy in ("margin", "hybrid"):
            return original(ids, payloads, strategy, limit, seed=seed, weights=weights, vector_of=vector_of,
                            dedupe_threshold=dedupe_threshold)
        if strategy == "hybrid-no-weights":
            return _diverse(ids, payloads, queue._hybrid_score, limit, {}, vector_of, dedupe_threshold)
        if strategy == "hybrid-no-diversity":
            return _sorted(ids, payloads, queue._hybrid_score, limit, strategy, weights)
        if strategy == "hybrid-score-only":
            return _sorted(ids, payloads, queue._hybrid_score, limit, strategy)
        if strategy == "margin+knn/2":
            return _sorted(ids, payloads, _plus_knn(0.5), limit, strategy)
        if strategy == "margin×weight":
            return _sorted(ids, payloads, _margin_score, limit, strategy, weights)
        if strategy == "margin+diversity":
            return _diverse(ids, payloads, _margin_score, limit, {}, vector_of, dedupe_threshold)
        if strategy == "margin×density":
            dense = {i: float(density[i]) for i in ids}
            order = sorted(range(len(ids)), key=lambda j: (-_margin_score(payloads[j]) * dense[ids[j]], j))
            return [queue._row(r + 1, ids[j], payloads[j], 0.0, strategy) for r, j in enumerate(order[:limit])]
        raise ValueError(f"unknown variant {strategy!r}")

    simulate_loop.rank_unlabelled = rank
    # simulate_loop computes cluster weights for the strategy named "hybrid" only: every variant that uses
    # them needs them too.
    original_choose = simulate_loop.choose

    def choose(p, strategy, model, labels, known, cluster, names, k, seed):
        uses_weights = strategy in ("hybrid-no-diversity", "margin×weight")
        if not uses_weights:
            return original_choose(p, strategy, model, labels, known, cluster, names, k, seed)
        simulate_loop.rank_unlabelled = lambda *a, **kw: rank(*a[:2], strategy, *a[3:], **kw)
        try:
            return original_choose(p, "hybrid", model, labels, known, cluster, names, k, seed)
        finally:
            simulate_loop.rank_unlabelled = rank

    simulate_loop.choose = choose


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/dd-eval-home"))
    parser.add_argument("--datasets", nargs="+", default=["humanloop"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=Path("scripts/results"))
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # one small fit at a time: BLAS threads only spin against each other
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("numba", "umap", "pynndescent", "sentence_transformers", "httpx", "faiss", "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    loaders = {"humanloop": lambda: load_humanloop(SHARED / "humanloop" / "chatbot_intent_classifier_data.json"),
               "banking77": lambda: load_banking77(SHARED / "banking77")}
    lines = ["| dataset | variant | AUC (mean macro-F1 over rounds) | labels to within 1 pt (per seed) |",
             "|---|---|---|---|"]
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.datasets:
        data = loaders[name]()
        embed(data, args.home)
        prepared = simulate_loop.prepare(data)
        graph = prepared.knn.top(15)
        install(np.clip(1.0 - graph.distances, 0.0, None).mean(axis=1))
        cluster = simulate_loop.clusters_of(prepared, 0)
        runs = [simulate_loop.labelling(prepared, seed, 0.05, 0.01, 0.40, cluster, tuple(args.variants))
                for seed in args.seeds]
        (args.out / f"queue_ablation_{name}.json").write_text(json.dumps({"seeds": args.seeds, "runs": runs}))
        for variant in args.variants:
            aucs = [run[variant]["auc"] for run in runs]
            within = [run[variant]["labels_to_within_1pt"] for run in runs]
            lines.append(f"| {name} | {variant}: {VARIANTS[variant]} | {np.mean(aucs):.4f} ± {np.std(aucs):.4f} "
                         f"| {', '.join('—' if w is None else str(w) for w in within)} |")
    print("\n".join(lines))
    (args.out / "queue_ablation.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
