"""The loop's card in the Models tab: 'N changes since vX — Retrain', the run's progress, the gate's
verdict, and the versions' history."""

from __future__ import annotations

from typing import Any

import panel as pn
from panel.viewable import Viewer

from dashboard.state.loop import HISTORY_COLUMNS, LoopState
from dashboard.views.common import RunPoller, esc, state_param

POLL_MS = 1000


class LoopView(Viewer):
    """Retrain action with progress and verdict, above the history of versions."""

    state = state_param(LoopState)

    def __init__(self, state: LoopState, **params: Any):
        super().__init__(state=state, **params)
        self.headline = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["dd-loop-headline"])
        self.button = pn.widgets.Button(label="Retrain", color="primary", width=120)
        self.progress = pn.pane.HTML("", sizing_mode="stretch_width")
        self.evaluation = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["dd-evaluation"])
        self.verdict = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["dd-verdict"])
        self.history = pn.widgets.Tabulator(
            None, disabled=True, show_index=False, layout="fit_data_table", sizing_mode="stretch_width",
            height=220, pagination="local", page_size=6, css_classes=["dd-loop-history"],
            formatters={c: {"type": "money", "precision": 3} for c in ("accuracy", "macro_f1")},
        )
        self.poller = RunPoller(state.poll, lambda: state.running, period_ms=POLL_MS)
        self.button.on_click(lambda _: self._retrain())
        state.param.watch(lambda *_: self._redraw(), ["champion", "changes", "run", "verdict", "history", "message",
                                                   "evaluation"])
        self._redraw()

    def _retrain(self) -> None:
        self.state.retrain()
        self._redraw()
        self.poller.start()

    def _redraw(self) -> None:
        s = self.state
        self.headline.object = f"<div style='font-size:13px'><b>{esc(s.headline())}</b></div>"
        self.button.label = "Retrain" if s.changes else "Retrain anyway"
        self.button.disabled = s.running or s.champion is None
        self.progress.object = (f"<div style='font-size:12px;color:#555'>{esc(s.progress())}</div>"
                                if s.running else "")
        text = s.message or s.verdict
        self.verdict.object = ("<div style='font-size:12px;white-space:pre-wrap;border-left:3px solid #1f3a5f;"
                               f"padding-left:6px'>{esc(text)}</div>") if text else ""
        self.evaluation.object = (f"<div style='font-size:12px;color:#555'>{esc(s.evaluation)}</div>"
                                  if s.evaluation else "")
        if s.history is not None:
            self.history.value = s.history
        self.history.visible = s.history is not None and not s.history.empty

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(self.headline, self.button), self.progress, self.verdict, self.evaluation,
                         self.history,
                         sizing_mode="stretch_width")


__all__ = ["HISTORY_COLUMNS", "LoopView"]
