"""Near-duplicates and leakage: exact (normalised text) and near (cosine) duplicate groups, conflicting
labels inside a group, groups spanning training and an evaluation split, and what the leak does to accuracy."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np
from pydantic import Field

from service.analyses.base import Analysis, AnalysisResult, Part, PayloadField, register
from service.analyses.context import AnalysisContext

_NON_WORD = re.compile(r"[\W_]+")
EVAL_SPLITS = ("validation", "testing")


def text_key(text: str) -> str:
    """Case, punctuation and spacing removed: "Hi,  there!" and "hi there" are the same text."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def duplicate_groups(texts: list[str], knn_indices: np.ndarray, knn_sims: np.ndarray,
                     threshold: float) -> np.ndarray:
    """Group id per point (-1 = no duplicate): connected components of equal-text and similar-vector edges.

    Ids are dense and ordered by group size, largest first.
    """
    import pandas as pd
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(texts)
    codes, _ = pd.Series([text_key(t) for t in texts]).factorize()
    # Each point links to the first point with the same normalised text.
    first = pd.Series(np.arange(n)).groupby(codes).transform("min").to_numpy()
    near = knn_sims >= threshold
    rows = np.concatenate([np.arange(n), np.repeat(np.arange(n), knn_indices.shape[1])[near.reshape(-1)]])
    cols = np.concatenate([first, knn_indices[near]])
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n)).tocsr()
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component)
    in_group = sizes[component] >= 2
    group = np.full(n, -1, np.int64)
    if in_group.any():
        big = np.flatnonzero(sizes >= 2)
        order = big[np.argsort(-sizes[big], kind="stable")]
        dense = np.full(len(sizes), -1, np.int64)
        dense[order] = np.arange(len(order))
        group[in_group] = dense[component[in_group]]
    return group


@register
class Duplicates(Analysis):
    """Duplicate groups, conflicting labels within them, and training/evaluation leakage with its effect."""

    name = "duplicates"
    payload_fields = (PayloadField("duplicate_group", "integer"),)
    sets_flags = ("duplicate", "conflicting_duplicate", "leak")
    report_parts = (Part("duplicates", {}), Part("leakage", {}))
    summary_parts = (Part("duplicate_groups", 0), Part("conflicting_groups", 0), Part("leaked_pairs", 0))
    description = "Exact and near-duplicate texts, conflicting duplicates, and leakage across splits."

    threshold: float = Field(0.95, gt=0.0, le=1.0, description="cosine similarity of a near-duplicate")
    examples: int = Field(50, ge=0, le=10_000, description="groups and pairs listed in the report")

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        """Group duplicates, then judge each group's labels and splits."""
        group = duplicate_groups(ctx.texts, ctx.knn.indices, ctx.knn.similarities, self.threshold)
        n_groups = int(group.max()) + 1 if (group >= 0).any() else 0
        members = np.flatnonzero(group >= 0)
        by_group: dict[int, list[int]] = {}
        for i in members[np.argsort(group[members], kind="stable")]:
            by_group.setdefault(int(group[i]), []).append(int(i))
        # Points without a split train the model, so they count as training here.
        split = np.where(ctx.splits == "", "training", ctx.splits)
        conflicting = np.zeros(ctx.n, bool)
        leak = np.zeros(ctx.n, bool)
        conflicting_groups, pairs = [], []
        for g, rows in by_group.items():
            labels = {int(ctx.labels[i]) for i in rows if ctx.labels[i] >= 0}
            if len(labels) > 1:
                conflicting[[i for i in rows if ctx.labels[i] >= 0]] = True
                conflicting_groups.append(g)
            train = [i for i in rows if split[i] == "training"]
            evaluation = [i for i in rows if split[i] in EVAL_SPLITS]
            if train and evaluation:
                leak[rows] = True
                sims = ctx.vectors[evaluation] @ ctx.vectors[train].T
                for e, row in zip(evaluation, sims, strict=True):
                    pairs.append((e, train[int(row.argmax())], float(row.max())))
        names = ctx.label_names
        duplicates: dict[str, Any] = {
            "threshold": self.threshold,
            "groups": n_groups,
            "points_in_groups": int(len(members)),
            "exact_groups": int(sum(len({_key(ctx, i) for i in rows}) == 1 for rows in by_group.values())),
            "conflicting_groups": len(conflicting_groups),
            "largest": [self._group(ctx, g, by_group[g], split) for g in list(by_group)[: self.examples]],
            "conflicting": [self._group(ctx, g, by_group[g], split) for g in conflicting_groups[: self.examples]],
        }
        leakage = {
            "pairs": len(pairs),
            "by_split": dict(Counter(split[e] for e, _, _ in pairs)),
            "examples": [
                {"id": ctx.ids[e], "split": split[e], "text": ctx.texts[e], "label": _name(names, ctx.labels[e]),
                 "training_id": ctx.ids[t], "training_text": ctx.texts[t],
                 "training_label": _name(names, ctx.labels[t]), "similarity": round(s, 4)}
                for e, t, s in sorted(pairs, key=lambda p: -p[2])[: self.examples]
            ],
            "effect": self._effect(ctx, {e for e, _, _ in pairs}, split),
        }
        dup_group = group.astype(object)
        dup_group[group < 0] = None
        return AnalysisResult(
            fields={"duplicate_group": dup_group},
            flags={"duplicate": group >= 0, "conflicting_duplicate": conflicting, "leak": leak},
            report={"duplicates": duplicates, "leakage": leakage},
            summary_parts={"duplicate_groups": n_groups, "conflicting_groups": len(conflicting_groups),
                           "leaked_pairs": len(pairs)},
            score=1.0 - float((conflicting | leak).mean()) if ctx.n else 1.0,
        )

    @staticmethod
    def _group(ctx: AnalysisContext, g: int, rows: list[int], split: np.ndarray) -> dict[str, Any]:
        names = ctx.label_names
        return {
            "id": g, "size": len(rows),
            "labels": dict(Counter(_name(names, ctx.labels[i]) for i in rows)),
            "splits": dict(Counter(str(split[i]) for i in rows)),
            "points": [{"id": ctx.ids[i], "text": ctx.texts[i], "label": _name(names, ctx.labels[i]),
                        "split": str(split[i])} for i in rows[:5]],
        }

    @staticmethod
    def _effect(ctx: AnalysisContext, leaked: set[int], split: np.ndarray) -> dict[str, Any]:
        """Accuracy of the served model per evaluation split with and without its leaked points."""
        if ctx.probs is None:
            return {}
        correct = ctx.probs.argmax(axis=1) == ctx.labels
        leaked_mask = np.zeros(ctx.n, bool)
        leaked_mask[list(leaked)] = True
        out: dict[str, dict[str, Any]] = {}
        for s in EVAL_SPLITS:
            rows = ctx.labelled & (split == s)
            if not rows.any():
                continue
            clean = rows & ~leaked_mask
            accuracy = float(correct[rows].mean())
            without = float(correct[clean].mean()) if clean.any() else None
            out[s] = {
                "n": int(rows.sum()), "leaked": int((rows & leaked_mask).sum()),
                "accuracy": accuracy, "accuracy_without_leaked": without,
            }
            if without is not None:
                out[s]["change"] = without - accuracy
        return out


def _key(ctx: AnalysisContext, i: int) -> str:
    return text_key(ctx.texts[i])


def _name(names: list[str], code: int) -> str | None:
    return names[code] if code >= 0 else None
