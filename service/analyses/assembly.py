"""The report of one analysis run, put together from the parts each analysis declares, and the report of a
partial run (`analyze --only`) merged into the previous one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from service.analyses.base import REGISTRY, AnalysisResult, Part
from service.analyses.context import AnalysisContext
from service.analyses.registry import registered

# Where the built-in analyses' parts have always sat in the report JSON, kept so the file and the API's
# answer stay byte-for-byte what they were. A part not named here still gets written, after these, in run
# order: leaving it out changes its place, nothing else.
PART_ORDER = (
    "clusters", "noise", "projection", "duplicates", "leakage", "per_class", "confusion", "confused_pairs",
    "advice", "label_issues", "knn_consistency", "triage", "outliers", "confident_disagreements", "suggestions",
)
SUMMARY_ORDER = ("triage", "clusters", "noise_points", "candidate_new_intents", "duplicate_groups",
                 "conflicting_groups", "leaked_pairs")


def _ordered(parts: list[Part], order: tuple[str, ...]) -> list[Part]:
    rank = {name: i for i, name in enumerate(order)}
    return [p for _, p in sorted(enumerate(parts), key=lambda ip: (rank.get(ip[1].name, len(order)), ip[0]))]


def _parts(results: Mapping[str, AnalysisResult], summary: bool) -> dict[str, Any]:
    """Every registered analysis' declared report (or summary) parts, in their place: the analysis' value
    where it ran and produced one, else the part's empty value."""
    declared = {cls.name: cls.summary_parts if summary else cls.report_parts for cls in registered()}
    owner = {p.name: name for name, parts in declared.items() for p in parts}
    out: dict[str, Any] = {}
    for part in _ordered([p for parts in declared.values() for p in parts], SUMMARY_ORDER if summary else PART_ORDER):
        result = results.get(owner[part.name])
        produced = (result.summary_parts if summary else result.report) if result is not None else {}
        out[part.name] = produced[part.name] if part.name in produced else part.empty_value()
    return out


def report_parts_of(name: str) -> tuple[str, ...]:
    """The report keys an analysis fills."""
    return tuple(p.name for p in REGISTRY[name].report_parts)


def summary_parts_of(name: str) -> tuple[str, ...]:
    """The summary keys an analysis fills."""
    return tuple(p.name for p in REGISTRY[name].summary_parts)


def assemble_report(ctx: AnalysisContext, results: Mapping[str, AnalysisResult], skipped: Mapping[str, str],
                    run_id: str, dataset: str) -> dict[str, Any]:
    """The dataset-level report: the run's own keys, every analysis' parts, and the summary."""
    flags = {flag: int(mask.sum()) for result in results.values() for flag, mask in result.flags.items()}
    summary = {
        "points": ctx.n,
        "labelled": int(ctx.labelled.sum()),
        "unlabelled": int((~ctx.labelled).sum()),
        "labels": ctx.n_labels,
        "flags": flags,
        **_parts(results, summary=True),
        "scores": {name: result.score for name, result in results.items() if result.score is not None},
    }
    return {
        "run_id": run_id,
        "dataset": dataset,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_version": ctx.model_version,
        "n_points": ctx.n,
        "label_names": ctx.label_names,
        "analyses": list(results),
        "skipped": dict(skipped),
        "knn": {"kind": ctx.knn.kind, "k": ctx.knn.k, "recall": ctx.knn.recall, "recall_sample": ctx.knn.recall_sample,
                "seconds": round(ctx.knn.seconds, 3)},
        **_parts(results, summary=False),
        "summary": summary,
    }


def merge_partial_report(previous: dict[str, Any] | None, new: dict[str, Any], ran: list[str],
                         owned: tuple[set[str], set[str]]) -> dict[str, Any]:
    """The report of a partial run: its analyses' parts replace the previous report's, the others stay."""
    if previous is None:
        return new
    parts = {p.name for cls in REGISTRY.values() for p in cls.report_parts}
    summary_parts = {p.name for cls in REGISTRY.values() for p in cls.summary_parts}
    merged = {**{k: v for k, v in previous.items() if k in parts}, **{k: v for k, v in new.items() if k not in parts}}
    summary = {**(previous.get("summary") or {}), **{k: v for k, v in new["summary"].items()
                                                      if k not in summary_parts}}
    for name in ran:
        for key in report_parts_of(name):
            merged[key] = new.get(key)
        for key in summary_parts_of(name):
            summary[key] = new["summary"].get(key)
    old_summary = previous.get("summary") or {}
    summary["flags"] = {**{f: n for f, n in (old_summary.get("flags") or {}).items() if f not in owned[1]},
                        **new["summary"]["flags"]}
    summary["scores"] = {**{a: v for a, v in (old_summary.get("scores") or {}).items() if a not in ran},
                         **new["summary"]["scores"]}
    merged["summary"] = summary
    merged["analyses"] = list(dict.fromkeys([*(previous.get("analyses") or []), *new["analyses"]]))
    merged["skipped"] = {**{a: why for a, why in (previous.get("skipped") or {}).items() if a not in ran},
                         **new["skipped"]}
    merged["partial"] = {"analyses": ran, "previous_run": previous.get("run_id")}
    return merged
