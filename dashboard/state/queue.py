"""The labelling queue: a strategy and a budget, a preview, and downloads in the export formats."""

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

    strategy = param.Selector(objects=list(STRATEGIES), default=DEFAULT_STRATEGY)
    budget = param.Integer(default=50, bounds=(1, 10_000))
    rows = param.DataFrame(default=None, allow_None=True)
    message = param.String(default="")

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
