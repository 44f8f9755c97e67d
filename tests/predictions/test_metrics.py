"""The evaluation figures agree with scikit-learn: the per-class table comes from it, and the fast macro F1
used by the bootstrap and the model search gives the same number."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support

from service.analyses.per_class import split_metrics
from service.predictions.metrics import evaluate, macro_f1


def _draw(seed: int, n: int = 400, n_labels: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_labels - 1, n)  # the last label never occurs in truth
    pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, n_labels, n))
    pred[pred == 2] = 3  # label 2 is never predicted
    return y, pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_macro_f1_is_scikit_learns(seed):
    y, pred = _draw(seed)
    assert macro_f1(y, pred, 7) == pytest.approx(f1_score(y, pred, average="macro", zero_division=0), abs=1e-12)


def test_per_class_tables_are_scikit_learns():
    y, pred = _draw(3)
    names = [f"l{i}" for i in range(7)]
    proba = np.full((len(y), 7), 0.01)
    proba[np.arange(len(y)), pred] = 0.94
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=list(range(7)), zero_division=0)
    model = evaluate(proba, y, names, bootstrap=False)
    analysis = split_metrics(y, pred, names)
    for j, name in enumerate(names):
        expected = {"precision": p[j], "recall": r[j], "f1": f[j], "support": s[j]}
        assert model["per_class"][name] == pytest.approx(expected)
        if s[j] or (pred == j).any():
            assert analysis["labels"][name] == pytest.approx(expected)
        else:
            assert name not in analysis["labels"]
    assert model["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert analysis["macro_f1"] == pytest.approx(f[s > 0].mean())
