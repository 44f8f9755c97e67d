"""Label issues: cleanlab on the out-of-fold probabilities, then one mislabel score from model and neighbours.

The combined posterior treats the kNN vote as a second classifier whose vote is shrunk toward the model's
belief where neighbours are few or far: q = (votes + beta * p) / (weight + beta), r = w * p + (1 - w) * q.
mislabel_score = 1 - r[label]; suggested_label = the best other label under r when the point is suspect or r
prefers another label, else the label itself. Flagged: as many points as cleanlab estimates are mislabelled,
taken most suspect first by mislabel_score (so the flag inherits cleanlab's count and our ranking), and
any point whose model and neighbours both name the same other label.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from service.analyses.base import Analysis, AnalysisResult, Part, PayloadField, register
from service.analyses.context import AnalysisContext
from service.analyses.knn_consistency import KnnVote

log = logging.getLogger(__name__)


def cleanlab_scores(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cleanlab's label-quality score (self-confidence) and its label-issue mask, for labelled rows."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    probs = np.clip(probs, 1e-12, None)
    probs = probs / probs.sum(axis=1, keepdims=True)
    quality = get_label_quality_scores(labels, probs, method="self_confidence")
    with warnings.catch_warnings():
        # cleanlab warns for labels with few examples; the report carries the counts instead.
        warnings.simplefilter("ignore")
        try:
            issues = find_label_issues(labels, probs, filter_by="prune_by_noise_rate", n_jobs=1)
        except (ValueError, IndexError) as exc:  # e.g. a label with a single example
            log.warning("cleanlab find_label_issues failed (%s); flagging by self-confidence instead", exc)
            issues = quality < 1.0 / probs.shape[1]
    return quality, np.asarray(issues, dtype=bool)


def combined_posterior(probs: np.ndarray, votes: np.ndarray, weight: np.ndarray, model_weight: float,
                       prior_strength: float) -> np.ndarray:
    """Model probabilities blended with the kNN vote, the vote shrunk toward the model where it is thin."""
    q = (votes + prior_strength * probs) / (weight[:, None] + prior_strength)
    return model_weight * probs + (1.0 - model_weight) * q


@dataclass(frozen=True)
class CleanlabVerdict:
    """cleanlab's own label-issue mask (before the combined score re-ranks it), aligned with the context rows."""

    issue: np.ndarray


@register
class LabelIssues(Analysis):
    """cleanlab's label quality and issues; a combined mislabel score, a suggested label and reasons."""

    name = "label_issues"
    payload_fields = (PayloadField("label_quality", "float"),
                      PayloadField("mislabel_score", "float", index="float", column=True),
                      PayloadField("suggested_label", "keyword", index="keyword", column=True),
                      PayloadField("reasons", "keywords"))
    sets_flags = ("label_issue",)
    report_parts = (Part("label_issues", {}),)
    output = CleanlabVerdict
    needs = ("model", "knn_consistency")
    description = "Likely mislabelled points from out-of-fold probabilities and the labelled neighbourhood."

    model_weight: float = Field(0.5, ge=0.0, le=1.0, description="weight of the model in the combined score")
    prior_strength: float = Field(1.0, ge=0.0, description="pseudo-votes of the model added to the kNN vote")
    flag_by: Literal["estimate", "threshold"] = Field(
        "estimate", description="estimate: flag as many points as cleanlab estimates are mislabelled, the most "
        "suspect by the combined score; threshold: flag points whose score reaches flag_threshold")
    combined_count: bool = Field(True, description="flag_by=estimate: count issues also on the combined posterior")
    flag_threshold: float = Field(0.5, ge=0.0, le=1.0, description="mislabel score that flags (flag_by=threshold)")

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        """cleanlab's scores, the combined score, the flag, suggestions and reasons."""
        knn = ctx.output("knn_consistency", KnnVote)
        honest = ctx.honest_probs()
        assert honest is not None  # guaranteed by needs=("model",)
        rows = np.flatnonzero(ctx.labelled)
        y = ctx.labels[rows]
        p = honest[rows]
        n = ctx.n
        quality = np.full(n, np.nan)
        cleanlab_issue = np.zeros(n, bool)
        if len(rows):
            q, issues = cleanlab_scores(y, p)
            quality[rows], cleanlab_issue[rows] = q, issues
        r = combined_posterior(p, knn.votes[rows], knn.weight[rows], self.model_weight,
                               self.prior_strength)
        own = r[np.arange(len(rows)), y]
        best = r.argmax(axis=1)
        # cleanlab's count of issues is a good estimate of how many there are; our ranking picks which. Its
        # count on the combined posterior too: the neighbours' evidence also informs how many.
        budget = int(cleanlab_issue.sum())
        if self.flag_by == "estimate" and self.combined_count and len(rows):
            budget = max(budget, int(cleanlab_scores(y, r)[1].sum()))
        r[np.arange(len(rows)), y] = -1.0  # in place: r is not needed whole again, and it is large
        best_other = r.argmax(axis=1)
        del r
        score = np.full(n, np.nan)
        score[rows] = 1.0 - own
        if self.flag_by == "estimate":
            suspect = np.zeros(len(rows), bool)
            suspect[np.argsort(own, kind="stable")[:budget]] = True
        else:
            suspect = 1.0 - own >= self.flag_threshold
        flag = np.zeros(n, bool)
        flag[rows] = suspect
        names = np.array(ctx.label_names, dtype=object)
        suggested = np.full(n, None, dtype=object)
        suggested[rows] = np.where(suspect | (best != y), names[best_other], names[best])
        reasons = np.full(n, None, dtype=object)
        explain = np.flatnonzero(suspect | cleanlab_issue[rows] | (best != y))
        for j in explain:
            reasons[rows[j]] = self._reasons(ctx, rows[j], p[j], knn, cleanlab_issue[rows[j]], quality[rows[j]])
        report = {
            "checked": int(len(rows)),
            "flagged": int(flag.sum()),
            "cleanlab_issues": int(cleanlab_issue.sum()),
            "flagged_by_both": int((flag & cleanlab_issue).sum()),
            "model_weight": self.model_weight,
            "probabilities": "out-of-fold" if ctx.oof is not None else "served model",
        }
        return AnalysisResult(
            fields={"label_quality": quality, "mislabel_score": score, "suggested_label": suggested,
                    "reasons": reasons},
            flags={"label_issue": flag},
            output=CleanlabVerdict(cleanlab_issue),
            report={"label_issues": report},
            score=1.0 - float(flag.sum()) / max(1, len(rows)),
        )

    @staticmethod
    def _reasons(ctx: AnalysisContext, i: int, p: np.ndarray, knn: KnnVote, cleanlab_issue: bool,
                 quality: float) -> list[str]:
        names = ctx.label_names
        top = int(p.argmax())
        out = [f"model: {names[top]} {p[top]:.2f} (label {names[ctx.labels[i]]} {p[ctx.labels[i]]:.2f})"]
        count = int(knn.count[i])
        if count and knn.majority[i] >= 0:
            out.append(f"{int(knn.majority_count[i])} of {count} neighbours: {names[knn.majority[i]]}")
        else:
            out.append("no labelled neighbours")
        if cleanlab_issue:
            out.append(f"cleanlab: label issue (quality {quality:.2f})")
        return out
