"""What the vector index build costs with the payload indexes the service declares: N analysed points copied
from a dataset into fresh embedded stores, one per variant, and `optimize()` timed in each.

Variants: default (every declared payload index), no_links (the same, none with payload-aware graph links),
payload_m0 (Qdrant's payload_m set to 0), keywords_only, numbers_only,
no_text, no_indexes, each (one store per declared field, with that field's index alone). The nested fields are
written as JSON text, as the service does (--native-nested: as values, the old way).

    .venv/bin/python scripts/bench_index_build.py --home /tmp/scale-1m --dataset scale --n 100000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VARIANTS = ("default", "no_links", "payload_m0", "keywords_only", "numbers_only", "no_text", "no_indexes", "each")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="DATA_DEBUGGER_HOME holding the dataset")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--payload-m", type=int, default=None,
                        help="Qdrant's payload_m for every variant (payload_m0 forces 0); default: Qdrant's")
    parser.add_argument("--full-scan-threshold", type=int, default=10_000,
                        help="Qdrant's full_scan_threshold in KB of vectors (10,000 = ~6,700 points of 384 floats)")
    parser.add_argument("--no-links", action="store_true",
                        help="every variant's keyword and integer indexes without payload-aware graph links")
    parser.add_argument("--unlinked", nargs="+", default=[], metavar="FIELD",
                        help="these keyword/integer fields' indexes without payload-aware graph links")
    parser.add_argument("--native-nested", action="store_true",
                        help="store nested fields (n_best, source, reasons) as values, not JSON text (the old way)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the last variant's store in this folder (for scripts/bench_filtered_search.py)")
    args = parser.parse_args()

    import numpy as np
    import qdrant_edge as qe

    from embeddings.store import iter_points
    from embeddings.store.edge import EdgeCollection, _edge_config
    from service.analyses.registry import indexed_fields, json_fields
    from service.fields import BASE_INDEXED
    from service.settings import Settings
    from service.workspace import Workspace

    with Workspace(Settings(home=args.home)) as ws:
        source = ws.collection(args.dataset)
        ids, vectors, payloads = [], [], []
        for page in iter_points(source, with_vectors=True, batch=5000):
            for p in page:
                ids.append(p.id)
                vectors.append(p.vector)
                payloads.append(p.payload)
            if len(ids) >= args.n:
                break
    matrix = np.vstack(vectors)
    dim = matrix.shape[1]
    declared = {**BASE_INDEXED, **indexed_fields()}
    chosen = {
        "default": declared, "no_links": declared, "payload_m0": declared, "no_indexes": {},
        "keywords_only": {k: v for k, v in declared.items() if v == "keyword"},
        "numbers_only": {k: v for k, v in declared.items() if v in ("float", "integer")},
        "no_text": {k: v for k, v in declared.items() if v != "text"},
    }
    print(f"{len(ids):,} points of {args.dataset}; declared payload indexes: {declared}")
    runs = [v for v in args.variants if v != "each"]
    if "each" in args.variants:
        chosen.update({field: {field: kind} for field, kind in declared.items()})
        runs += list(declared)
    for variant in runs:
        payload_m = 0 if variant == "payload_m0" else args.payload_m
        config = _edge_config(dim)
        if payload_m is not None or args.full_scan_threshold != 10_000:
            config = _edge_config(dim, qe.HnswIndexConfig(m=16, ef_construct=100, payload_m=payload_m,
                                                          full_scan_threshold=args.full_scan_threshold))
        keep = args.keep is not None and variant == runs[-1]
        folder = args.keep if keep else Path(tempfile.mkdtemp(prefix=f"dd-index-{variant}-"))
        assert folder is not None
        if keep and folder.exists():
            shutil.rmtree(folder)
        try:
            as_text = frozenset() if args.native_nested else frozenset(json_fields())
            collection = EdgeCollection(variant, qe.EdgeShard.create(str(folder / "shard"), config), dim, as_text)
            linked = not args.no_links and variant != "no_links"
            collection.ensure_indexes({k: v for k, v in chosen[variant].items() if k not in args.unlinked},
                                      keyword_links=linked)
            collection.ensure_indexes({k: v for k, v in chosen[variant].items() if k in args.unlinked},
                                      keyword_links=False)
            started = time.perf_counter()
            for start in range(0, len(ids), 2000):
                collection.upsert(ids[start:start + 2000], matrix[start:start + 2000], payloads[start:start + 2000])
            collection.flush()
            written = time.perf_counter() - started
            started = time.perf_counter()
            collection.optimize()
            seconds = time.perf_counter() - started
            info = collection._shard.info()
            print(f"{variant:<14} {len(chosen[variant]):>2} payload indexes: index built in {seconds:6.1f} s "
                  f"(indexed vectors {info.indexed_vectors_count:,}; points written in {written:.1f} s)", flush=True)
            collection.close()
        finally:
            if not keep:
                shutil.rmtree(folder, ignore_errors=True)
    print(f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
