"""A ranked view's rows with their filter columns as arrays, built once per snapshot state.

A page of issues, disagreements or suggestions filters the whole ranking (label, split, triage, score,
reviewed) before it takes its 50 rows. In Python that was a loop over every ranked row on every page view
(a million rows: 1-2 s idle, several under load); here a keyword filter starts from that value's rows, found
through a per-value index built once, and the other conditions are vectorised over those rows only.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RankedRows:
    """`rows`: snapshot rows in rank order; `codes[name]`: each ranked row's value of a keyword column as an
    integer (`vocab[name]` maps value -> code; None has its own code); `numbers[name]`: a numeric column
    (None as the `fill` given at build)."""

    rows: np.ndarray
    codes: dict[str, np.ndarray]
    vocab: dict[str, dict[Any, int]]
    numbers: dict[str, np.ndarray]
    _by_code: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def _positions(self, name: str, values: Collection[Any]) -> np.ndarray:
        """Ranked positions (ascending) whose `name` is one of `values`."""
        if name not in self._by_code:  # built on first use; two threads building it at once get equal arrays
            order = np.argsort(self.codes[name], kind="stable")
            bounds = np.searchsorted(self.codes[name][order], np.arange(len(self.vocab[name]) + 1))
            self._by_code[name] = (order, bounds)
        order, bounds = self._by_code[name]
        parts = [order[bounds[c]:bounds[c + 1]] for c in {self.vocab[name][v] for v in values if v in self.vocab[name]}]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts))

    def filter(self, any_of: Mapping[str, Collection[Any] | None] | None = None, none: Sequence[str] = (),
               at_least: Mapping[str, float] | None = None) -> list[int]:
        """The rows, in rank order, whose keyword columns hold one of the given values (a column given no
        values is not filtered), whose `none` columns are None, and whose numbers reach the given minimums."""
        wanted = {name: values for name, values in (any_of or {}).items() if values}
        positions: np.ndarray | None = None
        first: str | None = None
        for name, values in wanted.items():
            found = self._positions(name, values)
            if positions is None or len(found) < len(positions):
                positions, first = found, name
        if positions is None:
            positions, first = np.arange(len(self.rows)), None
        keep = np.ones(len(positions), dtype=bool)
        for name, values in wanted.items():
            if name != first:
                codes = [self.vocab[name][v] for v in values if v in self.vocab[name]]
                keep &= np.isin(self.codes[name][positions], np.array(codes, dtype=np.int32))
        for name in none:
            code = self.vocab[name].get(None)
            keep &= self.codes[name][positions] == (code if code is not None else -1)
        for name, minimum in (at_least or {}).items():
            keep &= self.numbers[name][positions] >= minimum
        return self.rows[positions[keep]].tolist()


def numbers_of(column: Sequence[Any]) -> np.ndarray:
    """A numeric column as float64, None as NaN."""
    return np.array(column, dtype=np.float64)


def rank_rows(keep: np.ndarray, score: np.ndarray, id_rank: np.ndarray) -> np.ndarray:
    """The rows where `keep`, highest `score` first, ties by the id's text (the order a page cursor holds:
    (-score, str(id))). At a million rows, with the filter columns, 0.8 s against 2.6 s for Python's
    sorted() with a key function (scripts/bench_ranked_filter.py), paid after every review (a review drops
    the snapshot's rankings)."""
    rows = np.flatnonzero(keep)
    return rows[np.lexsort((id_rank[rows], -score[rows]))]


def build_ranked(rows: np.ndarray, columns: dict[str, list[Any]], keywords: Sequence[str] = (),
                 numbers: Sequence[str] = (), fill: float = 0.0) -> RankedRows:
    """Arrays of `keywords` and `numbers` columns (of the whole snapshot) aligned with the ranked `rows`."""
    import pandas as pd

    order = np.asarray(rows, dtype=np.int64)
    codes, vocab = {}, {}
    for name in keywords:
        values = np.array(columns[name], dtype=object)[order]
        # None gets a code of its own ("not reviewed" is a value a filter asks for).
        found, uniques = pd.factorize(values, use_na_sentinel=False)
        codes[name] = found.astype(np.int32)
        vocab[name] = {(None if _missing(v) else v): code for code, v in enumerate(uniques)}
    nums = {}
    for name in numbers:
        column = numbers_of(columns[name])[order]
        nums[name] = np.where(np.isnan(column), fill, column)
    return RankedRows(order, codes, vocab, nums)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
