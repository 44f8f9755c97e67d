"""Benchmark of the analysis stages at 10k / 100k / 1M points, next to cleanlab's Datalab.find_issues.

Synthetic data, made realistic from real embeddings: the 13,083 Banking77 texts (train + test) embedded with
all-MiniLM-L6-v2 (through the embedding cache of --home). Each synthetic point starts from a random real
point e_i, is mixed with a partner e_j (same intent with probability 0.8, any intent otherwise: boundary
points) and perturbed: v = normalise(a e_i + (1 - a) e_j + g), a ~ U(0.55, 1), g ~ N(0, (0.3^2 / d) I), so
it keeps the real data's intent clusters, density and neighbourhood structure (random Gaussians would be a
worst case for approximate kNN). Its label is e_i's intent, 5% flipped uniformly; its text is e_i's text
plus a number (unique, so exact-text duplicates are only the planted ones); 0.5% are planted exact copies of
another point (some across splits, some with another label); 80/10/10 training/validation/testing, and 10%
unlabelled. Probabilities come from a nearest-centroid model over the 77 real intent centroids (softmax of
20 x cosine), standing in for the out-of-fold probabilities of the trained model.

Ours: the shared faiss kNN graph, then every analysis (kNN consistency, cleanlab label issues + combined
score, outliers, triage, confident disagreements, duplicates + leakage, UMAP + HDBSCAN clusters fitted on
a 20k sample, suggestions, per-class), then the payload dicts the store write would send (the store write
itself is not timed). UMAP's numba compile is paid once, in a warm-up, and printed apart: in the service it
is paid once per worker process. Datalab: find_issues(features, pred_probs) on the labelled points, once
computing its own kNN (skipped above --datalab-own-max points) and once given our graph. Peak memory is the
process's max RSS (ru_maxrss) after each part.

    .venv/bin/python scripts/bench_analyses.py --home /tmp/dd-home --sizes 10000 100000
    .venv/bin/python scripts/bench_analyses.py --home /tmp/dd-home --sizes 1000000 --datalab given
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from embeddings.cache import CachedEmbedder, EmbeddingCache  # noqa: E402
from embeddings.embedder import build_embedder  # noqa: E402
from embeddings.neighbors import build_knn_graph  # noqa: E402
from service.analyses.context import build_context  # noqa: E402
from service.analyses.projection import warm_up  # noqa: E402
from service.analyses.registry import run_analyses  # noqa: E402
from service.analyses.runner import iter_payload_updates  # noqa: E402
from service.datasets.readers import ColumnMap, read_records  # noqa: E402
from service.datasets.records import validate  # noqa: E402
from service.settings import Settings  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_banking77(home: Path) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
    """(vectors, texts, intent codes, intent names) of Banking77 train + test, embedded through the cache."""
    texts, labels = [], []
    for name in ("train.csv", "test.csv"):
        for raw in read_records(SHARED / "banking77" / name, "csv", ColumnMap(label="category")):
            record, _ = validate(raw)
            if record is not None:
                texts.append(record.text)
                labels.append(record.label)
    settings = Settings(home=home)
    cache = EmbeddingCache(settings.cache_path)
    try:
        vectors = CachedEmbedder(build_embedder(settings), cache).embed(texts, show_progress=True)
    finally:
        cache.close()
    names = sorted(set(labels))
    codes = np.array([names.index(label) for label in labels])
    return np.asarray(vectors, np.float32), texts, codes, names


def synthesize(n: int, base: np.ndarray, texts: list[str], codes: np.ndarray, n_labels: int, seed: int = 0):
    """n synthetic points from the real ones (see the module docstring for how)."""
    rng = np.random.default_rng(seed)
    d = base.shape[1]
    src = rng.integers(0, len(base), n)
    by_class = [np.flatnonzero(codes == c) for c in range(n_labels)]
    same = rng.random(n) < 0.8
    partner = np.where(same, 0, rng.integers(0, len(base), n))
    for c in range(n_labels):  # a same-intent partner for the points drawn from class c
        rows = np.flatnonzero(same & (codes[src] == c))
        partner[rows] = rng.choice(by_class[c], size=len(rows))
    a = rng.uniform(0.55, 1.0, n).astype(np.float32)[:, None]
    x = np.empty((n, d), np.float32)
    for s in range(0, n, 100_000):  # bounded temporaries at 1M
        e = slice(s, min(s + 100_000, n))
        v = a[e] * base[src[e]] + (1 - a[e]) * base[partner[e]]
        v += rng.standard_normal((v.shape[0], d)).astype(np.float32) * (0.3 / np.sqrt(d))
        x[e] = v / np.linalg.norm(v, axis=1, keepdims=True)
    y = codes[src].copy()
    flip = rng.random(n) < 0.05
    y[flip] = (y[flip] + rng.integers(1, n_labels, flip.sum())) % n_labels
    split = rng.choice(np.array(["training", "validation", "testing"], dtype=object), size=n, p=[0.8, 0.1, 0.1])
    labelled = rng.random(n) >= 0.1
    point_texts = [f"{texts[i]} {k}" for k, i in enumerate(src)]
    # Planted exact copies: 0.5% of points repeat another point (text and vector), a third with another label.
    copies = rng.choice(n, size=(n // 200, 2), replace=False)
    for k, (dst, orig) in enumerate(copies):
        x[dst], point_texts[dst], labelled[dst] = x[orig], point_texts[orig], labelled[orig]
        y[dst] = y[orig] if k % 3 else (y[orig] + 1) % n_labels
    return x, point_texts, y, labelled, split, flip


def centroid_probs(x: np.ndarray, base: np.ndarray, codes: np.ndarray, n_labels: int, temp: float = 20.0):
    """Nearest-centroid probabilities: softmax of temp x cosine to the real intent centroids."""
    centroids = np.stack([base[codes == c].mean(axis=0) for c in range(n_labels)])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    out = np.empty((len(x), n_labels))
    for s in range(0, len(x), 100_000):
        logits = temp * (x[s : s + 100_000] @ centroids.T).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        out[s : s + 100_000] = p / p.sum(axis=1, keepdims=True)
    return out


def run_datalab(x: np.ndarray, y: np.ndarray, probs: np.ndarray, knn_graph=None) -> tuple[float, dict]:
    """Seconds of Datalab.find_issues and its issue counts."""
    from cleanlab import Datalab

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lab = Datalab(data={"label": y}, label_name="label", verbosity=0)
        kwargs = {"knn_graph": knn_graph} if knn_graph is not None else {}
        lab.find_issues(features=x, pred_probs=probs, **kwargs)
    seconds = time.perf_counter() - started
    summary = lab.get_issue_summary()
    return seconds, {row["issue_type"]: int(row["num_issues"]) for _, row in summary.iterrows()}


def bench(n: int, base, texts, codes, names, args) -> dict:
    """Time every stage of ours, then Datalab, on n synthetic points; print and return the figures."""
    out: dict = {"n": n, "stages": {}}
    stages = out["stages"]
    started = time.perf_counter()
    x, point_texts, y, labelled, split, flipped = synthesize(n, base, texts, codes, len(names), args.seed)
    probs = centroid_probs(x, base, codes, len(names))
    out["make_data_s"] = round(time.perf_counter() - started, 1)
    labels = [names[c] if ok else None for c, ok in zip(y.tolist(), labelled.tolist(), strict=True)]
    oof = np.where(labelled[:, None], probs, np.nan)
    print(f"\n== {n:,} points ({out['make_data_s']} s to make; model accuracy on labelled "
          f"{(probs.argmax(1) == y)[labelled].mean():.3f}, {int(flipped[labelled].sum()):,} flipped labels)")

    t0 = time.perf_counter()
    graph = build_knn_graph(x, k=15, kind=args.knn, exact_threshold=args.exact_threshold, seed=args.seed)
    stages["knn graph"] = time.perf_counter() - t0
    out["knn"] = {"kind": graph.kind, "recall": graph.recall, "recall_sample": graph.recall_sample}
    ctx = build_context(list(range(n)), point_texts, x, labels, list(split), probs=probs, model_labels=names,
                        oof=oof, knn=graph, seed=args.seed)
    params = {"clusters": {"sample_size": args.sample_size}}
    _, seconds, skipped = run_analyses(ctx, None, params)
    assert not skipped, skipped
    stages.update(seconds)
    t0 = time.perf_counter()
    for _ in iter_payload_updates(ctx, ctx.results, [{}] * n, "bench"):
        pass
    stages["payload dicts"] = time.perf_counter() - t0
    out["ours_total_s"] = sum(stages.values())
    out["ours_peak_mb"] = peak_mb()
    projection = ctx.results["clusters"].report["projection"]
    out["clusters"] = len(ctx.results["clusters"].report["clusters"])
    flags = ctx.results["label_issues"].flags["label_issue"]
    out["label_issue_precision"] = float(flipped[flags].mean()) if flags.any() else None
    out["label_issue_recall"] = float(flags[flipped & labelled].mean())
    for key, value in stages.items():
        extra = ""
        if key == "knn graph":
            extra = f"  ({graph.kind}" + (f", recall@15 {graph.recall:.3f} on {graph.recall_sample} queries)"
                                          if graph.recall is not None else ")")
        if key == "clusters":
            extra = "  (" + ", ".join(f"{k} {v:.1f}" for k, v in projection["seconds"].items()) + \
                    f"; fitted on {projection['fitted_on']:,})"
        print(f"  {key:<24} {value:8.1f} s{extra}")
    print(f"  {'ours, total':<24} {out['ours_total_s']:8.1f} s   peak RSS {out['ours_peak_mb']:,.0f} MB; "
          f"{out['clusters']} clusters; label_issue flag precision {out['label_issue_precision']:.3f}, "
          f"recall {out['label_issue_recall']:.3f} against the flipped labels")

    rows = np.flatnonzero(labelled)
    xs, ys, ps = x[rows], y[rows], probs[rows]
    csr = None
    if args.datalab in ("given", "both"):
        sub = build_knn_graph(xs, k=10, kind=args.knn, exact_threshold=args.exact_threshold, seed=args.seed,
                              recall_sample=0)
        csr = sub.to_csr()
        seconds, issues = run_datalab(xs, ys, ps, csr)
        out["datalab_given_knn_s"] = seconds
        print(f"  {'Datalab, given our kNN':<24} {seconds:8.1f} s   (+ {sub.seconds:.1f} s for that graph) {issues}")
        del sub
    if args.datalab in ("own", "both"):
        if n > args.datalab_own_max:
            print(f"  {'Datalab, own kNN':<24}  skipped above {args.datalab_own_max:,} points "
                  "(brute-force kNN grows with n^2)")
        else:
            gc.collect()
            seconds, issues = run_datalab(xs, ys, ps)
            out["datalab_own_knn_s"] = seconds
            print(f"  {'Datalab, own kNN':<24} {seconds:8.1f} s   {issues}")
            print(f"  ours / Datalab(own kNN) = {out['ours_total_s'] / seconds:.2f}")
    out["peak_mb"] = peak_mb()
    print(f"  peak RSS of the process so far: {out['peak_mb']:,.0f} MB")
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, load the base embeddings, warm UMAP up, benchmark each size."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/dd-bench-home"),
                        help="a DATA_DEBUGGER_HOME whose embedding cache holds (or receives) Banking77")
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000])
    parser.add_argument("--knn", default="auto", choices=["auto", "exact", "ivf", "hnsw"])
    parser.add_argument("--exact-threshold", type=int, default=20_000)
    parser.add_argument("--sample-size", type=int, default=20_000, help="UMAP/HDBSCAN fit sample")
    parser.add_argument("--datalab", default="both", choices=["both", "own", "given", "none"])
    parser.add_argument("--datalab-own-max", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    base, texts, codes, names = load_banking77(args.home)
    print(f"base: {len(base):,} Banking77 embeddings, {len(names)} intents")
    seconds = warm_up()
    print(f"UMAP numba compile (warm-up, once per process): {seconds:.1f} s")
    results = [bench(n, base, texts, codes, names, args) for n in args.sizes]
    if args.json:
        args.json.write_text(json.dumps({"umap_warm_up_s": seconds, "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
