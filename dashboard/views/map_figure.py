"""The Bokeh figure of the map: a scatter of the points plus overlays, updated in place.

Up to GLYPH_LIMIT points, every point is a glyph with hover and click. Beyond it, the view shows an image
rasterised on the server (map_raster: every visible point, coloured by the colour-by field) and re-rasterised
after each pan or zoom; once the view holds GLYPH_LIMIT points or fewer, those points come as glyphs instead.
Clicks and box/lasso selections on the image are resolved on the server against every point.

What reaches the browser is kept binary: categorical columns travel as small integer codes (one factor
list per column, used by the colour mapper and the hover), numbers as float32, filters as boolean arrays.
The hover texts, the only per-point strings, are sent after the first render (`send_texts`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from bokeh.core.property.descriptors import UnsetValueError
from bokeh.core.property.validation import validate
from bokeh.events import RangesUpdate, SelectionGeometry, Tap
from bokeh.models import (
    BooleanFilter,
    CDSView,
    ColumnDataSource,
    CustomJS,
    CustomJSHover,
    HoverTool,
    LinearColorMapper,
    Range1d,
    Scatter,
)
from bokeh.models.annotations.labels import LabelSet  # Bokeh's stubs leave it out of bokeh.models' names
from bokeh.plotting import figure
from bokeh.transform import transform
from panel.io.document import unlocked

from dashboard.colours import COLOUR_FIELDS, GREY, RAMP, ColourSpec
from dashboard.graphics import Backend
from dashboard.state.map import MapState
from dashboard.views.map_names import DECLUTTER_NAMES, NO_NAMES, name_positions
from dashboard.views.map_raster import inside, nearest, point_colours, raster_frame, rasterise

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
NO_RASTER: dict[str, list[Any]] = {"image": [], "x": [], "y": [], "dw": [], "dh": [], "points": []}
# Up to this many points in view are glyphs; more are an image. Canvas draws 20k circles in ~0.1 s.
GLYPH_LIMIT = 20_000
RASTER_SIZE = (1000, 700)  # pixels, when the browser has not told the plot's size yet
CLICK_PIXELS = 6  # a click on the image picks the nearest point within this many pixels
RERASTER_DELAY_MS = 40  # pan and zoom events arriving within it are answered by one image
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

    def __init__(self, on_select: Callable[[list[int]], None] | None = None, backend: Backend = "webgl"):
        self.source = ColumnDataSource(data=self._empty(), name="map-source")
        self.specs: dict[str, ColourSpec] = {}
        self.decoders = {name: CustomJSHover(args={"factors": []}, code=_DECODE) for name in CATEGORICAL}
        self.filter = BooleanFilter(booleans=[], name="map-filter")
        self.highlight_source = ColumnDataSource(data={"x": [], "y": []}, name="map-highlight")
        self.focus_source = ColumnDataSource(data={"x": [], "y": []}, name="map-focus")
        self.neighbour_source = ColumnDataSource(data={"x0": [], "y0": [], "x1": [], "y1": []},
                                                 name="map-neighbours")
        self.names_source = ColumnDataSource(data=dict(NO_NAMES), name="map-cluster-names")
        self.raster_source = ColumnDataSource(data=dict(NO_RASTER), name="map-raster")
        self.large = False  # more points than GLYPH_LIMIT: the image at overview
        self.view: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0)
        self.shown_rows = np.zeros(0, dtype=np.int64)  # frame rows of the glyphs, in large mode
        self._state: MapState | None = None
        self._colours: tuple[Any, np.ndarray] | None = None
        self._points: tuple[Any, pd.DataFrame] | None = None  # what the image aggregates, per colour and filter
        self._shown: Any = None  # what the view last showed, to skip a refresh that changes nothing
        self._pending = False
        fig = figure(
            name="data-map", output_backend=backend, tools="pan,wheel_zoom,box_select,lasso_select,tap,reset",
            active_scroll="wheel_zoom", active_drag="box_select", toolbar_location="above",
            sizing_mode="stretch_both", min_height=420, x_range=Range1d(start=0, end=1),
            y_range=Range1d(start=0, end=1),
        )
        fig.axis.visible = False
        fig.grid.visible = False
        fig.outline_line_color = "#dddddd"
        # One WebGL renderer for every point: in Bokeh each WebGL renderer costs a copy of the whole canvas
        # per paint, which is what dominates a 100k-point first render without a GPU. Unlabelled points
        # differ by a dark outline (a colour mapper over the `unlabelled` column), not by a second renderer.
        outline = LinearColorMapper(palette=["rgba(0,0,0,0)", "#222222"], low=-0.5, high=1.5)
        fig.image_rgba(image="image", x="x", y="y", dw="dw", dh="dh", source=self.raster_source,
                       name="map-raster-image")
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
        # Bokeh types an event callback as taking any Event; it calls each of these with its own event class only.
        fig.on_event(RangesUpdate, self._on_ranges)  # type: ignore[arg-type]
        fig.on_event(Tap, self._on_tap)  # type: ignore[arg-type]
        fig.on_event(SelectionGeometry, self._on_geometry)  # type: ignore[arg-type]

    @staticmethod
    def _empty() -> dict[str, list[Any]]:
        return {c: [] for c in ("x", "y", "unlabelled", *CATEGORICAL, *NUMERIC)}

    def _selected(self, _attr: str, _old: list[int], new: list[int]) -> None:
        if self._on_select is not None:
            # In large mode the glyphs are a subset: their positions name frame rows through shown_rows.
            self._on_select(self.shown_rows[list(new)].tolist() if self.large else list(new))

    @property
    def raster_shown(self) -> bool:
        """Whether the view is the image (not glyphs)."""
        points = self.raster_source.data["points"]
        return self.large and len(points) > 0 and points[0] > 0

    def _on_ranges(self, event: RangesUpdate) -> None:
        """A pan or zoom ended: re-rasterise (or send the glyphs) for the new view, once per burst of events."""
        x0, x1, y0, y1 = event.x0, event.x1, event.y0, event.y1
        if not self.large or x0 is None or x1 is None or y0 is None or y1 is None:
            return
        self.view = (float(x0), float(x1), float(y0), float(y1))
        document = self.figure.document
        if document is None:
            self.refresh_view()
        elif not self._pending:  # a wheel zoom sends an event per notch
            self._pending = True
            document.add_timeout_callback(self._refresh_pending, RERASTER_DELAY_MS)

    def _refresh_pending(self) -> None:
        self._pending = False
        self.refresh_view()

    def _pixel(self) -> tuple[float, float]:
        """Data units per screen pixel along x and y."""
        width, height = self._size()
        x0, x1, y0, y1 = self.view
        return (x1 - x0) / width, (y1 - y0) / height

    def _size(self) -> tuple[int, int]:
        try:  # set by the browser once the plot is laid out
            width, height = self.figure.inner_width, self.figure.inner_height
        except UnsetValueError:
            return RASTER_SIZE
        return (width, height) if width and height and width > 10 and height > 10 else RASTER_SIZE

    def _on_tap(self, event: Tap) -> None:
        """A click on the image: the nearest point under the pointer, as a glyph's click would give."""
        s = self._state
        if (not self.raster_shown or s is None or s.frame is None or self._on_select is None or event.x is None
                or event.y is None):
            return
        px, py = self._pixel()
        x, y = s.frame["x"].to_numpy(), s.frame["y"].to_numpy()
        row = nearest(x, y, s.mask(), (float(event.x), float(event.y)), (CLICK_PIXELS * px, CLICK_PIXELS * py))
        self._on_select([row] if row is not None else [])

    def _on_geometry(self, event: SelectionGeometry) -> None:
        """A box or lasso drawn over the image: every visible point inside it."""
        s = self._state
        geometry = event.geometry
        if (not self.raster_shown or not event.final or s is None or s.frame is None or self._on_select is None
                or geometry is None):
            return
        if geometry.get("type") not in ("rect", "poly"):  # the tap tool's point: _on_tap has it
            return
        rows = inside(s.frame["x"].to_numpy(), s.frame["y"].to_numpy(), s.mask(), dict(geometry))
        self._on_select(rows.tolist())

    @_patches_document
    def clear_selection(self) -> None:
        """Drop Bokeh's selection (a click shows its point with a star, not by fading the rest)."""
        self.source.selected.indices = []

    # -- updates -------------------------------------------------------------------------------------

    def _columns(self, state: MapState, rows: np.ndarray | None, with_texts: bool) -> dict[str, Any]:
        """The glyph columns of `rows` (every point when None)."""
        frame = state.loaded_frame() if rows is None else state.loaded_frame().iloc[rows]
        data: dict[str, Any] = {"x": frame["x"].to_numpy(np.float32), "y": frame["y"].to_numpy(np.float32),
                                "unlabelled": (~frame["labelled"].to_numpy(bool)).astype(np.int8),
                                **self._categorical(state, frame, CATEGORICAL),
                                **{name: frame[name].to_numpy(np.float32) for name in NUMERIC}}
        if with_texts:
            data["text"] = frame["text"].to_numpy()
        return data

    def _categorical(self, state: MapState, frame: pd.DataFrame, names: list[str]) -> dict[str, np.ndarray]:
        columns = {}
        for name in names:
            spec = state.spec_of(name)
            self.specs[name] = spec
            self.decoders[name].args = {"factors": list(spec.factors)}
            columns[name] = codes(frame[name], spec.factors)
        return columns

    @_patches_document
    def update_points(self, state: MapState, with_texts: bool = False) -> None:
        """A new frame: every point's columns (or, past GLYPH_LIMIT, the image), the ranges and the point size.
        Texts follow via send_texts."""
        frame = state.loaded_frame()
        n = len(frame)
        self._state, self._colours, self._points, self._shown = state, None, None, None
        self.large = n > GLYPH_LIMIT
        xs, ys = frame["x"].to_numpy(), frame["y"].to_numpy()
        finite = np.isfinite(xs) & np.isfinite(ys)
        if finite.any():
            pad_x = float(xs[finite].max() - xs[finite].min()) * 0.08 or 1.0  # room for cluster names
            pad_y = float(ys[finite].max() - ys[finite].min()) * 0.05 or 1.0
            self.view = (float(xs[finite].min() - pad_x), float(xs[finite].max() + pad_x),
                         float(ys[finite].min() - pad_y), float(ys[finite].max() + pad_y))
            self.figure.x_range.update(start=self.view[0], end=self.view[1])
            self.figure.y_range.update(start=self.view[2], end=self.view[3])
        self.points.glyph.size = point_size(n) if not self.large else point_size(GLYPH_LIMIT)
        if self.large:
            self.update_colour(state)
            self.update_names(state)
            return
        self.shown_rows = np.zeros(0, dtype=np.int64)
        with validate(False):  # Bokeh would check 100k values one by one; they come from numpy already
            self.source.data = self._columns(state, None, with_texts)
            self.raster_source.data = dict(NO_RASTER)
        self.update_filter(state)
        self.update_colour(state)
        self.update_names(state)

    @_patches_document
    def refresh_view(self) -> None:
        """Large mode: the image of the visible points in the current view, or their glyphs when few enough."""
        s = self._state
        if not self.large or s is None or s.frame is None:
            return
        filters = tuple(sorted((name, tuple(values)) for name, values in s.filters().items()))
        shown = (id(s.frame), s.labels_version, id(s.spec()), filters, self.view, self._size())
        if shown == self._shown:  # e.g. the colour set again by the view right after the frame
            return
        self._shown = shown
        x0, x1, y0, y1 = self.view
        x, y = s.frame["x"].to_numpy(), s.frame["y"].to_numpy()
        keep = s.mask()
        in_view = keep & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        with validate(False):
            if int(in_view.sum()) <= GLYPH_LIMIT:
                self.shown_rows = np.flatnonzero(in_view)
                self.source.data = self._columns(s, self.shown_rows, with_texts=True)
                self.filter.booleans = np.ones(len(self.shown_rows), dtype=bool)  # type: ignore[assignment]  # see update_filter
                # An empty image over the view, holding no points: says the server has answered this view.
                self.raster_source.data = {"image": [np.zeros((1, 1), dtype=np.uint32)], "x": [x0], "y": [y0],
                                           "dw": [x1 - x0], "dh": [y1 - y0], "points": [0]}
                return
            if self._points is None or self._points[0] != shown[:4]:
                self._points = (shown[:4], raster_frame(x, y, self._point_colours(s), keep))
            width, height = self._size()
            raster = rasterise(self._points[1], (x0, x1), (y0, y1), width, height)
            self.shown_rows = np.zeros(0, dtype=np.int64)
            self.source.data = self._empty()
            self.filter.booleans = np.zeros(0, dtype=bool)  # type: ignore[assignment]  # see update_filter
            self.raster_source.data = {"image": [raster.image], "x": [x0], "y": [y0], "dw": [x1 - x0],
                                       "dh": [y1 - y0], "points": [raster.points]}

    def _point_colours(self, state: MapState) -> np.ndarray:
        """Every point's colour under the colour-by field (kept until the field or its spec changes)."""
        spec = state.spec()
        if self._colours is None or self._colours[0] is not spec:
            self._colours = (spec, point_colours(state.loaded_frame()[state.colour_by], spec))
        return self._colours[1]

    @_patches_document
    def send_texts(self, state: MapState) -> None:
        """The hover texts, after the first render (large mode sends them with its glyphs)."""
        if state.frame is not None and not self.large and len(state.frame) == len(self.source.data["x"]):
            with validate(False):
                self.source.data["text"] = state.frame["text"].to_numpy()

    @_patches_document
    def update_labels(self, state: MapState) -> None:
        """Labels changed in place (a relabel): resend the columns a label touches."""
        if self.large:
            self.update_colour(state)  # re-colours the image, resends the glyphs in view
            return
        frame = state.loaded_frame()
        with validate(False):
            self.source.data.update(self._categorical(state, frame, ["label", "correct"]),
                                    unlabelled=(~frame["labelled"].to_numpy(bool)).astype(np.int8))
        self.update_filter(state)
        self.update_colour(state)

    @_patches_document
    def update_colour(self, state: MapState) -> None:
        """Colour by the state's field, selected and faded points alike."""
        fill = fill_of(state.spec())
        # Selected and faded points keep their colours (Bokeh's defaults would grey them out).
        for glyph in (self.points.glyph, self.points.selection_glyph, self.points.nonselection_glyph):
            if isinstance(glyph, Scatter):  # always, as built in __init__; Bokeh types them as maybe "auto"
                glyph.fill_color = fill
        self.refresh_view()

    @_patches_document
    def update_filter(self, state: MapState) -> None:
        """Show only the points that pass the filters."""
        if self.large:
            self.refresh_view()
            return
        with validate(False):
            # Bokeh's stubs type booleans as a sequence of bools; it takes a numpy array as one, and a list
            # of 100k Python bools would cost far more to build and to send.
            self.filter.booleans = state.mask()  # type: ignore[assignment]

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
        frame = state.frame
        if row is None or frame is None:
            self.focus_source.data = {"x": [], "y": []}
            self.neighbour_source.data = {"x0": [], "y0": [], "x1": [], "y1": []}
            return
        fx, fy = float(frame.at[row, "x"]), float(frame.at[row, "y"])
        self.focus_source.data = {"x": [fx], "y": [fy]}
        neighbours = (state.focus or {}).get("neighbours") or []
        rows = state.rows_of([n.get("id") for n in neighbours])
        self.neighbour_source.data = {"x0": [fx] * len(rows), "y0": [fy] * len(rows),
                                      "x1": rows["x"].to_numpy() if len(rows) else [],
                                      "y1": rows["y"].to_numpy() if len(rows) else []}

    @_patches_document
    def update_names(self, state: MapState) -> None:
        """Cluster names at each cluster's median position among the visible points, largest cluster first
        (where names would overlap, the browser keeps the first: map_names.DECLUTTER_NAMES)."""
        self.names_source.data = name_positions(state)
