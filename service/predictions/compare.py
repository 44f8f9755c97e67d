"""Two model versions compared cluster by cluster: where did the error rate move?

Each version keeps out-of-fold probabilities for every labelled point it was trained on (registry `oof()`),
so both are judged on points neither saw while predicting them, against the labels the data holds now.
Only points both versions predicted count, so a cluster's two rates are over the same points. A point whose
current label a version never learned counts as an error of that version (it cannot predict it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embeddings.store import PointId

NOISE_NAME = "noise (in no cluster)"


@dataclass(frozen=True)
class VersionPredictions:
    """A version's out-of-fold answers: point ids and the predicted label of each."""

    version: str
    ids: Sequence[PointId]
    predicted: Sequence[str]

    @classmethod
    def from_oof(cls, version: str, ids: Sequence[PointId], proba: np.ndarray,
                 labels: Sequence[str]) -> VersionPredictions:
        names = np.asarray(list(labels), dtype=object)
        return cls(version, list(ids), list(names[np.asarray(proba).argmax(axis=1)]))


def _errors(answers: VersionPredictions, rows: Mapping[PointId, int], labels: Sequence[Any]) -> dict[int, bool]:
    """Row -> whether the version's answer differs from the row's current label (labelled rows only)."""
    out = {}
    for pid, predicted in zip(answers.ids, answers.predicted, strict=True):
        row = rows.get(pid)
        if row is not None and labels[row] is not None:
            out[row] = predicted != labels[row]
    return out


def compare_by_cluster(ids: Sequence[PointId], labels: Sequence[Any], clusters: Sequence[Any],
                       a: VersionPredictions, b: VersionPredictions, names: Mapping[int, str] | None = None,
                       min_size: int = 5) -> dict[str, Any]:
    """Per cluster, the error rates of `a` and `b` over the labelled points both predicted, and the change
    a - b (positive: `a` errs more there), largest change first. Clusters with fewer than `min_size` such
    points are left out: their rates are mostly noise.

    `ids`, `labels` and `clusters` are parallel columns of the dataset (label None: unlabelled; cluster
    None or -1: noise, reported as cluster -1).
    """
    rows = {pid: i for i, pid in enumerate(ids)}
    errors_a, errors_b = _errors(a, rows, labels), _errors(b, rows, labels)
    common = sorted(errors_a.keys() & errors_b.keys())
    if not common:
        return {"a": a.version, "b": b.version, "points": 0, "error_rate_a": None, "error_rate_b": None,
                "clusters": []}
    wrong_a = np.array([errors_a[r] for r in common], dtype=bool)
    wrong_b = np.array([errors_b[r] for r in common], dtype=bool)
    cluster_of = np.array([-1 if clusters[r] is None else int(clusters[r]) for r in common])
    found, inverse, sizes = np.unique(cluster_of, return_inverse=True, return_counts=True)
    rate_a = np.bincount(inverse, weights=wrong_a) / sizes
    rate_b = np.bincount(inverse, weights=wrong_b) / sizes
    names = names or {}
    table: list[dict[str, Any]] = [
        {"cluster": int(c), "name": names.get(int(c)) or (NOISE_NAME if c == -1 else ""), "size": int(n),
         "error_rate_a": float(ra),
         "error_rate_b": float(rb), "change": float(ra - rb)}
        for c, n, ra, rb in zip(found, sizes, rate_a, rate_b, strict=True) if n >= min_size
    ]
    table.sort(key=lambda row: (-abs(row["change"]), -row["size"], row["cluster"]))
    return {"a": a.version, "b": b.version, "points": len(common), "error_rate_a": float(wrong_a.mean()),
            "error_rate_b": float(wrong_b.mean()), "clusters": table}
