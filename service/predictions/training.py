"""Training a model version: pick the family and hyper-parameters on validation, evaluate on validation and
test, record learning and iteration curves, compute out-of-fold probabilities, register the version."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from service.datasets.catalog import now_iso
from service.errors import InvalidInput
from service.predictions import data as training_data
from service.predictions.metrics import evaluate, macro_f1
from service.predictions.models import FAMILIES, GRIDS, Classifier, build
from service.predictions.registry import ModelRegistry, ModelVersion
from service.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from service.workspace import Workspace

log = logging.getLogger(__name__)

LEARNING_FRACTIONS = (0.1, 0.25, 0.5, 0.75, 1.0)
# Model selection, the learning and iteration curves and the out-of-fold fits are diagnostics: past this many
# training points their answers barely move while their cost grows with every point (at 100k the full set of
# them took over 38 minutes on 2 cores), so each of their fits uses a stratified sample of at most this many
# training points. The version that serves is still fitted once on every training point. 0 = no cap.
FIT_CAP = 50_000
ITERATION_SCHEDULE = (1, 2, 3, 5, 8, 12, 18, 27, 40, 60, 90, 135, 200, 300, 450, 700, 1000)


def _quiet_fit(model: Classifier, texts, vectors, y, n_labels) -> Classifier:
    # Small folds and capped iterations are expected here; their warnings would only be noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(texts, vectors, y, n_labels)


def _take(values: list, idx: np.ndarray) -> list:
    return [values[i] for i in idx]


def select_model(d: training_data.TrainingData, y: np.ndarray, n_labels: int, families: list[str],
                 grids: dict[str, list[dict]] | None = None, progress: ProgressFn = no_progress,
                 sample: Sample | None = None) -> tuple[Classifier, list[dict[str, Any]]]:
    """Fit every family x grid point on training, score on validation; best macro-F1 wins, then log loss."""
    grids = grids or GRIDS
    progress(stage="select model", done=0, total=sum(len(grids[family]) for family in families))
    train, val = (sample or Sample.whole(d)).splits
    texts_tr, texts_va = _take(d.texts, train), _take(d.texts, val)
    candidates: list[dict[str, Any]] = []
    best: tuple[tuple[float, float], Classifier] | None = None
    for family in families:
        for params in grids[family]:
            started = time.perf_counter()
            model = _quiet_fit(build(family, **params), texts_tr, d.vectors[train], y[train], n_labels)
            proba = model.predict_proba(texts_va, d.vectors[val])
            f1 = macro_f1(y[val], proba.argmax(axis=1), n_labels)
            loss = float(-np.log(np.clip(proba[np.arange(len(val)), y[val]], 1e-12, 1)).mean())
            candidates.append({**model.params(), "validation_macro_f1": f1, "validation_log_loss": loss,
                               "validation_accuracy": float((proba.argmax(axis=1) == y[val]).mean()),
                               "seconds": round(time.perf_counter() - started, 3)})
            key = (f1, -loss)
            if best is None or key > best[0]:
                best = (key, model)
            progress(advance=1)
    assert best is not None
    return best[1], candidates


def _subsample(idx: np.ndarray, y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A stratified share of `idx`, at least one point per label."""
    out = []
    for label in np.unique(y[idx]):
        members = idx[y[idx] == label]
        k = max(1, int(round(len(members) * fraction)))
        out.append(rng.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(out))


def _capped(idx: np.ndarray, y: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """`idx` itself when it holds at most `cap` points (or cap is 0), else a stratified sample of about `cap`."""
    if not cap or len(idx) <= cap:
        return idx
    return _subsample(idx, y, cap / len(idx), rng)


@dataclass(frozen=True)
class Sample:
    """The training and validation rows the diagnostic fits use: all of them, or stratified samples of at most
    `cap` each (FIT_CAP)."""

    train: np.ndarray
    val: np.ndarray
    cap: int = 0

    @property
    def splits(self) -> tuple[np.ndarray, np.ndarray]:
        return self.train, self.val

    @classmethod
    def whole(cls, d: training_data.TrainingData) -> Sample:
        return cls(np.flatnonzero(d.mask("training")), np.flatnonzero(d.mask("validation")))

    def capped(self, y: np.ndarray, cap: int, seed: int = 0) -> Sample:
        """Stratified samples of at most `cap` rows of this sample's training and validation rows."""
        rng = np.random.default_rng(seed)
        return Sample(_capped(self.train, y, cap, rng), _capped(self.val, y, cap, rng), cap)

    def describe(self, whole: Sample) -> dict[str, int]:
        """How many rows this sample holds of `whole`'s, for the version's record."""
        return {"fit_cap": self.cap, "training": len(self.train), "training_of": len(whole.train),
                "validation": len(self.val), "validation_of": len(whole.val)}


def _grid_params(chosen: Classifier) -> dict[str, Any]:
    """The chosen model's hyper-parameters that its family's grid searches, to build a fresh one alike."""
    return {k: v for k, v in chosen.params().items() if k in GRIDS[chosen.kind][0]}


def learning_curve(d: training_data.TrainingData, y: np.ndarray, n_labels: int, chosen: Classifier,
                   repeats: int = 3, seed: int = 0, sample: Sample | None = None,
                   fitted_on_all: Classifier | None = None) -> dict[str, Any]:
    """Validation macro-F1 and accuracy against training-set size (mean and std over stratified draws).

    `fitted_on_all`: a model of `chosen`'s family and hyper-parameters already fitted on all of the sample's
    training rows (model selection's winner). The curve's last point, the whole sample, is that very fit
    (same rows in the same order, same parameters, a deterministic fit), so it is used instead of fitted again.
    """
    rng = np.random.default_rng(seed)
    train, val = (sample or Sample.whole(d)).splits
    params = _grid_params(chosen)
    rows: dict[str, list[float]] = {k: [] for k in (
        "train_sizes", "validation_macro_f1", "validation_macro_f1_std", "validation_accuracy",
        "validation_accuracy_std", "training_accuracy")}
    for fraction in LEARNING_FRACTIONS:
        f1s, accs, train_accs, sizes = [], [], [], []
        for _ in range(repeats if fraction < 1 else 1):
            subset = _subsample(train, y, fraction, rng)
            if fraction == 1 and fitted_on_all is not None:
                model = fitted_on_all
            else:
                model = _quiet_fit(build(chosen.kind, **params), _take(d.texts, subset), d.vectors[subset],
                                   y[subset], n_labels)
            pred = model.predict_proba(_take(d.texts, val), d.vectors[val]).argmax(axis=1)
            pred_tr = model.predict_proba(_take(d.texts, subset), d.vectors[subset]).argmax(axis=1)
            f1s.append(macro_f1(y[val], pred, n_labels))
            accs.append(float((pred == y[val]).mean()))
            train_accs.append(float((pred_tr == y[subset]).mean()))
            sizes.append(len(subset))
        rows["train_sizes"].append(float(np.mean(sizes)))
        rows["validation_macro_f1"].append(float(np.mean(f1s)))
        rows["validation_macro_f1_std"].append(float(np.std(f1s)))
        rows["validation_accuracy"].append(float(np.mean(accs)))
        rows["validation_accuracy_std"].append(float(np.std(accs)))
        rows["training_accuracy"].append(float(np.mean(train_accs)))
    return {"model": chosen.kind, "repeats": repeats, **rows}


class _Iterates:
    """A scikit-learn fit callback keeping the model as it stood after each scheduled lbfgs iteration.

    scikit-learn (1.9+) hands the callback a ready-to-predict copy at the end of every lbfgs iteration; the
    copy after iteration t is the model `max_iter=t` would have stopped at (the same deterministic path), so
    one fit gives the whole curve where a fit per point of the schedule repeated every earlier iteration
    (3.4x the iterations of one fit at 50k points, converged at 110)."""

    def __init__(self, schedule: tuple[int, ...]):
        self.schedule = set(schedule)
        self.models: dict[int, Any] = {}

    def setup(self, estimator, context) -> None:
        pass

    def teardown(self, estimator, context) -> None:
        pass

    def on_fit_task_begin(self, estimator, context, **_: Any) -> None:
        pass

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None, **_: Any) -> None:
        if fitted_estimator is not None and context.task_name == "lbfgs-iter":
            iteration = context.task_id + 1  # the task of iteration t has id t - 1
            if iteration in self.schedule:
                self.models[iteration] = fitted_estimator


def iteration_curve(d: training_data.TrainingData, y: np.ndarray, n_labels: int, C: float,
                    sample: Sample | None = None) -> dict[str, Any]:
    """Loss and accuracy of logistic regression after t lbfgs iterations, on training and validation: the
    schedule's points up to convergence, all from one fit."""
    from sklearn.linear_model import LogisticRegression

    train, val = (sample or Sample.whole(d)).splits
    out: dict[str, list[float]] = {k: [] for k in (
        "iteration", "training_loss", "validation_loss", "training_accuracy", "validation_accuracy")}

    def loss_acc(model, idx) -> tuple[float, float]:
        proba = model.predict_proba(d.vectors[idx])
        cols = np.searchsorted(model.classes_, y[idx])
        p_true = np.clip(proba[np.arange(len(idx)), cols], 1e-12, 1)
        return float(-np.log(p_true).mean()), float((model.classes_[proba.argmax(axis=1)] == y[idx]).mean())

    iterates = _Iterates(ITERATION_SCHEDULE)
    model = LogisticRegression(C=C, max_iter=ITERATION_SCHEDULE[-1])
    model.set_callbacks(iterates)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(d.vectors[train], y[train])
    converged = int(model.n_iter_.max())
    # Past convergence the curve would repeat its last point: it ends with the converged model.
    points = {t: m for t, m in iterates.models.items() if t < converged}
    points[converged] = model
    for t in sorted(points):
        tr_loss, tr_acc = loss_acc(points[t], train)
        va_loss, va_acc = loss_acc(points[t], val)
        out["iteration"].append(t)
        out["training_loss"].append(tr_loss)
        out["validation_loss"].append(va_loss)
        out["training_accuracy"].append(tr_acc)
        out["validation_accuracy"].append(va_acc)
    return {"model": "logreg", "solver": "lbfgs", **out}


def out_of_fold(d: training_data.TrainingData, y: np.ndarray, n_labels: int, chosen: Classifier,
                folds: int = 5, seed: int = 0, progress: ProgressFn = no_progress, fit_cap: int = 0) -> np.ndarray:
    """k-fold probabilities over every labelled point: each row from a model that did not see that point.
    With `fit_cap`, each fold's model is fitted on a stratified sample of at most that many of the other
    folds' points; every held-out point still gets its row."""
    from sklearn.model_selection import StratifiedKFold

    if len(y) < folds:
        raise InvalidInput(f"{len(y)} labelled points cannot make {folds} folds; lower --folds")
    params = _grid_params(chosen)
    proba = np.zeros((len(y), n_labels), dtype=np.float64)
    seen = np.zeros(len(y), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # Labels rarer than the fold count trigger a warning; their points still get held-out rows.
        warnings.simplefilter("ignore")
        splits = list(splitter.split(np.zeros(len(y)), y))
    progress(stage="out-of-fold", done=0, total=len(splits))
    rng = np.random.default_rng(seed)
    for fit_idx, held_idx in splits:
        fit_idx = _capped(fit_idx, y, fit_cap, rng)
        model = _quiet_fit(build(chosen.kind, **params), _take(d.texts, fit_idx), d.vectors[fit_idx],
                           y[fit_idx], n_labels)
        proba[held_idx] = model.predict_proba(_take(d.texts, held_idx), d.vectors[held_idx])
        seen[held_idx] += 1
        progress(advance=1)
    assert (seen == 1).all(), "every point must be held out exactly once"
    return proba


def audit_length(ws: Workspace, dataset: str) -> int:
    """How many changes the dataset's audit log holds now."""
    from service.review.audit import AuditLog

    return len(AuditLog(ws.store, dataset))


def unchanged_version(registry: ModelRegistry, dataset: str, d: training_data.TrainingData,
                      request: dict[str, Any]) -> ModelVersion | None:
    """The latest version if it was trained on exactly this data (ids, texts, labels, splits), embedding
    model and request; None when anything differs or there is no version yet."""
    latest = registry.latest(dataset)
    if latest is None or latest.meta.get("request") != request:
        return None
    if latest.data_hash != d.content_hash() or latest.embedding_model != d.embedding_model:
        return None
    return latest


def train_version(ws: Workspace, dataset: str, from_file: Path | None = None, progress: ProgressFn = no_progress,
                  **options: Any) -> ModelVersion:
    """Train, evaluate and register a new version of `dataset`'s classifier.

    options: model ("auto" = compare every family, or one of models.FAMILIES), folds (5), seed (0),
    grids (override the hyper-parameter grids), learning_repeats (3 draws per learning-curve size),
    fmt and columns (for from_file), registry, if_changed (return the latest version instead of training
    when it was trained on the same data, embeddings and options). `progress` hears each stage and the folds
    done.
    """
    started = time.perf_counter()
    model_opt = options.get("model") or "auto"
    families = list(FAMILIES) if model_opt == "auto" else [model_opt]
    for family in families:
        if family not in FAMILIES:
            raise InvalidInput(f"unknown model {family!r}; use 'auto' or one of {', '.join(FAMILIES)}")
    folds, seed = int(options.get("folds", 5)), int(options.get("seed", 0))
    registry: ModelRegistry = options.get("registry") or ModelRegistry(ws.settings.models_dir)
    from service.predictions.tracking import Tracker

    tracker = Tracker.from_settings(ws.settings)
    tracked = tracker is not None and tracker.ready()  # an unreachable server fails here, before training

    # When the labels were read: reviews logged after this belong to the next version (service/api/loop.py).
    # The audit log's length is the exact watermark (timestamps tie within a second); the time is for people.
    data_read_at = now_iso()
    data_read_change = None if from_file is not None else audit_length(ws, dataset)
    progress(stage="load")
    if from_file is not None:
        d = training_data.from_file(ws, Path(from_file), options.get("fmt"), options.get("columns"))
    else:
        d = training_data.from_store(ws, dataset)
    fit_cap = int(options.get("fit_cap", FIT_CAP) or 0)
    request = {"model": model_opt, "folds": folds, "seed": seed,
               "learning_repeats": int(options.get("learning_repeats", 3)), "grids": options.get("grids")}
    if fit_cap != FIT_CAP:  # kept out of the default request so versions trained before the cap still compare
        request["fit_cap"] = fit_cap
    if options.get("if_changed"):
        kept = unchanged_version(registry, dataset, d, request)
        if kept is not None:
            log.info("%s %s was trained on the same data and options: not retrained", dataset, kept.version)
            return kept
    labels = d.label_set
    y = d.y(labels)
    n = len(labels)
    log.info("training %s on %s: %s", dataset, d.source, d.sizes())

    whole = Sample.whole(d)
    sample = whole.capped(y, fit_cap, seed)
    sampled = len(sample.train) < len(whole.train)
    if sampled:
        log.info("model selection, curves and out-of-fold fits on a stratified sample: %s", sample.describe(whole))
    chosen, candidates = select_model(d, y, n, families, options.get("grids"), progress=progress, sample=sample)
    log.info("selected %s on validation (%.1f s)", chosen.params(), time.perf_counter() - started)
    selected = chosen  # fitted on the sample's training rows: the learning curve's last point
    if sampled:  # the served model learns from every training point
        progress(stage="fit on all training points")
        everything = whole.train
        full = build(chosen.kind, **_grid_params(chosen))
        if hasattr(full, "start_from"):  # from the sample's optimum: fewer iterations on every point
            full.start_from(chosen)
        chosen = _quiet_fit(full, _take(d.texts, everything), d.vectors[everything], y[everything], n)
        log.info("fitted %s on all %d training points (%.1f s)", chosen.kind, len(everything),
                 time.perf_counter() - started)

    progress(stage="evaluate")
    metrics: dict[str, Any] = {}
    for split, name in (("validation", "validation"), ("testing", "test")):
        idx = np.flatnonzero(d.mask(split))
        if len(idx):
            proba = chosen.predict_proba(_take(d.texts, idx), d.vectors[idx])
            metrics[name] = evaluate(proba, y[idx], labels)
    repeats = int(options.get("learning_repeats", 3))
    progress(stage="learning curve")
    curves: dict[str, Any] = {"learning_curve": learning_curve(d, y, n, chosen, repeats=repeats, seed=seed,
                                                               sample=sample, fitted_on_all=selected)}
    if chosen.kind == "logreg":
        curves["iterations"] = iteration_curve(d, y, n, chosen.params()["C"], sample=sample)
    oof = out_of_fold(d, y, n, chosen, folds=folds, seed=seed, progress=progress, fit_cap=fit_cap)
    oof_eval = evaluate(oof, y, labels, bootstrap=False)
    metrics["oof"] = {"folds": folds, "n": len(y), "accuracy": oof_eval["accuracy"],
                      "macro_f1": oof_eval["macro_f1"], "log_loss": oof_eval["log_loss"], "ece": oof_eval["ece"]}
    metrics["selection"] = {"criterion": "validation macro-F1, then validation log loss",
                            "candidates": candidates}
    for name in ("validation", "test"):
        if name in metrics:
            curves[f"reliability_{name}"] = metrics[name]["reliability"]

    meta = {
        "created_at": now_iso(),
        "source": d.source,
        "embedding_model": d.embedding_model,
        "needs_vectors": chosen.needs_vectors,
        "labels": labels,
        "params": {**chosen.params(), "folds": folds, "seed": seed},
        "request": request,
        "data_hash": d.content_hash(),
        "data_read_at": data_read_at,
        "data_read_change": data_read_change,
        "sizes": d.sizes(),
        "diagnostics_sample": sample.describe(whole),
        "metrics": metrics,
        "curves": curves,
        "training_seconds": round(time.perf_counter() - started, 2),
    }
    progress(stage="register")
    version = registry.create(dataset, chosen, meta, d.ids, oof)
    log.info("trained %s %s in %.1f s", dataset, version.version, time.perf_counter() - started)
    if tracked:
        assert tracker is not None
        try:
            tracker.log_version(registry, version, kind=options.get("kind") or "train")
        except Exception as exc:  # noqa: BLE001 - the version is registered; tracking is its shadow
            log.warning("%s %s is trained but could not be logged to MLflow at %s: %s", dataset,
                        version.version, tracker.uri, exc)
    return version
