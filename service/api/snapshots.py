"""Columnar snapshots of a dataset's payloads, built once per (dataset, ingest, analysis run, invalidations)
and patched in place by relabels, so the map and the ranked views are not rebuilt on every page view."""

from __future__ import annotations

import gzip
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from embeddings.store import PointId, iter_points
from service.analyses.registry import snapshot_columns
from service.analyses.report import REPORT_NAME, WRITEBACK_NAME, report_path
from service.jsonable import jsonable
from service.settings import Settings

log = logging.getLogger(__name__)

# Ingest's, predict's and review's fields the views read; the analyses add the fields they declare as
# columns (service.analyses.registry.snapshot_columns).
BASE_COLUMNS = (
    "record_id", "text", "label", "split", "prediction", "confidence", "entropy", "prediction_status",
    "review_status", "revision", "model_version", "original_label",
)
BASE_FLOAT_COLUMNS = ("confidence", "entropy")


def columns() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(every snapshot column, the float ones): the base columns and what the registered analyses declare."""
    extra, floats = snapshot_columns()
    return (*BASE_COLUMNS, *extra), (*BASE_FLOAT_COLUMNS, *floats)


MAP_COLUMNS = ("x", "y", "text", "label", "prediction", "confidence", "split", "cluster", "triage",
               "mislabel_score", "entropy", "review_status")
# The map as Arrow IPC: the same fields, typed columns instead of JSON text (floats as float32, repeated
# strings dictionary-encoded), which a client reads without parsing; the JSON form stays the default.
ARROW_MEDIA_TYPE = "application/vnd.apache.arrow.stream"
DICTIONARY_COLUMNS = ("label", "prediction", "split", "triage", "review_status")


# Derived values kept per snapshot state: the three rankings plus recent version comparisons.
MAX_DERIVED = 16


def report_stamp(settings: Settings, dataset: str) -> tuple[int, ...] | None:
    """Identity of the analysis report file (mtime, size) and of a write-back marker beside it: changes
    whenever analyze writes a new report or starts writing to the points."""
    folder = report_path(settings, dataset).parent
    try:
        st = (folder / REPORT_NAME).stat()
    except FileNotFoundError:
        return None
    try:
        marker = (folder / WRITEBACK_NAME).stat().st_mtime_ns
    except FileNotFoundError:
        marker = 0
    return (st.st_mtime_ns, st.st_size, marker)


def correct_of(status: Any) -> bool | None:
    return {"correct": True, "incorrect": False}.get(status)


@dataclass
class Snapshot:
    """Every point's view fields as columns; `index` maps a point id to its row."""

    dataset: str
    key: tuple
    ids: list[PointId]
    columns: dict[str, list[Any]]
    label_revision: int
    built_seconds: float = 0.0
    index: dict[PointId, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _map_json: bytes | None = None
    _map_gzip: bytes | None = None
    _map_arrow: bytes | None = None
    # Values derived from this state, least recently used first; bounded, since some names carry request
    # parameters (cluster-changes:<a>:<b>:<min_size>) and a client could otherwise grow it without end.
    _orders: OrderedDict[str, Any] = field(default_factory=OrderedDict)
    _id_rank: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.index = {pid: i for i, pid in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def analysis_run(self) -> str | None:
        runs = [r for r in self.columns["analysis_run"] if r]
        return max(set(runs), key=runs.count) if runs else None

    def id_rank(self) -> np.ndarray:
        """Each row's place in the order of its id's text: how a ranking breaks ties (a page cursor holds
        (-score, str(id))). Ids never change within a snapshot, so a review keeps it. No lock: it is read
        while `derived` holds it, and two threads computing it at once compute equal arrays."""
        if self._id_rank is None:
            text = np.array([str(i) for i in self.ids])
            rank = np.empty(len(text), dtype=np.int64)
            rank[np.argsort(text, kind="stable")] = np.arange(len(text))
            self._id_rank = rank
        return self._id_rank

    def map_json(self, gzipped: bool = False) -> bytes:
        """The whole map as one JSON document of parallel arrays; encoded once per snapshot state."""
        with self._lock:
            if self._map_json is None:
                doc: dict[str, Any] = {"ids": self.ids}
                for name in MAP_COLUMNS:
                    doc[name] = self.columns[name]
                doc["correct"] = [correct_of(s) for s in self.columns["prediction_status"]]
                doc["count"] = len(self.ids)
                doc["analysis_run"] = self.analysis_run
                doc["label_revision"] = self.label_revision
                self._map_json = orjson.dumps(doc)
            if not gzipped:
                return self._map_json
            if self._map_gzip is None:
                # Level 1: a 100k-point map shrinks ~4x in 0.2 s; level 5 took 0.7 s for little more.
                self._map_gzip = gzip.compress(self._map_json, compresslevel=1)
            return self._map_gzip

    def map_arrow(self) -> bytes:
        """The whole map as one Arrow IPC stream of the JSON form's columns; encoded once per snapshot state."""
        with self._lock:
            if self._map_arrow is None:
                self._map_arrow = _arrow_map(self)
            return self._map_arrow

    def etag(self) -> str:
        digest = hashlib.sha1(repr((self.dataset, self.key, self.label_revision)).encode()).hexdigest()[:20]
        return f'"{digest}"'

    def derived(self, name: str, build: Callable[[Snapshot], Any]) -> Any:
        """A value computed from the snapshot (a ranking of rows, a comparison), once per snapshot state:
        a relabel or a new analysis drops it."""
        with self._lock:
            value = self._orders.get(name)
            if value is None:
                value = self._orders[name] = build(self)
                while len(self._orders) > MAX_DERIVED:
                    self._orders.popitem(last=False)
            else:
                self._orders.move_to_end(name)
            return value

    def order(self, name: str, build: Callable[[Snapshot], list[int]]) -> list[int]:
        """A ranked list of rows (e.g. issues by score), computed once per snapshot state."""
        return self.derived(name, build)

    def patch(self, pid: PointId, fields: dict[str, Any], deleted: list[str], label_revision: int) -> None:
        """Apply a review write to the snapshot (the store already has it)."""
        with self._lock:
            row = self.index.get(pid)
            if row is not None:
                for name, value in fields.items():
                    if name in self.columns:
                        self.columns[name][row] = value
                for name in deleted:
                    if name in self.columns:
                        self.columns[name][row] = None
            self.label_revision = label_revision
            self._map_json = self._map_gzip = self._map_arrow = None
            self._orders.clear()

    def row(self, pid: PointId) -> dict[str, Any] | None:
        i = self.index.get(pid)
        if i is None:
            return None
        return {"id": pid, **{name: col[i] for name, col in self.columns.items()}}


def _ids_array(ids: list[PointId]) -> Any:
    """Integer ids as int64 (uint64 past 2**63), anything else (UUIDs) as strings."""
    import pyarrow as pa

    for kind in (pa.int64(), pa.uint64()):
        try:
            return pa.array(ids, type=kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
            continue
    return pa.array([str(i) for i in ids], type=pa.string())


def _arrow_map(snap: Snapshot) -> bytes:
    """The Arrow IPC stream of the map: what `map_json` holds, column by column (see MAP_DOC)."""
    import pyarrow as pa

    floats = set(columns()[1])
    out: dict[str, Any] = {"ids": _ids_array(snap.ids)}
    for name in MAP_COLUMNS:
        values = snap.columns[name]
        if name in floats:  # through numpy: a tenth of pyarrow's time on a list of Python floats
            out[name] = pa.array(np.array(values, dtype=np.float32), from_pandas=True)
        elif name == "cluster":
            out[name] = pa.array(values, type=pa.int64())
        elif name in DICTIONARY_COLUMNS:
            out[name] = pa.array(values, type=pa.string()).dictionary_encode()
        else:
            out[name] = pa.array(values, type=pa.string())
    import pyarrow.compute as pc

    status = pa.array(snap.columns["prediction_status"], type=pa.string())  # correct_of, column-wise
    out["correct"] = pc.if_else(pc.equal(status, "correct"), True,
                                    pc.if_else(pc.equal(status, "incorrect"), False, pa.scalar(None, pa.bool_())))
    metadata = {"count": str(len(snap.ids)), "analysis_run": snap.analysis_run or "",
                "label_revision": str(snap.label_revision)}
    table = pa.table(out).replace_schema_metadata(metadata)
    sink = pa.BufferOutputStream()
    # lz4 buffers: a third of the bytes for a few tens of ms at 1M points, cheap to read back.
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


class SnapshotCache:
    """One snapshot per dataset, rebuilt when its key changes."""

    def __init__(self) -> None:
        self._items: dict[str, Snapshot] = {}
        self._building: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, dataset: str, key: tuple, collection: Any, label_revision: Callable[[], int]) -> Snapshot:
        """The snapshot for `key`, building it if the cached one is older."""
        cached = self._items.get(dataset)
        if cached is not None and cached.key == key:
            return cached
        with self._guard:
            lock = self._building.setdefault(dataset, threading.Lock())
        with lock:  # one build per dataset at a time; the others wait and reuse it
            cached = self._items.get(dataset)
            if cached is not None and cached.key == key:
                return cached
            for _ in range(3):
                revision = label_revision()
                snap = self._build(dataset, key, collection, revision)
                # A review written while this one was being read was patched into the old snapshot, not
                # this one: read again rather than serve a map without it.
                if label_revision() == revision:
                    break
            self._items[dataset] = snap
            return snap

    def peek(self, dataset: str) -> Snapshot | None:
        return self._items.get(dataset)

    def drop(self, dataset: str) -> None:
        self._items.pop(dataset, None)

    @staticmethod
    def _build(dataset: str, key: tuple, collection: Any, label_revision: int) -> Snapshot:
        started = time.perf_counter()
        ids: list[PointId] = []
        names, float_names = columns()
        values: dict[str, list[Any]] = {name: [] for name in names}
        for page in iter_points(collection, batch=5000, fields=names):
            for p in page:
                ids.append(p.id)
                payload = p.payload
                for name in names:
                    values[name].append(payload.get(name))
        values["revision"] = [r or 0 for r in values["revision"]]
        for name in float_names:  # NaN is not JSON; a missing value is null
            values[name] = jsonable(values[name])
        seconds = time.perf_counter() - started
        log.info("snapshot of %s: %d points in %.2f s", dataset, len(ids), seconds)
        return Snapshot(dataset, key, ids, values, label_revision, seconds)
