"""The Bokeh figure of the map: WebGL scatters of every point plus overlays, updated in place.

What reaches the browser is kept binary: categorical columns travel as small integer codes (one factor
list per column, used by the colour mapper and the hover), numbers as float32, filters as boolean arrays.
The hover texts, the only per-point strings, are sent after the first render (`send_texts`), so 100k
points draw in about the time their coordinates take to arrive.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from bokeh.core.property.validation import validate
from bokeh.models import (
    BooleanFilter,
    CDSView,
    ColumnDataSource,
    CustomJS,
    CustomJSHover,
    HoverTool,
    LabelSet,
    LinearColorMapper,
    Range1d,
)
from bokeh.plotting import figure
from bokeh.transform import transform
from panel.io.document import unlocked

from dashboard.colours import COLOUR_FIELDS, GREY, RAMP, ColourSpec, colour_spec
from dashboard.state.map import MapState

log = logging.getLogger(__name__)

CATEGORICAL = [name for name, (kind, _) in COLOUR_FIELDS.items() if kind == "categorical"]
NUMERIC = [name for name, (kind, _) in COLOUR_FIELDS.items() if kind == "numeric"]
TOOLTIPS = """
<div style="max-width:320px;font-size:12px">
  <div style="font-weight:600;white-space:normal">@text</div>
  <div>label: <b>@label{custom}</b> &middot; prediction: <b>@prediction{custom}</b> (@confidence{0.00})</div>
  <div style="color:#666">@split{custom} &middot; cluster @cluster{custom} &middot; @triage{custom}</div>
</div>
"""
_DECODE = "return (value == null || value < 0) ? '' : factors[value]"
NO_NAMES: dict[str, list[Any]] = {"x": [], "y": [], "name": [], "size": [], "alpha": [], "background_alpha": [],
                                  "shift": []}
NAME_BACKGROUND_ALPHA = 0.7
# Cluster names that would overlap on screen are hidden, the larger cluster's name kept, and shown again once a
# zoom makes room: run in the browser (only it knows the plot's size in pixels) whenever the view or the names
# change. Names arrive largest cluster first; a name's box is estimated from its length at 11px bold.
DECLUTTER_NAMES = """
const d = source.data, n = source.get_length() || 0;
const W = fig.inner_width, H = fig.inner_height, xr = fig.x_range, yr = fig.y_range;
if (!n || !W || !H || xr.end === xr.start || yr.end === yr.start) return;
const kept = [], alpha = new Array(n), background = new Array(n), shift = new Array(n);
for (let i = 0; i < n; i++) {
  const sx = (d.x[i] - xr.start) / (xr.end - xr.start) * W;
  const sy = (1 - (d.y[i] - yr.start) / (yr.end - yr.start)) * H;
  const half = (String(d.name[i]).length * 6.8 + 8) / 2;
  // A name near the frame's side slides inwards rather than being cut (as long as its cluster is in view).
  shift[i] = sx < 0 || sx > W ? 0 : Math.max(0, half - sx) - Math.max(0, sx + half - W);
  const box = [sx + shift[i] - half, sy - 15, sx + shift[i] + half, sy];
  const clash = kept.some(b => box[0] < b[2] && b[0] < box[2] && box[1] < b[3] && b[1] < box[3]);
  if (!clash) kept.push(box);
  alpha[i] = clash ? 0 : 1;
  background[i] = clash ? 0 : BACKGROUND;
}
if (d.alpha && alpha.every((a, i) => a === d.alpha[i]) && shift.every((v, i) => v === d.shift[i])) return;
d.alpha = alpha;
d.background_alpha = background;
d.shift = shift;
source.change.emit();  // redraws the names; not a change of `data`, so this callback does not run again
""".replace("BACKGROUND", str(NAME_BACKGROUND_ALPHA))


def point_size(n: int) -> float:
    """Smaller points as the map fills, so dense regions stay readable."""
    return 7.0 if n <= 5_000 else 5.0 if n <= 30_000 else 3.5


def codes(values: pd.Series, factors: list[str]) -> np.ndarray:
    """Each value's position in `factors` as int16 (-1 when absent)."""
    return pd.Categorical(values, categories=factors).codes.astype(np.int16)


def fill_of(spec: ColourSpec) -> Any:
    """The glyph's fill: a colour mapper over a column, so switching colour sends no per-point data."""
    if spec.kind == "numeric":
        return transform(spec.field, LinearColorMapper(palette=RAMP, low=spec.low, high=spec.high, nan_color=GREY))
    # Codes 0..n-1 fall each in its own bin of an n-colour linear mapper: a categorical map over integers.
    n = max(len(spec.colours), 1)
    palette = spec.colours or [GREY]
    return transform(spec.field, LinearColorMapper(palette=palette, low=-0.5, high=n - 0.5, nan_color=GREY,
                                                   low_color=GREY, high_color=GREY))


def _patches_document(method: Callable[..., Any]) -> Callable[..., Any]:
    """A figure update may run from a Panel widget event (a table row picked, a button), which Panel handles
    outside the Bokeh document lock; Bokeh then refuses to patch the document ("_pending_writes should be
    non-None") and the map is never updated. Panel's `unlocked` holds the changes and sends them itself, as it
    does for its own widgets; outside a server session it does nothing."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with unlocked():
            return method(self, *args, **kwargs)

    return wrapper


class MapFigure:
    """The figure, its sources and renderers; the view calls `update_*` when the state changes."""

    def __init__(self, on_select: Callable[[list[int]], None] | None = None, backend: str = "webgl"):
        self.source = ColumnDataSource(data=self._empty(), name="map-source")
        self.specs: dict[str, ColourSpec] = {}
        self.decoders = {name: CustomJSHover(args={"factors": []}, code=_DECODE) for name in CATEGORICAL}
        self.filter = BooleanFilter(booleans=[], name="map-filter")
        self.highlight_source = ColumnDataSource(data={"x": [], "y": []}, name="map-highlight")
        self.focus_source = ColumnDataSource(data={"x": [], "y": []}, name="map-focus")
        self.neighbour_source = ColumnDataSource(data={"x0": [], "y0": [], "x1": [], "y1": []},
                                                 name="map-neighbours")
        self.names_source = ColumnDataSource(data=dict(NO_NAMES), name="map-cluster-names")
        fig = figure(
            name="data-map", output_backend=backend, tools="pan,wheel_zoom,box_select,lasso_select,tap,reset",
            active_scroll="wheel_zoom", active_drag="box_select", toolbar_location="above",
            sizing_mode="stretch_both", min_height=420, x_range=Range1d(0, 1), y_range=Range1d(0, 1),
        )
        fig.axis.visible = False
        fig.grid.visible = False
        fig.outline_line_color = "#dddddd"
        # One WebGL renderer for every point: in Bokeh each WebGL renderer costs a copy of the whole canvas
        # per paint, which is what dominates a 100k-point first render without a GPU. Unlabelled points
        # differ by a dark outline (a colour mapper over the `unlabelled` column), not by a second renderer.
        outline = LinearColorMapper(palette=["rgba(0,0,0,0)", "#222222"], low=-0.5, high=1.5)
        self.points = fig.scatter(
            "x", "y", source=self.source, view=CDSView(filter=self.filter), marker="circle", size=6,
            fill_color=GREY, fill_alpha=0.8, line_color=transform("unlabelled", outline), line_width=1.2,
            selection_fill_alpha=1.0, nonselection_fill_alpha=0.25, name="map-points",
        )
        # Overlays use glyphs Bokeh draws on the 2-D canvas (ellipse, segment), so they add no WebGL copy.
        fig.ellipse("x", "y", width=15, height=15, width_units="screen", height_units="screen",
                    source=self.highlight_source, fill_color=None, line_color="#111111", line_width=2,
                    name="map-highlighted")
        fig.segment("x0", "y0", "x1", "y1", source=self.neighbour_source, line_color="#333333", line_alpha=0.6,
                    line_width=1.5, name="map-neighbour-lines")
        fig.ellipse("x", "y", width=18, height=18, width_units="screen", height_units="screen",
                    source=self.focus_source, fill_color="#ffdd00", line_color="#111111", line_width=2.5,
                    name="map-focus-point")
        self.names = LabelSet(x="x", y="y", text="name", source=self.names_source, text_font_size="11px",
                              text_font_style="bold", text_color="#222222", text_align="center",
                              text_alpha="alpha", x_offset="shift", background_fill_color="white",
                              background_fill_alpha="background_alpha", name="map-names")
        fig.add_layout(self.names)
        declutter = CustomJS(args={"fig": fig, "source": self.names_source}, code=DECLUTTER_NAMES)
        self.names_source.js_on_change("data", declutter)
        for model, attrs in ((fig, ("inner_width", "inner_height")), (fig.x_range, ("start", "end")),
                             (fig.y_range, ("start", "end"))):
            for attr in attrs:
                model.js_on_change(attr, declutter)
        fig.add_tools(HoverTool(renderers=[self.points], tooltips=TOOLTIPS,
                                formatters={f"@{name}": self.decoders[name] for name in CATEGORICAL}))
        self.figure = fig
        self._on_select = on_select
        self.source.selected.on_change("indices", self._selected)

    @staticmethod
    def _empty() -> dict[str, list[Any]]:
        return {c: [] for c in ("x", "y", "unlabelled", *CATEGORICAL, *NUMERIC)}

    def _selected(self, _attr: str, _old: list[int], new: list[int]) -> None:
        if self._on_select is not None:
            self._on_select(list(new))

    @_patches_document
    def clear_selection(self) -> None:
        """Drop Bokeh's selection (a click shows its point with a star, not by fading the rest)."""
        self.source.selected.indices = []

    # -- updates -------------------------------------------------------------------------------------

    def _categorical(self, frame: pd.DataFrame, names: list[str]) -> dict[str, np.ndarray]:
        columns = {}
        for name in names:
            spec = colour_spec(frame, name)
            self.specs[name] = spec
            self.decoders[name].args = {"factors": list(spec.factors)}
            columns[name] = codes(frame[name], spec.factors)
        return columns

    @_patches_document
    def update_points(self, state: MapState, with_texts: bool = False) -> None:
        """A new frame: every point's columns, the ranges and the point size. Texts follow via send_texts."""
        frame = state.frame
        n = len(frame)
        data: dict[str, Any] = {"x": frame["x"].to_numpy(np.float32), "y": frame["y"].to_numpy(np.float32),
                                "unlabelled": (~frame["labelled"].to_numpy(bool)).astype(np.int8),
                                **self._categorical(frame, CATEGORICAL),
                                **{name: frame[name].to_numpy(np.float32) for name in NUMERIC}}
        if with_texts:
            data["text"] = frame["text"].to_numpy()
        with validate(False):  # Bokeh would check 100k values one by one; they come from numpy already
            self.source.data = data
        self.points.glyph.size = point_size(n)
        xs, ys = data["x"], data["y"]
        finite = np.isfinite(xs) & np.isfinite(ys)
        if finite.any():
            pad_x = float(xs[finite].max() - xs[finite].min()) * 0.08 or 1.0  # room for cluster names
            pad_y = float(ys[finite].max() - ys[finite].min()) * 0.05 or 1.0
            self.figure.x_range.update(start=float(xs[finite].min() - pad_x), end=float(xs[finite].max() + pad_x))
            self.figure.y_range.update(start=float(ys[finite].min() - pad_y), end=float(ys[finite].max() + pad_y))
        self.update_filter(state)
        self.update_colour(state)
        self.update_names(state)

    @_patches_document
    def send_texts(self, state: MapState) -> None:
        """The hover texts, after the first render."""
        if state.frame is not None and len(state.frame) == len(self.source.data["x"]):
            with validate(False):
                self.source.data["text"] = state.frame["text"].to_numpy()

    @_patches_document
    def update_labels(self, state: MapState) -> None:
        """Labels changed in place (a relabel): resend the columns a label touches."""
        with validate(False):
            self.source.data.update(self._categorical(state.frame, ["label", "correct"]),
                                    unlabelled=(~state.frame["labelled"].to_numpy(bool)).astype(np.int8))
        self.update_filter(state)
        self.update_colour(state)

    @_patches_document
    def update_colour(self, state: MapState) -> None:
        """Colour by the state's field, selected and faded points alike."""
        spec = self.specs.get(state.colour_by) if state.colour_by in CATEGORICAL else state.spec()
        fill = fill_of(spec or state.spec())
        # Selected and faded points keep their colours (Bokeh's defaults would grey them out).
        for glyph in (self.points.glyph, self.points.selection_glyph, self.points.nonselection_glyph):
            glyph.fill_color = fill

    @_patches_document
    def update_filter(self, state: MapState) -> None:
        """Show only the points that pass the filters."""
        with validate(False):
            self.filter.booleans = state.mask()

    @_patches_document
    def update_highlight(self, state: MapState) -> None:
        """Ring the highlighted points."""
        rows = state.rows_of(state.highlighted)
        self.highlight_source.data = {"x": rows["x"].to_numpy() if len(rows) else [],
                                      "y": rows["y"].to_numpy() if len(rows) else []}

    @_patches_document
    def update_focus(self, state: MapState) -> None:
        """Star the clicked point and draw lines to its neighbours."""
        row = state.row(state.focus_key) if state.focus_key else None
        if row is None:
            self.focus_source.data = {"x": [], "y": []}
            self.neighbour_source.data = {"x0": [], "y0": [], "x1": [], "y1": []}
            return
        fx, fy = float(state.frame.at[row, "x"]), float(state.frame.at[row, "y"])
        self.focus_source.data = {"x": [fx], "y": [fy]}
        neighbours = (state.focus or {}).get("neighbours") or []
        rows = state.rows_of([n.get("id") for n in neighbours])
        self.neighbour_source.data = {"x0": [fx] * len(rows), "y0": [fy] * len(rows),
                                      "x1": rows["x"].to_numpy() if len(rows) else [],
                                      "y1": rows["y"].to_numpy() if len(rows) else []}

    @_patches_document
    def update_names(self, state: MapState) -> None:
        """Cluster names at each cluster's median position among the visible points, largest cluster first
        (where names would overlap, the browser keeps the first: DECLUTTER_NAMES)."""
        names = state.cluster_names
        visible = state.visible()
        if not state.show_cluster_names or not names or visible.empty:
            self.names_source.data = dict(NO_NAMES)
            return
        members = visible[visible["cluster"].isin([c for c, name in names.items() if name])]
        centres = members.groupby("cluster")[["x", "y"]].median()
        centres["size"] = members.groupby("cluster").size()
        centres = centres.sort_values("size", ascending=False, kind="stable")
        n = len(centres)
        self.names_source.data = {"x": centres["x"].to_numpy(), "y": centres["y"].to_numpy(),
                                  "name": [names[c] for c in centres.index], "size": centres["size"].to_numpy(),
                                  "alpha": np.ones(n), "background_alpha": np.full(n, NAME_BACKGROUND_ALPHA),
                                  "shift": np.zeros(n)}
