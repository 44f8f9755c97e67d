"""The labelling-queue view: strategy and budget, a preview, downloads, and Label Studio push / pull."""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn
from panel.viewable import Viewer

from dashboard.state.queue import FORMATS, STRATEGIES, QueueState
from dashboard.views.common import RunPoller, esc, state_param

PREVIEW_COLUMNS = ["id", "text", "label", "prediction", "confidence", "entropy", "cluster", "reason", "score"]


class QueueView(Viewer):
    """Preview rows as the API ranks them; each format downloads straight from the API."""

    state = state_param(QueueState)

    def __init__(self, state: QueueState, **params: Any):
        super().__init__(state=state, **params)
        self.strategy = pn.widgets.Select.from_param(state.param.strategy, label="Strategy", options=list(STRATEGIES),
                                                     width=200)
        self.budget = pn.widgets.IntInput.from_param(state.param.budget, label="Budget", width=120)
        self.preview = pn.widgets.Button(label="Preview", color="primary", align="end")
        self.downloads = [
            pn.widgets.FileDownload(callback=lambda f=fmt: state.download(f), filename=state.filename(fmt),
                                    label=f"Download {fmt}", color="light", align="end")
            for fmt in FORMATS
        ]
        self.table = pn.widgets.Tabulator(pd.DataFrame(columns=PREVIEW_COLUMNS), disabled=True, show_index=False,
                                          layout="fit_data_table", sizing_mode="stretch_width", height=380,
                                          pagination="local", page_size=12, widths={"text": 300})
        self.message = pn.pane.HTML("", sizing_mode="stretch_width")
        self.push = pn.widgets.Button(label="Push to Label Studio", color="light", align="end")
        self.pull = pn.widgets.Button(label="Pull from Label Studio", color="light", align="end")
        self.sync = pn.pane.HTML("", sizing_mode="stretch_width")
        self.push.on_click(lambda _: self._started(state.push_to_label_studio()))
        self.pull.on_click(lambda _: self._started(state.pull_from_label_studio()))
        state.param.watch(lambda e: setattr(self.sync, "object", esc(e.new)), "sync")
        self.poller = RunPoller(state.refresh_run, lambda: state.run_active)
        self.preview.on_click(self._preview)
        state.param.watch(lambda *_: self._on_rows(), "rows")
        state.param.watch(lambda e: setattr(self.message, "object", esc(e.new)), "message")
        state.param.watch(lambda *_: self._on_names(), ["strategy", "budget"])
        # The page may build this view before it knows its dataset (deferred loading): rename then too.
        state.map.param.watch(lambda *_: self._on_names(), "dataset")

    def _preview(self, _event: Any) -> None:
        self.state.preview()

    def _started(self, state: QueueState) -> None:
        """Follow the run just submitted until it ends."""
        self.poller.start()

    def _on_names(self) -> None:
        for fmt, widget in zip(FORMATS, self.downloads, strict=True):
            widget.filename = self.state.filename(fmt)

    def _on_rows(self) -> None:
        rows = self.state.rows
        if rows is None or rows.empty:
            self.table.value = pd.DataFrame(columns=PREVIEW_COLUMNS)
            return
        columns = [c for c in PREVIEW_COLUMNS if c in rows] + [c for c in rows if c not in PREVIEW_COLUMNS
                                                               and not isinstance(rows[c].iloc[0], dict | list)]
        self.table.value = rows[columns].reset_index(drop=True)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.pane.HTML("<div style='font-size:12px;color:#555'>What to label next: pick a strategy and a budget, "
                         "preview (the points are ringed on the map), then download for your annotation tool."
                         "</div>"),
            pn.Row(self.strategy, self.budget, self.preview),
            pn.Row(*self.downloads), pn.Row(self.push, self.pull), self.sync, self.message, self.table,
            sizing_mode="stretch_width",
        )
