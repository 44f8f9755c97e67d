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

    def start_from(self, other: Classifier) -> EmbeddingLogReg:
        """Begin the next fit at `other`'s weights (a model of the same labels, e.g. fitted on a sample of the
        same data) instead of at zero: lbfgs then reaches the same optimum in fewer iterations."""
        if isinstance(other, EmbeddingLogReg) and hasattr(other, "model_"):
            self.start_ = (other.model_.classes_, other.model_.coef_, other.model_.intercept_)
        return self

    def fit(self, texts, vectors, y, n_labels) -> EmbeddingLogReg:
        from sklearn.linear_model import LogisticRegression

        self.n_labels_ = n_labels
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter)
        start = self.__dict__.pop("start_", None)
        if start is not None and np.array_equal(start[0], np.unique(y)):
            self.model_.set_params(warm_start=True)
            self.model_.coef_, self.model_.intercept_ = start[1].copy(), start[2].copy()
        self.model_.fit(vectors, y)
        self.model_.set_params(warm_start=False)
        return self

    def predict_proba(self, texts, vectors) -> np.ndarray:
        return _full_columns(self.model_.predict_proba(vectors), self.model_.classes_, self.n_labels_)


# Above this many training texts the SVM is fitted once, on all of them but a stratified slice of
# CALIBRATION_POINTS that fits the sigmoids, instead of once per calibration fold (three SVMs on two thirds
# each). Measured on the 1M benchmark's texts (README, "A million points"): one LinearSVC on 50k texts
# takes 39 s and grows faster than linearly, and the three-fold fit on 695k texts had not finished after
# 27 minutes at 16.6 GB; 20,000 held-out texts still give each of 77 labels' sigmoids ~260 examples.
HELD_OUT_CALIBRATION_ABOVE = 100_000
CALIBRATION_POINTS = 20_000


def _held_out_calibration(y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, calibration rows): a stratified random slice of CALIBRATION_POINTS rows held out; a label
    too rare to spare a row (fewer than 2) stays whole in the fit rows."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    counts = np.bincount(y)
    splittable = counts[y] >= 2
    fit, held = train_test_split(rows[splittable], test_size=CALIBRATION_POINTS, stratify=y[splittable],
                                 random_state=seed)
    return np.sort(np.concatenate([fit, rows[~splittable]])), np.sort(held)


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
        from sklearn.model_selection import StratifiedKFold
        from sklearn.pipeline import make_pipeline, make_union

        from service.predictions.class_split_svm import ClassSplitLinearSVC

        # Calibration folds given as explicit splits: scikit-learn refuses an int cv when a label has fewer
        # examples than folds, while a fold that lacks a label is handled (its member predicts 0 for it).
        folds = min(3, int(np.bincount(y).max()))
        if len(y) > HELD_OUT_CALIBRATION_ABOVE:
            splits = [_held_out_calibration(y)]
        elif folds < 2:
            # Every label has one example (a tiny dataset, or a small learning-curve draw): no held-out fold
            # is possible, so the sigmoid is fitted on the training answers themselves (overconfident, but a
            # model rather than a crash).
            splits = [(np.arange(len(y)), np.arange(len(y)))]
        else:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*least populated class.*")
                splits = list(StratifiedKFold(n_splits=folds).split(np.zeros(len(y)), y))
        features = make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
        )
        svm = CalibratedClassifierCV(ClassSplitLinearSVC(C=self.C, random_state=0), method="sigmoid", cv=splits)
        self.n_labels_ = n_labels
        self.model_ = make_pipeline(features, svm)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*least populated class.*")
            self.model_.fit(list(texts), y)
        return self

    def predict_proba(self, texts, vectors) -> np.ndarray:
        union, calibrated = self.model_.steps[0][1], self.model_.steps[-1][1]
        if getattr(self, "compiled_", None) is None:
            self.compiled_ = (CompiledTfidf(union), CompiledSigmoidSVM(calibrated))
        features, svm = self.compiled_
        proba = svm.predict_proba(features.transform(list(texts)))
        return _full_columns(proba, calibrated.classes_, self.n_labels_)

    def __getstate__(self) -> dict[str, Any]:
        # The compiled form is derived; it is rebuilt on first use rather than stored twice.
        return {k: v for k, v in self.__dict__.items() if k != "compiled_"}


class CompiledTfidf:
    """A fitted FeatureUnion of TfidfVectorizers, as their analyzers, vocabularies and idf weights.

    Same features as `union.transform`; scikit-learn's per-call input validation costs about ten times the
    tokenising itself, which matters when a request holds one short text.
    """

    def __init__(self, union):
        if union.transformer_weights:
            raise ValueError("weighted feature unions are not supported")
        self.parts = []
        offset = 0
        for _, v in union.transformer_list:
            if v.norm != "l2" or not v.use_idf or v.binary:
                raise ValueError(f"unsupported TfidfVectorizer settings: {v.get_params()}")
            self.parts.append((v.build_analyzer(), v.vocabulary_, v.idf_, v.sublinear_tf, offset))
            offset += len(v.vocabulary_)
        self.n_features = offset

    def transform(self, texts: list[str]):
        from collections import Counter

        from scipy import sparse

        indptr, indices, values = [0], [], []
        nnz = 0
        for text in texts:
            for analyze, vocabulary, idf, sublinear, offset in self.parts:
                counts = Counter(j for j in map(vocabulary.get, analyze(text)) if j is not None)
                if not counts:
                    continue
                idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
                tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
                weights = (np.log(tf) + 1.0 if sublinear else tf) * idf[idx]
                weights /= np.sqrt(np.dot(weights, weights))
                indices.append(idx + offset)
                values.append(weights)
                nnz += len(idx)
            indptr.append(nnz)
        data = np.concatenate(values) if values else np.zeros(0)
        cols = np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64)
        return sparse.csr_matrix((data, cols, np.asarray(indptr)), shape=(len(texts), self.n_features))


class CompiledSigmoidSVM:
    """A fitted CalibratedClassifierCV(LinearSVC, method="sigmoid") as stacked arrays.

    scikit-learn's predict_proba loops over ensemble members and one calibrator per label (36 small calls
    for 3 folds x 12 labels), several ms for one text; one sparse product and a few array operations give
    the same probabilities in a fraction of that, which is what keeps online latency low.
    """

    def __init__(self, calibrated: Any) -> None:
        self.n_classes = len(calibrated.classes_)
        weights: list[np.ndarray] = []
        intercepts: list[np.ndarray] = []
        a: list[float] = []
        b: list[float] = []
        self.members: list[tuple[slice, np.ndarray]] = []
        start = 0
        for member in calibrated.calibrated_classifiers_:
            svm = member.estimator
            columns = np.searchsorted(calibrated.classes_, svm.classes_)
            if self.n_classes == 2:
                columns = columns[1:]  # binary: one decision column, for the second class
            weights.append(svm.coef_)
            intercepts.append(np.atleast_1d(svm.intercept_))
            a.extend(c.a_ for c in member.calibrators)
            b.extend(c.b_ for c in member.calibrators)
            self.members.append((slice(start, start + len(columns)), columns))
            start += len(columns)
        self.weights = np.vstack(weights).T.astype(np.float64)
        self.intercepts = np.concatenate(intercepts)
        self.a, self.b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)

    def predict_proba(self, X) -> np.ndarray:
        from scipy.special import expit

        scores = np.asarray(X @ self.weights) + self.intercepts
        calibrated = expit(-(self.a * scores + self.b))
        n = scores.shape[0]
        total = np.zeros((n, self.n_classes))
        for block, columns in self.members:
            proba = np.zeros((n, self.n_classes))
            proba[:, columns] = calibrated[:, block]
            if self.n_classes == 2:
                proba[:, 0] = 1.0 - proba[:, 1]
            else:
                denominator = proba.sum(axis=1, keepdims=True)
                proba = np.divide(proba, denominator, out=np.full_like(proba, 1 / self.n_classes),
                                  where=denominator != 0)
            proba[(1.0 < proba) & (proba <= 1.0 + 1e-5)] = 1.0
            total += proba
        return total / len(self.members)


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
