"""Does acting on Data Debugger's advice improve the model more than the alternatives? A simulated annotator
(who answers with the dataset's original labels) works through the loop round after round.

Fixing labels: flip a seeded 10 % of the training labels (uniformly, or to one of the 3 most similar
intents), then each round review the next 1 % of training points in an order, fix what the annotator says,
retrain and score macro-F1 on the clean test labels. Orders, with the same budget per round:
  tool      Data Debugger's issue order: mislabel_score of the label-issues analysis (out-of-fold model +
            kNN vote), recomputed after every retrain as the service re-analyses
  cleanlab  cleanlab's find_label_issues alone (self-confidence ranking) on the same out-of-fold probabilities
  entropy   the source's `score` field (Humanloop: entropy of its model); Banking77 has none, so the entropy
            of our out-of-fold probabilities
  random    a seeded shuffle
  none      no fixes; and the clean-data ceiling
Recovered share = (F1 after the last round − F1 with noise) / (clean F1 − F1 with noise).

Labelling: keep a seeded 5 % of the training pool labelled, hide the rest; each round label the next 1 % of
the pool chosen by each queue strategy (service.queue.rank_unlabelled, the code behind the queue), retrain,
score test accuracy and macro-F1. Reported: area under the macro-F1 curve (mean over rounds), and the labels
each strategy needs to come within 1 point of the model trained on the whole pool.

What is real: the MiniLM embeddings (through the embedding cache of --home), the classifier family `train`
uses (logistic regression on the embeddings; C picked once per dataset on validation, as `train` would), the
analyses (kNN consistency, label issues with cleanlab, projection + clusters for the hybrid queue's weights)
and the queue's ranking code. What is simulated: the annotator, and the data stays in memory between rounds
instead of going through the store (the end-to-end loop through the service is tests/api/test_loop.py).

    .venv/bin/python scripts/simulate_loop.py --home /tmp/dd-eval-home --datasets humanloop banking77 \
        --seeds 0 1 2 --out scripts/results
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from evaluate_noise import SHARED, Data, embed, flip, load_banking77, load_humanloop  # noqa: E402
from loop_report import ORDERS, merged, plots, tables  # noqa: E402

from embeddings.neighbors import build_knn_graph  # noqa: E402
from service.analyses.context import build_context  # noqa: E402
from service.analyses.knn_consistency import KnnConsistency  # noqa: E402
from service.analyses.label_issues import LabelIssues  # noqa: E402
from service.predictions.metrics import entropy, macro_f1  # noqa: E402
from service.predictions.models import GRIDS, build  # noqa: E402
from service.queue import STRATEGIES, cluster_weights, rank_unlabelled  # noqa: E402

log = logging.getLogger("simulate_loop")
N_BEST = 5


@dataclass
class Prepared:
    """One dataset as arrays: true label codes (-1 none), split masks, vectors, its kNN graph."""

    data: Data
    names: list[str]
    y: np.ndarray
    train: np.ndarray
    test: np.ndarray
    val: np.ndarray
    x: np.ndarray
    knn: Any
    C: float


def prepare(data: Data) -> Prepared:
    names = sorted({label for label in data.labels if label is not None})
    index = {name: i for i, name in enumerate(names)}
    y = np.array([index[label] if label is not None else -1 for label in data.labels])
    splits = np.array([s or "training" for s in data.splits])
    x = np.asarray(data.vectors, dtype=np.float32)
    train = np.flatnonzero((y >= 0) & (splits == "training"))
    test = np.flatnonzero((y >= 0) & (splits == "testing"))
    val = np.flatnonzero((y >= 0) & (splits == "validation"))
    if not len(val):  # Banking77: hold out a stable 15 % of training to pick C, as `train` does
        rng = np.random.default_rng(12345)
        val = np.sort(rng.choice(train, size=len(train) * 15 // 100, replace=False))
    fit_rows = np.setdiff1d(train, val)
    best = max(GRIDS["logreg"], key=lambda params: macro_f1(
        y[val], fit(x, y, fit_rows, len(names), params["C"]).predict_proba(None, x[val]).argmax(1), len(names)))
    log.info("%s: C=%s picked on %d validation points", data.name, best["C"], len(val))
    return Prepared(data, names, y, train, test, val, x, build_knn_graph(x, k=15), float(best["C"]))


def fit(x: np.ndarray, y: np.ndarray, rows: np.ndarray, n_labels: int, C: float):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build("logreg", C=C).fit(None, x[rows], y[rows], n_labels)


def test_scores(p: Prepared, labels: np.ndarray, rows: np.ndarray) -> tuple[float, float, Any]:
    """(accuracy, macro-F1) on the clean test labels of a model fit on `labels` over `rows`, and the model."""
    model = fit(p.x, labels, rows, len(p.names), p.C)
    pred = model.predict_proba(None, p.x[p.test]).argmax(1)
    return float((pred == p.y[p.test]).mean()), macro_f1(p.y[p.test], pred, len(p.names)), model


def out_of_fold(p: Prepared, labels: np.ndarray, seed: int, folds: int) -> np.ndarray:
    from sklearn.model_selection import StratifiedKFold

    oof = np.full((len(labels), len(p.names)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(p.train, labels[p.train])
        for fit_idx, held in splits:
            model = fit(p.x, labels, p.train[fit_idx], len(p.names), p.C)
            oof[p.train[held]] = model.predict_proba(None, p.x[p.train[held]])
    return oof


# ------------------------------------------------------------------------------------------------------
# Fixing labels


def suspicion(p: Prepared, order: str, labels: np.ndarray, model, seed: int, folds: int,
              rng: np.random.Generator) -> np.ndarray:
    """A score per training point (higher = review sooner) under `order`, on the current labels."""
    if order == "random":
        return rng.random(len(p.train))
    if order == "entropy" and p.data.score is not None:
        return np.nan_to_num(p.data.score[p.train], nan=0.0)
    oof = out_of_fold(p, labels, seed, folds)
    if order == "entropy":
        return entropy(oof[p.train])
    if order == "cleanlab":
        from cleanlab.filter import find_label_issues

        ranked = find_label_issues(labels[p.train], oof[p.train], return_indices_ranked_by="self_confidence")
        score = -oof[p.train, labels[p.train]] / 10  # the rest by self-confidence, below every flagged point
        score[ranked] = 1.0 + np.linspace(1.0, 0.0, num=len(ranked), endpoint=False)
        return score
    # tool: the label-issues analysis as analyze runs it (model probabilities, out-of-fold, kNN vote)
    probs = np.zeros((len(labels), len(p.names)))
    everyone = np.flatnonzero(p.y >= 0)
    probs[everyone] = model.predict_proba(None, p.x[everyone])
    current = [p.names[v] if v >= 0 else None for v in labels]
    ctx = build_context(list(range(len(labels))), p.data.texts, p.x, current, p.data.splits, probs=probs,
                        model_labels=p.names, oof=oof, knn=p.knn, seed=seed)
    ctx.results["knn_consistency"] = KnnConsistency().run(ctx)
    return LabelIssues().run(ctx).fields["mislabel_score"][p.train].astype(float)


def fixing(p: Prepared, mode: str, seed: int, rounds: int, budget: float, folds: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    centroids = np.stack([p.x[p.y == i].mean(axis=0) for i in range(len(p.names))])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    noisy, flipped = flip(p.y, p.train, len(p.names), 0.10, mode, centroids, rng)
    clean_f1 = test_scores(p, p.y, p.train)[1]
    _, noisy_f1, noisy_model = test_scores(p, noisy, p.train)
    per_round = max(1, int(round(budget * len(p.train))))
    out: dict[str, Any] = {"clean": clean_f1, "none": noisy_f1, "flipped": int(flipped.sum()), "per_round": per_round,
                           "train": len(p.train)}
    for order in ORDERS:
        labels, model = noisy.copy(), noisy_model
        reviewed = np.zeros(len(p.train), bool)
        curve, found = [noisy_f1], 0
        order_rng = np.random.default_rng(seed + 1000)
        for _ in range(rounds):
            score = suspicion(p, order, labels, model, seed, folds, order_rng)
            score = np.where(reviewed, -np.inf, score)
            pick = np.argsort(-score, kind="stable")[:per_round]
            reviewed[pick] = True
            rows = p.train[pick]
            found += int(flipped[rows].sum())
            labels[rows] = p.y[rows]  # the annotator's answer: the original label
            _, f1, model = test_scores(p, labels, p.train)
            curve.append(f1)
        lost = clean_f1 - noisy_f1
        out[order] = {"curve": curve, "found": found,
                      "recovered": (curve[-1] - noisy_f1) / lost if lost > 0 else float("nan")}
        log.info("%s %s seed %d %s: F1 %.4f -> %.4f (clean %.4f), %d flips found", p.data.name, mode, seed, order,
                 noisy_f1, curve[-1], clean_f1, found)
    return out


# ------------------------------------------------------------------------------------------------------
# Labelling


def clusters_of(p: Prepared, seed: int) -> np.ndarray:
    """HDBSCAN clusters on the UMAP projection, as analyze computes them (once per dataset)."""
    from service.analyses.clusters import Clusters

    labels = [p.names[v] if v >= 0 else None for v in p.y]
    ctx = build_context(list(range(len(p.y))), p.data.texts, p.x, labels, p.data.splits, knn=p.knn, seed=seed)
    return np.asarray(Clusters().run(ctx).fields["cluster"], dtype=float)  # -1: HDBSCAN's noise, as stored


def labelling(p: Prepared, seed: int, start: float, step: float, max_share: float,
              cluster: np.ndarray, strategies: tuple[str, ...] = STRATEGIES) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    pool = p.train
    full_acc, full_f1, _ = test_scores(p, p.y, pool)
    initial = rng.choice(pool, size=max(len(p.names), int(round(start * len(pool)))), replace=False)
    per_round = max(1, int(round(step * len(pool))))
    out: dict[str, Any] = {"full_pool": {"accuracy": full_acc, "macro_f1": full_f1}, "pool": len(pool),
                           "per_round": per_round}
    names = np.asarray(p.names, dtype=object)
    for strategy in strategies:
        known = np.zeros(len(p.y), bool)
        known[initial] = True
        labels = np.where(known, p.y, -1)
        sizes, accs, f1s = [], [], []
        while True:
            rows = np.flatnonzero(known)
            acc, f1, model = test_scores(p, labels, rows)
            sizes.append(len(rows))
            accs.append(acc)
            f1s.append(f1)
            if len(rows) + per_round > max_share * len(pool):
                break
            chosen = choose(p, strategy, model, labels, known, cluster, names, per_round, seed + len(rows))
            known[chosen] = True
            labels[chosen] = p.y[chosen]
        within = [s for s, f in zip(sizes, f1s, strict=True) if f >= full_f1 - 0.01]
        out[strategy] = {"labels": sizes, "accuracy": accs, "macro_f1": f1s, "auc": float(np.mean(f1s)),
                         "labels_to_within_1pt": within[0] if within else None}
        log.info("%s seed %d %s: AUC %.4f, within 1 pt of %.4f at %s labels", p.data.name, seed, strategy,
                 np.mean(f1s), full_f1, within[0] if within else "never (by the cap)")
    return out


def choose(p: Prepared, strategy: str, model, labels: np.ndarray, known: np.ndarray, cluster: np.ndarray,
           names: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The next `k` pool points by the queue's own ranking, from the payload fields predict and analyze write."""
    pool_unknown = p.train[~known[p.train]]
    probs = model.predict_proba(None, p.x)
    current = [p.names[v] if v >= 0 else None for v in labels]
    ctx = build_context(list(range(len(labels))), p.data.texts, p.x, current, p.data.splits, knn=p.knn, seed=seed)
    vote = KnnConsistency().run(ctx).fields
    top = np.argsort(-probs, axis=1)[:, :N_BEST]
    ent = entropy(probs)

    def payload(i: int) -> dict[str, Any]:
        return {"text": p.data.texts[i], "label": current[i], "prediction": names[top[i, 0]],
                "confidence": float(probs[i, top[i, 0]]), "entropy": float(ent[i]),
                "n_best": [{"label": names[j], "probability": float(probs[i, j])} for j in top[i]],
                "cluster": None if np.isnan(cluster[i]) else int(cluster[i]),
                "knn_majority_label": vote["knn_majority_label"][i],
                "knn_majority_share": None if np.isnan(vote["knn_majority_share"][i])
                else float(vote["knn_majority_share"][i])}

    payloads = [payload(int(i)) for i in pool_unknown]
    weights = {}
    if strategy == "hybrid":
        labelled_rows = np.flatnonzero(known)
        weights = cluster_weights(payloads + [payload(int(i)) for i in labelled_rows], None)
    rows = rank_unlabelled([int(i) for i in pool_unknown], payloads, strategy, k, seed=seed, weights=weights,
                           vector_of=lambda wanted: {i: p.x[i] for i in wanted})
    return np.array([row["point_id"] for row in rows], dtype=np.int64)


def _key(dataset: str, mode: str) -> str:
    return f"{dataset}/{mode}"


def save(results: dict[str, Any], path: Path) -> None:
    """Results so far, after every block: a long run killed midway keeps what it finished."""
    path.write_text(json.dumps(results, indent=1, default=float))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/dd-eval-home"),
                        help="a DATA_DEBUGGER_HOME whose embedding cache is used (and filled)")
    parser.add_argument("--datasets", nargs="+", default=["humanloop", "banking77"])
    parser.add_argument("--modes", nargs="+", default=["uniform", "similar"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=5, help="fixing rounds (of --budget each)")
    parser.add_argument("--budget", type=float, default=0.01, help="share of training reviewed per round")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--start", type=float, default=0.05, help="labelling: share labelled at the start")
    parser.add_argument("--step", type=float, default=0.01, help="labelling: share of the pool per round")
    parser.add_argument("--max-share", type=float, default=0.40, help="labelling: stop at this share")
    parser.add_argument("--experiments", nargs="+", default=["fixing", "labelling"])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--out", type=Path, default=Path("scripts/results"))
    parser.add_argument("--report", nargs="+", type=Path, help="only print the tables and draw the plots of "
                        "these result files (loop_results*.json), merged")
    parser.add_argument("--blas-threads", type=int, default=1, help="BLAS threads: one fit at a time is small, and "
                        "on a busy 2-core machine OpenBLAS threads spinning against each other cost 10-25x")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.blas_threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("numba", "umap", "pynndescent", "sentence_transformers", "httpx", "faiss", "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report:
        results = merged(args.report)
    else:
        results = {"fixing": {}, "labelling": {}, "args": {k: str(v) for k, v in vars(args).items()}}
        target = args.out / f"loop_results_{'_'.join(args.datasets)}_{'_'.join(args.experiments)}.json"
        loaders = {"humanloop": lambda: load_humanloop(SHARED / "humanloop" / "chatbot_intent_classifier_data.json"),
                   "banking77": lambda: load_banking77(SHARED / "banking77")}
        started = time.perf_counter()
        for name in args.datasets:
            data = loaders[name]()
            embed(data, args.home)
            prepared = prepare(data)
            if "fixing" in args.experiments:
                for mode in args.modes:
                    results["fixing"][_key(name, mode)] = [
                        fixing(prepared, mode, seed, args.rounds, args.budget, args.folds) for seed in args.seeds]
                    save(results, target)
            if "labelling" in args.experiments:
                cluster = clusters_of(prepared, 0)
                results["labelling"][name] = [labelling(prepared, seed, args.start, args.step, args.max_share,
                                                        cluster, tuple(args.strategies)) for seed in args.seeds]
                save(results, target)
        print(f"{time.perf_counter() - started:.0f} s, results in {target}", file=sys.stderr)
    text = tables(results)
    print(text)
    (args.out / "loop_tables.md").write_text(text + "\n")
    for path in plots(results, args.out):
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
