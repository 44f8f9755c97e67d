"""scikit-learn's LinearSVC (one-vs-rest), its classes fitted in threads.

liblinear fits one binary problem per class, one after another, on one core. The problem of class c (c against
every other point) does not depend on how the other points are labelled, so a LinearSVC fitted on labels where
every class outside a group is one "rest" label solves exactly the group's problems (plus one for "rest",
thrown away). Each thread fits one group, and liblinear releases the GIL while it solves. On 30,000 texts of
the 1M benchmark (77 labels, 2 cores): 18.0 -> 9.9 s, decision values equal to one LinearSVC's within 1.4e-5
(README, "A million points"). scikit-learn's own OneVsRestClassifier(n_jobs=2) took 13.6 s: it hands liblinear
one binary problem per call, each converting the whole feature matrix again.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.svm import LinearSVC
from sklearn.utils.extmath import safe_sparse_dot

# At most this many threads fit one SVM: each holds its own liblinear copy of the features (~16 bytes a
# non-zero, ~3 GB for the 695k training texts of the 1M benchmark).
MAX_THREADS = 2


def default_threads() -> int:
    return max(1, min(MAX_THREADS, os.cpu_count() or 1))


class ClassSplitLinearSVC(ClassifierMixin, BaseEstimator):
    """LinearSVC's model (`classes_`, `coef_`, `intercept_`, `decision_function`), fitted with its classes
    split between `threads` threads (default: the cores, at most MAX_THREADS). Binary problems, fewer than two
    classes a thread and non-integer labels are fitted by one LinearSVC."""

    def __init__(self, C: float = 1.0, random_state: int = 0, threads: int | None = None):
        self.C = C
        self.random_state = random_state
        self.threads = threads

    def _svc(self) -> LinearSVC:
        return LinearSVC(C=self.C, random_state=self.random_state)

    def fit(self, X, y) -> ClassSplitLinearSVC:
        y = np.asarray(y)
        classes = np.unique(y)
        threads = self.threads or default_threads()
        if threads < 2 or len(classes) < 2 * threads or not np.issubdtype(y.dtype, np.integer):
            svm = self._svc().fit(X, y)
            self.classes_, self.coef_, self.intercept_ = svm.classes_, svm.coef_, svm.intercept_
            return self
        rest = classes.min() - 1

        def fit_group(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            svm = self._svc().fit(X, np.where(np.isin(y, group), y, rest))
            rows = np.searchsorted(svm.classes_, group)
            return svm.coef_[rows], svm.intercept_[rows]

        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(fit_group, np.array_split(classes, threads)))
        self.classes_ = classes
        self.coef_ = np.vstack([coef for coef, _ in parts])
        self.intercept_ = np.concatenate([intercept for _, intercept in parts])
        return self

    def decision_function(self, X) -> np.ndarray:
        scores = safe_sparse_dot(X, self.coef_.T, dense_output=True) + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X) -> np.ndarray:
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[scores.argmax(axis=1)]
