"""Background runs of the heavy steps (ingest, train, predict, analyze), off the event loop.

One worker thread runs them in submission order: the embedded store admits one process, and two heavy
steps on 2 cores would only slow each other. Runs are kept in the store collection "runs" (dimension 1)
so they survive a restart; a run that was queued or running when the service stopped is marked
"interrupted" on the next start.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from service.api.errors import describe
from service.datasets.catalog import now_iso
from service.errors import InvalidInput, InvalidRecords, Unavailable, invalid
from service.server_files import allowed_server_file

if TYPE_CHECKING:
    from service.api.state import ApiState
    from service.workspace import Workspace

log = logging.getLogger(__name__)

RUNS_COLLECTION = "runs"
ACTIVE = ("queued", "running")
# Above this many points an ingest builds the HNSW index, so search stops being a scan.
OPTIMIZE_ABOVE = 20_000


@dataclass
class Run:
    """One step run for one dataset."""

    id: str
    dataset: str
    step: str
    params: dict[str, Any]
    status: str = "queued"
    progress: dict[str, Any] = field(default_factory=lambda: {"stage": "queued", "done": 0, "total": None})
    created_at: str = field(default_factory=now_iso)
    started_at: str | None = None
    finished_at: str | None = None
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Progress:
    """Handed to a step: `update(stage=, done=, total=)`; persisted at most once a second."""

    def __init__(self, run: Run, persist: Callable[[Run], None]):
        self.run = run
        self._persist = persist
        self._last = 0.0

    def update(self, stage: str | None = None, done: int | None = None, total: int | None = None,
               advance: int = 0) -> None:
        p = self.run.progress
        if stage is not None:
            p["stage"] = stage
        if total is not None:
            p["total"] = total
        if done is not None:
            p["done"] = done
        p["done"] = int(p.get("done") or 0) + advance
        now = time.monotonic()
        if now - self._last > 1.0:
            self._last = now
            self._persist(self.run)

    # tqdm-like spelling, for steps that take a progress bar
    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.update(*args, **kwargs)


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe, bounded copy of a step's result (dataclasses, numpy values, long lists cut)."""
    if depth > 6:
        return str(value)[:200]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in list(value.items())[:200]}
    if isinstance(value, list | tuple):
        return [jsonable(v, depth + 1) for v in value[:100]]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist()[:100], depth + 1)
    return str(value)[:500]


class _CountingEmbedder:
    """Passes texts to the real embedder and reports how many were embedded (ingest progress)."""

    def __init__(self, inner: Any, progress: Progress):
        self._inner = inner
        self._progress = progress

    def embed(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        vectors = self._inner.embed(texts, show_progress=False)
        self._progress.update(stage="embed + upsert", advance=len(texts))
        return vectors

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# ---------------------------------------------------------------------------------------------------------
# The steps: each (ws, dataset, options, progress) -> result dict. Heavy imports stay inside.
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadedFile:
    """A file the service itself received (POST /api/datasets) and placed under its uploads folder. It is
    handed to the ingest step beside the options, never as one: no client option can mark a path as
    uploaded and so skip the import-roots check."""

    path: Path
    original_name: str


@dataclass(frozen=True)
class Step:
    """A step clients can run: its module (absent = not installed), runner, and the options it accepts
    from HTTP with their types (anything else is a 422 before the run is queued)."""

    name: str
    module: str
    run: Callable[..., dict[str, Any]]  # (ws, dataset, options, progress[, upload]) -> result
    options: dict[str, type | tuple[type, ...]]

    def check(self, ws: Workspace, dataset: str, options: dict[str, Any]) -> dict[str, Any]:
        """Validated options (paths resolved) or InvalidInput naming `options.<name>`."""
        out = {}
        for key, value in options.items():
            if key not in self.options:
                raise invalid(f"options.{key}", f"{self.name} takes no such option; it takes "
                              f"{', '.join(sorted(self.options)) or 'none'}")
            kind = self.options[key]
            if value is None:
                continue
            if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
                names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
                raise invalid(f"options.{key}", f"must be {names}, got {value!r:.60}")
            out[key] = value
        return out


def _check_ingest(ws: Workspace, dataset: str, options: dict[str, Any], uploaded: bool) -> dict[str, Any]:
    from service.datasets.readers import FORMATS

    fmt = options.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise invalid("options.format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    split = options.get("split")
    if split is not None and split not in ("training", "validation", "testing"):
        raise invalid("options.split", f"{split!r} is not one of training, validation, testing")
    if uploaded:
        if options.get("path"):
            raise invalid("options.path", "an uploaded file is ingested; name no server path beside it")
    elif options.get("path"):
        options = {**options, "path": str(allowed_server_file(ws.settings, options["path"], "options.path"))}
    elif dataset != ws.settings.default_dataset:
        raise invalid("options.path", "is required to ingest into a dataset other than the default one")
    return options


def _check_train(options: dict[str, Any]) -> None:
    """A model family the trainer does not know is a 422 now, not a failed run later."""
    from service.predictions.models import FAMILIES

    model = options.get("model")
    if model is not None and model != "auto" and model not in FAMILIES:
        raise invalid("options.model", f"{model!r} is not 'auto' or one of {', '.join(FAMILIES)}")
    _check_at_least(options, {"folds": 2, "seed": 0, "learning_repeats": 1})


def _check_at_least(options: dict[str, Any], minimum: dict[str, int]) -> None:
    """Counts below their minimum are a 422 now, not a traceback from scikit-learn in the run."""
    for key, low in minimum.items():
        value = options.get(key)
        if isinstance(value, int) and value < low:
            raise invalid(f"options.{key}", f"is {value}; it must be {low} or more")


def step_ingest(ws: Workspace, dataset: str, options: dict[str, Any], progress: Progress,
                upload: UploadedFile | None = None) -> dict[str, Any]:
    from service.datasets.ingest import ingest, make_sources
    from service.datasets.readers import ColumnMap
    from service.fetch import humanloop_export

    fmt = options.get("format")
    if upload is not None:
        path = upload.path
    elif options.get("path"):
        path = Path(options["path"])
    else:
        path, fmt = humanloop_export(ws.settings), "humanloop"
    columns = ColumnMap(
        text=options.get("text_column") or "text", label=options.get("label_column") or "label",
        split=options.get("split_column") or "split", id=options.get("id_column") or "id",
        fixed_split=options.get("split") or None,
    )
    sources = make_sources([path], fmt, columns)
    existed = ws.catalog.exists(dataset)
    rejects = ws.settings.home / "rejects" / f"{dataset}-{progress.run.id}.jsonl"
    progress.update(stage="validate")
    embedder = _CountingEmbedder(ws.embedder, progress)
    try:
        report = ingest(ws.catalog, embedder, dataset, sources, skip_invalid=bool(options.get("skip_invalid")),
                        rejects_path=rejects, batch_size=ws.settings.ingest_batch_size)
    except InvalidInput as exc:
        if upload is None:
            raise
        raise _in_upload_terms(exc, path, upload.original_name) from exc
    # Remember how the file was read, so an export writes the same columns back.
    ws.catalog.update(dataset, columns={"text": columns.text, "label": columns.label, "split": columns.split,
                                         "id": columns.id, "fixed_split": columns.fixed_split},
                      source_name=upload.original_name if upload is not None else path.name)
    collection = ws.collection(dataset)
    if collection.count() > OPTIMIZE_ABOVE and hasattr(collection, "optimize"):
        progress.update(stage="index")
        collection.optimize()
    result = dataclasses.asdict(report)
    result["problems"] = result["problems"][:50]
    if existed and (report.inserted or report.updated) and ws.settings.retrain_accuracy_drop > 0:
        from service.predictions.triggers import check_batch

        progress.update(stage="check the champion on the new batch")
        # A labelled batch the champion does poorly on is news: the loop retrains (RunManager queues it).
        result["champion_check"] = check_batch(ws, dataset, path, fmt, columns,
                                               ws.settings.retrain_accuracy_drop)
    return result


# The readers speak to the command line; an upload's client knows its form fields and its own file name.
_COLUMN_FIELDS = ("text_column", "label_column", "split_column", "id_column")


def _in_upload_terms(exc: InvalidInput, path: Path, original: str) -> InvalidInput:
    """An ingest error about an uploaded file, reworded for the client: its file name rather than the
    server's temp path, form fields rather than CLI flags, and the form field at fault."""
    message = str(exc).replace(str(path), original)
    field = "form.file"
    for name in _COLUMN_FIELDS:
        flag = f"--{name.replace('_', '-')} NAME"
        if flag in message:
            message, field = message.replace(flag, f"the form field `{name}`"), f"form.{name}"
    out: InvalidInput
    if isinstance(exc, InvalidRecords):
        out = InvalidRecords(original, exc.problems, hint="fix these records, or send the form field "
                             "`skip_invalid=true` to ingest the rest and keep the rejects")
    else:
        out = InvalidInput(message)
    out.field = field  # type: ignore[attr-defined]
    return out


def step_train(ws: Workspace, dataset: str, options: dict[str, Any], progress: Progress) -> dict[str, Any]:
    from service.predictions.training import train_version

    if options.get("from_file"):
        options = {**options,
                   "from_file": allowed_server_file(ws.settings, str(options["from_file"]), "options.from_file")}
    version = train_version(ws, dataset, **options)
    return {"version": version.version, "labels": list(version.labels), "metrics": jsonable(version.metrics)}


def step_predict(ws: Workspace, dataset: str, options: dict[str, Any], progress: Progress) -> dict[str, Any]:
    from service.predictions.client import enrich

    return jsonable(enrich(ws, dataset, **options))


def step_analyze(ws: Workspace, dataset: str, options: dict[str, Any], progress: Progress) -> dict[str, Any]:
    from service.analyses.runner import analyze

    report = analyze(ws, dataset, **options)
    keys = ("run_id", "created_at", "model_version", "n_points", "stages", "summary")
    return jsonable({k: report.get(k) for k in keys if k in report})


def step_retrain(ws: Workspace, dataset: str, options: dict[str, Any], progress: Progress,
                 trigger: str = "api") -> dict[str, Any]:
    """Challenger, gate, and on promotion re-predict and re-analyse (service.predictions.retrain)."""
    from service.predictions.gate import GatePolicy
    from service.predictions.retrain import RetrainOptions, retrain

    s = ws.settings
    policy = GatePolicy(tolerance=options.get("tolerance", s.gate_tolerance),
                        min_cluster_size=options.get("min_cluster_size", s.gate_min_cluster_size),
                        max_cluster_regression=options.get("max_cluster_regression", s.gate_max_cluster_regression),
                        seed=options.get("seed", 0))
    chosen = RetrainOptions(policy=policy, dry_run=bool(options.get("dry_run")), force=bool(options.get("force")),
                            model=options.get("model") or "auto", folds=options.get("folds", 5),
                            seed=options.get("seed", 0), analyze=options.get("analyze", True), trigger=trigger)
    return jsonable(retrain(ws, dataset, chosen, report=progress.update))


def _check_retrain(options: dict[str, Any]) -> None:
    _check_train(options)
    for key in ("tolerance", "max_cluster_regression"):
        value = options.get(key)
        if value is not None and not 0 <= value <= 1:
            raise invalid(f"options.{key}", f"is {value}; it must be between 0 and 1")
    _check_at_least(options, {"min_cluster_size": 1})


STEPS: dict[str, Step] = {
    "ingest": Step("ingest", "service.datasets.ingest", step_ingest, {
        "path": str, "format": str, "text_column": str, "label_column": str, "split_column": str,
        "id_column": str, "split": str, "skip_invalid": bool}),
    "train": Step("train", "service.predictions.training", step_train, {
        "model": str, "folds": int, "seed": int, "learning_repeats": int, "from_file": str}),
    "predict": Step("predict", "service.predictions.client", step_predict, {
        "version": str, "n_best": int, "batch_size": int, "concurrency": int, "timeout": (int, float),
        "force": bool}),
    "analyze": Step("analyze", "service.analyses.runner", step_analyze, {
        "analyses": list, "k": int, "knn_kind": str, "exact_threshold": int, "seed": int, "model_version": str}),
    "retrain": Step("retrain", "service.predictions.retrain", step_retrain, {
        "dry_run": bool, "force": bool, "tolerance": (int, float), "min_cluster_size": int,
        "max_cluster_regression": (int, float), "model": str, "folds": int, "seed": int, "analyze": bool}),
}


def step_available(step: str) -> bool:
    try:
        return importlib.util.find_spec(STEPS[step].module) is not None
    except ModuleNotFoundError:
        return False


# ---------------------------------------------------------------------------------------------------------


class RunManager:
    """Queues runs on one worker thread and keeps their records."""

    def __init__(self, state: ApiState):
        self.state = state
        self._runs: dict[str, Run] = {}
        self._futures: dict[str, Future] = {}
        self._guard = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._recovered = False

    def _warm(self, dataset: str) -> None:
        """The dataset changed: rebuild its snapshot now, on this worker, not on the next page view."""
        from service.api.deps import warm_snapshot

        try:
            if self.state.workspace.catalog.exists(dataset):  # a delete run leaves nothing to warm
                warm_snapshot(self.state, dataset)
        except Exception as exc:  # noqa: BLE001 - the next page view builds it anyway
            log.warning("could not pre-build the views of %s: %s", dataset, exc)

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dd-run")
        try:
            self._recover()
        except Unavailable as exc:
            log.warning("runs not recovered yet: %s", exc)

    def _collection(self, create: bool = True):
        """The runs collection; None when it does not exist yet and `create` is False (reads)."""
        store = self.state.workspace.store
        if store.exists(RUNS_COLLECTION):
            return store.get(RUNS_COLLECTION)
        return store.create(RUNS_COLLECTION, 1) if create else None

    def _recover(self) -> None:
        """Mark runs left queued or running by a previous process as interrupted."""
        if self._recovered:
            return
        runs = self._collection(create=False)
        if runs is None:
            self._recovered = True
            return
        stale = []
        offset = None
        while True:
            page, offset = runs.scroll_page(limit=1000, offset=offset)
            stale.extend(p for p in page if p.payload.get("status") in ACTIVE and p.payload["id"] not in self._runs)
            if offset is None:
                break
        for p in stale:
            runs.set_payloads({p.id: {"status": "interrupted", "finished_at": now_iso(),
                                      "error": {"status": 503, "code": "interrupted", "field": None, "problems": [],
                                                "message": "the service stopped during this run; start it again"}}})
        if stale:
            runs.flush()
            log.warning("%d run(s) were interrupted by the last shutdown", len(stale))
        self._recovered = True

    def _persist(self, run: Run) -> None:
        try:
            runs = self._collection()
            runs.upsert([_run_point(run.id)], np.ones((1, 1), np.float32), [jsonable(run.to_dict())])
        except Exception as exc:  # noqa: BLE001 - a run record is not worth failing the run for
            log.warning("could not persist run %s: %s", run.id, exc)

    def submit(self, dataset: str, step: str, options: dict[str, Any],
               cleanup: tuple[Path, ...] = (), upload: UploadedFile | None = None,
               trigger: str | None = None) -> tuple[Run, Future]:
        """Queue a run; the future resolves to the finished Run (its error is kept, not raised). `options` are
        the client's, checked against the step; `upload` is the service's own received file (ingest only)."""
        if upload is not None and step != "ingest":
            raise ValueError("only an ingest run takes an uploaded file")
        if trigger is not None and step != "retrain":
            raise ValueError("only a retrain run has a trigger")
        if step not in STEPS:
            raise invalid("body.step", f"{step!r} is not one of {', '.join(STEPS)}")
        if not step_available(step):
            raise Unavailable(f"the {step} step is not part of this installation")
        if self._executor is None:
            raise Unavailable("the run worker is not started (the service is starting or stopping)")
        ws = self.state.workspace
        options = STEPS[step].check(ws, dataset, options)
        if step == "ingest":
            options = _check_ingest(ws, dataset, options, uploaded=upload is not None)
        elif step == "train":
            _check_train(options)
        elif step == "analyze":
            _check_at_least(options, {"k": 1, "seed": 0, "exact_threshold": 0})
        elif step == "retrain":
            _check_retrain(options)
        self._recover()
        shown = {**options, "original_name": upload.original_name} if upload is not None else dict(options)
        if step == "retrain":
            shown["trigger"] = trigger or "api"  # who asked: the service's own trigger or a client
        run = Run(id=uuid.uuid4().hex[:16], dataset=dataset, step=step, params=jsonable(shown))
        with self._guard:
            self._runs[run.id] = run
        self._persist(run)
        extra: dict[str, Any] = {"upload": upload} if upload is not None else {}
        if trigger is not None:
            extra["trigger"] = trigger
        future = self._executor.submit(self._execute, run, options, cleanup, extra)
        with self._guard:
            self._futures[run.id] = future
        return run, future

    def _execute(self, run: Run, options: dict[str, Any], cleanup: tuple[Path, ...],
                 extra: dict[str, Any]) -> Run:
        """Run a step; `extra` holds what the service itself hands the step (an uploaded file, a trigger)."""
        fn = STEPS[run.step].run
        run.status, run.started_at = "running", now_iso()
        run.progress["stage"] = run.step
        self._persist(run)
        started = time.perf_counter()
        try:
            result = fn(self.state.workspace, run.dataset, dict(options), Progress(run, self._persist), **extra)
            run.result = jsonable(result)
            run.status = "succeeded"
            run.progress["stage"] = "done"
        except BaseException as exc:  # noqa: BLE001 - recorded on the run, answered to whoever waits
            status, body = describe(exc)
            run.status, run.error = "failed", body
            run.progress["stage"] = "failed"
            run._exception = exc  # type: ignore[attr-defined] - the waiting upload re-raises it
            log.warning("run %s (%s %s) failed after %.1f s: %s", run.id, run.step, run.dataset,
                        time.perf_counter() - started, body["message"])
        finally:
            run.finished_at = now_iso()
            self.state.bump(run.dataset)
            for path in cleanup:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        if run.status == "succeeded":
            log.info("run %s (%s %s) done in %.1f s", run.id, run.step, run.dataset, time.perf_counter() - started)
            self._warm(run.dataset)
            self._retrain_if_drifted(run)
        self._persist(run)
        return run

    def _retrain_if_drifted(self, run: Run) -> None:
        """An ingest whose labelled batch the champion did poorly on queues a retrain (one per dataset)."""
        check = (run.result or {}).get("champion_check") if run.step == "ingest" else None
        if not check or not check.get("retrain_due") or self.active(run.dataset, "retrain") is not None:
            return
        try:
            queued, _ = self.submit(run.dataset, "retrain", {}, trigger="batch")
            log.info("%s: %s scored %.3f on the new batch (test %.3f); retrain %s queued", run.dataset,
                     check["champion"], check["accuracy"], check["test_accuracy"] or 0.0, queued.id)
        except Exception as exc:  # noqa: BLE001 - the ingest succeeded; the retrain can be asked for by hand
            log.warning("could not queue a retrain of %s: %s", run.dataset, exc)

    def get(self, run_id: str) -> Run | None:
        with self._guard:
            run = self._runs.get(run_id)
        if run is not None:
            return run
        runs = self._collection(create=False)
        found = runs.retrieve([_run_point(run_id)]) if runs is not None and _valid_id(run_id) else []
        if not found:
            return None
        return _from_payload(found[0].payload)

    def list(self, dataset: str | None = None, status: str | None = None) -> list[Run]:
        """Every run known, newest first."""
        by_id: dict[str, Run] = {}
        offset = None
        runs = self._collection(create=False)
        while runs is not None:
            page, offset = runs.scroll_page(limit=1000, offset=offset)
            for p in page:
                by_id[p.payload["id"]] = _from_payload(p.payload)
            if offset is None:
                break
        with self._guard:
            by_id.update(self._runs)
        out = [r for r in by_id.values() if (dataset is None or r.dataset == dataset)
               and (status is None or r.status == status)]
        return sorted(out, key=lambda r: (r.created_at, r.id), reverse=True)

    def active(self, dataset: str, step: str) -> Run | None:
        """A queued or running run of `step` on `dataset` in this process, if any."""
        with self._guard:
            return next((r for r in self._runs.values() if r.dataset == dataset and r.step == step
                         and r.status in ACTIVE), None)

    def pending(self) -> int:
        with self._guard:
            return sum(1 for r in self._runs.values() if r.status in ACTIVE)

    def shutdown(self, wait: bool = True) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=True)
            self._executor = None


def _valid_id(run_id: str) -> bool:
    return len(run_id) == 16 and all(c in "0123456789abcdef" for c in run_id)


def _run_point(run_id: str) -> str:
    from embeddings.store import point_id

    return str(point_id(run_id))


def _from_payload(payload: dict[str, Any]) -> Run:
    names = {f.name for f in dataclasses.fields(Run)}
    return Run(**{k: v for k, v in payload.items() if k in names})
