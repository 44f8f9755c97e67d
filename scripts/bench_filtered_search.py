"""Filtered and unfiltered search on one embedded store: latency, and recall@10 against Qdrant's exact search.

Recall counts a hit when its score reaches the exact 10th score (minus 1e-4), so ties between near-duplicate
texts count as found. The filters: none, one label, one cluster, triage = label_error, flag = label_issue,
split = validation, mislabel_score >= 0.9, with the beams the service uses (SEARCH_EF unfiltered,
FILTERED_SEARCH_EF filtered). Searches go to the shard directly (the graph walk Qdrant chooses), or with
--service through EdgeCollection.search (exact for range, word and selective keyword filters, a walk otherwise).

    .venv/bin/python scripts/bench_filtered_search.py --shard /tmp/scale-1m/qdrant/data.scale/shard
    .venv/bin/python scripts/bench_filtered_search.py --shard /tmp/kept/shard --full-scan-threshold 120000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shard", type=Path, required=True, help="a collection's shard folder (…/qdrant/<name>/shard)")
    parser.add_argument("--payload-m", type=int, default=None, help="as the store was built with (default: Qdrant's)")
    parser.add_argument("--full-scan-threshold", type=int, default=10_000, help="KB of vectors, as built with")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--acorn", action="store_true",
                        help="filtered walks with ACORN (neighbours of neighbours when the filter is selective)")
    parser.add_argument("--ef", type=int, default=None, help="beam for filtered walks (default: the service's)")
    parser.add_argument("--service", action="store_true",
                        help="search as the service does (EdgeCollection.search: exact for selective filters, "
                             "a graph walk otherwise) instead of the shard's own choice")
    args = parser.parse_args()

    import numpy as np
    import qdrant_edge as qe

    from embeddings.store import OVERSAMPLING, PointFilter
    from embeddings.store.base import search_ef
    from embeddings.store.edge import EdgeCollection, _edge_config, _edge_filter

    hnsw = None
    if args.payload_m is not None or args.full_scan_threshold != 10_000:
        hnsw = qe.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=args.full_scan_threshold,
                                  payload_m=args.payload_m)
    shard = qe.EdgeShard.load(str(args.shard), _edge_config(args.dim, hnsw))
    collection = EdgeCollection("bench", shard, args.dim)
    total = collection.count()
    rng = random.Random(0)
    found = collection.retrieve([rng.randrange(total) for _ in range(args.queries * 2)], with_vectors=True)
    queries = [p.vector for p in found][: args.queries]
    labels = sorted(collection.facet("label"))
    clusters = sorted(collection.facet("cluster"))
    filters = {
        "none": None,
        "one label": PointFilter(match={"label": labels[len(labels) // 2]}),
        "one cluster": PointFilter(match={"cluster": clusters[len(clusters) // 2]}) if clusters else None,
        "triage = label_error": PointFilter(match={"triage": "label_error"}),
        "flag = label_issue": PointFilter(match={"flags": "label_issue"}),
        "split = validation": PointFilter(match={"split": "validation"}),
        "mislabel_score >= 0.9": PointFilter(ranges={"mislabel_score": (0.9, None)}),
    }

    def request(vector, f, exact: bool):
        return qe.QueryRequest(
            limit=10, query=qe.Query.Nearest(np.asarray(vector, dtype=np.float32).tolist()), filter=_edge_filter(f),
            with_payload=True, params=qe.SearchParams(
                hnsw_ef=(args.ef or search_ef(f, 10)) if f is not None else search_ef(f, 10), exact=exact,
                acorn=qe.AcornSearchParams(enable=True) if args.acorn and f is not None else None,
                quantization=qe.QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING)))

    print(f"{args.shard}: {total:,} points, {len(queries)} queries")
    for name, f in filters.items():
        if name != "none" and f is None:
            continue
        selected = collection.count(f)
        latencies, recalls = [], []
        for vector in queries:
            started = time.perf_counter()
            hits = (collection.search(vector, 10, f) if args.service
                    else shard.query(request(vector, f, exact=False)))
            latencies.append(time.perf_counter() - started)
            truth = shard.query(request(vector, f, exact=True))
            if truth:
                floor = min(h.score for h in truth) - 1e-4
                recalls.append(sum(h.score >= floor for h in hits) / len(truth))
        ms = np.array(latencies) * 1000
        recall = f"{np.mean(recalls):.3f}" if recalls else "-"
        print(f"{name:<24} {selected:>9,} points  p50 {np.percentile(ms, 50):6.2f} ms  p99 "
              f"{np.percentile(ms, 99):6.2f} ms  recall@10 {recall}", flush=True)
    collection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
