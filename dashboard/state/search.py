"""Free-text search: the nearest points, listed and ringed on the map."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import param

from dashboard.client import ApiClient
from dashboard.colours import NONE
from dashboard.state.map import MapState
from dashboard.state.review import flatten
from service.errors import DataDebuggerError

log = logging.getLogger(__name__)

COLUMNS = ["id", "score", "text", "label", "prediction"]


class SearchState(param.Parameterized):
    """A query and its hits; the hits follow the map's filters through the API's point filters."""

    query = param.String(default="")
    k = param.Integer(default=10, bounds=(1, 200))
    hits = param.DataFrame(default=None, allow_None=True)
    message = param.String(default="")

    def __init__(self, client: ApiClient, map_state: MapState, **params: Any):
        super().__init__(**params)
        self.client = client
        self.map = map_state

    def run(self, query: str | None = None) -> SearchState:
        """Search the dataset for `query` (default: the current one) and highlight the hits."""
        if query is not None:
            self.query = query
        text = self.query.strip()
        if not text:
            self.param.update(hits=None, message="type something to search for")
            self.map.clear_highlight()
            return self
        # The map's filters go to the API, so the k hits are the k nearest among the points shown.
        filters: dict[str, Any] = {n: [v for v in values if v != NONE] for n, values in self.map.filters().items()}
        if "cluster" in filters:
            filters["cluster"] = [int(v) for v in filters["cluster"] if v.lstrip("-").isdigit()]
        try:
            hits = [flatten(h) for h in self.client.search(self.map.dataset, text=text, k=self.k, **filters)]
        except DataDebuggerError as exc:
            self.param.update(hits=None, message=str(exc))
            return self
        hits = [h for h in hits if self.map.passes(h.get("id"))]
        frame = pd.DataFrame([{c: h.get(c) for c in COLUMNS} for h in hits], columns=COLUMNS)
        self.param.update(hits=frame, message=f"{len(frame)} nearest points to {text!r}")
        self.map.highlight(list(frame["id"]), f"search: {text}")
        return self
