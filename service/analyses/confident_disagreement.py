"""Confident disagreements: labelled points where the served model predicts another label with high confidence."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from service.analyses.base import Analysis, AnalysisResult, Part, register
from service.analyses.context import SPLITS, AnalysisContext


@register
class ConfidentDisagreement(Analysis):
    """The served model's prediction differs from the annotation with confidence >= threshold."""

    name = "confident_disagreement"
    sets_flags = ("confident_disagreement",)
    report_parts = (Part("confident_disagreements", {}),)
    needs = ("model",)
    description = "Labelled points the served model confidently assigns to another label."

    threshold: float = Field(0.8, gt=0.0, le=1.0, description="minimum confidence of the disagreeing prediction")
    examples: int = Field(20, ge=0, le=1000, description="examples listed in the report")

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        """Flag confident disagreements; list the most confident."""
        assert ctx.probs is not None
        prediction = ctx.probs.argmax(axis=1)
        confidence = ctx.probs.max(axis=1)
        flag = ctx.labelled & (prediction != ctx.labels) & (confidence >= self.threshold)
        order = np.flatnonzero(flag)
        order = order[np.argsort(-confidence[order], kind="stable")][: self.examples]
        names = ctx.label_names
        report = {
            "threshold": self.threshold,
            "count": int(flag.sum()),
            "by_split": {s: int((flag & ctx.split_mask(s)).sum()) for s in SPLITS},
            "examples": [
                {"id": ctx.ids[i], "text": ctx.texts[i], "label": names[ctx.labels[i]], "split": ctx.splits[i] or None,
                 "prediction": names[prediction[i]], "confidence": float(confidence[i])}
                for i in order
            ],
        }
        return AnalysisResult(flags={"confident_disagreement": flag}, report={"confident_disagreements": report},
                              score=1.0 - float(flag.sum()) / max(1, int(ctx.labelled.sum())))
