"""RankedRows keeps exactly the rows the per-row filters of the ranked views kept, in rank order."""

from __future__ import annotations

import random

from service.api.ranked import build_ranked


def _columns(n: int, seed: int = 0) -> dict[str, list]:
    rng = random.Random(seed)
    return {
        "label": [rng.choice(["card", "bill", "rates", None]) for _ in range(n)],
        "split": [rng.choice(["training", "testing"]) for _ in range(n)],
        "review_status": [rng.choice([None, None, "relabelled"]) for _ in range(n)],
        "score": [rng.choice([None, rng.random()]) for _ in range(n)],
    }


def test_filters_match_the_row_by_row_filter():
    columns = _columns(600)
    rows = sorted(range(600), key=lambda i: -(columns["score"][i] or 0.0))
    ranked = build_ranked(rows, columns, ("label", "split", "review_status"), ("score",), fill=0.0)
    for labels in (None, [], ["card"], ["card", "bill"], ["nowhere"], ["rates", "nowhere"]):
        for splits in (None, ["testing"], ["training", "testing"]):
            for minimum in (0.0, 0.5):
                for reviewed in (True, False):
                    got = ranked.filter(any_of={"label": labels, "split": splits},
                                        none=() if reviewed else ("review_status",), at_least={"score": minimum})
                    expected = [i for i in rows if (not labels or columns["label"][i] in labels)
                                and (not splits or columns["split"][i] in splits)
                                and (columns["score"][i] or 0.0) >= minimum
                                and (reviewed or columns["review_status"][i] is None)]
                    assert got == expected, (labels, splits, minimum, reviewed)


def test_a_column_without_none_has_no_none_rows():
    ranked = build_ranked([2, 0, 1], {"review_status": ["relabelled"] * 3}, ("review_status",))
    assert ranked.filter(none=("review_status",)) == []
    assert ranked.filter() == [2, 0, 1]


def test_rank_rows_orders_as_the_page_cursor_does():
    """Highest score first; equal scores by the id's text ("10" before "9"), as the cursor (-score, str(id))."""
    import numpy as np

    from service.api.ranked import numbers_of, rank_rows

    rng = random.Random(3)
    ids = list(range(1, 400)) + [f"u-{rng.randrange(1000)}" for _ in range(100)]
    scores = [rng.choice([None, 0.25, 0.5, round(rng.random(), 2)]) for _ in ids]
    texts = np.array([str(i) for i in ids])
    id_rank = np.empty(len(ids), dtype=np.int64)
    id_rank[np.argsort(texts, kind="stable")] = np.arange(len(ids))
    score = numbers_of(scores)
    got = rank_rows(~np.isnan(score), score, id_rank).tolist()
    expected = sorted((i for i, s in enumerate(scores) if s is not None), key=lambda i: (-scores[i], str(ids[i])))
    assert got == expected and len({scores[i] for i in got}) < len(got)  # ties were there to break
