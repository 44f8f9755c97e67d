"""Embedding throughput (texts/s) of each embedding path on real utterances: torch fp32, ONNX Runtime fp32,
torch bf16 (where the CPU has native bf16; elsewhere it is several times slower and never chosen), the
cache; and one text at a time (a search query on an idle service).

    .venv/bin/python scripts/bench_embeddings.py [--n 15000] [--single 300]

Texts: the Humanloop export and Banking77 (train + test) beside the repo, deduplicated.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from embeddings.cache import CachedEmbedder, EmbeddingCache  # noqa: E402
from embeddings.embedder import SentenceTransformerEmbedder, cpu_supports_bf16  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def real_texts(n: int) -> list[str]:
    texts = [json.loads(r["data"])["text"] for r in json.loads((DATA / "humanloop" /
             "chatbot_intent_classifier_data.json").read_text())]
    for name in ("train.csv", "test.csv"):
        with (DATA / "banking77" / name).open() as fh:
            texts += [row["text"] for row in csv.DictReader(fh)]
    return list(dict.fromkeys(texts))[:n]


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def compare(a: np.ndarray, b: np.ndarray, label: str) -> None:
    cos = np.sum(a * b, axis=1)
    sample = np.random.default_rng(0).choice(len(a), size=min(1000, len(a)), replace=False)
    top_a = np.argsort(-(a[sample] @ a.T), axis=1)[:, 1:11]
    top_b = np.argsort(-(b[sample] @ b.T), axis=1)[:, 1:11]
    overlap = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(top_a, top_b, strict=True)])
    print(f"{label}: cosine min {cos.min():.5f} mean {cos.mean():.5f}; top-10 neighbours kept {overlap:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=15_000)
    parser.add_argument("--single", type=int, default=300, help="texts embedded one at a time")
    args = parser.parse_args()
    texts = real_texts(args.n)
    print(f"{len(texts)} unique real utterances; bf16 native on this CPU: {cpu_supports_bf16()}")
    paths = [("fp32", "torch"), ("fp32", "onnx")] + ([("bf16", "torch")] if cpu_supports_bf16() else [])
    results = {}
    with tempfile.TemporaryDirectory() as onnx_dir:
        for precision, backend in paths:
            embedder = SentenceTransformerEmbedder(precision=precision, backend=backend, onnx_dir=Path(onnx_dir))
            embedder.embed(texts[:64])  # load (and export) and warm up outside the timing
            seconds, vectors = timed(lambda e=embedder: e.embed(texts))
            results[precision, backend] = vectors
            single, _ = timed(lambda e=embedder: [e.embed([t]) for t in texts[: args.single]])
            print(f"{precision} {backend:>5}: {len(texts) / seconds:8.0f} texts/s ({seconds:.1f} s); one at a time "
                  f"{1000 * single / args.single:.1f} ms a text")
    compare(results["fp32", "torch"], results["fp32", "onnx"], "onnx vs torch fp32")
    if ("bf16", "torch") in results:
        compare(results["fp32", "torch"], results["bf16", "torch"], "bf16 vs fp32")
    with tempfile.TemporaryDirectory() as tmp:
        cached = CachedEmbedder(SentenceTransformerEmbedder(precision="fp32", backend="torch"),
                                EmbeddingCache(Path(tmp) / "c.sqlite"))
        cached.embed(texts)
        seconds, _ = timed(lambda: cached.embed(texts))
        print(f"cache: {len(texts) / seconds:8.0f} texts/s when every text was seen before ({seconds:.2f} s)")


if __name__ == "__main__":
    main()
