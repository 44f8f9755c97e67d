"""Map frames shared by every session of a dashboard server, revalidated with the API's ETag."""

from __future__ import annotations

import logging
import threading

import pandas as pd

from dashboard.client import ApiClient
from dashboard.state.map import map_frame

log = logging.getLogger(__name__)


class MapCache:
    """One frame per (API, dataset). A page load costs a conditional GET: 304 while nothing changed.

    A 100k-point /map answer is ~20 MB of JSON; without this every browser tab would fetch and parse it.
    """

    def __init__(self) -> None:
        self._frames: dict[tuple[str, str], tuple[str, pd.DataFrame]] = {}
        self._lock = threading.Lock()

    def frame(self, client: ApiClient, dataset: str) -> pd.DataFrame:
        """The dataset's map frame: a private copy, since a session edits labels in place."""
        cache_key = (client.base_url, dataset)
        with self._lock:  # one fetch at a time: parallel first visits would each parse 20 MB
            cached = self._frames.get(cache_key)
            columns, etag = client.map(dataset, etag=cached[0] if cached else None)
            if columns is None and cached is not None:
                return cached[1].copy()
            frame = map_frame(columns or {})
            if etag:
                self._frames[cache_key] = (etag, frame)
            log.info("map of %s fetched: %d points", dataset, len(frame))
            return frame.copy()

    def holds(self, api_url: str, dataset: str) -> bool:
        """Whether a frame of `dataset` is cached (a preload finished)."""
        with self._lock:
            return (api_url.rstrip("/"), dataset) in self._frames

    def clear(self) -> None:
        """Forget every cached frame."""
        with self._lock:
            self._frames.clear()
