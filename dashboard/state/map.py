"""The map's state: every point as a frame, the filters, colour-by, selection, focus and highlights."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import param

from dashboard.client import ApiClient
from dashboard.colours import COLOUR_FIELDS, NONE, ColourSpec, colour_spec
from service.errors import DataDebuggerError

log = logging.getLogger(__name__)

# Filters shared by the map and every table, in the order the sidebar shows them.
FILTER_FIELDS = ("split", "label", "prediction", "cluster", "triage")
TEXT_CHARS = 160  # hover text is cut: 100k full texts would triple what the browser receives
KEYWORD_COLUMNS = ("label", "prediction", "split", "triage")
NUMERIC_COLUMNS = ("confidence", "mislabel_score", "entropy")


def key(point_id: Any) -> str:
    """Ids come back from JSON as ints or strings; compare them as strings everywhere."""
    return str(point_id)


# The answer's `correct` (true/false/null, or a status string) as the map's status of a labelled point.
STATUS = {True: "correct", False: "incorrect", "correct": "correct", "incorrect": "incorrect",
          "unlabelled": "unlabelled"}
STATUSES = sorted({NONE, *STATUS.values()})  # the map's statuses, in the order a categorical sorts them


def _status(correct: Any, label: str, prediction: str) -> str:
    if label == NONE:
        return "unlabelled"
    if correct is None or (isinstance(correct, float) and np.isnan(correct)) or prediction == NONE:
        return NONE
    if isinstance(correct, str):
        return correct if correct in ("correct", "incorrect", "unlabelled") else NONE
    return "correct" if bool(correct) else "incorrect"


def _columns_of(answer: Any) -> tuple[dict[str, pd.Series], int]:
    """The /map answer (a dict of JSON lists, or the Arrow table of its binary form) as Series, checked."""
    if hasattr(answer, "column_names"):  # pyarrow.Table
        import pyarrow as pa
        import pyarrow.compute as pc

        if "ids" not in answer.column_names:
            raise DataDebuggerError("the /map answer has no 'ids' column; is the API the same version as the "
                                    "dashboard?")
        out = {}
        for name in answer.column_names:
            column = answer[name]
            if name == "cluster":  # ids as "3", never "3.0": the few distinct ids cast, not a million values
                column = pc.cast(column.dictionary_encode(), pa.dictionary(pa.int32(), pa.string()))
            elif name == "text" and (pc.max(pc.binary_length(column)).as_py() or 0) > TEXT_CHARS:
                column = pc.utf8_slice_codeunits(column, 0, TEXT_CHARS)  # bytes >= characters: else none is long
            elif name == "correct" and pa.types.is_boolean(column.type):  # as a categorical of STATUS's keys
                column = pc.if_else(column, "correct", "incorrect").dictionary_encode()
            out[name] = column.to_pandas()
        if "ids" in out and pd.api.types.is_integer_dtype(out["ids"].dtype):
            out["keys"] = pc.cast(answer["ids"], pa.string()).to_pandas()  # str(id) in Arrow: 5x pandas' astype
        return out, answer.num_rows
    if "ids" not in answer:
        raise DataDebuggerError("the /map answer has no 'ids' array; is the API the same version as the dashboard?")
    n = len(answer["ids"])
    for name, values in answer.items():
        if isinstance(values, list) and len(values) != n:
            raise DataDebuggerError(f"the /map answer's {name!r} has {len(values)} values for {n} ids")
    out = {name: pd.Series(values, dtype=object) for name, values in answer.items() if isinstance(values, list)}
    if "cluster" in out:
        out["cluster"] = out["cluster"].map(lambda v: v if v is None else str(v))
    if "text" in out:
        out["text"] = out["text"].map(lambda t: t[:TEXT_CHARS] if isinstance(t, str) else t)
    out["ids"] = pd.Series(answer["ids"])  # int64 when every id is an integer, as from Arrow
    return out, n


def _keywords(values: pd.Series | None, n: int) -> pd.Categorical:
    """A keyword column as a categorical of strings (sorted categories), NONE where missing: a million rows
    filter, count and compare in milliseconds, and arrive from Arrow's dictionaries without a copy per row."""
    if values is None:
        return pd.Categorical([NONE] * n, categories=[NONE])
    cat = pd.Categorical(values) if not isinstance(values.dtype, pd.CategoricalDtype) else values.array
    names = np.array([str(c) for c in cat.categories] + [NONE], dtype=object)
    codes = np.where(cat.codes < 0, len(names) - 1, cat.codes)  # missing -> the NONE appended last
    # Only the values present, sorted (by counting codes: np.unique would sort a million of them).
    used = np.flatnonzero(np.bincount(codes, minlength=len(names)))
    order = sorted(set(names[used].tolist()))
    position = {name: i for i, name in enumerate(order)}
    recode = np.array([position.get(name, -1) for name in names], dtype=np.int32)
    return pd.Categorical.from_codes(recode[codes], categories=order)


def map_frame(answer: Any) -> pd.DataFrame:
    """The /map answer (JSON dict or Arrow table) as a frame with display-ready columns (categoricals for
    factors, NaN for missing numbers). Column-wise throughout, so a million points take about a second."""
    columns, n = _columns_of(answer)
    frame = pd.DataFrame({"id": columns["ids"].reset_index(drop=True)})
    keys = columns.get("keys")
    frame["key"] = frame["id"].astype(str) if keys is None else keys.reset_index(drop=True)
    for name in ("x", "y", *NUMERIC_COLUMNS):
        values = columns.get(name)
        frame[name] = (np.full(n, np.nan) if values is None else
                       pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan))
    text = columns.get("text")
    if text is None:
        frame["text"] = pd.Series([""] * n, dtype=object)
    else:  # fillna copies every string even when none is missing
        frame["text"] = (text.fillna("") if text.hasnans else text).reset_index(drop=True)
    for name in (*KEYWORD_COLUMNS, "cluster"):
        frame[name] = _keywords(columns.get(name), n)
    # Labels and predictions share their categories, so the two columns compare point by point.
    classes = sorted(set(frame["label"].cat.categories) | set(frame["prediction"].cat.categories))
    for name in ("label", "prediction"):
        frame[name] = frame[name].cat.set_categories(classes)
    frame["labelled"] = (frame["label"] != NONE).to_numpy()
    codes = _status_codes(columns.get("correct"), n)
    codes[(frame["prediction"] == NONE).to_numpy()] = STATUSES.index(NONE)
    codes[~frame["labelled"].to_numpy()] = STATUSES.index("unlabelled")
    used = np.flatnonzero(np.bincount(codes, minlength=len(STATUSES)))  # as pd.Categorical(values) keeps them
    recode = np.full(len(STATUSES), -1, dtype=np.int8)
    recode[used] = np.arange(len(used))
    frame["correct"] = pd.Categorical.from_codes(recode[codes], categories=[STATUSES[i] for i in used])
    frame["has_xy"] = np.isfinite(frame["x"]) & np.isfinite(frame["y"])
    return frame


def _status_codes(correct: pd.Series | None, n: int) -> np.ndarray:
    """Each point's position in STATUSES under the answer's `correct` (STATUS's keys; anything else NONE).
    A categorical maps its few categories, not its million values."""
    if correct is None:
        return np.full(n, STATUSES.index(NONE), dtype=np.int8)
    if isinstance(correct.dtype, pd.CategoricalDtype):
        by_category = np.array([STATUSES.index(STATUS.get(c, NONE)) for c in correct.cat.categories]
                               + [STATUSES.index(NONE)], dtype=np.int8)
        return by_category[correct.cat.codes.to_numpy()]  # code -1 (missing) takes the NONE appended last
    mapped = correct.astype(object).map(STATUS).fillna(NONE)
    return pd.Categorical(mapped, categories=STATUSES).codes.astype(np.int8)


def set_value(frame: pd.DataFrame, row: int, name: str, value: str) -> None:
    """Write one keyword of one row; a value the column has not held yet becomes one of its categories."""
    # Labels and predictions keep one set of categories (see map_frame).
    for shared in ("label", "prediction") if name in ("label", "prediction") else (name,):
        column = frame[shared]
        if isinstance(column.dtype, pd.CategoricalDtype) and value not in column.cat.categories:
            frame[shared] = column.cat.add_categories([value])
    frame.iloc[row, frame.columns.get_loc(name)] = value


class RowIndex:
    """Point key -> frame row over a pandas Index of the ids. It is built in no time (its hash table comes with
    the first lookup, in C), where a dict of a million string keys took a second on each first visit."""

    def __init__(self, frame: pd.DataFrame):
        ids = frame["id"]
        self._integers = pd.api.types.is_integer_dtype(ids.dtype)
        self._index = pd.Index(ids.to_numpy() if self._integers else frame["key"].to_numpy(dtype=object))
        self._rows: np.ndarray | None = None  # rows of the index's entries when an id repeats (never in Qdrant)

    def get(self, point_key: str) -> int | None:
        """The row of one key, or None."""
        found = self.positions([point_key])
        return int(found[0]) if len(found) else None

    def positions(self, keys: list[str]) -> np.ndarray:
        """The rows of these keys, in their order; unknown keys left out."""
        if not len(keys):
            return np.zeros(0, dtype=np.int64)
        if self._integers:
            top = np.iinfo(self._index.dtype).max
            wanted: Any = np.array([i for i in map(_integer_id, keys) if i is not None and i <= top],
                                   dtype=self._index.dtype)
        else:
            wanted = np.asarray(keys, dtype=object)
        if self._rows is None and not self._index.is_unique:  # a dict kept the last row of a repeated key
            last = ~self._index.duplicated(keep="last")
            self._index, self._rows = self._index[last], np.flatnonzero(last)
        found = self._index.get_indexer(wanted)
        found = found[found >= 0]
        return (found if self._rows is None else self._rows[found]).astype(np.int64)


def _integer_id(point_key: str) -> int | None:
    """The integer id a key names, if it is one as str(id) writes it (no sign, spaces or leading zeros)."""
    k = str(point_key)
    return int(k) if k.isascii() and k.isdigit() and (k == "0" or k[0] != "0") else None


def rows_by_key(frame: pd.DataFrame) -> RowIndex:
    """Point key -> frame row: built once per map, shared by the sessions showing it (keys never change)."""
    return RowIndex(frame)


class MapState(param.Parameterized):
    """Loaded once per dataset; views watch its parameters and never call the API for the map themselves."""

    dataset = param.String(default="")
    colour_by: param.Selector[str] = param.Selector(objects=list(COLOUR_FIELDS), default="label")
    split = param.List(default=[], item_type=str)
    label = param.List(default=[], item_type=str)
    prediction = param.List(default=[], item_type=str)
    cluster = param.List(default=[], item_type=str)
    triage = param.List(default=[], item_type=str)
    show_cluster_names = param.Boolean(default=True)

    frame = param.DataFrame(default=None, allow_None=True, doc="every point, see map_frame")
    labels_version = param.Integer(default=0, doc="bumped when labels change in place")
    names_version = param.Integer(default=0, doc="bumped when the cluster names arrive or change")
    selected = param.List(default=[], doc="keys of the box/lasso selection")
    focus_key = param.String(default=None, allow_None=True, doc="the clicked point")
    focus = param.Dict(default=None, allow_None=True, doc="the clicked point's payload and neighbours")
    highlighted = param.List(default=[], doc="keys highlighted by a cluster, a search or a confusion cell")
    highlight_reason = param.String(default="")
    message = param.String(default="")
    load_seconds = param.Number(default=0.0)

    def __init__(self, client: ApiClient, cache: Any = None, **params: Any):
        super().__init__(**params)
        self.client = client
        self.cache = cache  # a dashboard.cache.MapCache shared by the server's sessions, or None
        self._rows = RowIndex(map_frame({"ids": []}))
        self._cluster_names: dict[str, str] = {}
        self._specs: dict[str, ColourSpec] = {}  # per colour-by field; a frame or a relabel drops them

    # -- loading -------------------------------------------------------------------------------------

    def load(self, dataset: str | None = None) -> MapState:
        """Fetch the map of `dataset` (or the current one) and reset selection, focus and highlights."""
        import time

        start = time.perf_counter()
        dataset = dataset or self.dataset
        if self.cache:
            frame, self._rows = self.cache.frame_and_rows(self.client, dataset)
        else:
            frame = map_frame(self.client.map(dataset, arrow=True)[0] or {})
            self._rows = rows_by_key(frame)
        self._specs = {}
        self.param.update(dataset=dataset, frame=frame, selected=[], focus_key=None, focus=None,
                          highlighted=[], highlight_reason="", message="",
                          load_seconds=time.perf_counter() - start)
        log.info("map of %s: %d points in %.2f s", dataset, len(frame), self.load_seconds)
        return self

    def set_cluster_names(self, names: dict[str, str]) -> None:
        """Cluster id -> name, for the map's labels and the clusters table."""
        # Its own signal, not a frame trigger: a frame change resends every point to the browser.
        self._cluster_names = dict(names)
        self.names_version += 1

    @property
    def cluster_names(self) -> dict[str, str]:
        """Cluster id -> name (empty before the clusters load)."""
        return self._cluster_names

    # -- derived -------------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """How many points the map holds."""
        return 0 if self.frame is None else len(self.frame)

    def loaded_frame(self) -> pd.DataFrame:
        """The frame, for code that only runs once a map is loaded (redraws after a load or a relabel)."""
        if self.frame is None:
            raise RuntimeError(f"no map is loaded for {self.dataset or 'any dataset'} yet: load() it first")
        return self.frame

    def row(self, point_key: Any) -> int | None:
        """The frame row of a point id, or None."""
        return self._rows.get(key(point_key))

    def options(self, name: str) -> list[str]:
        """The values a filter can take, from the data."""
        if self.frame is None:
            return []
        return sorted(self.frame[name].unique().tolist(),
                      key=lambda v: (v == NONE, int(v) if name == "cluster" and v.lstrip("-").isdigit() else 0, v))

    def filters(self) -> dict[str, list[str]]:
        """The filters in use: field -> accepted values."""
        return {name: list(getattr(self, name)) for name in FILTER_FIELDS if getattr(self, name)}

    def mask(self) -> np.ndarray:
        """Which points pass the filters (and have map coordinates)."""
        if self.frame is None:
            return np.zeros(0, dtype=bool)
        keep = self.frame["has_xy"].to_numpy().copy()
        for name, values in self.filters().items():
            keep &= self.frame[name].isin(values).to_numpy()
        return keep

    def visible(self) -> pd.DataFrame:
        """The points that pass the filters."""
        return self.frame[self.mask()] if self.frame is not None else pd.DataFrame()

    def passes(self, point_key: Any) -> bool:
        """Whether one point passes the filters (tables use it to follow the map)."""
        row = self.row(point_key)
        if row is None or self.frame is None:
            return False
        return all(self.frame.at[row, name] in values for name, values in self.filters().items())

    def spec(self) -> ColourSpec:
        """The colour spec of the current colour-by field."""
        return self.spec_of(self.colour_by)

    def spec_of(self, name: str) -> ColourSpec:
        """The colour spec of one field, computed once per frame and labels (a million points: ~0.1 s each)."""
        spec = self._specs.get(name)
        if spec is None:
            spec = self._specs[name] = colour_spec(self.frame, name)
        return spec

    def counts(self) -> dict[str, int]:
        """How many visible points take each value of the colour-by field (for the legend)."""
        if self.frame is None or COLOUR_FIELDS[self.colour_by][0] != "categorical":
            return {}
        counts = self.frame[self.colour_by][self.mask()].value_counts()
        return counts[counts > 0].to_dict()  # a categorical column counts its absent values too

    def positions(self, keys: list[str]) -> np.ndarray:
        """The frame row positions of these point ids (unknown ids left out)."""
        return self._rows.positions([key(k) for k in keys])

    def rows_of(self, keys: list[str]) -> pd.DataFrame:
        """The frame rows of these point ids (unknown ids left out)."""
        return self.frame.iloc[self.positions(keys)] if self.frame is not None else pd.DataFrame()

    # -- interactions --------------------------------------------------------------------------------

    def clear_filters(self) -> None:
        """Show every point again."""
        self.param.update(**{name: [] for name in FILTER_FIELDS})

    def select_rows(self, rows: list[int]) -> None:
        """A box/lasso selection, as frame row positions (what Bokeh reports)."""
        if self.frame is None:
            return
        at = np.asarray(rows, dtype=np.int64)
        self.selected = self.frame["key"].to_numpy()[at[(at >= 0) & (at < len(self.frame))]].tolist()

    def select(self, keys: list[Any]) -> None:
        """Select these points (what a confusion cell or a table does)."""
        self.selected = [key(k) for k in keys if self.row(k) is not None]

    def focus_on(self, point_key: Any) -> None:
        """Click on a point: fetch its payload and neighbours through the API."""
        if point_key is None:
            self.param.update(focus_key=None, focus=None)
            return
        row = self.row(point_key)
        if row is None or self.frame is None:
            self.message = f"point {point_key} is not on the map"
            return
        try:
            detail = self.client.point(self.dataset, self.frame.at[row, "id"])
        except DataDebuggerError as exc:
            self.message = str(exc)
            return
        self.param.update(focus_key=key(point_key), focus=detail, message="")

    def highlight(self, keys: list[Any], reason: str = "") -> None:
        """Ring these points on the map (cluster members, search hits, a confusion cell)."""
        self.param.update(highlighted=[key(k) for k in keys if self.row(k) is not None], highlight_reason=reason)

    def clear_highlight(self) -> None:
        """Remove the rings from the map."""
        self.param.update(highlighted=[], highlight_reason="")

    def apply_point(self, point: dict[str, Any]) -> None:
        """A relabel came back from the API: update that point's row so the map and tables follow."""
        payload = point.get("payload", point)
        point_key = key(point.get("id", payload.get("id", payload.get("record_id"))))
        row = self.row(point_key)
        if row is None or self.frame is None:
            return
        label = payload.get("label")
        label = NONE if label is None else str(label)
        self._specs = {}  # a new label may bring a new colour
        prediction = str(self.frame.at[row, "prediction"])
        set_value(self.frame, row, "label", label)
        self.frame.at[row, "labelled"] = label != NONE
        set_value(self.frame, row, "correct",
                  _status(None if prediction == NONE else prediction == label, label, prediction))
        if self.focus_key == point_key:
            self.focus_on(point_key)
        self.labels_version += 1
