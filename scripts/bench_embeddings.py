"""Embedding throughput (texts/s) of each embedding path on real utterances: fp32, bf16, and the cache.

    .venv/bin/python scripts/bench_embeddings.py [--n 15000]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=15_000)
    args = parser.parse_args()
    texts = real_texts(args.n)
    print(f"{len(texts)} unique real utterances; bf16 native on this CPU: {cpu_supports_bf16()}")
    results = {}
    for precision in ("fp32", "bf16"):
        embedder = SentenceTransformerEmbedder(precision=precision)
        embedder.embed(texts[:64])  # load and warm up outside the timing
        seconds, vectors = timed(lambda e=embedder: e.embed(texts))
        results[precision] = vectors
        print(f"{precision:>5}: {len(texts) / seconds:8.0f} texts/s ({seconds:.1f} s)")
    a, b = results["fp32"], results["bf16"]
    cos = np.sum(a * b, axis=1)
    sample = np.random.default_rng(0).choice(len(texts), size=min(1000, len(texts)), replace=False)
    top_a = np.argsort(-(a[sample] @ a.T), axis=1)[:, 1:11]
    top_b = np.argsort(-(b[sample] @ b.T), axis=1)[:, 1:11]
    overlap = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(top_a, top_b, strict=True)])
    print(f"bf16 vs fp32: cosine min {cos.min():.5f} mean {cos.mean():.5f}; top-10 neighbours kept {overlap:.1%}")
    with tempfile.TemporaryDirectory() as tmp:
        cached = CachedEmbedder(SentenceTransformerEmbedder(), EmbeddingCache(Path(tmp) / "c.sqlite"))
        cached.embed(texts)
        seconds, _ = timed(lambda: cached.embed(texts))
        print(f"cache: {len(texts) / seconds:8.0f} texts/s when every text was seen before ({seconds:.2f} s)")


if __name__ == "__main__":
    main()
