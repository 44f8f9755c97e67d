"""Noise-injection evaluation of the mislabel ranking: flip a seeded share of training labels, rank, compare.

For each dataset (Humanloop, Banking77), noise mode and seed: copy the labels, flip `rate` of the training
labels (uniform: to any other label; similar: to one of the 3 intents whose centroids are nearest), compute
out-of-fold probabilities with the registry's default classifier family (logistic regression on the
MiniLM embeddings, 5 folds), run the kNN-consistency and label-issue analyses over the whole dataset, and
score four rankings of the training points against the flipped set:

  combined   our mislabel_score (model + neighbourhood)
  cleanlab   cleanlab's label-quality score alone (self-confidence on the same out-of-fold probabilities)
  knn        the neighbourhood's disagreement alone (1 - knn agreement)
  score      the source's own `score` field (Humanloop's entropy of its model; not in Banking77)

Printed: precision@|F| (= recall@|F|), recall@2|F| and average precision, mean over seeds; plus the
precision/recall of the flags (our label_issue flag, cleanlab's find_label_issues). Embeddings come through
the embedding cache of --home, so a home where the datasets were ingested embeds nothing again.

    .venv/bin/python scripts/evaluate_noise.py --home /tmp/dd-home --rates 0.05 0.1 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from embeddings.cache import CachedEmbedder, EmbeddingCache  # noqa: E402
from embeddings.embedder import build_embedder  # noqa: E402
from embeddings.neighbors import build_knn_graph  # noqa: E402
from service.analyses.context import build_context  # noqa: E402
from service.analyses.knn_consistency import KnnConsistency  # noqa: E402
from service.analyses.label_issues import LabelIssues  # noqa: E402
from service.datasets.readers import ColumnMap, read_records  # noqa: E402
from service.datasets.records import validate  # noqa: E402
from service.settings import Settings  # noqa: E402

log = logging.getLogger("evaluate_noise")
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@dataclass
class Data:
    """One dataset as lists, with its embeddings once embedded."""

    name: str
    texts: list[str]
    labels: list[str | None]
    splits: list[str | None]
    score: np.ndarray | None  # the source's own score per point, NaN where absent
    vectors: np.ndarray | None = None


def load_humanloop(path: Path) -> Data:
    """The Humanloop export with its `score` field."""
    texts, labels, splits, score = [], [], [], []
    for raw in read_records(path, "humanloop"):
        record, _ = validate(raw)
        if record is None:
            continue
        texts.append(record.text)
        labels.append(record.label)
        splits.append(record.split)
        value = record.source.get("score")
        score.append(float(value) if value is not None else np.nan)
    return Data("humanloop", texts, labels, splits, np.array(score))


def load_banking77(folder: Path) -> Data:
    """Banking77 train (training) and test (testing)."""
    texts, labels, splits = [], [], []
    for name, split in (("train.csv", "training"), ("test.csv", "testing")):
        for raw in read_records(folder / name, "csv", ColumnMap(label="category", fixed_split=split)):
            record, _ = validate(raw)
            if record is not None:
                texts.append(record.text)
                labels.append(record.label)
                splits.append(split)
    return Data("banking77", texts, labels, splits, None)


def embed(data: Data, home: Path) -> None:
    """Fill data.vectors through the embedding cache of `home`."""
    settings = Settings(home=home)
    cache = EmbeddingCache(settings.cache_path)
    try:
        data.vectors = CachedEmbedder(build_embedder(settings), cache).embed(data.texts, show_progress=True)
    finally:
        cache.close()


def flip(y: np.ndarray, train: np.ndarray, n_labels: int, rate: float, mode: str, centroids: np.ndarray,
         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noisy labels and the mask of flipped points: `rate` of the training points get another label."""
    noisy = y.copy()
    chosen = rng.choice(train, size=int(round(rate * len(train))), replace=False)
    sims = centroids @ centroids.T
    np.fill_diagonal(sims, -np.inf)
    nearest = np.argsort(-sims, axis=1)[:, :3]
    for i in chosen:
        if mode == "uniform":
            new = rng.integers(n_labels - 1)
            noisy[i] = new if new < y[i] else new + 1
        else:
            noisy[i] = rng.choice(nearest[y[i]])
    flipped = np.zeros(len(y), bool)
    flipped[chosen] = True
    return noisy, flipped


def oof_probs(x: np.ndarray, y: np.ndarray, train: np.ndarray, n_labels: int, seed: int,
              c: float) -> tuple[np.ndarray, np.ndarray]:
    """(out-of-fold probabilities of training points, NaN elsewhere; a full-fit model's probabilities)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    def fit(rows: np.ndarray) -> LogisticRegression:
        return LogisticRegression(C=c, max_iter=2000).fit(x[rows], y[rows])

    def full(model: LogisticRegression, rows: np.ndarray) -> np.ndarray:
        out = np.zeros((len(rows), n_labels))
        out[:, model.classes_] = model.predict_proba(x[rows])
        return out

    oof = np.full((len(y), n_labels), np.nan)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    for fit_idx, held_idx in folds.split(train, y[train]):
        oof[train[held_idx]] = full(fit(train[fit_idx]), train[held_idx])
    everyone = np.arange(len(y))
    return oof, full(fit(train), everyone)


def ranking_metrics(score: np.ndarray, flipped: np.ndarray) -> dict[str, float]:
    """precision@|F|, recall@2|F| and average precision of a ranking (higher score = more suspect)."""
    from sklearn.metrics import average_precision_score

    order = np.argsort(-score, kind="stable")
    f = int(flipped.sum())
    return {
        "p@F": float(flipped[order[:f]].mean()),
        "r@2F": float(flipped[order[: 2 * f]].sum() / f),
        "ap": float(average_precision_score(flipped, score)),
    }


def flag_metrics(flag: np.ndarray, flipped: np.ndarray) -> dict[str, float]:
    """Precision and recall of a flag against the flipped set."""
    tp = int((flag & flipped).sum())
    return {"precision": tp / max(1, int(flag.sum())), "recall": tp / max(1, int(flipped.sum())),
            "flagged": int(flag.sum())}


def evaluate(data: Data, rate: float, mode: str, seed: int, c: float, k: int,
             params: dict | None = None) -> dict[str, dict[str, float]]:
    """One noise injection: flip, out-of-fold probabilities, analyses, metrics of each ranking."""
    names = sorted({label for label in data.labels if label is not None})
    index = {name: i for i, name in enumerate(names)}
    y = np.array([index[label] if label is not None else -1 for label in data.labels])
    train = np.flatnonzero((y >= 0) & (np.array([s or "training" for s in data.splits]) == "training"))
    x = data.vectors
    centroids = np.stack([x[y == i].mean(axis=0) for i in range(len(names))])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    noisy, flipped = flip(y, train, len(names), rate, mode, centroids, rng)
    oof, probs = oof_probs(x, noisy, train, len(names), seed, c)
    graph = build_knn_graph(x, k=max(k, 15))
    ctx = build_context(list(range(len(y))), data.texts, x,
                        [names[v] if v >= 0 else None for v in noisy], data.splits,
                        probs=probs, model_labels=names, oof=oof, knn=graph, seed=seed)
    knn = KnnConsistency(k=k).run(ctx)
    ctx.results["knn_consistency"] = knn
    issues = LabelIssues(**(params or {})).run(ctx)
    truth = flipped[train]
    out = {
        "combined": ranking_metrics(issues.fields["mislabel_score"][train].astype(float), truth),
        "cleanlab": ranking_metrics(-issues.fields["label_quality"][train].astype(float), truth),
        "knn": ranking_metrics(1.0 - np.nan_to_num(knn.output.agreement[train], nan=1.0), truth),
        "flag:ours": flag_metrics(issues.flags["label_issue"][train], truth),
        "flag:cleanlab": flag_metrics(issues.output.issue[train], truth),
    }
    if data.score is not None:
        out["score"] = ranking_metrics(np.nan_to_num(data.score[train], nan=0.0), truth)
    return out


def mean_of(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Metrics averaged over runs (seeds)."""
    return {key: {m: float(np.mean([r[key][m] for r in runs])) for m in runs[0][key]} for key in runs[0]}


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation grid and print the Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/dd-eval-home"),
                        help="a DATA_DEBUGGER_HOME whose embedding cache is used (and filled)")
    parser.add_argument("--datasets", nargs="+", default=["humanloop", "banking77"])
    parser.add_argument("--rates", nargs="+", type=float, default=[0.05, 0.10])
    parser.add_argument("--modes", nargs="+", default=["uniform", "similar"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--C", type=float, default=1.0, help="logistic regression C")
    parser.add_argument("-k", type=int, default=10, help="neighbours of the kNN vote")
    parser.add_argument("--model-weight", type=float, default=None)
    parser.add_argument("--prior-strength", type=float, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    params = {key: value for key, value in (("model_weight", args.model_weight),
                                            ("prior_strength", args.prior_strength)) if value is not None}
    loaders = {"humanloop": lambda: load_humanloop(SHARED / "humanloop" / "chatbot_intent_classifier_data.json"),
               "banking77": lambda: load_banking77(SHARED / "banking77")}
    rows = []
    for name in args.datasets:
        data = loaders[name]()
        embed(data, args.home)
        for mode in args.modes:
            for rate in args.rates:
                started = time.perf_counter()
                runs = [evaluate(data, rate, mode, seed, args.C, args.k, params) for seed in args.seeds]
                rows.append((name, mode, rate, mean_of(runs)))
                print(f"{name} {mode} {rate:.0%}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print("| dataset | noise | rate | ranking | P@\\|F\\| | R@2\\|F\\| | AP |")
    print("|---|---|---|---|---|---|---|")
    for name, mode, rate, result in rows:
        for key in ("combined", "cleanlab", "knn", "score"):
            if key in result:
                m = result[key]
                print(f"| {name} | {mode} | {rate:.0%} | {key} | {m['p@F']:.3f} | {m['r@2F']:.3f} | {m['ap']:.3f} |")
    print()
    print("| dataset | noise | rate | flag | precision | recall | flagged |")
    print("|---|---|---|---|---|---|---|")
    for name, mode, rate, result in rows:
        for key in ("flag:ours", "flag:cleanlab"):
            m = result[key]
            print(f"| {name} | {mode} | {rate:.0%} | {key[5:]} | {m['precision']:.3f} | {m['recall']:.3f} "
                  f"| {m['flagged']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
