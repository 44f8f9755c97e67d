"""The labelling queue: a strategy and a budget, a preview, downloads in the export formats, and Label Studio
push / pull runs with their progress."""

from __future__ import annotations

import io
import logging
from typing import Any

import pandas as pd
import param

from dashboard.client import ApiClient
from dashboard.state.map import MapState
from service.choices import DEFAULT_STRATEGY, EXTENSIONS, FORMATS
from service.choices import STRATEGIES as SERVICE_STRATEGIES
from service.errors import DataDebuggerError

log = logging.getLogger(__name__)

# The default first, the rest as the service declares them.
STRATEGIES = (DEFAULT_STRATEGY, *(s for s in SERVICE_STRATEGIES if s != DEFAULT_STRATEGY))


class QueueState(param.Parameterized):
    """What to label next: preview rows, then download them for an annotation tool."""

    strategy: param.Selector[str] = param.Selector(objects=list(STRATEGIES), default=DEFAULT_STRATEGY)
    budget = param.Integer(default=50, bounds=(1, 10_000))
    rows = param.DataFrame(default=None, allow_None=True)
    message = param.String(default="")
    sync = param.String(default="", doc="the latest Label Studio push/pull run, in words")
    run_id = param.String(default="")
    run_active = param.Boolean(default=False)

    def __init__(self, client: ApiClient, map_state: MapState, **params: Any):
        super().__init__(**params)
        self.client = client
        self.map = map_state

    def preview(self) -> QueueState:
        """Fetch the queue and highlight its points on the map."""
        try:
            rows = self.client.queue(self.map.dataset, self.strategy, self.budget)
        except DataDebuggerError as exc:
            self.param.update(rows=None, message=str(exc))
            return self
        frame = pd.DataFrame([{**(r.get("payload") or {}), **{k: v for k, v in r.items() if k != "payload"}}
                              for r in rows])
        self.param.update(rows=frame, message=f"{len(frame)} points to label ({self.strategy})")
        if "id" in frame:
            self.map.highlight(list(frame["id"]), f"labelling queue: {self.strategy}, {len(frame)} points")
        return self

    # -- Label Studio: push and pull run in the background; `sync` shows the latest one's progress --------

    def push_to_label_studio(self) -> QueueState:
        """Send the queue (this strategy and budget) to the dataset's Label Studio project, as a run."""
        return self._start("label-studio-push", strategy=self.strategy, limit=self.budget)

    def pull_from_label_studio(self) -> QueueState:
        """Apply what annotators did in Label Studio since the last pull, as a run."""
        return self._start("label-studio-pull")

    def _start(self, step: str, **options: Any) -> QueueState:
        try:
            run = self.client.start_run(self.map.dataset, step, options)
        except DataDebuggerError as exc:
            self.sync = f"{step}: {exc}"
            return self
        self.run_id = run["id"]
        return self.refresh_run()

    def refresh_run(self) -> QueueState:
        """Read the latest Label Studio run's progress (the view polls this while it is active)."""
        if not self.run_id:
            return self
        try:
            run = self.client.run(self.run_id)
        except DataDebuggerError as exc:
            self.sync = str(exc)
            return self
        self.param.update(sync=describe_run(run), run_active=run["status"] in ("queued", "running"))
        return self

    def filename(self, fmt: str) -> str:
        """The download's file name for a format."""
        return f"{self.map.dataset}-queue-{self.strategy}-{self.budget}.{EXTENSIONS[fmt]}"

    def download(self, fmt: str) -> io.BytesIO:
        """The queue as the API exports it (csv, jsonl or label-studio)."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        try:
            return io.BytesIO(self.client.queue(self.map.dataset, self.strategy, self.budget, fmt=fmt))
        except DataDebuggerError as exc:
            self.message = str(exc)
            return io.BytesIO(b"")


def describe_run(run: dict[str, Any]) -> str:
    """A Label Studio run in one line: its progress while it runs, what it did or why it failed after."""
    step = run["step"].replace("label-studio-", "Label Studio ")
    progress = run.get("progress") or {}
    if run["status"] in ("queued", "running"):
        total = f"/{progress['total']}" if progress.get("total") else ""
        return f"{step}: {run['status']}, {progress.get('stage', '')} {progress.get('done') or 0}{total}".rstrip()
    if run["status"] != "succeeded":
        return f"{step} {run['status']}: {(run.get('error') or {}).get('message', '')}"
    result = run.get("result") or {}
    if run["step"] == "label-studio-push":
        return (f"{step}: {result.get('sent', 0)} task(s) sent, {result.get('already_there', 0)} already there, "
                f"{result.get('removed', 0)} removed, {result.get('marked', 0)} marked; {result.get('project_url')}")
    return (f"{step}: {result.get('accepted', 0)} accepted, {result.get('reviewed', 0)} reviewed, "
            f"{result.get('relabelled', 0)} relabelled, {result.get('unchanged', 0)} unchanged, "
            f"{len(result.get('stale') or [])} stale, {len(result.get('skipped') or [])} skipped")
