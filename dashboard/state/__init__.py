"""The dashboard's state: param stores per view, driven by the API client, testable without a browser."""

from __future__ import annotations

import logging
from typing import Any

import param

from dashboard.client import ApiClient
from dashboard.state.clusters import ClustersState
from dashboard.state.loop import LoopState
from dashboard.state.map import MapState
from dashboard.state.models import ModelsState
from dashboard.state.queue import QueueState
from dashboard.state.review import ReviewState
from dashboard.state.search import SearchState
from service.errors import DataDebuggerError

log = logging.getLogger(__name__)

__all__ = ["ClustersState", "DashboardState", "LoopState", "MapState", "ModelsState", "QueueState", "ReviewState",
           "SearchState"]


class DashboardState(param.Parameterized):
    """One per browser session: the dataset shown and every view's store."""

    dataset: param.Selector[str | None] = param.Selector(objects=[], doc="the dataset shown")
    message = param.String(default="")
    analysis_warning = param.String(default="", doc="the dataset's analysis state when wrong (e.g. incomplete)")

    def __init__(self, client: ApiClient, defer_rest: bool = False, cache: Any = None, **params: Any):
        super().__init__(**params)
        self.client = client
        # In a served page the map is sent first and the other views load once the page shows it.
        self.defer_rest = defer_rest
        self.map = MapState(client, cache=cache)
        self.clusters = ClustersState(client, self.map)
        self.review = ReviewState(client, self.map)
        self.queue = QueueState(client, self.map)
        self.models = ModelsState(client, self.map)
        self.loop = LoopState(client, self.map, on_done=self._after_retrain)
        self.search = SearchState(client, self.map)
        self._listed = False  # whether `dataset`'s choices hold every dataset yet
        self.param.watch(lambda e: self.open(e.new), "dataset")

    def start(self, dataset: str | None = None) -> DashboardState:
        """List the datasets and open `dataset` (default: the first)."""
        if dataset and self.defer_rest and self._open_named(dataset):
            return self
        names = self._names()
        if names is None:
            return self
        if not names:
            self.message = "no datasets yet: ingest one with `data-debugger ingest` or `data-debugger run`"
            return self
        chosen = dataset if dataset in names else names[0]
        if self.dataset == chosen:
            self.open(chosen)
        else:
            self.dataset = chosen  # the watcher opens it
        return self

    def _open_named(self, dataset: str) -> bool:
        """A served page naming its dataset shows that map before listing the datasets (the list counts each one
        in the store: a second at a million points); load_rest lists them. False if there is no such dataset."""
        self._listed = False
        self.param.dataset.objects = [dataset]
        self.dataset = dataset  # the watcher opens it
        if self.map.frame is None or self.map.dataset != dataset:
            self.message = ""
            self.defer_rest = True
            return False
        return True

    def _names(self) -> list[str] | None:
        """The datasets' names, set as the choices of `dataset` (None, with a message, if the API fails)."""
        try:
            names = [d["name"] for d in self.client.datasets()]
        except DataDebuggerError as exc:
            self.message = str(exc)
            return None
        self._listed = True
        self.param.dataset.objects = names
        return names

    def open(self, dataset: str) -> None:
        """Load the map first (what the user sees first), then the other views' data."""
        try:
            self.map.load(dataset)
        except DataDebuggerError as exc:
            self.message = f"cannot load {dataset!r}: {exc}"
            return
        if self.defer_rest:
            self.defer_rest = False  # only the first page load waits; a dataset switch loads everything
        else:
            self.load_rest()

    def _after_retrain(self) -> None:
        """A retrain finished: a promotion re-predicted and re-analysed the points, so reload what shows them."""
        try:
            self.map.load(self.map.dataset)
        except DataDebuggerError as exc:
            self.message = f"cannot reload the map: {exc}"
        self.load_rest()

    def load_rest(self) -> None:
        """The views after the map: each one's failure is its own message, not the page's."""
        if not self._listed:  # a page that named its dataset listed none yet
            self._names()
        self.analysis_warning = self._analysis_warning(self.map.dataset)
        self.message = self.analysis_warning
        self.clusters.load()
        self.review.load()
        self.models.load()
        self.loop.load()
        self.message = self.analysis_warning

    def _analysis_warning(self, dataset: str) -> str:
        """What the dataset detail says is wrong with its analysis ("analysis incomplete: re-run analyze")."""
        try:
            return self.client.dataset(dataset).get("analysis_warning") or ""
        except DataDebuggerError as exc:  # the map loaded, so the views still help; say why this is unknown
            log.warning("could not read the analysis state of %s: %s", dataset, exc)
            return ""
