"""Map frames shared by every session of a dashboard server, revalidated with the API's ETag."""

from __future__ import annotations

import logging
import threading

import pandas as pd

from dashboard.client import ApiClient
from dashboard.state.map import RowIndex, map_frame, rows_by_key

log = logging.getLogger(__name__)


class MapCache:
    """One frame per (API, dataset). A page load costs a conditional GET: 304 while nothing changed.

    The map travels in its Arrow form (typed columns, nothing to parse); without this cache every browser tab
    would still fetch and convert a million points.
    """

    def __init__(self) -> None:
        self._frames: dict[tuple[str, str], tuple[str, pd.DataFrame, RowIndex]] = {}
        self._lock = threading.Lock()

    def frame(self, client: ApiClient, dataset: str) -> pd.DataFrame:
        """The dataset's map frame: a private copy, since a session edits labels in place."""
        return self.frame_and_rows(client, dataset)[0]

    def frame_and_rows(self, client: ApiClient, dataset: str) -> tuple[pd.DataFrame, RowIndex]:
        """A private copy of the dataset's map frame, and its key -> row index (shared: keys never change)."""
        cache_key = (client.base_url, dataset)
        with self._lock:  # one fetch at a time: parallel first visits would each convert the whole map
            cached = self._frames.get(cache_key)
            table, etag = client.map(dataset, etag=cached[0] if cached else None, arrow=True)
            if table is None and cached is not None:
                return cached[1].copy(deep=False), cached[2]  # copy-on-write: a relabel copies one column
            frame = map_frame(table if table is not None else {"ids": []})
            rows = rows_by_key(frame)
            if etag:
                self._frames[cache_key] = (etag, frame, rows)
            log.info("map of %s fetched: %d points", dataset, len(frame))
            return frame.copy(deep=False), rows

    def holds(self, api_url: str, dataset: str) -> bool:
        """Whether a frame of `dataset` is cached (a preload finished)."""
        with self._lock:
            return (api_url.rstrip("/"), dataset) in self._frames

    def clear(self) -> None:
        """Forget every cached frame."""
        with self._lock:
            self._frames.clear()
