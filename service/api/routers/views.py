"""The debugger views, read from what predict and analyze wrote (never recomputed on a page view): label
issues, confident disagreements, clusters, suggestions, duplicates and leakage, per-class metrics,
merge/split advice, the whole report."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Query

from embeddings.store import PointFilter
from service.api import reports
from service.api.deps import CollectionDep, DatasetName, StateDep
from service.api.errors import READ_ERRORS
from service.api.queries import bad_cursor, decode_cursor, decode_offset, encode_cursor, point_out
from service.api.ranked import build_ranked, numbers_of, rank_rows
from service.api.schemas import MAX_INT64, Cluster, ClusterChangesOut, ClusterDetail, Page, PointOut, Split, Triage
from service.api.snapshots import Snapshot
from service.api.state import ApiState
from service.errors import Conflict, NotFound, invalid

router = APIRouter(prefix="/api/datasets/{dataset}", tags=["views"], responses=READ_ERRORS)

Cursor = Annotated[str | None, Query(max_length=500, description="next_cursor of the previous page")]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _rank_after(cursor: str | None) -> tuple[float, str] | None:
    """The rank (sort key) of the last row of the previous page, from its cursor."""
    value = decode_cursor(cursor, list)
    if value is None:
        return None
    if (len(value) != 2 or not isinstance(value[0], int | float) or isinstance(value[0], bool)
            or not isinstance(value[1], str)):
        raise bad_cursor(cursor or "")
    return float(value[0]), value[1]


def _page_of_rows(state: ApiState, dataset: str, snap: Snapshot, rows: list[int], cursor: str | None,
                  limit: int, rank: Callable[[int], tuple[float, str]],
                  extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """A page of ranked rows (sorted by `rank`), with full payloads read from the store for just that page.

    The cursor holds the rank of the page's last row, not an offset: an annotator who reviews the issues of a
    page takes them out of the list, and an offset would then skip as many unseen ones on the next page."""
    after = _rank_after(cursor)
    start = 0 if after is None else bisect.bisect_right(rows, after, key=rank)
    chosen = rows[start: start + limit]
    ids = [snap.ids[i] for i in chosen]
    found = state.workspace.collection(dataset).retrieve(ids)
    data = []
    for p in found:
        item = point_out(p.id, p.payload)
        if extra is not None:
            item.update(extra(item))
        data.append(item)
    more = chosen and start + limit < len(rows)
    return {"data": data, "count": len(rows), "next_cursor": encode_cursor(list(rank(chosen[-1]))) if more else None}


def _column(snap: Snapshot, name: str) -> list[Any]:
    return snap.columns[name]


def _analysed(snap: Snapshot) -> bool:
    return any(run is not None for run in snap.columns.get("analysis_run", ()))


@router.get("/issues", operation_id="list_issues", response_model=Page[PointOut])
def list_issues(
    dataset: DatasetName, state: StateDep,
    triage: Annotated[list[Triage] | None, Query()] = None,
    label: Annotated[list[str] | None, Query()] = None,
    split: Annotated[list[Split] | None, Query()] = None,
    min_score: Annotated[float, Query(ge=0, le=1)] = 0.0,
    include_reviewed: bool = False,
    cursor: Cursor = None, limit: Limit = 50,
) -> dict[str, Any]:
    """Labelled points ranked by mislabel_score (highest first) with triage, reasons and suggested_label.
    Points already reviewed are left out unless include_reviewed."""
    snap = state.views.snapshot(dataset)
    scores = _column(snap, "mislabel_score")
    if not any(s is not None for s in scores):
        raise reports.no_scores(dataset, _column(snap, "prediction"), _analysed(snap))
    labels = _column(snap, "label")

    def rank(i: int) -> tuple[float, str]:
        return -scores[i], str(snap.ids[i])

    def build(s: Snapshot) -> np.ndarray:
        score = numbers_of(scores)
        labelled = np.array([label is not None for label in labels])
        return rank_rows(~np.isnan(score) & labelled, score, s.id_rank())

    ranked = snap.derived("issues", lambda s: build_ranked(build(s), s.columns, ("label", "triage", "split",
                                                                                  "review_status"),
                                                           ("mislabel_score",)))
    rows = ranked.filter(any_of={"label": label, "split": split, "triage": triage},
                         none=() if include_reviewed else ("review_status",), at_least={"mislabel_score": min_score})
    return _page_of_rows(state, dataset, snap, rows, cursor, limit, rank)


@router.get("/disagreements", operation_id="list_disagreements", response_model=Page[PointOut])
def list_disagreements(
    dataset: DatasetName, state: StateDep,
    min_confidence: Annotated[float, Query(ge=0, le=1)] = 0.8,
    include_reviewed: bool = False,
    cursor: Cursor = None, limit: Limit = 50,
) -> dict[str, Any]:
    """Labelled points whose prediction differs from the label with confidence >= min_confidence, most
    confident first."""
    snap = state.views.snapshot(dataset)
    predictions = _column(snap, "prediction")
    if not any(p is not None for p in predictions):
        raise Conflict(f"dataset {dataset!r} has no predictions yet: run predict "
                       f'(POST /api/datasets/{dataset}/runs {{"step": "predict"}})')
    status, conf = _column(snap, "prediction_status"), _column(snap, "confidence")

    def rank(i: int) -> tuple[float, str]:
        return -conf[i], str(snap.ids[i])

    def build(s: Snapshot) -> np.ndarray:
        confidence = numbers_of(conf)
        incorrect = np.array([st == "incorrect" for st in status])
        return rank_rows(incorrect & ~np.isnan(confidence), confidence, s.id_rank())

    ranked = snap.derived("disagreements", lambda s: build_ranked(build(s), s.columns, ("review_status",),
                                                                  ("confidence",)))
    rows = ranked.filter(none=() if include_reviewed else ("review_status",), at_least={"confidence": min_confidence})
    return _page_of_rows(state, dataset, snap, rows, cursor, limit, rank)


@router.get("/suggestions", operation_id="list_suggestions", response_model=Page[PointOut])
def list_suggestions(
    dataset: DatasetName, state: StateDep,
    label: Annotated[list[str] | None, Query(description="Only these suggested labels")] = None,
    min_confidence: Annotated[float, Query(ge=0, le=1)] = 0.0,
    include_reviewed: bool = False,
    cursor: Cursor = None, limit: Limit = 50,
) -> dict[str, Any]:
    """Unlabelled points with a suggested label, most confident first; `agreement` is how far the model and
    the neighbours agree on it (suggestion_agreement, else knn_agreement)."""
    snap = state.views.snapshot(dataset)
    suggested, labels, conf = (_column(snap, n) for n in ("suggested_label", "label", "suggestion_confidence"))
    if not any(s is not None for s in suggested):
        raise reports.no_scores(dataset, _column(snap, "prediction"), _analysed(snap))

    def rank(i: int) -> tuple[float, str]:
        return -(conf[i] or 0.0), str(snap.ids[i])

    def build(s: Snapshot) -> np.ndarray:
        wanted = np.array([sug is not None and label is None for sug, label in zip(suggested, labels, strict=True)])
        return rank_rows(wanted, np.nan_to_num(numbers_of(conf), nan=0.0), s.id_rank())

    ranked = snap.derived("suggestions", lambda s: build_ranked(
        build(s), s.columns, ("suggested_label", "review_status"), ("suggestion_confidence",), fill=0.0))
    rows = ranked.filter(any_of={"suggested_label": label}, none=() if include_reviewed else ("review_status",),
                         at_least={"suggestion_confidence": min_confidence})
    return _page_of_rows(state, dataset, snap, rows, cursor, limit, rank,
                         extra=lambda item: {"agreement": item.get("suggestion_agreement", item.get("knn_agreement"))})


SORTS = ("error_rate", "issue_rate", "size", "id")


@router.get("/clusters", operation_id="list_clusters", response_model=Page[Cluster])
def list_clusters(
    dataset: DatasetName, state: StateDep,
    sort: Annotated[str, Query(pattern="^(error_rate|issue_rate|size|id)$")] = "error_rate",
) -> dict[str, Any]:
    """Clusters with size, purity, error and issue rates, names and representatives (highest `sort` first)."""
    clusters = list(reports.report_of(state, dataset).get("clusters") or [])
    if sort == "id":
        clusters.sort(key=lambda c: c.get("id", 0))
    else:
        clusters.sort(key=lambda c: (-(c.get(sort) or 0), c.get("id", 0)))
    return {"data": clusters, "count": len(clusters), "next_cursor": None}


Version = Annotated[str | None, Query(max_length=50, pattern=r"^v\d+$", description="a model version, e.g. v2")]


# Declared before /clusters/{cluster_id}, which would otherwise take "changes" for a cluster id.
@router.get("/clusters/changes", operation_id="compare_versions_by_cluster", response_model=ClusterChangesOut)
def cluster_changes(
    dataset: DatasetName, state: StateDep, a: Version = None, b: Version = None,
    min_size: Annotated[int, Query(ge=1, le=100_000)] = 5, limit: Limit = 50,
) -> dict[str, Any]:
    """Each cluster's out-of-fold error rate under model versions `a` and `b` (default: production, or the
    latest, against the version before it, or the newest other one when it is the first), the clusters whose
    error rate changed most first."""
    from service.predictions.compare import VersionPredictions, compare_by_cluster

    report = reports.report_of(state, dataset)
    registry = reports.registry(state)
    versions = [v.version for v in registry.versions(dataset)]
    if a is not None and a == b:
        raise invalid("query.b", f"is {b!r}, the same version as a; compare two different versions")
    a = a or registry.default_version(dataset)
    if b is None:
        # The version before a; where a is the oldest (an early version promoted), the newest other one.
        others = [v for v in versions if v != a]
        older = [v for v in others if int(v[1:]) < int((a or "v0")[1:])]
        b = older[-1] if older else (others[-1] if others else None)
    if a is None or b is None or a == b:
        raise Conflict(f"comparing versions needs two of {dataset!r}'s (it has {', '.join(versions) or 'none'}); "
                       f"train another with `data-debugger train --dataset {dataset}`, or pass a and b")
    chosen = [registry.get(dataset, name) for name in (a, b)]  # 404 for an unknown version, before any work
    names = {int(c["id"]): str(c.get("name") or "") for c in report.get("clusters") or [] if "id" in c}

    def build(snap: Snapshot) -> dict[str, Any]:
        # Versions never change once written, so the snapshot's state (labels, clusters) is the whole key.
        a_answers, b_answers = (VersionPredictions.from_oof(v.version, *v.oof(), v.labels) for v in chosen)
        return compare_by_cluster(snap.ids, snap.columns["label"], snap.columns["cluster"], a_answers, b_answers,
                                  names=names, min_size=min_size)

    out = state.views.snapshot(dataset).derived(f"cluster-changes:{a}:{b}:{min_size}", build)
    return {**out, "clusters": out["clusters"][:limit]}


@router.get("/clusters/{cluster_id}", operation_id="get_cluster", response_model=ClusterDetail)
def get_cluster(
    dataset: DatasetName, cluster_id: Annotated[int, Path(ge=-1, le=MAX_INT64)], state: StateDep,
    collection: CollectionDep,
    cursor: Cursor = None, limit: Limit = 100,
) -> dict[str, Any]:
    """One cluster and a page of its members."""
    clusters = reports.report_of(state, dataset).get("clusters") or []
    found = next((c for c in clusters if c.get("id") == cluster_id), None)
    if found is None:
        known = ", ".join(str(c.get("id")) for c in clusters[:30])
        raise NotFound(f"no cluster {cluster_id} in dataset {dataset!r} (clusters: {known})")
    point_filter = PointFilter(match={"cluster": cluster_id})
    offset = decode_offset(cursor)
    page, nxt = collection.scroll_page(point_filter, limit=limit, offset=offset)
    members = {"data": [point_out(p.id, p.payload) for p in page], "count": collection.count(point_filter),
               "next_cursor": encode_cursor(nxt) if nxt is not None else None}
    return {**found, "members": members}


@router.get("/duplicates", operation_id="get_duplicates", response_model=dict[str, Any])
def get_duplicates(dataset: DatasetName, state: StateDep) -> dict[str, Any]:
    """Near-duplicate groups, conflicting duplicates (same text, different labels) and cross-split leakage."""
    report = reports.report_of(state, dataset)
    return {"duplicates": report.get("duplicates") or {}, "leakage": report.get("leakage") or {}}


@router.get("/classes", operation_id="get_classes", response_model=dict[str, Any])
def get_classes(
    dataset: DatasetName, state: StateDep,
    split: Annotated[str | None, Query(max_length=50, description="One split; default: all")] = None,
    model_version: Annotated[str | None, Query(max_length=20, description="Default: the analysed one")] = None,
) -> dict[str, Any]:
    """Per-class precision/recall/F1/support and the confusion matrix, per split, for a model version
    (the analysed version from the report; another version from its training metrics)."""
    report = reports.maybe_report(state, dataset)
    analysed = report.get("model_version") if report else None
    if model_version is not None and model_version != analysed:
        reg = reports.registry(state)
        metrics = reg.get(dataset, model_version).metrics
        available = {k: v for k, v in metrics.items() if isinstance(v, dict)}
        if split is not None:
            # Training names its held-out split "test"; the analysis and the points call it "testing".
            key = next((k for k in (split, {"testing": "test", "test": "testing"}.get(split)) if k in available), None)
            if key is None:
                raise NotFound(f"no split {split!r} in the training metrics of {dataset!r} {model_version} "
                               f"(splits: {', '.join(available) or 'none'})")
            available = {key: available[key]}
        return {"model_version": model_version, "source": "training", "splits": available}
    if report is None:
        raise reports.not_analysed(dataset)
    per_class = report.get("per_class") or {}
    confusion = report.get("confusion") or {}
    names = sorted(set(per_class) | set(confusion))
    if split is not None:
        if split not in names:
            raise NotFound(f"no split {split!r} in the report of {dataset!r} (splits: {', '.join(names) or 'none'})")
        names = [split]
    return {
        "model_version": analysed, "source": "analysis",
        "splits": {s: {"per_class": per_class.get(s), "confusion": confusion.get(s)} for s in names},
        "confused_pairs": report.get("confused_pairs") or [],
    }


@router.get("/advice", operation_id="get_advice", response_model=dict[str, Any])
def get_advice(dataset: DatasetName, state: StateDep) -> dict[str, Any]:
    """Merge candidates (intents the model and neighbours confuse) and split candidates (intents spread
    over distinct clusters)."""
    return {"advice": reports.report_of(state, dataset).get("advice") or {}}


@router.get("/report", operation_id="get_report", response_model=dict[str, Any])
def get_report(dataset: DatasetName, state: StateDep) -> dict[str, Any]:
    """The whole analysis report of the last analyze run."""
    return reports.report_of(state, dataset)
