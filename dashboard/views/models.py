"""The model views: two versions side by side on a split; a confusion cell shows its points on the map."""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn
from panel.viewable import Viewer

from dashboard.state.models import ModelsState
from dashboard.views.common import esc, fmt, state_param
from dashboard.views.model_plots import confusion_heatmap, curve_plot, f1_bars, reliability_diagram

HEADLINE = ("accuracy", "macro_f1", "ece", "log_loss", "n")
CHANGE_COLUMNS = ["cluster", "name", "size", "error_rate_a", "error_rate_b", "change"]


class ModelsView(Viewer):
    """Version A / B pickers, the headline figures, F1 bars, confusion, reliability and training curves."""

    state = state_param(ModelsState)

    def __init__(self, state: ModelsState, loop: Viewer | None = None, **params: Any):
        super().__init__(state=state, **params)
        self.loop = loop  # the improvement loop's card (Retrain, verdict, history), above the versions
        self.version_a = pn.widgets.Select(label="Version A", options=[], width=140)
        self.version_b = pn.widgets.Select(label="Compare with B", options=[], width=140)
        self.split = pn.widgets.Select(label="Split", options=list(state.param.split.objects), value=state.split,
                                       width=140)
        self.headline = pn.pane.HTML("", sizing_mode="stretch_width")
        self.message = pn.pane.HTML("", sizing_mode="stretch_width")
        self.plots = pn.Column(sizing_mode="stretch_width")
        self.changes = pn.widgets.Tabulator(
            pd.DataFrame(columns=CHANGE_COLUMNS), disabled=True, show_index=False, selectable=1,
            layout="fit_data_table", sizing_mode="stretch_width", height=260, pagination="local", page_size=6,
            formatters={c: {"type": "money", "precision": 3} for c in ("error_rate_a", "error_rate_b", "change")},
            titles={"error_rate_a": "error A", "error_rate_b": "error B"}, widths={"name": 200},
            css_classes=["dd-cluster-changes"],
        )
        self.changes_note = pn.pane.HTML("", sizing_mode="stretch_width")
        self.changes.param.watch(lambda e: state.select_cluster_change(e.new[0]) if e.new else None, "selection")
        state.param.watch(lambda *_: self._on_changes(), ["cluster_changes", "changes_note"])
        self.version_a.param.watch(lambda e: setattr(state, "version_a", e.new), "value")
        self.version_b.param.watch(lambda e: setattr(state, "version_b", e.new or None), "value")
        self.split.param.watch(lambda e: setattr(state, "split", e.new) if e.new else None, "value")
        state.param.watch(lambda *_: self._on_versions(), "versions")
        state.param.watch(lambda *_: self._redraw(), ["metrics_a", "metrics_b", "per_class"])
        state.param.watch(lambda e: setattr(self.message, "object", esc(e.new)), "message")
        self._on_versions()
        self._redraw()
        self._on_changes()

    def _on_changes(self) -> None:
        s = self.state
        table = s.cluster_changes
        self.changes.value = table if table is not None else pd.DataFrame(columns=CHANGE_COLUMNS)
        self.changes.visible = table is not None
        title = (f"<b>Clusters whose error rate changed most</b>, {esc(s.version_a or '')} vs "
                 f"{esc(s.version_b or '')} (change = A - B; positive: A errs more). " if table is not None else "")
        hint = ". Select a row to ring the cluster on the map." if table is not None else ""
        self.changes_note.object = (f"<div style='font-size:12px;color:#555'>{title}{esc(s.changes_note)}{hint}"
                                    "</div>") if (title or s.changes_note) else ""

    def _on_versions(self) -> None:
        s = self.state
        self.version_a.options = list(s.versions)
        self.version_a.value = s.version_a
        self.version_b.options = {"(none)": "", **{v: v for v in s.versions}}
        self.version_b.value = s.version_b or ""

    def _headline(self) -> str:
        s = self.state
        rows = []
        for name, metrics in ((s.version_a, s.metrics_a), (s.version_b, s.metrics_b)):
            if name and metrics:
                cells = "".join(f"<td style='padding:2px 10px'>{fmt(metrics.get(k), 3)}</td>" for k in HEADLINE)
                rows.append(f"<tr><td style='padding:2px 10px'><b>{esc(name)}</b></td>{cells}</tr>")
        if not rows:
            return ""
        head = "".join(f"<th style='padding:2px 10px;text-align:left'>{k.replace('_', ' ')}</th>" for k in HEADLINE)
        return (f"<table style='font-size:13px;border-collapse:collapse'><tr><th></th>{head}</tr>"
                f"{''.join(rows)}</table>")

    def _redraw(self) -> None:
        s = self.state
        self.split.options = list(s.param.split.objects)
        self.split.value = s.split
        self.headline.object = self._headline()
        version_a = s.version_a
        if not s.metrics_a or version_a is None:
            self.plots.objects = [pn.pane.HTML("<div style='color:#777'>No metrics for this version and split."
                                               "</div>")]
            return
        version_b = s.version_b
        labels, matrix = s.confusion()
        reliability = {version_a: s.reliability(version_a)}
        if version_b:
            reliability[version_b] = s.reliability(version_b)
        curves = [pn.pane.Bokeh(curve_plot(f"{version_a}: {name.replace('_', ' ')}", curve),
                                sizing_mode="stretch_width") for name, curve in s.curves(version_a).items()]
        if version_b:
            curves += [pn.pane.Bokeh(curve_plot(f"{version_b}: {name.replace('_', ' ')}", curve),
                                     sizing_mode="stretch_width") for name, curve in s.curves(version_b).items()]
        self.plots.objects = [
            pn.pane.Bokeh(f1_bars(s.per_class, version_a, version_b if s.metrics_b else None),
                          sizing_mode="stretch_width"),
            pn.pane.HTML("<div style='font-size:12px;color:#555'>Click a cell to ring those points on the map and "
                         "list them in the selection.</div>"),
            pn.pane.Bokeh(confusion_heatmap(labels, matrix, on_cell=s.select_cell), sizing_mode="stretch_width"),
            pn.pane.Bokeh(reliability_diagram(reliability), sizing_mode="stretch_width"),
            *curves,
        ]

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(*([self.loop] if self.loop is not None else []),
                         pn.Row(self.version_a, self.version_b, self.split), self.headline, self.message,
                         self.changes_note, self.changes, self.plots, sizing_mode="stretch_width")
