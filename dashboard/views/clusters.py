"""The clusters view: clusters sorted by error rate; a selected row is ringed on the map with its members."""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn
from panel.viewable import Viewer

from dashboard.state.clusters import COLUMNS, ClustersState
from dashboard.views.common import esc, points_table, state_param, table_rows


class ClustersView(Viewer):
    """The table, the selected cluster's keywords and representatives, and its members."""

    state = state_param(ClustersState)

    def __init__(self, state: ClustersState, **params: Any):
        super().__init__(state=state, **params)
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(columns=COLUMNS), disabled=True, show_index=False, selectable=1,
            layout="fit_data_table", sizing_mode="stretch_width", height=300, pagination="local", page_size=8,
            formatters={c: {"type": "money", "precision": 2} for c in ("purity", "error_rate", "unlabelled_share")},
            css_classes=["dd-clusters"],
        )
        self.about = pn.pane.HTML("", sizing_mode="stretch_width")
        self.members = points_table(height=260)
        self.note = pn.pane.HTML("", sizing_mode="stretch_width")
        self.table.param.watch(self._on_pick, "selection")
        state.param.watch(lambda *_: self._on_table(), "table")
        state.param.watch(lambda *_: self._on_members(), ["members", "selected_cluster"])
        state.param.watch(lambda e: setattr(self.note, "object", esc(e.new)), "message")
        self._on_table()

    def _on_pick(self, event: Any) -> None:
        if not event.new:
            return
        cluster = self.table.value.iloc[event.new[0]]["cluster"]
        if cluster != self.state.selected_cluster:
            self.state.select(cluster)

    def _on_table(self) -> None:
        table = self.state.table
        self.table.value = table if table is not None else pd.DataFrame(columns=COLUMNS)

    def _on_members(self) -> None:
        s = self.state
        self.members.value, _ = table_rows(s.members)
        if s.selected_cluster is None:
            self.about.object = ""
            return
        detail = s.details.get(s.selected_cluster, {})
        keywords = ", ".join(map(str, detail.get("keywords") or []))
        reps = "".join(f"<li>{esc(t)}</li>" for t in (detail.get("representatives") or [])[:3])
        name = s.map.cluster_names.get(s.selected_cluster) or f"cluster {s.selected_cluster}"
        flag = " &middot; <b>candidate new intent</b>" if detail.get("candidate_new_intent") else ""
        self.about.object = (
            f"<div><b>{esc(name)}</b> &middot; {0 if s.members is None else len(s.members)} members{flag}</div>"
            + (f"<div style='color:#555'>keywords: {esc(keywords)}</div>" if keywords else "")
            + (f"<ul style='margin:4px 0 4px 18px;padding:0'>{reps}</ul>" if reps else "")
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.pane.HTML("<div style='font-size:12px;color:#555'>Worst error rate first, over the points that "
                         "pass the filters. Select a row to ring the cluster on the map.</div>"),
            self.table, self.note, self.about, self.members, sizing_mode="stretch_width",
        )
