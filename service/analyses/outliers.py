"""Outliers: points far from everything, by their mean cosine distance to their k nearest neighbours."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from service.analyses.base import Analysis, AnalysisResult, Part, PayloadField, register
from service.analyses.context import AnalysisContext


@register
class Outliers(Analysis):
    """Low-density points: mean kNN distance beyond Tukey's far-out fence (Q3 + factor * IQR)."""

    name = "outliers"
    payload_fields = (PayloadField("outlier_score", "float"),)
    sets_flags = ("outlier",)
    report_parts = (Part("outliers", {}),)
    description = "Points with no close neighbour (mean cosine distance to their k nearest)."

    k: int = Field(10, ge=1, le=100)
    fence: float = Field(3.0, gt=0.0, description="IQRs above the third quartile that make an outlier")
    min_distance: float = Field(0.3, ge=0.0, le=2.0,
                                description="never flag a point whose mean neighbour distance is below this")

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        """Score every point by its neighbours' distance; flag beyond the fence."""
        distances = ctx.knn.top(min(self.k, ctx.knn.k)).distances
        score = distances.mean(axis=1).astype(np.float64)
        q1, q3 = np.quantile(score, [0.25, 0.75])
        threshold = max(float(q3 + self.fence * (q3 - q1)), self.min_distance)
        flag = score > threshold
        order = np.argsort(-score)[: min(20, int(flag.sum()))]
        report = {
            "k": self.k,
            "threshold": threshold,
            "count": int(flag.sum()),
            "median_score": float(np.median(score)),
            "top": [{"id": ctx.ids[i], "text": ctx.texts[i], "score": float(score[i])} for i in order],
        }
        return AnalysisResult(fields={"outlier_score": score}, flags={"outlier": flag},
                              report={"outliers": report}, score=1.0 - float(flag.mean()))
