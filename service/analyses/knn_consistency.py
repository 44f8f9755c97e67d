"""kNN label consistency: how much each point's labelled neighbours agree with its label (or suggest one)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from service.analyses.base import Analysis, AnalysisResult, Part, PayloadField, register
from service.analyses.context import AnalysisContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KnnVote:
    """The neighbours' vote per point, for later analyses. Arrays are aligned with the context rows.

    votes: (n, n_labels) similarity-weighted votes; weight: their total; count: labelled neighbours;
    majority: the winning label's code (-1 = no vote); share: its share of the weight (0 without a vote);
    agreement: the share of the point's own label (NaN when unlabelled or without a vote); majority_count:
    neighbours carrying the majority label.
    """

    votes: np.ndarray
    weight: np.ndarray
    count: np.ndarray
    majority: np.ndarray
    share: np.ndarray
    agreement: np.ndarray
    majority_count: np.ndarray


def knn_vote(ctx: AnalysisContext, k: int, chunk: int = 65_536) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Similarity-weighted label votes of each point's k nearest labelled neighbours.

    Returns (votes (n, n_labels) float32, total weight (n,), number of labelled neighbours (n,)).
    Negative similarities count as zero: an opposite vector is no evidence for a label.
    """
    graph = ctx.knn.top(min(k, ctx.knn.k))
    n, c = ctx.n, ctx.n_labels
    votes = np.zeros((n, c), np.float32)
    weight = np.zeros(n, np.float32)
    count = np.zeros(n, np.int32)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        nbr = graph.indices[start:stop]
        lab = ctx.labels[nbr]
        w = np.clip(1.0 - graph.distances[start:stop], 0.0, None) * (lab >= 0)
        rows = np.repeat(np.arange(stop - start), nbr.shape[1])
        flat = rows * c + np.where(lab >= 0, lab, 0).reshape(-1)
        votes[start:stop] = np.bincount(flat, weights=w.reshape(-1), minlength=(stop - start) * c).reshape(-1, c)
        weight[start:stop] = w.sum(axis=1)
        count[start:stop] = (lab >= 0).sum(axis=1)
    return votes, weight, count


@register
class KnnConsistency(Analysis):
    """Agreement of each labelled point's neighbours with its label; the neighbours' majority for every point."""

    name = "knn_consistency"
    payload_fields = (PayloadField("knn_agreement", "float", column=True),
                      PayloadField("knn_majority_label", "keyword"), PayloadField("knn_majority_share", "float"))
    sets_flags = ("knn_disagreement",)
    report_parts = (Part("knn_consistency", {}),)
    output = KnnVote
    description = "Similarity-weighted agreement of each point's labelled neighbours with its label."

    k: int = Field(10, ge=1, le=100, description="neighbours consulted")
    min_share: float = Field(0.6, gt=0.0, le=1.0, description="majority share that counts as a confident vote")
    min_neighbours: int = Field(3, ge=1, description="labelled neighbours needed before a vote counts")

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        """Votes, agreement and majority per point; flag confident disagreements."""
        votes, weight, count = knn_vote(ctx, self.k)
        has_vote = (count >= 1) & (weight > 0)
        safe = np.where(has_vote, weight, 1.0)
        majority = votes.argmax(axis=1)
        share = votes[np.arange(ctx.n), majority] / safe
        labelled = ctx.labelled
        own = np.where(labelled, ctx.labels, 0)
        agreement = np.where(labelled & has_vote, votes[np.arange(ctx.n), own] / safe, np.nan)
        disagree = (labelled & (count >= self.min_neighbours) & (majority != ctx.labels)
                    & (share >= self.min_share))
        lab = ctx.labels[ctx.knn.indices[:, : min(self.k, ctx.knn.k)]]
        majority_count = (lab == np.where(has_vote, majority, -2)[:, None]).sum(axis=1)
        names = np.array(ctx.label_names, dtype=object)
        majority_label = np.full(ctx.n, None, dtype=object)
        if len(names):
            majority_label[has_vote] = names[majority[has_vote]]
        checked = labelled & has_vote
        report = {
            "k": self.k,
            "checked": int(checked.sum()),
            "disagreements": int(disagree.sum()),
            "mean_agreement": _mean(agreement[checked]),
            "mean_agreement_by_label": {
                name: _mean(agreement[checked & (ctx.labels == i)]) for i, name in enumerate(ctx.label_names)
            },
        }
        return AnalysisResult(
            fields={
                "knn_agreement": agreement,
                "knn_majority_label": majority_label,
                "knn_majority_share": np.where(has_vote, share, np.nan),
            },
            flags={"knn_disagreement": disagree},
            output=KnnVote(votes, weight, count, np.where(has_vote, majority, -1), np.where(has_vote, share, 0.0),
                           agreement, majority_count),
            report={"knn_consistency": report},
            score=1.0 - float(disagree.sum()) / max(1, int(checked.sum())),
        )


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None
