"""Per-request cost of filtering a ranked view (the issues list) at N rows: the row-by-row filter the route ran
before, against RankedRows (service/api/ranked.py), on the same synthetic columns, in one process.

    .venv/bin/python scripts/bench_ranked_filter.py --n 1000000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.api.ranked import build_ranked  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    n = args.n
    rng = random.Random(0)
    cols = {"label": [f"intent_{rng.randrange(92)}" for _ in range(n)],
            "triage": [rng.choice(["model_error", "label_error", "ambiguous", "agree"]) for _ in range(n)],
            "split": [rng.choice(["training", "validation", "testing"]) for _ in range(n)],
            "review_status": [None] * n, "mislabel_score": [rng.random() for _ in range(n)]}
    scores = cols["mislabel_score"]
    rows = sorted(range(n), key=lambda i: -scores[i])
    started = time.perf_counter()
    ranked = build_ranked(rows, cols, ("label", "triage", "split", "review_status"), ("mislabel_score",))
    built = time.perf_counter() - started

    def before(label: str, split: str) -> list[int]:
        wanted_label, wanted_split = {label}, {split}
        return [i for i in rows if scores[i] >= 0.0 and cols["review_status"][i] is None
                and cols["label"][i] in wanted_label and cols["split"][i] in wanted_split]

    def after(label: str, split: str) -> list[int]:
        return ranked.filter(any_of={"label": [label], "split": [split]}, none=("review_status",),
                             at_least={"mislabel_score": 0.0})

    for name, fn in (("before (row by row)", before), ("after (RankedRows)", after)):
        times = []
        for k in range(args.requests):
            started = time.perf_counter()
            fn(f"intent_{k % 92}", "training")
            times.append(time.perf_counter() - started)
        times.sort()
        print(f"{name:<20} median {1000 * times[len(times) // 2]:8.1f} ms, max {1000 * times[-1]:8.1f} ms "
              f"per page view (label + split filter, {n:,} ranked rows)")
    assert before("intent_3", "testing") == after("intent_3", "testing")
    print(f"RankedRows built once per snapshot state in {built:.2f} s (the first page view after an analysis "
          f"also builds the per-label index); load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
