"""The review queue view: one issue (or suggestion) at a time with its evidence, actions and shortcuts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd
import panel as pn
from panel.viewable import Viewer

from dashboard.state.map import key
from dashboard.state.review import ReviewState
from dashboard.views.common import esc, evidence_html, neighbours_frame, state_param

log = logging.getLogger(__name__)

SHORTCUTS = {
    "a": "accept", "k": "keep", "m": "ambiguous", "l": "relabel", "s": "skip", "ArrowRight": "skip",
    "j": "skip", "ArrowLeft": "back", "u": "undo", "z": "undo",
}
HELP = ("<div style='font-size:12px;color:#555'>Keys: <b>a</b> accept suggestion &middot; <b>k</b> keep label "
        "&middot; <b>m</b> ambiguous &middot; <b>l</b> relabel as chosen &middot; <b>1-9</b> relabel as the "
        "model's n-th guess &middot; <b>s</b>/<b>&rarr;</b> skip &middot; <b>&larr;</b> back &middot; "
        "<b>u</b> undo</div>")
ITEM_COLUMNS = ["#", "id", "text", "label", "suggested_label", "score", "done"]


def _ignoring_event(action: Callable[[], None]) -> Callable[[Any], None]:
    """A button callback that calls `action` (one closure per button, not a late-bound loop variable)."""
    return lambda _event: action()


class ReviewView(Viewer):
    """Buttons and keys call ReviewState's actions; the state talks to the API."""

    state = state_param(ReviewState)

    def __init__(self, state: ReviewState, active: Callable[[], bool] | None = None, **params: Any):
        super().__init__(state=state, **params)
        self._active = active or (lambda: True)
        self.mode = pn.widgets.RadioButtonGroup(options={"Label issues": "issues", "Suggestions": "suggestions"},
                                                value=state.mode, color="primary", variant="outline")
        self.progress = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["dd-review-progress"])
        self.evidence = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["dd-review-item"],
                                     styles={"border": "1px solid #ddd", "border-radius": "6px", "padding": "8px"})
        self.neighbours = pn.widgets.Tabulator(
            neighbours_frame(None), disabled=True, show_index=False, layout="fit_data_table", height=200,
            sizing_mode="stretch_width", formatters={"similarity": {"type": "money", "precision": 3}},
            widths={"text": 300},
        )
        self.buttons = {
            "accept": pn.widgets.Button(label="Accept suggestion (a)", color="success",
                                        css_classes=["dd-accept"]),
            "keep": pn.widgets.Button(label="Keep label (k)", color="primary", variant="outline"),
            "ambiguous": pn.widgets.Button(label="Ambiguous (m)", color="warning", variant="outline"),
            "skip": pn.widgets.Button(label="Skip (s)", color="light"),
            "back": pn.widgets.Button(label="Back (←)", color="light"),
            "undo": pn.widgets.Button(label="Undo (u)", color="danger", variant="outline",
                                      css_classes=["dd-undo"]),
        }
        self.choice = pn.widgets.Select(label="Choose label", options=list(state.labels), width=220)
        self.relabel = pn.widgets.Button(label="Relabel (l)", color="primary", align="end")
        self.message = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["dd-review-message"])
        self.items = pn.widgets.Tabulator(
            pd.DataFrame(columns=ITEM_COLUMNS), disabled=True, show_index=False, layout="fit_data_table",
            height=240, sizing_mode="stretch_width", pagination="local", page_size=8, widths={"text": 280},
            formatters={"score": {"type": "money", "precision": 2}},
        )
        self._wire()
        self._on_items()
        self._on_current()

    def _wire(self) -> None:
        s = self.state
        self.mode.param.watch(lambda e: setattr(s, "mode", e.new), "value")
        actions: dict[str, Callable[[], None]] = {
            "accept": s.accept, "keep": s.keep, "ambiguous": s.ambiguous, "skip": s.skip, "back": s.back,
            "undo": s.undo,
        }
        for name, button in self.buttons.items():
            button.on_click(_ignoring_event(actions[name]))
        self.choice.param.watch(lambda e: setattr(s, "choice", e.new), "value")
        self.relabel.on_click(lambda _: s.relabel())
        self.items.on_click(lambda e: s.go(e.row))
        s.param.watch(lambda *_: self._on_items(), ["items", "done"])
        s.param.watch(lambda *_: self._on_current(), ["current", "position"])
        s.param.watch(lambda e: setattr(self.message, "object", esc(e.new)), "message")
        s.param.watch(lambda e: setattr(self.choice, "options", list(e.new)), "labels")
        s.param.watch(lambda e: setattr(self.choice, "value", e.new) if e.new in self.choice.options else None,
                      "choice")
        s.param.watch(lambda e: setattr(self.mode, "value", e.new), "mode")

    def on_key(self, pressed: str) -> None:
        """A shortcut from KeyboardShortcuts; ignored unless the review tab is showing."""
        if not self._active():
            return
        s = self.state
        if pressed.isdigit() and pressed != "0":
            n_best = (s.current or {}).get("n_best") or []
            index = int(pressed) - 1
            if index < len(n_best):
                s.relabel(n_best[index].get("label"))
            return
        action = SHORTCUTS.get(pressed)
        if action == "relabel":
            s.relabel()
        elif action:
            getattr(s, action)()

    def _on_items(self) -> None:
        s = self.state
        score = "mislabel_score" if s.mode == "issues" else "suggestion_confidence"
        rows = [{"#": i + 1, "id": it.get("id"), "text": it.get("text"), "label": it.get("label"),
                 "suggested_label": it.get("suggested_label"), "score": it.get(score),
                 "done": s.done.get(key(it.get("id")), "")} for i, it in enumerate(s.items)]
        self.items.value = pd.DataFrame(rows, columns=ITEM_COLUMNS)

    def _on_current(self) -> None:
        s = self.state
        kind = "issue" if s.mode == "issues" else "suggestion"
        if not s.items:
            self.progress.object = f"<b>No {s.mode}</b> for the current filters."
        else:
            scope = (f" &middot; among the {s.loaded:,} highest-ranked of {s.total:,} (filters apply to those)"
                     if s.total > s.loaded else "")
            self.progress.object = (f"<b>{kind.capitalize()} {s.position + 1} of {len(s.items):,}</b>{scope} "
                                    f"&middot; {len(s.done)} done this session")
        self.evidence.object = evidence_html(s.current) if s.current else ""
        self.neighbours.value = neighbours_frame(s.current)
        suggested = (s.current or {}).get("suggested_label")
        self.buttons["accept"].label = f"Accept “{suggested}” (a)" if suggested else "Accept suggestion (a)"
        self.buttons["accept"].disabled = not suggested

    def __panel__(self) -> pn.viewable.Viewable:
        b = self.buttons
        return pn.Column(
            self.mode, self.progress, self.evidence,
            pn.Row(b["accept"], b["keep"], b["ambiguous"], sizing_mode="stretch_width"),
            pn.Row(self.choice, self.relabel, b["back"], b["skip"], b["undo"], sizing_mode="stretch_width"),
            self.message, pn.pane.HTML(HELP), pn.pane.HTML("<b>Nearest neighbours</b>"), self.neighbours,
            pn.pane.HTML("<b>The whole queue</b> (click a row to go to it)"), self.items,
            sizing_mode="stretch_width",
        )
