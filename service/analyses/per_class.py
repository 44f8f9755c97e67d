"""Per-class views: precision/recall/F1 and confusion per split, the most confused pairs with examples, and
advice: intents to merge (heavy mutual confusion, overlapping neighbourhoods) or split (sub-clusters that
the model handles very differently)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from service.analyses.base import Analysis, AnalysisResult, Part, register
from service.analyses.clusters import ClusterMap
from service.analyses.context import SPLITS, AnalysisContext
from service.analyses.knn_consistency import KnnVote
from service.predictions.metrics import label_scores


def split_metrics(y: np.ndarray, pred: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Per-label precision, recall, F1 and support, plus accuracy and macro F1 (over the labels in truth)."""
    p, r, f, s, predicted = label_scores(y, pred, len(names))
    present = s > 0
    return {
        "n": int(len(y)),
        "accuracy": float((y == pred).mean()) if len(y) else None,
        "macro_f1": float(f[present].mean()) if present.any() else None,
        "labels": {names[j]: {"precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]),
                              "support": int(s[j])} for j in range(len(names)) if s[j] or predicted[j]},
    }


@register
class PerClass(Analysis):
    """Metrics and confusion per split; confused pairs; merge and split candidates."""

    name = "per_class"
    report_parts = (Part("per_class", {}), Part("confusion", {}), Part("confused_pairs", []),
                    Part("advice", {"merge": [], "split": []}))
    needs = ("model", "knn_consistency")
    optional = ("clusters",)
    description = "Per-intent metrics per split, most-confused pairs, merge and split candidates."

    pairs: int = Field(15, ge=1, le=500, description="confused pairs listed")
    examples: int = Field(3, ge=0, le=50, description="example texts per direction of a pair")
    merge_rate: float = Field(0.1, gt=0.0, le=1.0, description="mutual confusion rate of a merge candidate")
    merge_overlap: float = Field(0.1, gt=0.0, le=1.0, description="neighbourhood overlap of a merge candidate")
    split_gap: float = Field(0.2, gt=0.0, le=1.0, description="error-rate gap between sub-clusters to split")

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        """Metrics per split, confusion, confused pairs and advice."""
        honest = ctx.honest_probs()
        assert honest is not None and ctx.probs is not None  # needs = ("model", ...): predictions are there
        pred = honest.argmax(axis=1)
        served_pred = ctx.probs.argmax(axis=1)
        names = ctx.label_names
        c = ctx.n_labels
        per_split, confusion = {}, {}
        for split in SPLITS:
            rows = ctx.labelled & ctx.split_mask(split)
            if not rows.any():
                continue
            # Training points were seen by the served model: judge them out-of-fold. Evaluation splits get
            # the served model itself, as the model's own test metrics do.
            served = split != "training"
            y, p = ctx.labels[rows], (served_pred if served else pred)[rows]
            metrics = split_metrics(y, p, names)
            metrics["basis"] = "served model" if served or ctx.oof is None else "out-of-fold"
            per_split[split] = metrics
            matrix = np.zeros((c, c), np.int64)
            np.add.at(matrix, (y, p), 1)
            used = np.flatnonzero(matrix.sum(axis=0) + matrix.sum(axis=1))
            confusion[split] = {"labels": [names[j] for j in used], "matrix": matrix[np.ix_(used, used)].tolist()}
        rows = np.flatnonzero(ctx.labelled)
        matrix = np.zeros((c, c), np.int64)
        np.add.at(matrix, (ctx.labels[rows], pred[rows]), 1)
        support = matrix.sum(axis=1)
        pairs = self._pairs(ctx, matrix, pred, support)
        advice = {"merge": self._merge(ctx, matrix, support), "split": self._split(ctx, pred)}
        report = {"per_class": per_split, "confusion": confusion, "confused_pairs": pairs, "advice": advice}
        return AnalysisResult(report=report)

    def _pairs(self, ctx, matrix, pred, support) -> list[dict[str, Any]]:
        names = ctx.label_names
        sym = matrix + matrix.T
        a_idx, b_idx = np.triu_indices(len(names), k=1)
        totals = sym[a_idx, b_idx]
        order = np.argsort(-totals, kind="stable")
        out = []
        for j in order[: self.pairs]:
            a, b = int(a_idx[j]), int(b_idx[j])
            if totals[j] == 0:
                break
            out.append({
                "a": names[a], "b": names[b], "count": int(totals[j]),
                "a_as_b": int(matrix[a, b]), "b_as_a": int(matrix[b, a]),
                "rate": float(totals[j] / max(1, support[a] + support[b])),
                "examples_a_as_b": self._examples(ctx, pred, a, b),
                "examples_b_as_a": self._examples(ctx, pred, b, a),
            })
        return out

    def _examples(self, ctx, pred, true: int, predicted: int) -> list[dict[str, Any]]:
        rows = np.flatnonzero((ctx.labels == true) & (pred == predicted))[: self.examples]
        return [{"id": ctx.ids[i], "text": ctx.texts[i]} for i in rows]

    def _merge(self, ctx, matrix, support) -> list[dict[str, Any]]:
        knn = ctx.output("knn_consistency", KnnVote)
        votes, weight = knn.votes, knn.weight
        safe = np.where(weight > 0, weight, 1.0)[:, None]
        share = votes / safe  # each point's neighbourhood, as label shares
        out = []
        for a in range(ctx.n_labels):
            for b in range(a + 1, ctx.n_labels):
                if not (matrix[a, b] and matrix[b, a]):
                    continue
                rate = (matrix[a, b] + matrix[b, a]) / max(1, support[a] + support[b])
                if rate < self.merge_rate:
                    continue
                rows_a, rows_b = ctx.labels == a, ctx.labels == b
                overlap = float((share[rows_a, b].mean() + share[rows_b, a].mean()) / 2)
                if overlap >= self.merge_overlap:
                    out.append({"labels": [ctx.label_names[a], ctx.label_names[b]], "confusion_rate": float(rate),
                                "neighbourhood_overlap": overlap})
        return sorted(out, key=lambda m: -m["confusion_rate"])

    def _split(self, ctx, pred) -> list[dict[str, Any]]:
        if "clusters" not in ctx.results:
            return []
        clusters = ctx.output("clusters", ClusterMap).clusters
        names_by_id = {row["id"]: row["name"] for row in ctx.results["clusters"].report["clusters"]}
        out = []
        for a in range(ctx.n_labels):
            rows = ctx.labelled & (ctx.labels == a) & (clusters >= 0)
            total = int((ctx.labels == a).sum())
            if not rows.any():
                continue
            ids, counts = np.unique(clusters[rows], return_counts=True)
            big = ids[counts >= max(5, 0.15 * total)]
            if len(big) < 2:
                continue
            parts: list[dict[str, Any]] = []
            for cid in big:
                members = rows & (clusters == cid)
                parts.append({"cluster": int(cid), "name": names_by_id.get(int(cid)), "points": int(members.sum()),
                              "error_rate": float((pred[members] != a).mean())})
            errors = [p["error_rate"] for p in parts]
            if max(errors) - min(errors) >= self.split_gap:
                out.append({"label": ctx.label_names[a], "clusters": sorted(parts, key=lambda p: -p["points"]),
                            "error_gap": float(max(errors) - min(errors))})
        return sorted(out, key=lambda s: -s["error_gap"])
