"""Triage of every disagreement: fix the data (label error), fix the model (model error), or look closer.

label_error   the model (out-of-fold) and the neighbours both disagree with the label
model_error   the neighbours agree with the label, the model does not
ambiguous     the neighbours are split, or only the neighbours disagree
outlier       no close neighbour to judge by
agree         no disagreement; unlabelled: nothing to judge
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from service.analyses.base import Analysis, AnalysisResult, Part, PayloadField, register
from service.analyses.context import SPLITS, AnalysisContext
from service.analyses.knn_consistency import KnnVote
from service.fields import TRIAGE_VALUES


@register
class Triage(Analysis):
    """One triage class per point from the model's and the neighbours' verdicts."""

    name = "triage"
    payload_fields = (PayloadField("triage", "keyword", index="keyword", column=True),)
    sets_flags = ("ambiguous",)
    report_parts = (Part("triage", {}),)
    summary_parts = (Part("triage", {}),)
    needs = ("model", "knn_consistency", "label_issues", "outliers")
    description = "Whether each disagreement calls for fixing the label, fixing the model, or a closer look."

    majority: float = Field(0.5, gt=0.0, le=1.0, description="neighbour share that makes a verdict")

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        """A triage class per point."""
        knn = ctx.output("knn_consistency", KnnVote)
        issue = ctx.result("label_issues").flags["label_issue"]
        outlier = ctx.result("outliers").flags["outlier"]
        honest = ctx.honest_probs()
        assert honest is not None
        labelled = ctx.labelled
        model_disagrees = labelled & (honest.argmax(axis=1) != ctx.labels)
        has_vote = knn.majority >= 0
        agreement = np.nan_to_num(knn.agreement, nan=0.0)
        nbrs_agree = has_vote & (agreement >= self.majority)
        nbrs_disagree = labelled & has_vote & (knn.majority != ctx.labels) & (knn.share >= self.majority)
        disagreement = labelled & (model_disagrees | nbrs_disagree | issue)
        triage = np.full(ctx.n, "agree", dtype=object)
        triage[~labelled] = "unlabelled"
        triage[disagreement] = "ambiguous"
        triage[disagreement & model_disagrees & nbrs_agree] = "model_error"
        triage[disagreement & model_disagrees & nbrs_disagree] = "label_error"
        triage[disagreement & (outlier | ~has_vote)] = "outlier"
        counts = {value: int((triage == value).sum()) for value in TRIAGE_VALUES}
        report = {
            "counts": counts,
            "by_split": {s: {v: int(((triage == v) & ctx.split_mask(s)).sum()) for v in TRIAGE_VALUES
                             if v != "unlabelled"} for s in SPLITS},
        }
        return AnalysisResult(fields={"triage": triage}, flags={"ambiguous": triage == "ambiguous"},
                              report={"triage": report}, summary_parts={"triage": counts},
                              score=1.0 - float(disagreement.sum()) / max(1, int(labelled.sum())))
