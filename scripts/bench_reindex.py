"""Search latency of a stored dataset as it stands (e.g. after predict + analyze rewrote every payload), then
after rebuilding its vector index: the embedded store's search time alone, 30 random points' vectors, k=11.

    .venv/bin/python scripts/bench_reindex.py --home /tmp/scale-100k --dataset scale
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.settings import Settings  # noqa: E402
from service.workspace import Workspace  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--dataset", default="scale")
    args = parser.parse_args()
    with Workspace(Settings(home=args.home)) as ws:
        collection = ws.collection(args.dataset)
        rng = random.Random(0)
        n = collection.count()
        vectors = [p.vector for p in collection.retrieve([rng.randrange(n) for _ in range(30)], with_vectors=True)]

        def bench(tag: str) -> None:
            collection.search(vectors[0], k=11)
            times = []
            for v in vectors:
                started = time.perf_counter()
                collection.search(v, k=11)
                times.append(time.perf_counter() - started)
            times.sort()
            print(f"{tag}: search median {1000 * times[len(times) // 2]:.1f} ms, max {1000 * times[-1]:.1f} ms")

        bench(f"{n:,} points as stored")
        started = time.perf_counter()
        collection.optimize()
        print(f"optimize() {time.perf_counter() - started:.1f} s")
        bench("after optimize()")
    print(f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
