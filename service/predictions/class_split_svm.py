"""scikit-learn's LinearSVC (one-vs-rest), its classes fitted in worker processes.

liblinear fits one binary problem per class, one after another, on one core. The problem of class c (c against
every other point) does not depend on how the other points are labelled, so a LinearSVC fitted on labels where
every class outside a group is one "rest" label solves exactly the group's problems (plus one for "rest",
thrown away). Each worker fits one group. Processes, not threads: liblinear draws its coordinate order from one
random generator global to the library (`set_seed` then `bounded_rand_int`), so two fits in threads of one
process race on it and no two runs give the same model (measured: coefficients differing by ~2e-5 run to run).
joblib's workers get the features memory-mapped and each seeds its own generator: the same model every run.

Measured on texts of the 1M benchmark, 2 cores (README, "A million points"): TfidfSVM's fit on 50,000 texts
with three calibration folds 106.0 -> 87.2 s, the same validation answers. Small problems stay in one
process (starting workers costs more than it saves) and very large ones too (each worker holds its own
liblinear copy of the features, ~16 bytes a non-zero, plus the memory-mapped features).
"""

from __future__ import annotations

import os

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.svm import LinearSVC
from sklearn.utils.extmath import safe_sparse_dot

MAX_WORKERS = 2
# Worker processes only for feature matrices with this many non-zeros or more (~16,000 TF-IDF texts: a fit of
# a few seconds, against ~2 s to start the workers the first time)...
MIN_PARALLEL_NONZEROS = 4_000_000
# ...and at most this many: a worker's liblinear copy is then ~1 GB. The fit on all 694,785 training texts of
# the 1M benchmark (151 million non-zeros) stays in one process.
MAX_PARALLEL_NONZEROS = 64_000_000


def default_workers() -> int:
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def _fit_group(X, y: np.ndarray, group: np.ndarray, rest: int, C: float, random_state: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """The coefficients and intercepts of `group`'s one-vs-rest problems (every other class as `rest`)."""
    svm = LinearSVC(C=C, random_state=random_state).fit(X, np.where(np.isin(y, group), y, rest))
    rows = np.searchsorted(svm.classes_, group)
    return svm.coef_[rows], svm.intercept_[rows]


class ClassSplitLinearSVC(ClassifierMixin, BaseEstimator):
    """LinearSVC's model (`classes_`, `coef_`, `intercept_`, `decision_function`), fitted with its classes split
    between `workers` processes (default: the cores, at most MAX_WORKERS) when the features' non-zeros are
    within [min_parallel_nonzeros, MAX_PARALLEL_NONZEROS]. Binary problems, fewer than two classes a worker and
    non-integer labels are fitted by one LinearSVC in this process."""

    def __init__(self, C: float = 1.0, random_state: int = 0, workers: int | None = None,
                 min_parallel_nonzeros: int = MIN_PARALLEL_NONZEROS):
        self.C = C
        self.random_state = random_state
        self.workers = workers
        self.min_parallel_nonzeros = min_parallel_nonzeros

    def fit(self, X, y) -> ClassSplitLinearSVC:
        y = np.asarray(y)
        classes = np.unique(y)
        workers = self.workers or default_workers()
        nonzeros = X.nnz if hasattr(X, "nnz") else X.size
        if (workers < 2 or len(classes) < 2 * workers or not np.issubdtype(y.dtype, np.integer)
                or not self.min_parallel_nonzeros <= nonzeros <= MAX_PARALLEL_NONZEROS):
            svm = LinearSVC(C=self.C, random_state=self.random_state).fit(X, y)
            self.classes_, self.coef_, self.intercept_ = svm.classes_, svm.coef_, svm.intercept_
            return self
        y = y.astype(np.int64)
        classes = classes.astype(np.int64)
        rest = int(classes.min()) - 1
        parts = Parallel(n_jobs=workers, backend="loky")(
            delayed(_fit_group)(X, y, group, rest, self.C, self.random_state)
            for group in np.array_split(classes, workers))
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
