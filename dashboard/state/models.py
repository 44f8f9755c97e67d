"""Model views: versions, per-class F1, confusion matrix, reliability, curves, and two versions compared."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import param

from dashboard.client import ApiClient
from dashboard.state.map import MapState, key
from service.errors import DataDebuggerError

log = logging.getLogger(__name__)

SPLITS = ("validation", "test", "testing", "training")
# Model metrics name the test split "test"; points carry "testing".
POINT_SPLIT = {"test": "testing"}


def per_class_table(metrics_a: dict[str, Any], metrics_b: dict[str, Any] | None = None) -> pd.DataFrame:
    """One row per class: precision, recall, F1, support of version A, and F1 of B with the change."""
    rows = []
    per_a = metrics_a.get("per_class") or {}
    per_b = (metrics_b or {}).get("per_class") or {}
    for label, m in per_a.items():
        row = {"label": label, "precision": m.get("precision"), "recall": m.get("recall"), "f1": m.get("f1"),
               "support": m.get("support")}
        if metrics_b is not None:
            row["f1_b"] = (per_b.get(label) or {}).get("f1")
            row["f1_change"] = None if row["f1_b"] is None or row["f1"] is None else row["f1_b"] - row["f1"]
        rows.append(row)
    columns = ["label", "precision", "recall", "f1", "support"] + (["f1_b", "f1_change"] if metrics_b else [])
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values("f1", na_position="last").reset_index(drop=True)


def curves_of(version: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """The plottable curves of a version: name -> {x: [...], series: [...], ...} of equal-length lists."""
    out: dict[str, dict[str, list[float]]] = {}
    for name, curve in (version.get("curves") or {}).items():
        if not isinstance(curve, dict) or name.startswith("reliability"):
            continue
        lists = {k: v for k, v in curve.items() if isinstance(v, list) and v and
                 all(isinstance(x, int | float) for x in v)}
        x_name = next((k for k in ("train_sizes", "iteration", "epoch", "x") if k in lists), None)
        if x_name is None:
            continue
        n = len(lists[x_name])
        out[name] = {"x_name": x_name, **{k: v for k, v in lists.items() if len(v) == n}}  # type: ignore[dict-item]
    return out


class ModelsState(param.Parameterized):
    """Version A (and optionally B) of the dataset's model, on one split."""

    versions = param.List(default=[], doc="version names, newest last")
    version_a = param.String(default=None, allow_None=True)
    version_b = param.String(default=None, allow_None=True, doc="None: no comparison")
    split: param.Selector[str] = param.Selector(objects=list(SPLITS), default="validation",
                                                doc="a split the versions have metrics on")
    metrics_a = param.Dict(default=None, allow_None=True, doc="version A's metrics on the split")
    metrics_b = param.Dict(default=None, allow_None=True)
    per_class = param.DataFrame(default=None, allow_None=True)
    cell = param.Tuple(default=None, allow_None=True, length=2, doc="(true label, predicted label) clicked")
    cluster_changes = param.DataFrame(default=None, allow_None=True,
                                      doc="clusters by how much their error rate moved from B to A")
    changes_note = param.String(default="", doc="why there is no cluster comparison, or its overall figures")
    message = param.String(default="")

    def __init__(self, client: ApiClient, map_state: MapState, **params: Any):
        super().__init__(**params)
        self.client = client
        self.map = map_state
        self._records: dict[str, dict[str, Any]] = {}
        self._full: dict[str, dict[str, Any]] = {}
        self.param.watch(lambda *_: self._refresh(), ["version_a", "version_b", "split"])
        self.param.watch(lambda *_: self._compare_clusters(), ["version_a", "version_b"])

    def load(self) -> ModelsState:
        """The dataset's versions; version A = production (or latest), B = the one before it."""
        try:
            records = self.client.models(self.map.dataset)
        except DataDebuggerError as exc:
            self.param.update(versions=[], message=f"no model versions: {exc}")
            return self
        records = [m for m in records if m.get("dataset", self.map.dataset) == self.map.dataset]
        records.sort(key=lambda m: int(str(m.get("version", "v0"))[1:] or 0))
        self._records = {str(m["version"]): m for m in records}
        self._full = {}
        names = list(self._records)
        production = next((m["version"] for m in records if m.get("production")), names[-1] if names else None)
        older = [n for n in names if n != production]
        with param.parameterized.batch_call_watchers(self):
            self.versions = names
            self.version_a = production
            self.version_b = older[-1] if older else None
            self.message = "" if names else "no model versions yet: run `data-debugger train`"
        self._refresh()
        self._compare_clusters()
        return self

    def record(self, version: str | None) -> dict[str, Any]:
        """A version in full (metrics per split, curves), fetched once."""
        if not version:
            return {}
        if version not in self._full:
            try:
                self._full[version] = self.client.model(self.map.dataset, version)
            except DataDebuggerError as exc:
                self.message = f"{version}: {exc}"
                return self._records.get(version, {})
        return self._full[version]

    def splits(self, version: str | None = None) -> list[str]:
        """Splits with per-class metrics in a version's record."""
        metrics = self.record(version or self.version_a).get("metrics") or {}
        return [k for k in SPLITS if isinstance(metrics.get(k), dict) and metrics[k].get("per_class")]

    def _split_metrics(self, version: str | None) -> dict[str, Any] | None:
        if not version:
            return None
        metrics = (self.record(version).get("metrics") or {}).get(self.split)
        if isinstance(metrics, dict) and metrics.get("per_class"):
            return metrics
        # A version without that split in its record: the analysis' per-class view, when it has one.
        try:
            answer = self.client.classes(self.map.dataset, split=self.split, model_version=version)
        except DataDebuggerError:
            return None
        metrics = dict(((answer or {}).get("splits") or {}).get(self.split) or {})
        per_class = metrics.get("per_class") or {}
        if isinstance(per_class, dict) and isinstance(per_class.get("labels"), dict):
            metrics = {**per_class, **metrics, "per_class": per_class["labels"]}
        return metrics if metrics.get("per_class") else None

    def _refresh(self) -> None:
        available = self.splits() or list(SPLITS)
        self.param.split.objects = available
        if self.split not in available:
            self.split = available[0]  # its watcher refreshes
            return
        a, b = self._split_metrics(self.version_a), self._split_metrics(self.version_b)
        table = per_class_table(a, b) if a else None
        self.param.update(metrics_a=a, metrics_b=b, per_class=table, cell=None)

    def _compare_clusters(self) -> None:
        """A vs B per cluster (out-of-fold error rates), from the API; empty without a B."""
        a, b = self.version_a, self.version_b
        if not a or not b or a == b:
            self.param.update(cluster_changes=None, changes_note="")
            return
        try:
            answer = self.client.cluster_changes(self.map.dataset, a, b)
        except DataDebuggerError as exc:
            self.param.update(cluster_changes=None, changes_note=f"no cluster comparison: {exc}")
            return
        columns = ["cluster", "name", "size", "error_rate_a", "error_rate_b", "change"]
        table = pd.DataFrame(answer.get("clusters") or [], columns=columns)
        table["cluster"] = [key(c) for c in table["cluster"]]
        overall = (f"{answer.get('points', 0)} labelled points, out-of-fold error rate {a} "
                   f"{_rate(answer.get('error_rate_a'))} vs {b} {_rate(answer.get('error_rate_b'))}")
        self.param.update(cluster_changes=table, changes_note=overall)

    def select_cluster_change(self, row: int) -> list[str]:
        """Click on a row of the comparison: that cluster's points ringed on the map."""
        table, frame = self.cluster_changes, self.map.frame
        if table is None or frame is None or not 0 <= row < len(table):
            return []
        chosen = table.iloc[row]
        keys = list(frame.loc[frame["cluster"] == chosen["cluster"], "key"])
        name = chosen["name"] or f"cluster {chosen['cluster']}"
        self.map.highlight(keys, f"{name}: error rate {self.version_a} {_rate(chosen['error_rate_a'])}, "
                                 f"{self.version_b} {_rate(chosen['error_rate_b'])}")
        return keys

    def confusion(self) -> tuple[list[str], list[list[int]]]:
        """Version A's confusion matrix on the split: labels and rows (true) x columns (predicted)."""
        confusion = (self.metrics_a or {}).get("confusion") or {}
        return list(confusion.get("labels", [])), [list(r) for r in confusion.get("matrix", [])]

    def reliability(self, version: str | None = None) -> list[dict[str, float]]:
        """Bins of (confidence, accuracy, count) of a version on the split."""
        metrics = self.metrics_a if version in (None, self.version_a) else self.metrics_b
        bins = (metrics or {}).get("reliability")
        if bins is None:
            bins = (self.record(version or self.version_a).get("curves") or {}).get(f"reliability_{self.split}")
        return list(bins or [])

    def curves(self, version: str | None = None) -> dict[str, dict[str, list[float]]]:
        """The plottable curves of a version (default: A)."""
        return curves_of(self.record(version or self.version_a))

    def select_cell(self, true_label: str, predicted: str) -> list[str]:
        """Click on a confusion cell: those points (of this split, by the map's predictions) on the map."""
        frame = self.map.frame
        if frame is None:
            return []
        split = POINT_SPLIT.get(self.split, self.split)
        hit = (frame["label"] == true_label) & (frame["prediction"] == predicted) & (frame["split"] == split)
        keys = list(frame.loc[hit, "key"])
        self.cell = (true_label, predicted)
        self.map.select(keys)
        self.map.highlight(keys, f"{len(keys)} {split} points labelled {true_label}, predicted {predicted}")
        return keys


def _rate(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f}%"
