"""What writing payloads costs in the embedded store, per point: predict's payload (with its nested `n_best`)
and an analysis' payload (with `reasons` and `flags` lists), each written with the nested fields held as
values (the old way) and as JSON text (Store.create's json_fields), into a collection with the service's
payload indexes.

    .venv/bin/python scripts/bench_payload_writes.py --n 20000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()

    import numpy as np
    import qdrant_edge as qe

    from embeddings.store.edge import EdgeCollection, _edge_config
    from service.analyses.registry import indexed_fields, json_fields

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.n, args.dim)).astype(np.float32)
    labels = [f"intent_{i}" for i in range(77)]

    def prediction(i: int) -> dict:
        probs = sorted(rng.random(5), reverse=True)
        n_best = [{"label": labels[(i + j) % 77], "probability": float(p)} for j, p in enumerate(probs)]
        return {"model_version": "v1", "prediction": n_best[0]["label"], "confidence": n_best[0]["probability"],
                "n_best": n_best, "entropy": float(rng.random()), "prediction_status": "correct"}

    def analysis(i: int) -> dict:
        return {"knn_agreement": 1.0, "knn_majority_label": labels[i % 77], "knn_majority_share": float(rng.random()),
                "label_quality": float(rng.random()), "mislabel_score": float(rng.random()),
                "suggested_label": labels[i % 77], "outlier_score": float(rng.random()), "triage": "agree",
                "duplicate_group": i // 50, "cluster": i % 120, "x": float(rng.random()), "y": float(rng.random()),
                "flags": ["duplicate", "leak"], "reasons": ["3 of 15 neighbours share its label"],
                "analysis_run": "20261201T101051-43b954"}

    writes = {"predict": [prediction(i) for i in range(args.n)], "analyze": [analysis(i) for i in range(args.n)]}
    print(f"{args.n:,} points, {args.dim}-d, payload indexes {sorted(indexed_fields())}")
    for as_text in (False, True):
        folder = Path(tempfile.mkdtemp(prefix="dd-payload-writes-"))
        try:
            nested = frozenset(json_fields()) if as_text else frozenset()
            collection = EdgeCollection("bench", qe.EdgeShard.create(str(folder / "shard"), _edge_config(args.dim)),
                                        args.dim, nested)
            collection.ensure_indexes(indexed_fields())
            ids = list(range(args.n))
            collection.upsert(ids, vectors, [{"text": f"text {i}", "label": labels[i % 77], "split": "training",
                                              "source": {"id": str(i)}} for i in ids])
            figures = []
            for step, payloads in writes.items():
                started = time.perf_counter()
                for start in range(0, args.n, 1000):
                    collection.set_payloads(dict(zip(ids[start:start + 1000], payloads[start:start + 1000],
                                                     strict=True)))
                figures.append(f"{step} {(time.perf_counter() - started) / args.n * 1e6:6.1f} µs/point")
            print(f"nested fields as {'JSON text' if as_text else 'values   '}: {'; '.join(figures)}", flush=True)
            collection.close()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
