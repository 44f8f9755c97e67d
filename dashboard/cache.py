"""Map frames shared by every session of a dashboard server, refetched when the dataset's data changes."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pandas as pd

from dashboard.client import ApiClient
from dashboard.state.map import map_frame

log = logging.getLogger(__name__)

# Fields of GET /api/datasets/{d} that change whenever what /map answers changes.
VERSION_FIELDS = ("points", "analysis_run", "last_analysis_at", "label_revision", "last_ingest_at", "updated_at")


def data_version(detail: dict[str, Any]) -> tuple[Any, ...] | None:
    """What identifies the map's content; None when the API says nothing that would (then never cache)."""
    version = tuple(detail.get(f) for f in VERSION_FIELDS)
    return version if any(v is not None for v in version[1:]) else None


class MapCache:
    """One frame per (API, dataset); a page load costs one small detail request when nothing changed.

    A 100k-point /map answer is ~20 MB of JSON; without this every browser tab would fetch and parse it.
    """

    def __init__(self) -> None:
        self._frames: dict[tuple[str, str], tuple[tuple[Any, ...], pd.DataFrame]] = {}
        self._lock = threading.Lock()

    def frame(self, client: ApiClient, dataset: str) -> pd.DataFrame:
        """The dataset's map frame: a private copy, since a session edits labels in place."""
        version = data_version(client.dataset(dataset))
        cache_key = (client.base_url, dataset)
        with self._lock:  # one fetch at a time: parallel first visits would each parse 20 MB
            cached = self._frames.get(cache_key)
            if version is not None and cached is not None and cached[0] == version:
                return cached[1].copy()
            frame = map_frame(client.map(dataset))
            if version is not None:
                self._frames[cache_key] = (version, frame)
            log.info("map of %s fetched: %d points", dataset, len(frame))
            return frame.copy() if version is not None else frame

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
