"""What every analysis reads: one dataset as aligned numpy arrays, the kNN graph, and earlier results.

Nothing here touches the store or the model registry (the runner does); analyses are pure functions of a
context, so tests build one from planted arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from embeddings.neighbors import KnnGraph, build_knn_graph, normalize
from service.errors import InvalidInput

if TYPE_CHECKING:
    from service.analyses.base import AnalysisResult

log = logging.getLogger(__name__)

SPLITS = ("training", "validation", "testing")
T = TypeVar("T")


@dataclass
class AnalysisContext:
    """One dataset, aligned by row: ids[i], texts[i], vectors[i], labels[i] (-1 = unlabelled), splits[i].

    probs: the served model's probabilities for every point (None without a model); oof: out-of-fold
    probabilities, NaN rows where a point has none. Columns of both follow `label_names`.
    """

    ids: list[Any]
    texts: list[str]
    vectors: np.ndarray
    labels: np.ndarray
    label_names: list[str]
    splits: np.ndarray
    knn: KnnGraph
    probs: np.ndarray | None = None
    oof: np.ndarray | None = None
    model_version: str | None = None
    seed: int = 0
    results: dict[str, AnalysisResult] = field(default_factory=dict)
    _honest: np.ndarray | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        """Number of points."""
        return len(self.ids)

    @property
    def n_labels(self) -> int:
        """Number of label columns."""
        return len(self.label_names)

    @property
    def labelled(self) -> np.ndarray:
        """Mask of labelled points."""
        return self.labels >= 0

    @property
    def has_model(self) -> bool:
        """Whether model probabilities are known."""
        return self.probs is not None

    def split_mask(self, split: str) -> np.ndarray:
        """Mask of the points of one split."""
        return self.splits == split

    def honest_probs(self) -> np.ndarray | None:
        """Probabilities not fitted on the point itself: out-of-fold where known, else the served model's.

        The served model has seen its training points, so only these say how the model family judges a label.
        """
        if self.probs is None:
            return None
        if self.oof is None:
            return self.probs
        if self._honest is None:  # computed once: at a million points each copy is hundreds of MB
            has_oof = ~np.isnan(self.oof).any(axis=1)
            self._honest = np.where(has_oof[:, None], self.oof, self.probs)
        return self._honest

    def result(self, name: str) -> AnalysisResult:
        """The result of an analysis that ran earlier in this run."""
        try:
            return self.results[name]
        except KeyError:
            raise InvalidInput(f"analysis {name!r} has not run in this analysis run; add it to the list") from None

    def output(self, name: str, kind: type[T]) -> T:
        """The typed output of an analysis that ran earlier in this run (see its `output` declaration)."""
        value = self.result(name).output
        if not isinstance(value, kind):
            raise InvalidInput(f"analysis {name!r} handed on {type(value).__name__}, not {kind.__name__}")
        return value


def encode_labels(labels: Sequence[str | None], known: Sequence[str] = ()) -> tuple[np.ndarray, list[str]]:
    """Integer codes (-1 for None) and the label names: `known` first, in order, then new labels sorted."""
    names = list(known)
    extra = sorted({label for label in labels if label is not None} - set(names))
    names.extend(extra)
    index = {name: i for i, name in enumerate(names)}
    codes = np.array([-1 if label is None else index[label] for label in labels], dtype=np.int64)
    return codes, names


def widen(probs: np.ndarray, model_labels: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """A probability matrix over `model_labels` with its columns placed into `names` order (zeros elsewhere)."""
    index = {name: i for i, name in enumerate(names)}
    missing = [label for label in model_labels if label not in index]
    if missing:
        raise InvalidInput(f"model labels {missing} are not among the dataset's label names")
    # float32: ample for probabilities, and half the memory of every copy the analyses make at scale.
    out = np.zeros((probs.shape[0], len(names)), dtype=np.float32)
    out[:, [index[label] for label in model_labels]] = probs
    return out


def build_context(
    ids: Sequence[Any],
    texts: Sequence[str],
    vectors: np.ndarray,
    labels: Sequence[str | None],
    splits: Sequence[str | None],
    probs: np.ndarray | None = None,
    model_labels: Sequence[str] = (),
    oof: np.ndarray | None = None,
    model_version: str | None = None,
    knn: KnnGraph | None = None,
    k: int = 15,
    knn_kind: str = "auto",
    seed: int = 0,
) -> AnalysisContext:
    """A context from plain lists and arrays; builds the kNN graph unless one is given."""
    n = len(ids)
    for name, seq in (("texts", texts), ("labels", labels), ("splits", splits)):
        if len(seq) != n:
            raise InvalidInput(f"{name} has {len(seq)} entries for {n} points; give one per point")
    if vectors.shape[0] != n:
        raise InvalidInput(f"vectors has {vectors.shape[0]} rows for {n} points; give one per point")
    codes, names = encode_labels(labels, model_labels)
    if probs is not None:
        if probs.shape != (n, len(model_labels)):
            raise InvalidInput(f"probabilities have shape {probs.shape}; expected ({n}, {len(model_labels)}) "
                               "(one row per point, one column per model label)")
        probs = widen(probs, model_labels, names)
    if oof is not None:
        if oof.shape != (n, len(model_labels)):
            raise InvalidInput(f"out-of-fold probabilities have shape {oof.shape}; expected ({n}, "
                               f"{len(model_labels)}) with NaN rows for points without one")
        missing = np.isnan(oof).any(axis=1)
        oof = widen(np.nan_to_num(oof, nan=0.0), model_labels, names)
        oof[missing] = np.nan
    x = normalize(vectors)
    graph = knn if knn is not None else build_knn_graph(x, k=k, kind=knn_kind, seed=seed)
    if graph.n != n:
        raise InvalidInput(f"the kNN graph covers {graph.n} points; the dataset has {n}")
    split_arr = np.array([s or "" for s in splits], dtype=object)
    return AnalysisContext(list(ids), list(texts), x, codes, names, split_arr, graph, probs, oof,
                           model_version, seed)
