"""Suggestions for unlabelled points: the model's prediction and the labelled neighbours' vote, combined."""

from __future__ import annotations

from collections import Counter

import numpy as np
from pydantic import Field

from service.analyses.base import Analysis, AnalysisResult, Part, PayloadField, register
from service.analyses.context import AnalysisContext
from service.analyses.knn_consistency import KnnVote
from service.analyses.label_issues import combined_posterior

AGREEMENT_VALUES = ("agree", "conflict", "model_only", "neighbours_only")


@register
class Suggestions(Analysis):
    """A suggested label and confidence per unlabelled point; flags where model and neighbours disagree."""

    name = "suggestions"
    payload_fields = (PayloadField("suggested_label", "keyword", index="keyword", column=True),
                      PayloadField("suggestion_confidence", "float", column=True),
                      PayloadField("suggestion_agreement", "keyword"))
    sets_flags = ("suggestion_conflict",)
    report_parts = (Part("suggestions", {}),)
    needs = ("knn_consistency",)
    description = "Suggested labels for unlabelled points from the model and the labelled neighbours."

    model_weight: float = Field(0.5, ge=0.0, le=1.0, description="weight of the model against the kNN vote")
    prior_strength: float = Field(1.0, ge=0.0, description="pseudo-votes of the model added to the kNN vote")

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        """Suggestions and agreement for every unlabelled point."""
        knn = ctx.output("knn_consistency", KnnVote)
        rows = np.flatnonzero(~ctx.labelled)
        n = ctx.n
        votes, weight, count = knn.votes[rows], knn.weight[rows], knn.count[rows]
        has_vote = (count > 0) & (weight > 0)
        if ctx.probs is not None:
            p = ctx.probs[rows]
            r = combined_posterior(p, votes, weight, self.model_weight, self.prior_strength)
            model_top = p.argmax(axis=1)
        else:  # no model yet: the neighbours alone
            r = votes / np.where(weight > 0, weight, 1.0)[:, None]
            model_top = np.full(len(rows), -1)
        suggested = r.argmax(axis=1) if len(rows) else np.zeros(0, int)
        confidence = r.max(axis=1) if len(rows) else np.zeros(0)
        knn_top = votes.argmax(axis=1) if len(rows) else np.zeros(0, int)
        agreement = np.full(len(rows), None, dtype=object)  # None: neither the model nor the neighbours
        agreement[(model_top < 0) & has_vote] = "neighbours_only"
        agreement[(model_top >= 0) & ~has_vote] = "model_only"
        both = (model_top >= 0) & has_vote
        agreement[both] = np.where(model_top[both] == knn_top[both], "agree", "conflict")
        usable = has_vote | (model_top >= 0)
        names = np.array(ctx.label_names, dtype=object)
        suggested_label = np.full(n, None, dtype=object)
        suggestion_confidence = np.full(n, np.nan)
        if len(names):
            suggested_label[rows[usable]] = names[suggested[usable]]
        suggestion_confidence[rows[usable]] = confidence[usable]
        conflict = np.zeros(n, bool)
        conflict[rows] = agreement == "conflict"
        agreement_full = np.full(n, None, dtype=object)
        agreement_full[rows] = agreement
        report = {
            "unlabelled": int(len(rows)),
            "suggested": int(usable.sum()),
            "agreement": {value: int((agreement == value).sum()) for value in AGREEMENT_VALUES},
            "by_label": dict(Counter(suggested_label[rows[usable]].tolist()).most_common()),
            "mean_confidence": float(confidence[usable].mean()) if usable.any() else None,
        }
        # Only unlabelled rows are set here; label_issues sets suggested_label of labelled points.
        return AnalysisResult(
            fields={"suggested_label": suggested_label, "suggestion_confidence": suggestion_confidence,
                    "suggestion_agreement": agreement_full},
            flags={"suggestion_conflict": conflict},
            report={"suggestions": report},
            score=1.0 - float(conflict.sum()) / max(1, len(rows)),
        )
