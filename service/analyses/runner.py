"""Analyze one dataset: load it once, build the kNN graph once, run every analysis, write results back.

Per-point results go to the points' payloads (service/fields.py, "analyze" section, and `flags`), so the
API can filter on them; the dataset-level views go to the report (service.analyses.report).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from embeddings.neighbors import build_knn_graph
from embeddings.store import Collection, load_all
from service.analyses.base import AnalysisResult, run_order
from service.analyses.context import AnalysisContext, build_context
from service.analyses.registry import DEFAULT_ANALYSES, is_partial, owned_by, run_analyses
from service.analyses.report import load_report, save_report
from service.diskspace import ensure_space
from service.errors import InvalidInput, NotFound
from service.progress import ProgressFn, no_progress

log = logging.getLogger(__name__)

# Every payload field analyze owns: a re-run removes the ones a point no longer has.
ANALYSIS_FIELDS = (
    "knn_agreement", "knn_majority_label", "knn_majority_share", "label_quality", "mislabel_score",
    "suggested_label", "suggestion_confidence", "suggestion_agreement", "triage", "reasons", "outlier_score",
    "duplicate_group", "cluster", "x", "y", "flags", "analysis_run",
)
# Flags set by people (review), not by analyses: kept across runs.
KEPT_FLAGS = ("reviewed",)
PREDICT_BATCH = 50_000


def new_run_id() -> str:
    """A sortable, unique id for one analysis run."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def model_inputs(ws, dataset: str, ids: Sequence[Any], texts: list[str], vectors: np.ndarray,
                 payloads: Sequence[dict[str, Any]], version: str | None = None
                 ) -> tuple[np.ndarray | None, np.ndarray | None, list[str], str | None]:
    """(probabilities of every point, out-of-fold probabilities or None, their label columns, model version).

    From the model registry when the dataset has a trained version; else from the predictions stored in
    the payloads (an external prediction API) when every point has one; else nothing.
    """
    from service.predictions.registry import ModelRegistry

    try:
        mv = ModelRegistry(ws.settings.models_dir).get(dataset, version)
    except NotFound:
        if version is not None:
            raise
        return _from_payloads(payloads)
    probs = np.vstack([
        np.asarray(mv.predict_proba(texts[s : s + PREDICT_BATCH], vectors[s : s + PREDICT_BATCH]), np.float64)
        for s in range(0, len(texts), PREDICT_BATCH)
    ]) if texts else np.zeros((0, len(mv.labels)))
    oof_ids, oof_proba = mv.oof()
    position = {pid: i for i, pid in enumerate(ids)}
    oof = np.full((len(ids), len(mv.labels)), np.nan)
    found = [(position[pid], j) for j, pid in enumerate(oof_ids) if pid in position]
    if found:
        rows, cols = map(np.array, zip(*found, strict=True))
        oof[rows] = oof_proba[cols]
    log.info("%s: model %s, out-of-fold probabilities for %d of %d points", dataset, mv.version, len(found), len(ids))
    return probs, (oof if found else None), mv.labels, mv.version


def _from_payloads(payloads: Sequence[dict[str, Any]]) -> tuple[np.ndarray | None, None, list[str], str | None]:
    if not payloads or any(not p.get("n_best") for p in payloads):
        return None, None, [], None
    labels = sorted({e["label"] for p in payloads for e in p["n_best"]})
    index = {label: j for j, label in enumerate(labels)}
    probs = np.zeros((len(payloads), len(labels)))
    for i, p in enumerate(payloads):
        for e in p["n_best"]:
            probs[i, index[e["label"]]] = float(e["probability"])
        rest = 1.0 - probs[i].sum()
        missing = probs[i] == 0
        if rest > 0 and missing.any():  # a truncated n-best list: spread what it left out evenly
            probs[i, missing] = rest / missing.sum()
    versions = {p.get("model_version") for p in payloads}
    log.info("no registered model: using the predictions stored in the payloads (%s)", sorted(map(str, versions)))
    return probs, None, labels, ",".join(sorted(map(str, versions)))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def iter_payload_updates(ctx: AnalysisContext, results: Mapping[str, AnalysisResult],
                         old: Sequence[dict[str, Any]], run_id: str, batch: int = 5_000,
                         owned: tuple[set[str], set[str]] | None = None,
                         ) -> Iterator[tuple[dict[Any, dict[str, Any]], dict[tuple[str, ...], list[Any]]]]:
    """Per batch of points: (point id -> fields to set, tuple of stale keys -> point ids to delete them from).

    `owned` (fields, flags) limits a partial run to what its analyses write: every other analysis' fields
    and flags are kept as the last full run left them. Batches keep memory flat: a million points' payload
    dicts at once would cost gigabytes.
    """
    replaceable = set(ANALYSIS_FIELDS) if owned is None else set(owned[0])
    columns: dict[str, list[np.ndarray]] = {}
    for result in results.values():
        for name, values in result.fields.items():
            columns.setdefault(name, []).append(np.asarray(values))
    flag_names = [flag for result in results.values() for flag in result.flags]
    flag_matrix = np.stack([mask for result in results.values() for mask in result.flags.values()], axis=1) \
        if flag_names else np.zeros((ctx.n, 0), bool)
    for start in range(0, ctx.n, batch):
        stop = min(start + batch, ctx.n)
        merged: dict[str, list[Any]] = {}
        for name, arrays in columns.items():
            values = [_plain(v) for v in arrays[0][start:stop].tolist()]
            for later in arrays[1:]:  # two analyses share a field (suggested_label): the later fills gaps
                values = [b if b is not None else a
                          for a, b in zip(values, (_plain(v) for v in later[start:stop].tolist()), strict=True)]
            merged[name] = values
        updates: dict[Any, dict[str, Any]] = {}
        stale: dict[tuple[str, ...], list[Any]] = {}
        for i in range(start, stop):
            j = i - start
            fields = {name: col[j] for name, col in merged.items() if col[j] is not None}
            previous = old[i]
            kept = {f for f in (previous.get("flags") or []) if f in KEPT_FLAGS or (owned and f not in owned[1])}
            if previous.get("review_status") == "ambiguous":  # a reviewer's verdict outlives the triage's
                kept.add("ambiguous")
            fields["flags"] = sorted({flag_names[f] for f in np.flatnonzero(flag_matrix[i])} | kept)
            fields["analysis_run"] = run_id
            pid = ctx.ids[i]
            updates[pid] = fields
            gone = tuple(sorted(k for k in replaceable if k in previous and k not in fields))
            if gone:
                stale.setdefault(gone, []).append(pid)
        yield updates, stale


def write_payloads(collection: Collection,
                   batches: Iterable[tuple[dict[Any, dict[str, Any]], dict[tuple[str, ...], list[Any]]]]) -> None:
    """Merge each batch's new fields into its points and remove the stale ones."""
    for updates, stale in batches:
        collection.set_payloads(updates)
        for keys, ids in stale.items():
            collection.delete_payload_keys(ids, list(keys))
    collection.flush()


def _counted(batches: Iterator[tuple[dict[Any, dict[str, Any]], dict[tuple[str, ...], list[Any]]]],
             progress: ProgressFn) -> Iterator[tuple[dict[Any, dict[str, Any]], dict[tuple[str, ...], list[Any]]]]:
    """The write-back batches, each heard by `progress` as it is handed on (so counted once written)."""
    for updates, stale in batches:
        yield updates, stale
        progress(advance=len(updates))


def analyze(ws, dataset: str, *, analyses: list[str] | None = None,
            params: Mapping[str, Mapping[str, Any]] | None = None, k: int = 15, knn_kind: str = "auto",
            exact_threshold: int = 20_000, seed: int = 0, model_version: str | None = None,
            write: bool = True, progress: ProgressFn = no_progress) -> dict[str, Any]:
    """Run the analyses on a dataset, write per-point fields and the report; returns the report. `progress`
    hears each stage (load, model, knn, analyses, write) and the points written."""
    stages: dict[str, float] = {}
    began = clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        stages[stage] = round(now - clock, 3)
        clock = now

    collection = ws.collection(dataset)
    progress(stage="load")
    ids, payloads, vectors = load_all(collection, with_vectors=True)
    if len(ids) < 2:
        raise InvalidInput(f"dataset {dataset!r} has {len(ids)} point(s); analysis needs at least 2")
    texts = [p.get("text") or "" for p in payloads]
    labels = [p.get("label") for p in payloads]
    splits = [p.get("split") for p in payloads]
    lap("load")
    progress(stage="model")
    probs, oof, model_labels, version = model_inputs(ws, dataset, ids, texts, vectors, payloads, model_version)
    lap("model")
    progress(stage="knn")
    knn = build_knn_graph(vectors, k=k, kind=knn_kind, exact_threshold=exact_threshold, seed=seed)
    lap("knn")
    ctx = build_context(ids, texts, vectors, labels, splits, probs=probs, model_labels=model_labels, oof=oof,
                        model_version=version, knn=knn, seed=seed)
    progress(stage="analyses")
    results, seconds, skipped = run_analyses(ctx, analyses or list(DEFAULT_ANALYSES), params)
    stages.update(seconds)
    clock = time.perf_counter()
    run_id = new_run_id()
    owned = owned_by(analyses) if analyses is not None and is_partial(analyses) else None
    if write:
        # Checked before the first point is written: a full disk mid-write-back would kill the process (SIGBUS).
        ensure_space(ws.settings, f"the analysis write-back of {dataset}")
        progress(stage="write", done=0, total=len(ids))
        write_payloads(collection, _counted(iter_payload_updates(ctx, results, payloads, run_id, owned=owned),
                                            progress))
        lap("write")
    report = assemble_report(ctx, results, skipped, run_id, dataset)
    if owned is not None:
        report = merge_partial_report(_previous_report(ws, dataset), report, run_order(list(analyses or [])), owned)
    stages["total"] = round(time.perf_counter() - began, 3)
    report["stages"] = stages
    if write:
        path = save_report(ws.settings, dataset, report)
        log.info("%s: analysis %s written to the payloads and %s in %.1f s", dataset, run_id, path, stages["total"])
        try:
            ws.catalog.update(dataset, last_analysis=run_id)
        except NotFound:  # pragma: no cover - dropped while we ran
            pass
    return report


# Which report keys each analysis fills (the rest describe the run itself).
REPORT_PARTS: dict[str, tuple[str, ...]] = {
    "clusters": ("clusters", "noise", "projection"), "duplicates": ("duplicates", "leakage"),
    "per_class": ("per_class", "confusion", "confused_pairs", "advice"), "label_issues": ("label_issues",),
    "knn_consistency": ("knn_consistency",), "triage": ("triage",), "outliers": ("outliers",),
    "confident_disagreement": ("confident_disagreements",), "suggestions": ("suggestions",),
}
SUMMARY_PARTS: dict[str, tuple[str, ...]] = {
    "clusters": ("clusters", "noise_points", "candidate_new_intents"), "triage": ("triage",),
    "duplicates": ("duplicate_groups", "conflicting_groups", "leaked_pairs"),
}


def _previous_report(ws, dataset: str) -> dict[str, Any] | None:
    try:
        return load_report(ws.settings, dataset)
    except NotFound:
        return None


def merge_partial_report(previous: dict[str, Any] | None, new: dict[str, Any], ran: list[str],
                         owned: tuple[set[str], set[str]]) -> dict[str, Any]:
    """The report of a partial run: its analyses' parts replace the previous report's, the others stay."""
    if previous is None:
        return new
    parts = {key for keys in REPORT_PARTS.values() for key in keys}
    merged = {**{k: v for k, v in previous.items() if k in parts}, **{k: v for k, v in new.items() if k not in parts}}
    summary = {**(previous.get("summary") or {}), **{k: v for k, v in new["summary"].items()
                                                      if k not in {s for keys in SUMMARY_PARTS.values() for s in keys}}}
    for name in ran:
        for key in REPORT_PARTS.get(name, ()):
            merged[key] = new.get(key)
        for key in SUMMARY_PARTS.get(name, ()):
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


def assemble_report(ctx: AnalysisContext, results: Mapping[str, AnalysisResult], skipped: Mapping[str, str],
                    run_id: str, dataset: str) -> dict[str, Any]:
    """The dataset-level report from every analysis' part."""
    part = {name: result.report for name, result in results.items()}
    flags = {flag: int(mask.sum()) for result in results.values() for flag, mask in result.flags.items()}
    clusters = part.get("clusters", {})
    dup = part.get("duplicates", {})
    per_class = part.get("per_class", {})
    cluster_rows = clusters.get("clusters", [])
    summary = {
        "points": ctx.n,
        "labelled": int(ctx.labelled.sum()),
        "unlabelled": int((~ctx.labelled).sum()),
        "labels": ctx.n_labels,
        "flags": flags,
        "triage": part.get("triage", {}).get("counts", {}),
        "clusters": len(cluster_rows),
        "noise_points": (clusters.get("noise") or {}).get("size", 0),
        "candidate_new_intents": sum(1 for c in cluster_rows if c["candidate_new_intent"]),
        "duplicate_groups": dup.get("groups", 0),
        "conflicting_groups": dup.get("conflicting_groups", 0),
        "leaked_pairs": dup.get("leakage", {}).get("pairs", 0),
        "scores": {name: result.summary for name, result in results.items() if result.summary is not None},
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
        "clusters": cluster_rows,
        "noise": clusters.get("noise"),
        "projection": clusters.get("projection"),
        "duplicates": {key: value for key, value in dup.items() if key != "leakage"},
        "leakage": dup.get("leakage", {}),
        "per_class": per_class.get("per_class", {}),
        "confusion": per_class.get("confusion", {}),
        "confused_pairs": per_class.get("confused_pairs", []),
        "advice": per_class.get("advice", {"merge": [], "split": []}),
        "label_issues": part.get("label_issues", {}),
        "knn_consistency": part.get("knn_consistency", {}),
        "triage": part.get("triage", {}),
        "outliers": part.get("outliers", {}),
        "confident_disagreements": part.get("confident_disagreement", {}),
        "suggestions": part.get("suggestions", {}),
        "summary": summary,
    }
