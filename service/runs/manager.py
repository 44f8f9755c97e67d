"""The run queue: one worker thread runs the steps in submission order, off the event loop.

One worker, because the embedded store admits one process and two heavy steps on 2 cores would only slow
each other. The manager knows nothing of HTTP: whoever builds it says how to describe a failure and what
to do when a run finishes (the API invalidates and re-warms the dataset's cached views)."""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from service.datasets.catalog import now_iso
from service.errors import Unavailable, invalid
from service.review.core import ReviewCore
from service.runs.records import ACTIVE, Run, RunRecords, jsonable
from service.runs.steps import STEPS, StepContext, StepOptions, UploadedFile
from service.workspace import Workspace

log = logging.getLogger(__name__)

# (exception) -> the error body a run keeps: {"status", "code", "message", "field", "problems"}
Describe = Callable[[BaseException], dict[str, Any]]
OnFinished = Callable[[Run], None]


def plain_error(exc: BaseException) -> dict[str, Any]:
    """The error body where nobody supplies a richer one (the CLI, tests)."""
    return {"status": 500, "code": type(exc).__name__, "message": str(exc), "field": getattr(exc, "field", None),
            "problems": []}


class RunProgress:
    """A step's progress listener for one run: updates the run, persisted at most once a second."""

    def __init__(self, run: Run, persist: Callable[[Run], None]):
        self.run = run
        self._persist = persist
        self._last = 0.0

    def __call__(self, stage: str | None = None, done: int | None = None, total: int | None = None,
                 advance: int = 0) -> None:
        p = self.run.progress
        if stage is not None and stage != p.get("stage"):
            p["stage"] = stage
            if done is None and total is None:  # a new stage counts from zero unless it says otherwise
                p["done"], p["total"] = 0, None
        if total is not None:
            p["total"] = total
        if done is not None:
            p["done"] = done
        p["done"] = int(p.get("done") or 0) + advance
        now = time.monotonic()
        if now - self._last > 1.0:
            self._last = now
            self._persist(self.run)

    update = __call__  # the spelling of code written against a progress object (tqdm, service.labelstudio)


class RunManager:
    """Queues runs on one worker thread and keeps their records."""

    def __init__(self, workspace: Callable[[], Workspace], *, describe: Describe = plain_error,
                 on_finished: OnFinished | None = None, service: Callable[[], ReviewCore] | None = None):
        self._workspace = workspace
        self._describe = describe
        self._on_finished = on_finished
        self._service = service  # the running service, for steps that write through its review core
        self.records = RunRecords(workspace)
        self._runs: dict[str, Run] = {}
        self._exceptions: dict[str, BaseException] = {}  # by run id: what a failed run raised, for a waiting caller
        self._guard = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._recovered = False

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dd-run")
        try:
            self._recover()
        except Unavailable as exc:
            log.warning("runs not recovered yet: %s", exc)

    def _recover(self) -> None:
        if not self._recovered:
            with self._guard:
                mine = set(self._runs)
            self.records.mark_interrupted(keep=mine)
            self._recovered = True

    def submit(self, dataset: str, step: str, options: dict[str, Any], cleanup: tuple[Path, ...] = (),
               upload: UploadedFile | None = None, trigger: str | None = None) -> tuple[Run, Future]:
        """Queue a run; the future resolves to the finished Run (its error is kept, not raised). `options` are
        the client's, checked by the step's options model; `upload` (the service's own received file) and
        `trigger` (who asked, when the service itself did) are never options."""
        if step not in STEPS:
            raise invalid("body.step", f"{step!r} is not one of {', '.join(STEPS)}")
        spec = STEPS[step]
        if upload is not None and not spec.takes_upload:
            raise ValueError(f"the {step} step takes no uploaded file")
        if trigger is not None and not spec.takes_trigger:
            raise ValueError(f"the {step} step has no trigger")
        if spec.needs_service and self._service is None:
            raise Unavailable(f"the {step} step runs inside the service only")
        if not spec.available():
            raise Unavailable(f"the {step} step is not part of this installation")
        if self._executor is None:
            raise Unavailable("the run worker is not started (the service is starting or stopping)")
        checked = spec.parse(options).resolved(self._workspace(), dataset, upload)
        self._recover()
        shown = checked.given()
        if upload is not None:
            shown["original_name"] = upload.original_name
        if spec.takes_trigger:
            shown["trigger"] = trigger or "api"  # who asked: the service's own trigger or a client
        run = Run(id=uuid.uuid4().hex[:16], dataset=dataset, step=step, params=jsonable(shown))
        with self._guard:
            self._runs[run.id] = run
        self.records.save(run)
        future = self._executor.submit(self._execute, run, checked, cleanup, upload, trigger)
        return run, future

    def _execute(self, run: Run, options: StepOptions, cleanup: tuple[Path, ...],
                 upload: UploadedFile | None, trigger: str | None) -> Run:
        run.status, run.started_at = "running", now_iso()
        run.progress["stage"] = run.step
        self.records.save(run)
        started = time.perf_counter()
        try:
            service = self._service() if STEPS[run.step].needs_service and self._service is not None else None
            ctx = StepContext(self._workspace(), run.dataset, run.id, RunProgress(run, self.records.save), upload,
                              trigger, service)
            run.result = jsonable(STEPS[run.step].run(ctx, options))
            run.status = "succeeded"
            run.progress["stage"] = "done"
        except BaseException as exc:  # noqa: BLE001 - recorded on the run, answered to whoever waits
            run.status, run.error = "failed", self._describe(exc)
            run.progress["stage"] = "failed"
            with self._guard:
                self._exceptions[run.id] = exc  # the waiting upload re-raises it
            log.warning("run %s (%s %s) failed after %.1f s: %s", run.id, run.step, run.dataset,
                        time.perf_counter() - started, run.error.get("message"))
        finally:
            run.finished_at = now_iso()
            for path in cleanup:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        if run.status == "succeeded":
            log.info("run %s (%s %s) done in %.1f s", run.id, run.step, run.dataset, time.perf_counter() - started)
        if self._on_finished is not None:
            try:
                self._on_finished(run)
            except Exception as exc:  # noqa: BLE001 - the run itself is done; a listener failing does not undo it
                log.warning("after run %s: %s", run.id, exc)
        self.records.save(run)
        if run.status == "succeeded":
            self._follow_up(run)
        return run

    def _follow_up(self, run: Run) -> None:
        """Queue the run the finished step asks for, unless one of that step is queued for the dataset."""
        decide = STEPS[run.step].follow_up
        follow = decide(run.result or {}) if decide is not None else None
        if follow is None or self.active(run.dataset, follow.step) is not None:
            return
        try:
            queued, _ = self.submit(run.dataset, follow.step, follow.options, trigger=follow.trigger)
            log.info("%s: run %s (%s) queued %s %s", run.dataset, run.id, run.step, follow.step, queued.id)
        except Exception as exc:  # noqa: BLE001 - the finished run stands; the follow-up can be asked for by hand
            log.warning("could not queue %s of %s after run %s: %s", follow.step, run.dataset, run.id, exc)

    def active(self, dataset: str, step: str) -> Run | None:
        """A queued or running run of `step` on `dataset` in this process, if any."""
        with self._guard:
            return next((r for r in self._runs.values() if r.dataset == dataset and r.step == step
                         and r.status in ACTIVE), None)

    def exception(self, run_id: str) -> BaseException | None:
        """What a failed run of this process raised (None for others, and for runs that succeeded)."""
        with self._guard:
            return self._exceptions.get(run_id)

    def get(self, run_id: str) -> Run | None:
        with self._guard:
            run = self._runs.get(run_id)
        return run if run is not None else self.records.get(run_id)

    def list(self, dataset: str | None = None, status: str | None = None) -> list[Run]:
        """Every run known, newest first."""
        by_id = {r.id: r for r in self.records.all()}
        with self._guard:
            by_id.update(self._runs)
        out = [r for r in by_id.values() if (dataset is None or r.dataset == dataset)
               and (status is None or r.status == status)]
        return sorted(out, key=lambda r: (r.created_at, r.id), reverse=True)

    def pending(self) -> int:
        with self._guard:
            return sum(1 for r in self._runs.values() if r.status in ACTIVE)

    def shutdown(self, wait: bool = True) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=True)
            self._executor = None
