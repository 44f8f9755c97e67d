"""The map view: the scatter, its colour-by and filter controls, the selection table and the clicked point."""

from __future__ import annotations

import logging
from typing import Any

import panel as pn
from panel.viewable import Viewer

from dashboard.colours import COLOUR_FIELDS
from dashboard.graphics import Backend
from dashboard.state.map import FILTER_FIELDS, MapState
from dashboard.views.common import (
    evidence_html,
    legend_html,
    neighbours_frame,
    points_table,
    state_param,
    table_rows,
)
from dashboard.views.map_figure import MapFigure

log = logging.getLogger(__name__)


class MapView(Viewer):
    """Watches a MapState; every widget writes to the state and every state change redraws what it touches."""

    state = state_param(MapState)

    def __init__(self, state: MapState, defer_texts: bool = False, backend: Backend = "webgl", **params: Any):
        super().__init__(state=state, **params)
        self.defer_texts = defer_texts  # served pages send hover texts after the first render
        self.figure = MapFigure(on_select=self._on_select, backend=backend)
        self.colour = pn.widgets.Select(
            name="Colour by", options={label: name for name, (_, label) in COLOUR_FIELDS.items()},
            value=state.colour_by, sizing_mode="stretch_width", css_classes=["dd-colour-by"],
        )
        self.filters = {
            name: pn.widgets.MultiChoice(label=name.capitalize(), options=[], value=[], sizing_mode="stretch_width",
                                         placeholder="all", css_classes=[f"dd-filter-{name}"])
            for name in FILTER_FIELDS
        }
        self.clear = pn.widgets.Button(label="Clear filters", color="light", sizing_mode="stretch_width")
        self.names = pn.widgets.Checkbox(label="Show cluster names", value=state.show_cluster_names)
        self.legend = pn.pane.HTML("", sizing_mode="stretch_width", max_height=420,
                                   styles={"overflow-y": "auto"})
        self.summary = pn.pane.HTML("", css_classes=["dd-map-summary"], sizing_mode="stretch_width")
        self.highlight_note = pn.pane.HTML("", sizing_mode="stretch_width")
        self.clear_highlight = pn.widgets.Button(label="Clear highlight", color="light", visible=False)
        self.selection = points_table()
        self.selection_note = pn.pane.HTML("", sizing_mode="stretch_width")
        self.point = pn.pane.HTML(evidence_html(None), sizing_mode="stretch_width", css_classes=["dd-point"])
        self.neighbours = pn.widgets.Tabulator(
            neighbours_frame(None), disabled=True, show_index=False, layout="fit_data_table",
            sizing_mode="stretch_width", height=260, formatters={"similarity": {"type": "money", "precision": 3}},
            widths={"text": 320},
        )
        self._wire()
        if state.frame is not None:
            self._on_frame()

    # -- wiring --------------------------------------------------------------------------------------

    def _wire(self) -> None:
        s = self.state
        self.colour.param.watch(lambda e: setattr(s, "colour_by", e.new), "value")
        for name, widget in self.filters.items():
            widget.param.watch(lambda e, n=name: setattr(s, n, list(e.new)), "value")
        self.clear.on_click(lambda _: s.clear_filters())
        self.names.param.watch(lambda e: setattr(s, "show_cluster_names", e.new), "value")
        self.clear_highlight.on_click(lambda _: s.clear_highlight())
        self.selection.on_click(self._on_table_click)
        self.neighbours.on_click(lambda e: s.focus_on(self.neighbours.value.iloc[e.row]["id"]))

        s.param.watch(lambda *_: self._on_frame(), "frame")
        s.param.watch(lambda *_: self._on_labels(), "labels_version")
        s.param.watch(lambda *_: self._on_colour(), "colour_by")
        s.param.watch(lambda *_: self._on_filters(), list(FILTER_FIELDS))
        s.param.watch(lambda *_: self.figure.update_names(s), ["show_cluster_names", "names_version"])
        s.param.watch(lambda *_: self._on_selection(), "selected")
        s.param.watch(lambda *_: self._on_focus(), ["focus_key", "focus"])
        s.param.watch(lambda *_: self._on_highlight(), ["highlighted", "highlight_reason"])

    def _on_select(self, rows: list[int]) -> None:
        """Bokeh reports a tap or a box/lasso selection as row positions."""
        if len(rows) == 1:  # a click: show the point and its neighbours, starred on the map
            self.state.focus_on(self.state.loaded_frame().at[rows[0], "key"])
            self.figure.clear_selection()
            return
        self.state.select_rows(rows)

    def _on_table_click(self, event: Any) -> None:
        self.state.focus_on(self.selection.value.iloc[event.row]["id"])

    # -- redraws -------------------------------------------------------------------------------------

    def _on_frame(self) -> None:
        s = self.state
        if s.frame is None:
            return
        for name, widget in self.filters.items():
            widget.options = s.options(name)
            widget.value = [v for v in getattr(s, name) if v in widget.options]
        self.figure.update_points(s, with_texts=not self.defer_texts)
        self._on_colour()
        self._on_selection()
        self._on_focus()
        self._on_highlight()

    def send_texts(self) -> None:
        """The hover texts of a page whose first render went without them."""
        self.defer_texts = False
        if self.state.frame is not None:
            self.figure.send_texts(self.state)

    def _on_labels(self) -> None:
        self.figure.update_labels(self.state)
        self.filters["label"].options = self.state.options("label")
        self._on_colour()
        self._on_selection()

    def _on_colour(self) -> None:
        s = self.state
        if s.frame is None:
            return
        self.figure.update_colour(s)
        if self.colour.value != s.colour_by:
            self.colour.value = s.colour_by
        self.legend.object = legend_html(s.spec().legend(s.counts()), COLOUR_FIELDS[s.colour_by][1]) + (
            "<div style='font-size:12px;margin-top:6px'><span style='display:inline-block;width:10px;height:10px;"
            "border-radius:6px;border:1.5px solid #222'></span> dark outline = unlabelled</div>")
        self._summarise()

    def _on_filters(self) -> None:
        s = self.state
        for name, widget in self.filters.items():
            if list(widget.value) != getattr(s, name):
                widget.value = list(getattr(s, name))
        self.figure.update_filter(s)
        self.figure.update_names(s)
        self._on_colour()
        self._on_selection()

    def _on_selection(self) -> None:
        s = self.state
        positions = s.positions(s.selected)
        rows = s.frame.iloc[positions[s.mask()[positions]]] if s.frame is not None else s.rows_of([])
        self.selection.value, self.selection_note.object = table_rows(rows)
        if not self.selection_note.object:
            self.selection_note.object = (f"{len(rows):,} selected" if len(rows) else
                                          "Box- or lasso-select points on the map to list them here.")

    def _on_focus(self) -> None:
        s = self.state
        self.figure.update_focus(s)
        self.point.object = evidence_html(s.focus)
        self.neighbours.value = neighbours_frame(s.focus)

    def _on_highlight(self) -> None:
        s = self.state
        self.figure.update_highlight(s)
        self.highlight_note.object = (f"<div style='font-size:12px'><b>Highlighted:</b> {s.highlight_reason}</div>"
                                      if s.highlighted else "")
        self.clear_highlight.visible = bool(s.highlighted)

    def _summarise(self) -> None:
        s = self.state
        shown = int(s.mask().sum())
        self.summary.object = (
            f"<div style='font-size:13px'><b data-points='{s.size}'>{s.size:,} points</b>"
            f" &middot; {shown:,} shown</div>"
        )

    # -- layout --------------------------------------------------------------------------------------

    def controls(self) -> pn.Column:
        """Colour-by, filters and legend: the sidebar."""
        return pn.Column(self.summary, self.colour, *self.filters.values(), self.clear, self.names, self.legend,
                         sizing_mode="stretch_width")

    def plot(self) -> pn.Column:
        """The map itself, with the highlight note above it."""
        return pn.Column(
            pn.Row(self.highlight_note, self.clear_highlight, sizing_mode="stretch_width"),
            pn.pane.Bokeh(self.figure.figure, sizing_mode="stretch_both", min_height=480),
            sizing_mode="stretch_both", min_height=520,
        )

    def selection_panel(self) -> pn.Column:
        """The box/lasso selection as a table."""
        return pn.Column(self.selection_note, self.selection, sizing_mode="stretch_width")

    def point_panel(self) -> pn.Column:
        """The clicked point's evidence and neighbours."""
        return pn.Column(self.point, pn.pane.HTML("<b>Nearest neighbours</b>"), self.neighbours,
                         sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Row(pn.Column(self.controls(), width=260), self.plot(), sizing_mode="stretch_both")
