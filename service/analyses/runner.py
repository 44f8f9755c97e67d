"""Analyze one dataset: load it once, build the kNN graph once, run every analysis, write results back.

Per-point results go to the points' payloads (the fields and flags each analysis declares), so the API can
filter on them; the dataset-level views go to the report (service.analyses.assembly, .report). The
write-back is marked before the first point is written and cleared after the report, so a run killed in
between is seen (service.analyses.report.interrupted_writeback) instead of leaving points no report describes.
"""

from __future__ import annotations

import gc
import logging
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from embeddings.neighbors import build_knn_graph
from embeddings.store import Collection, load_all
from service.analyses.assembly import assemble_report, merge_partial_report
from service.analyses.base import AnalysisResult, run_order
from service.analyses.context import AnalysisContext, build_context
from service.analyses.registry import analysis_fields, default_analyses, is_partial, owned_by, run_analyses
from service.analyses.report import (
    begin_writeback,
    end_writeback,
    incomplete_message,
    interrupted_writeback,
    load_report,
    save_report,
)
from service.diskspace import ensure_space
from service.errors import Conflict, InvalidInput, NotFound
from service.jsonable import jsonable
from service.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from service.workspace import Workspace

log = logging.getLogger(__name__)

# Flags set by people (review), not by analyses: kept across runs.
KEPT_FLAGS = ("reviewed",)
PREDICT_BATCH = 50_000
WRITE_BATCH = 5_000


def new_run_id() -> str:
    """A sortable, unique id for one analysis run."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def model_inputs(ws: Workspace, dataset: str, ids: Sequence[Any], texts: list[str], vectors: np.ndarray,
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


# What analyze reads of each point: its inputs, what a re-run keeps (flags, a reviewer's status) and the
# fields it owns (a full re-run removes those a point no longer gets). Not the source record, its JSON, the
# content hash or the n-best list: at a million points those are most of each payload's memory.
READ_FIELDS = ("text", "label", "split", "review_status")
STORED_PREDICTION_FIELDS = ("n_best", "model_version")


def _fields_read(ws: Workspace, dataset: str, version: str | None) -> tuple[str, ...]:
    """The payload fields analyze loads; the stored predictions too when no model version is registered."""
    from service.predictions.registry import ModelRegistry

    try:
        ModelRegistry(ws.settings.models_dir).get(dataset, version)
        stored: tuple[str, ...] = ()
    except NotFound:
        stored = STORED_PREDICTION_FIELDS
    return tuple(dict.fromkeys((*READ_FIELDS, *stored, *analysis_fields())))


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


def iter_payload_updates(ctx: AnalysisContext, results: Mapping[str, AnalysisResult],
                         old: Sequence[dict[str, Any]], run_id: str, batch: int | None = None,
                         owned: tuple[set[str], set[str]] | None = None,
                         ) -> Iterator[tuple[dict[Any, dict[str, Any]], dict[tuple[str, ...], list[Any]]]]:
    """Per batch of points: (point id -> fields to set, tuple of stale keys -> point ids to delete them from).

    `owned` (fields, flags) limits a partial run to what its analyses write: every other analysis' fields
    and flags are kept as the last full run left them. Batches keep memory flat: a million points' payload
    dicts at once would cost gigabytes.
    """
    batch = batch or WRITE_BATCH
    replaceable = set(analysis_fields()) if owned is None else set(owned[0])
    columns: dict[str, list[np.ndarray]] = {}
    for result in results.values():
        for name, column in result.fields.items():
            columns.setdefault(name, []).append(np.asarray(column))
    flag_names = [flag for result in results.values() for flag in result.flags]
    flag_matrix = np.stack([mask for result in results.values() for mask in result.flags.values()], axis=1) \
        if flag_names else np.zeros((ctx.n, 0), bool)
    for start in range(0, ctx.n, batch):
        stop = min(start + batch, ctx.n)
        merged: dict[str, list[Any]] = {}
        for name, arrays in columns.items():
            values = jsonable(arrays[0][start:stop])
            for later in arrays[1:]:  # two analyses share a field (suggested_label): the later fills gaps
                values = [b if b is not None else a
                          for a, b in zip(values, jsonable(later[start:stop]), strict=True)]
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


REINDEX_ABOVE = 20_000  # ingest's threshold: below it a plain scan answers a search in a few ms


def write_payloads(collection: Collection,
                   batches: Iterable[tuple[dict[Any, dict[str, Any]], dict[tuple[str, ...], list[Any]]]]) -> None:
    """Merge each batch's new fields into its points and remove the stale ones."""
    for updates, stale in batches:
        collection.set_payloads(updates)
        for keys, ids in stale.items():
            collection.delete_payload_keys(ids, list(keys))
    collection.flush()


def reindex(collection: Collection, reindex_above: int | None = None, progress: ProgressFn = no_progress) -> bool:
    """Rebuild the vector index of a collection whose every payload was rewritten; whether it did.

    The embedded store moves a point whose payload changes out of its indexed segment (qdrant-edge 0.9 does
    so even with no payload index): with every point rewritten (predict, then the write-back), each search
    scanned every vector until the index was rebuilt (100k points: 44 ms a search against 1.2 ms)."""
    if collection.count() < (REINDEX_ABOVE if reindex_above is None else reindex_above):
        return False
    progress(stage="index")
    collection.optimize()
    return True


def _counted(batches: Iterator[tuple[dict[Any, dict[str, Any]], dict[tuple[str, ...], list[Any]]]],
             progress: ProgressFn) -> Iterator[tuple[dict[Any, dict[str, Any]], dict[tuple[str, ...], list[Any]]]]:
    """The write-back batches, each heard by `progress` as it is handed on (so counted once written)."""
    for updates, stale in batches:
        yield updates, stale
        progress(advance=len(updates))


def analyze(ws: Workspace, dataset: str, *, analyses: list[str] | None = None,
            params: Mapping[str, Mapping[str, Any]] | None = None, k: int = 15, knn_kind: str = "auto",
            exact_threshold: int = 20_000, seed: int = 0, model_version: str | None = None,
            write: bool = True, progress: ProgressFn = no_progress) -> dict[str, Any]:
    """Run the analyses on a dataset, write per-point fields and the report; returns the report. `progress`
    hears each stage (load, model, knn, analyses, write, index) and the points written."""
    began = time.perf_counter()
    report = _analyse(ws, dataset, analyses=analyses, params=params, k=k, knn_kind=knn_kind,
                      exact_threshold=exact_threshold, seed=seed, model_version=model_version, write=write,
                      progress=progress)
    if not write:
        return report
    # The vector index is rebuilt once the analysis' arrays are gone (they were _analyse's): at a million
    # points they held over 15 GB, and the rebuild needs the memory (6.4 GB anonymous once they are freed).
    # The points and the saved report already agree here; a run killed in the rebuild leaves them so,
    # searching by scan.
    gc.collect()
    started = time.perf_counter()
    if reindex(ws.collection(dataset), progress=progress):
        report["stages"]["index"] = round(time.perf_counter() - started, 3)
    end_writeback(ws.settings, dataset)  # the report describes the points again
    log.info("%s: analysis %s written to the payloads and the report in %.1f s (index rebuilt in %s s)", dataset,
             report["run_id"], time.perf_counter() - began, report["stages"].get("index", "-"))
    try:
        ws.catalog.update(dataset, last_analysis=report["run_id"])
    except NotFound:  # pragma: no cover - dropped while we ran
        pass
    return report


def _analyse(ws: Workspace, dataset: str, *, analyses: list[str] | None, params: Mapping[str, Mapping[str, Any]] | None,
             k: int, knn_kind: str, exact_threshold: int, seed: int, model_version: str | None, write: bool,
             progress: ProgressFn) -> dict[str, Any]:
    """`analyze` up to the saved report: load, model, kNN graph, analyses, write-back (marked as begun)."""
    stages: dict[str, float] = {}
    began = clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        stages[stage] = round(now - clock, 3)
        clock = now

    collection = ws.collection(dataset)
    owned = owned_by(analyses) if analyses is not None and is_partial(analyses) else None
    interrupted = interrupted_writeback(ws.settings, dataset) if write else None
    if owned is not None and interrupted is not None:  # a partial run would keep the other half-written fields
        raise Conflict(incomplete_message(dataset, interrupted) + "; run every analysis (no --only) first")
    progress(stage="load")
    ids, payloads, vectors = load_all(collection, with_vectors=True, fields=_fields_read(ws, dataset, model_version))
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
    results, seconds, skipped = run_analyses(ctx, analyses or default_analyses(), params)
    stages.update(seconds)
    clock = time.perf_counter()
    run_id = new_run_id()
    previous = _previous_report(ws, dataset)
    if write:
        # Checked before the first point is written: a full disk mid-write-back would kill the process (SIGBUS).
        ensure_space(ws.settings, f"the analysis write-back of {dataset}")
        begin_writeback(ws.settings, dataset, run_id, (previous or {}).get("run_id"))
        progress(stage="write", done=0, total=len(ids))
        write_payloads(collection, _counted(iter_payload_updates(ctx, results, payloads, run_id, owned=owned),
                                            progress))
        lap("write")
    report = assemble_report(ctx, results, skipped, run_id, dataset)
    if owned is not None:
        report = merge_partial_report(previous, report, run_order(list(analyses or [])), owned)
    stages["total"] = round(time.perf_counter() - began, 3)
    report["stages"] = stages
    if write:
        path = save_report(ws.settings, dataset, report)
        log.info("%s: analysis %s in %s (%.1f s before the index rebuild)", dataset, run_id, path, stages["total"])
    return report


def _previous_report(ws: Workspace, dataset: str) -> dict[str, Any] | None:
    try:
        return load_report(ws.settings, dataset)
    except NotFound:
        return None
