"""The clusters table: per-cluster size, purity, error rate over the filtered points, names from the API."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import param

from dashboard.client import ApiClient
from dashboard.colours import NOISE, NONE
from dashboard.state.map import FILTER_FIELDS, MapState, key
from service.errors import DataDebuggerError

log = logging.getLogger(__name__)

COLUMNS = ["cluster", "name", "size", "purity", "dominant_label", "error_rate", "unlabelled_share"]


def cluster_table(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """One row per cluster of `frame`, worst error rate first.

    error_rate is the share of labelled points the model gets wrong; purity the share of the dominant label
    among labelled points (ties: the label first in `frame`'s label categories). Computed here from the map's
    columns so the table follows the map's filters, with one groupby per figure: every dashboard session
    builds it, and the loop over clusters it replaces took 0.5 s a session at a million points.
    """
    if frame is None or frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    cluster = frame["cluster"]
    labelled = frame["labelled"].to_numpy(bool)
    size = cluster.value_counts(sort=False)
    size = size[size > 0]  # a categorical column counts its absent values too
    table = pd.DataFrame({"cluster": size.index.astype(str), "size": size.to_numpy()})
    by_cluster = pd.Index(table["cluster"])

    labels = frame.loc[labelled, ["cluster", "label"]]
    counts = labels.groupby(["cluster", "label"], observed=True, sort=True).size()
    counts = counts[counts > 0]
    n_labelled = counts.groupby(level=0, observed=True).sum()
    top = counts.groupby(level=0, observed=True).idxmax()  # the first label with the largest count
    dominant = pd.Series([label for _, label in top], index=top.index.astype(str))
    purity = (counts.groupby(level=0, observed=True).max() / n_labelled)
    purity.index = purity.index.astype(str)

    correct = frame["correct"]
    judged = labelled & correct.isin(["correct", "incorrect"]).to_numpy(bool)
    wrong = (correct[judged] == "incorrect").groupby(cluster[judged], observed=True).mean()
    wrong.index = wrong.index.astype(str)
    n_labelled.index = n_labelled.index.astype(str)

    table["name"] = [names.get(c, "noise" if c == NOISE else "") for c in table["cluster"]]
    table["purity"] = purity.reindex(by_cluster).to_numpy(float)
    table["dominant_label"] = dominant.reindex(by_cluster).fillna(NONE).to_numpy(object)
    table["error_rate"] = wrong.reindex(by_cluster).to_numpy(float)
    table["unlabelled_share"] = 1 - n_labelled.reindex(by_cluster).fillna(0).to_numpy(float) / table["size"]
    table = table[COLUMNS]
    table["_noise"] = table["cluster"].isin([NOISE, NONE])
    table["_id"] = pd.to_numeric(table["cluster"], errors="coerce")
    # Noise last: it is not a cluster, so its error rate says little about a weak spot. Ties by cluster id.
    table = table.sort_values(["_noise", "error_rate", "size", "_id"], ascending=[True, False, False, True],
                              na_position="last", kind="mergesort")
    return table.drop(columns=["_noise", "_id"]).reset_index(drop=True)


class ClustersState(param.Parameterized):
    """Clusters sorted by error rate; selecting one highlights it on the map and lists its members."""

    selected_cluster = param.String(default=None, allow_None=True)
    table = param.DataFrame(default=None, allow_None=True)
    members = param.DataFrame(default=None, allow_None=True)
    details = param.Dict(default={}, doc="the API's record of each cluster (keywords, representatives)")
    message = param.String(default="")

    def __init__(self, client: ApiClient, map_state: MapState, **params: Any):
        super().__init__(**params)
        self.client = client
        self.map = map_state
        self._loaded = False  # the table is built from load() on, not while the page's first render waits
        self.map.param.watch(self._refresh, ["frame", "labels_version", *FILTER_FIELDS])

    def load(self) -> ClustersState:
        """Cluster names and details from the API (absent before an analysis: the table still works)."""
        try:
            clusters = self.client.clusters(self.map.dataset)
        except DataDebuggerError as exc:
            clusters = []
            self.message = f"cluster names unavailable: {exc}"
        details = {key(c.get("id", c.get("cluster"))): c for c in clusters}
        self.details = details
        self._loaded = True
        self.map.set_cluster_names({k: str(c.get("name") or "") for k, c in details.items()})
        self._refresh()
        return self

    def _refresh(self, *_: Any) -> None:
        if not self._loaded:
            return
        self.table = cluster_table(self.map.visible(), self.map.cluster_names)
        if self.selected_cluster is not None:
            self._members()

    def _members(self) -> pd.DataFrame:
        visible = self.map.visible()
        self.members = members = visible[visible["cluster"] == self.selected_cluster]
        return members

    def select(self, cluster: Any) -> None:
        """Select a cluster: its members fill the members table and are ringed on the map."""
        if cluster is None:
            self.param.update(selected_cluster=None, members=None)
            self.map.clear_highlight()
            return
        cluster = key(cluster)
        self.selected_cluster = cluster
        members = self._members()
        name = self.map.cluster_names.get(cluster) or f"cluster {cluster}"
        self.map.highlight(list(members["key"]), f"{name} ({len(members)} points)")
