"""The candidate classifiers: logistic regression on sentence embeddings, and TF-IDF + calibrated linear SVM.

Each follows scikit-learn's shape (`__init__` stores parameters, `fit` returns self, learned attributes end
in `_`) and answers probabilities over the version's full label set, in its order, even when a fold of
cross-validation lacked a label.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Protocol

import numpy as np

from service.errors import InvalidInput


class Classifier(Protocol):
    """What training, the registry and the server need from a model."""

    kind: ClassVar[str]
    needs_vectors: ClassVar[bool]

    def params(self) -> dict[str, Any]: ...

    def fit(self, texts: list[str], vectors: np.ndarray | None, y: np.ndarray, n_labels: int) -> Classifier: ...

    def predict_proba(self, texts: list[str], vectors: np.ndarray | None) -> np.ndarray:
        """(n, n_labels) probabilities, rows summing to 1."""


def _full_columns(proba: np.ndarray, classes: np.ndarray, n_labels: int) -> np.ndarray:
    """Place a model's columns (only the classes it saw) into the full label set's columns."""
    if len(classes) == n_labels:
        return proba
    out = np.zeros((proba.shape[0], n_labels), dtype=np.float64)
    out[:, classes] = proba
    return out


class EmbeddingLogReg:
    """Multinomial logistic regression on the sentence embeddings (lbfgs)."""

    kind: ClassVar[str] = "logreg"
    needs_vectors: ClassVar[bool] = True

    def __init__(self, C: float = 1.0, max_iter: int = 2000):
        self.C = C
        self.max_iter = max_iter

    def params(self) -> dict[str, Any]:
        return {"model": self.kind, "C": self.C, "max_iter": self.max_iter}

    def fit(self, texts, vectors, y, n_labels) -> EmbeddingLogReg:
        from sklearn.linear_model import LogisticRegression

        self.n_labels_ = n_labels
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter)
        self.model_.fit(vectors, y)
        return self

    def predict_proba(self, texts, vectors) -> np.ndarray:
        return _full_columns(self.model_.predict_proba(vectors), self.model_.classes_, self.n_labels_)


class TfidfSVM:
    """Word and character n-gram TF-IDF into a linear SVM, with sigmoid-calibrated probabilities."""

    kind: ClassVar[str] = "tfidf-svm"
    needs_vectors: ClassVar[bool] = False

    def __init__(self, C: float = 1.0):
        self.C = C

    def params(self) -> dict[str, Any]:
        return {"model": self.kind, "C": self.C, "features": "word 1-2 + char_wb 2-5 tf-idf",
                "calibration": "sigmoid"}

    def fit(self, texts, vectors, y, n_labels) -> TfidfSVM:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline, make_union
        from sklearn.svm import LinearSVC

        counts = np.bincount(y)
        counts = counts[counts > 0]
        # Calibration folds need each label in most folds; tiny labels get 2 folds (sklearn warns, copes).
        folds = 3 if counts.min() >= 3 else 2
        features = make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
        )
        svm = CalibratedClassifierCV(LinearSVC(C=self.C, random_state=0), method="sigmoid", cv=folds)
        self.n_labels_ = n_labels
        self.model_ = make_pipeline(features, svm)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*least populated class.*")
            self.model_.fit(list(texts), y)
        return self

    def predict_proba(self, texts, vectors) -> np.ndarray:
        proba = self.model_.predict_proba(list(texts))
        return _full_columns(proba, self.model_.classes_, self.n_labels_)


FAMILIES: dict[str, type] = {EmbeddingLogReg.kind: EmbeddingLogReg, TfidfSVM.kind: TfidfSVM}
# Hyper-parameter grids searched on the validation split.
GRIDS: dict[str, list[dict[str, Any]]] = {
    EmbeddingLogReg.kind: [{"C": c} for c in (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)],
    TfidfSVM.kind: [{"C": c} for c in (0.03, 0.1, 0.3, 1.0, 3.0)],
}


def build(kind: str, **params: Any) -> Classifier:
    """A fresh classifier of a family by name."""
    if kind not in FAMILIES:
        raise InvalidInput(f"unknown model {kind!r}; use one of {', '.join(FAMILIES)} (or 'auto')")
    return FAMILIES[kind](**params)
