"""Retrain: a challenger version trained on today's labels, judged against the champion by the gate, and on
promotion the data re-enriched with its predictions and re-analysed.

The champion is the production version (else the latest, which is then promoted so it keeps serving while
a challenger exists). Both are evaluated on the same points of the evaluation split (testing, else
validation) against the labels the data holds today. The challenger and its verdict stay in the registry
either way: `retrain.json` beside its metadata is the loop's history.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from embeddings.store import load_all
from service.datasets.catalog import now_iso
from service.errors import InvalidInput
from service.predictions import data as training_data
from service.predictions.compare import VersionPredictions, compare_by_cluster
from service.predictions.evaluation import honest_evaluation
from service.predictions.gate import GatePolicy, Verdict, judge
from service.predictions.registry import ModelRegistry, ModelVersion
from service.predictions.tracking import Tracker, promote

if TYPE_CHECKING:
    from service.workspace import Workspace

log = logging.getLogger(__name__)

RECORD = "retrain"  # <version>/retrain.json: how the version came to be and the gate's verdict
MIN_PER_CLASS = 2  # fewer training examples than this cannot be split into folds or learnt


Report = Callable[..., None]  # progress: report(stage=..., done=..., total=...)


@dataclass(frozen=True)
class RetrainOptions:
    """How a retrain trains, judges and what it writes."""

    policy: GatePolicy = GatePolicy()
    dry_run: bool = False
    force: bool = False
    model: str = "auto"
    folds: int = 5
    seed: int = 0
    learning_repeats: int = 1
    trigger: str = "manual"
    analyze: bool = True
    grids: dict[str, list[dict[str, Any]]] | None = None  # override train's hyper-parameter grids


def _noop(**_: Any) -> None:
    pass


def champion_of(registry: ModelRegistry, dataset: str) -> ModelVersion | None:  # noqa: D401
    """The version that serves: production, else the latest (promoted now, so that a challenger registered
    after it never becomes the default by being newer)."""
    production = registry.production(dataset)
    if production is not None:
        return registry.get(dataset, production)
    latest = registry.latest(dataset)
    if latest is not None:
        registry.promote(dataset, latest.version)
    return latest


def _check_labels(d: training_data.TrainingData, champion: ModelVersion | None) -> None:
    """Refuse data no fair challenger can be trained on, naming the classes."""
    train = d.mask("training")
    counts: dict[str, int] = {}
    for label, is_train in zip(d.labels, train, strict=True):
        if is_train:
            counts[label] = counts.get(label, 0) + 1
    few = sorted(label for label, n in counts.items() if n < MIN_PER_CLASS)
    if few:
        raise InvalidInput(f"class(es) {few} have fewer than {MIN_PER_CLASS} training examples after the reviews; "
                           "label more examples of them or relabel their points, then retrain")
    if champion is not None:
        evaluated = {label for label, s in zip(d.labels, d.splits, strict=True) if s in ("validation", "testing")}
        new = sorted(set(counts) - set(champion.labels) - evaluated)
        if new:
            raise InvalidInput(f"label(s) {new} came in through reviews but no validation or test point has them, "
                               "so no comparison with the champion could count them; label some evaluation "
                               "points with them (or relabel them away), then retrain")


def _predict(version: ModelVersion, d: training_data.TrainingData, idx: np.ndarray,
             index: dict[str, int]) -> np.ndarray:
    """A version's answers on points `idx` as indices into the shared label list `index`."""
    proba = version.predict_proba([d.texts[i] for i in idx], d.vectors[idx])
    names = np.asarray(version.labels, dtype=object)[proba.argmax(axis=1)]
    return np.array([index[n] for n in names], dtype=np.int64)


def _evaluation_points(d: training_data.TrainingData) -> tuple[str, np.ndarray]:
    for split in ("testing", "validation"):
        idx = np.flatnonzero(d.mask(split))
        if len(idx):
            return split, idx
    raise InvalidInput("no labelled validation or test point to compare versions on; label some first")


def _cluster_changes(ws: Workspace, dataset: str, champion: ModelVersion, challenger: ModelVersion,
                     min_size: int) -> dict[str, Any]:
    """Per-cluster out-of-fold error rates, challenger as `a`, against today's labels."""
    from service.analyses.report import load_report

    ids, payloads, _ = load_all(ws.collection(dataset), with_vectors=False)
    try:
        report = load_report(ws.settings, dataset)
        names = {int(c["id"]): c.get("name", "") for c in report.get("clusters", [])}
    except Exception:  # noqa: BLE001 - never analysed: clusters unnamed (and none if no cluster field)
        names = {}
    answers = []
    for version in (challenger, champion):
        oof_ids, proba = version.oof()
        answers.append(VersionPredictions.from_oof(version.version, oof_ids, proba, version.labels))
    return compare_by_cluster(ids, [p.get("label") for p in payloads], [p.get("cluster") for p in payloads],
                              answers[0], answers[1], names, min_size=min_size)


def compare(ws: Workspace, dataset: str, champion: ModelVersion, challenger: ModelVersion,
            policy: GatePolicy, d: training_data.TrainingData | None = None) -> Verdict:
    """The gate's verdict on `challenger` against `champion` with today's labels."""
    d = d or training_data.from_store(ws, dataset)
    split, idx = _evaluation_points(d)
    labels = sorted(set(d.labels) | set(champion.labels) | set(challenger.labels))
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[d.labels[i]] for i in idx], dtype=np.int64)
    verdict = judge(y, _predict(champion, d, idx, index), _predict(challenger, d, idx, index), labels,
                    _cluster_changes(ws, dataset, champion, challenger, policy.min_cluster_size), policy,
                    names=(champion.version, challenger.version))
    verdict.comparison["split"] = split
    return verdict


def retrain(ws: Workspace, dataset: str, options: RetrainOptions | None = None, report: Report | None = None,
            registry: ModelRegistry | None = None) -> dict[str, Any]:
    """Train a challenger, gate it, and on promotion re-enrich and re-analyse. Returns what happened."""
    from service.predictions.training import train_version

    options = options or RetrainOptions()
    report = report or _noop
    registry = registry or ModelRegistry(ws.settings.models_dir)
    started = time.perf_counter()
    report(stage="check labels")
    d = training_data.from_store(ws, dataset)
    champion = champion_of(registry, dataset)
    if champion is not None and champion.data_hash == d.content_hash() and not options.force:
        out = {"status": "unchanged", "champion": champion.version, "promoted": False,
               "message": f"the labels have not changed since {champion.version} was trained; nothing to "
                          "retrain (force to train anyway)"}
        stale = _stale_points(ws, dataset, champion.version)
        if stale and not options.dry_run:
            # A promotion whose re-enrichment was cut short (the process died): finish it now.
            out.update(_refresh(ws, dataset, champion.version, options, report), status="resumed",
                       message=f"the labels have not changed since {champion.version} was trained, but {stale} "
                               f"point(s) lacked its predictions (never predicted, or a promotion cut short); "
                               "predicted them now")
        return out
    _check_labels(d, champion)

    report(stage="train challenger")
    challenger = train_version(ws, dataset, model=options.model, folds=options.folds, seed=options.seed,
                               learning_repeats=options.learning_repeats, grids=options.grids,
                               registry=registry, kind="retrain")
    record: dict[str, Any] = {"trigger": options.trigger, "started_at": now_iso(), "dry_run": options.dry_run,
                              "champion": champion.version if champion else None,
                              "labelled": len(d.ids), "sizes": d.sizes()}
    if champion is None:
        verdict = Verdict(promote=True, reasons=["no champion yet: the first version serves"])
    else:
        report(stage="compare with champion")
        verdict = compare(ws, dataset, champion, challenger, options.policy, d)
    promoted = verdict.promote and not options.dry_run

    evaluation = {"challenger": honest_evaluation(ws, dataset, challenger, suspects_limit=10)}
    if champion is not None:
        evaluation["champion"] = honest_evaluation(ws, dataset, champion, suspects_limit=10)
    record.update(verdict=verdict.to_dict(), promoted=promoted, finished_at=now_iso())
    # The verdict is written before promotion: a version is never production without its reasons.
    registry.record(dataset, challenger.version, RECORD, record)
    tracker = Tracker.from_settings(ws.settings)
    if tracker is not None:
        _quietly(tracker.log_verdict, registry, dataset, challenger.version, record["verdict"], promoted)
    result: dict[str, Any] = {"status": "promoted" if promoted else ("what-if" if options.dry_run else "refused"),
                              "champion": record["champion"], "challenger": challenger.version,
                              "promoted": promoted, "summary": verdict.summary(), "verdict": verdict.to_dict(),
                              "evaluation": evaluation}
    if promoted:
        promote(ws.settings, registry, dataset, challenger.version)
        result.update(_refresh(ws, dataset, challenger.version, options, report))
    log.info("retrain %s: %s %s in %.1f s", dataset, challenger.version, result["status"],
             time.perf_counter() - started)
    return result


def _stale_points(ws: Workspace, dataset: str, version: str) -> int:
    """Points not (yet) predicted by `version`."""
    _, payloads, _ = load_all(ws.collection(dataset), with_vectors=False)
    return sum(1 for p in payloads if p.get("model_version") != version)


def _quietly(fn: Callable[..., None], *args: Any) -> None:
    """Tracking is the registry's shadow: a failure there is logged, never undoes a verdict."""
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001
        log.warning("MLflow: %s failed: %s", getattr(fn, "__name__", fn), exc)


def _refresh(ws: Workspace, dataset: str, version: str, options: RetrainOptions, report: Report) -> dict[str, Any]:
    """The data re-enriched with the promoted version's predictions and re-analysed."""
    from service.predictions.client import enrich

    report(stage="predict")
    enriched = enrich(ws, dataset, version=version)
    out: dict[str, Any] = {"predicted": enriched.predicted}
    if options.analyze:
        from service.analyses.runner import analyze

        report(stage="analyze")
        analysed = analyze(ws, dataset, model_version=version, seed=options.seed)
        out["analysis_run"] = analysed.get("run_id")
    return out


def history(registry: ModelRegistry, dataset: str) -> list[dict[str, Any]]:
    """Every version, newest first, with how it came to be (a retrain's trigger and verdict) and whether it
    serves now."""
    production = registry.production(dataset)
    rows = []
    for version in reversed(registry.versions(dataset)):
        rec = registry.read_record(dataset, version.version, RECORD)
        metrics = version.metrics.get("test") or version.metrics.get("validation") or {}
        rows.append({
            "version": version.version, "created_at": version.created_at, "production": version.version == production,
            "data_read_at": version.meta.get("data_read_at") or version.created_at,
            "data_read_change": version.meta.get("data_read_change"),
            "labelled": version.sizes.get("labelled"), "accuracy": metrics.get("accuracy"),
            "accuracy_ci": metrics.get("accuracy_ci"), "macro_f1": metrics.get("macro_f1"),
            "macro_f1_ci": metrics.get("macro_f1_ci"),
            "retrain": None if rec is None else {k: rec.get(k) for k in (
                "trigger", "champion", "promoted", "dry_run", "started_at", "finished_at")} | {
                "reasons": rec.get("verdict", {}).get("reasons", []),
                "improved": rec.get("verdict", {}).get("improved", []),
                "worse": rec.get("verdict", {}).get("worse", [])},
        })
    return rows
