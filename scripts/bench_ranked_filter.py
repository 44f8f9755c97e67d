"""Per-request cost of filtering a ranked view (the issues list) at N rows: the row-by-row filter the route ran
before, against RankedRows (service/api/ranked.py), on the same synthetic columns, in one process. Then the
cost of building the ranking, paid on the first page view after an analysis and after every review: Python's
sorted() with a key and per-row dict codes (before) against rank_rows + build_ranked (numpy, pandas).

    .venv/bin/python scripts/bench_ranked_filter.py --n 1000000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas  # noqa: E402, F401 - loaded in the service already; its import is not the build's cost

from service.api.ranked import build_ranked, numbers_of, rank_rows  # noqa: E402


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
    ids = list(range(1, n + 1))
    keywords, numbers = ("label", "triage", "split", "review_status"), ("mislabel_score",)

    started = time.perf_counter()  # before: the route's sorted() and build_ranked's per-row dict codes
    rows = sorted(range(n), key=lambda i: (-scores[i], str(ids[i])))
    for name in keywords:
        mapping: dict = {}
        np.fromiter((mapping.setdefault(cols[name][i], len(mapping)) for i in rows), dtype=np.int32, count=n)
    for name in numbers:
        np.fromiter((cols[name][i] for i in rows), dtype=np.float64, count=n)
    built_before = time.perf_counter() - started

    started = time.perf_counter()  # after: what the route runs now (the id order is kept per snapshot)
    text = np.array([str(i) for i in ids])
    id_rank = np.empty(n, dtype=np.int64)
    id_rank[np.argsort(text, kind="stable")] = np.arange(n)
    id_order_s = time.perf_counter() - started
    started = time.perf_counter()
    score = numbers_of(scores)
    ranked = build_ranked(rank_rows(~np.isnan(score), score, id_rank), cols, keywords, numbers)
    built = time.perf_counter() - started
    assert ranked.rows.tolist() == rows

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
    print(f"ranking built (first page view after an analysis or a review): before {built_before:.2f} s, after "
          f"{built:.2f} s (+ {id_order_s:.2f} s once per snapshot for the ids' text order); load average "
          f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
