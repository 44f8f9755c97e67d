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
    among labelled points. Computed here from the map's columns so the table follows the map's filters.
    """
    if frame is None or frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for cluster, group in frame.groupby("cluster", sort=False, observed=True):
        labelled = group[group["labelled"]]
        judged = labelled[labelled["correct"].isin(["correct", "incorrect"])]
        counts = labelled["label"].value_counts()
        counts = counts[counts > 0]  # a categorical column counts its absent values too
        rows.append({
            "cluster": cluster,
            "name": names.get(cluster, "noise" if cluster == NOISE else ""),
            "size": len(group),
            "purity": float(counts.iloc[0] / len(labelled)) if len(labelled) else float("nan"),
            "dominant_label": counts.index[0] if len(counts) else NONE,
            "error_rate": float((judged["correct"] == "incorrect").mean()) if len(judged) else float("nan"),
            "unlabelled_share": float(1 - len(labelled) / len(group)),
        })
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["_noise"] = table["cluster"].isin([NOISE, NONE])
    # Noise last: it is not a cluster, so its error rate says little about a weak spot.
    table = table.sort_values(["_noise", "error_rate", "size"], ascending=[True, False, False], na_position="last")
    return table.drop(columns="_noise").reset_index(drop=True)


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
