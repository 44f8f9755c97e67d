"""The search box: free text in, the nearest points listed and ringed on the map."""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn
from panel.viewable import Viewer

from dashboard.state.search import COLUMNS, SearchState
from dashboard.views.common import esc, state_param


class SearchView(Viewer):
    """A text input (Enter searches), the number of hits, and the hits table."""

    state = state_param(SearchState)

    def __init__(self, state: SearchState, on_pick: Any = None, **params: Any):
        super().__init__(state=state, **params)
        self.box = pn.widgets.TextInput(label="Search", placeholder="e.g. cancel my order", sizing_mode="stretch_width",
                                        css_classes=["dd-search"])
        self.k = pn.widgets.IntInput.from_param(state.param.k, label="k", width=80)
        self.go = pn.widgets.Button(label="Search", color="primary", align="end")
        self.message = pn.pane.HTML("", sizing_mode="stretch_width")
        self.hits = pn.widgets.Tabulator(pd.DataFrame(columns=COLUMNS), disabled=True, show_index=False,
                                         layout="fit_data_table", sizing_mode="stretch_width", height=300,
                                         formatters={"score": {"type": "money", "precision": 3}},
                                         widths={"text": 300})
        self.box.param.watch(self._search, "enter_pressed")
        self.go.on_click(self._search)
        if on_pick is not None:
            self.hits.on_click(lambda e: on_pick(self.hits.value.iloc[e.row]["id"]))
        state.param.watch(lambda *_: self._on_hits(), "hits")
        state.param.watch(lambda e: setattr(self.message, "object", esc(e.new)), "message")

    def _search(self, _event: Any) -> None:
        self.state.run(self.box.value_input or self.box.value)

    def _on_hits(self) -> None:
        hits = self.state.hits
        self.hits.value = hits if hits is not None else pd.DataFrame(columns=COLUMNS)

    def box_row(self) -> pn.Column:
        """The search box and its button, for the sidebar."""
        return pn.Column(self.box, pn.Row(self.k, self.go), sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.message, self.hits, sizing_mode="stretch_width")
