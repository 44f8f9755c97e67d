"""Bokeh figures of the model views: per-class F1 bars, confusion heatmap, reliability diagram, curves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, FactorRange, HoverTool, LinearColorMapper, Range1d
from bokeh.plotting import figure
from bokeh.transform import dodge, transform

BLUES = ["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"]
A_COLOUR, B_COLOUR = "#4c78a8", "#f58518"
SERIES_COLOURS = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2"]


def f1_bars(table: pd.DataFrame, name_a: str, name_b: str | None) -> Any:
    """Horizontal F1 bars per class, version B beside A when compared."""
    labels = list(table["label"]) if table is not None else []
    fig = figure(y_range=FactorRange(factors=labels), x_range=Range1d(start=0, end=1), height=max(
        220, 22 * len(labels) + 60), sizing_mode="stretch_width", title="F1 per class", toolbar_location=None,
        name="f1-bars")
    if not labels:
        return fig
    source = ColumnDataSource({"label": labels, "f1": table["f1"].fillna(0).to_numpy(),
                               "f1_b": table["f1_b"].fillna(0).to_numpy() if "f1_b" in table else
                               np.zeros(len(labels))})
    height = 0.4 if name_b else 0.8
    fig.hbar(y=dodge("label", 0.2 if name_b else 0, range=fig.y_range), right="f1", height=height, source=source,
             color=A_COLOUR, legend_label=name_a)
    if name_b:
        fig.hbar(y=dodge("label", -0.2, range=fig.y_range), right="f1_b", height=height, source=source,
                 color=B_COLOUR, legend_label=name_b)
    fig.add_tools(HoverTool(tooltips=[("class", "@label"), (name_a, "@f1{0.000}")] +
                            ([(name_b, "@f1_b{0.000}")] if name_b else [])))
    fig.legend.location = "bottom_right"
    fig.ygrid.grid_line_color = None
    return fig


def confusion_heatmap(labels: list[str], matrix: list[list[int]],
                      on_cell: Callable[[str, str], object] | None = None) -> Any:
    """Rows = true label, columns = predicted; the colour is the row share. A tap calls on_cell(true, pred)."""
    size = max(300, 28 * len(labels) + 140)
    fig = figure(x_range=FactorRange(factors=labels), y_range=FactorRange(factors=labels[::-1]),
                 height=size, sizing_mode="stretch_width", title="Confusion (rows: true, columns: predicted)",
                 tools="tap", toolbar_location=None, x_axis_location="above", name="confusion")
    if not labels:
        return fig
    counts = np.asarray(matrix, dtype=float)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    true, pred = np.meshgrid(labels, labels, indexing="ij")
    source = ColumnDataSource({"true": true.ravel(), "pred": pred.ravel(), "count": counts.ravel().astype(int),
                               "share": share.ravel()})
    mapper = LinearColorMapper(palette=BLUES, low=0, high=1)
    # Bokeh takes selection_<any line or fill property>; its stubs list only some of them.
    fig.rect("pred", "true", 1, 1, source=source, fill_color=transform("share", mapper),  # type: ignore[call-arg]
             line_color="white", selection_line_color="#d62728", selection_line_width=3,
             nonselection_fill_alpha=1.0)
    fig.text("pred", "true", text="count", source=source, text_align="center", text_baseline="middle",
             text_font_size="10px", text_color="#222222")
    fig.xaxis.major_label_orientation = 0.9
    fig.add_tools(HoverTool(tooltips=[("true", "@true"), ("predicted", "@pred"), ("points", "@count"),
                                      ("row share", "@share{0.0%}")]))
    if on_cell is not None:
        def tapped(_attr: str, _old: list[int], new: list[int]) -> None:
            """A tapped cell, as (true label, predicted label)."""
            if new:
                on_cell(str(source.data["true"][new[0]]), str(source.data["pred"][new[0]]))

        source.selected.on_change("indices", tapped)
    return fig


def reliability_diagram(series: dict[str, list[dict[str, float]]]) -> Any:
    """Accuracy against confidence per bin for each version; the diagonal is perfect calibration."""
    fig = figure(x_range=Range1d(start=0, end=1), y_range=Range1d(start=0, end=1), height=300,
                 sizing_mode="stretch_width", title="Reliability", x_axis_label="confidence",
                 y_axis_label="accuracy", toolbar_location=None, name="reliability")
    fig.line([0, 1], [0, 1], line_dash="dashed", line_color="#999999")
    for (name, bins), colour in zip(series.items(), [A_COLOUR, B_COLOUR], strict=False):
        if not bins:
            continue
        source = ColumnDataSource({k: [b.get(k) for b in bins] for k in ("confidence", "accuracy", "count")})
        fig.line("confidence", "accuracy", source=source, color=colour, line_width=2, legend_label=name)
        fig.scatter("confidence", "accuracy", source=source, color=colour, size=6)
    if fig.legend:
        fig.legend.location = "top_left"
    return fig


def curve_plot(title: str, curve: dict[str, Any]) -> Any:
    """Every numeric series of a curve against its x (train sizes, iterations)."""
    x_name = curve["x_name"]
    fig = figure(height=260, sizing_mode="stretch_width", title=title, x_axis_label=x_name.replace("_", " "),
                 toolbar_location=None, name=f"curve-{title}")
    series = [k for k in curve if k not in ("x_name", x_name) and not k.endswith("_std")]
    for name, colour in zip(series, SERIES_COLOURS * 3, strict=False):
        fig.line(curve[x_name], curve[name], color=colour, line_width=2, legend_label=name.replace("_", " "))
        fig.scatter(curve[x_name], curve[name], color=colour, size=5)
    if fig.legend:
        fig.legend.location = "bottom_right"
        fig.legend.label_text_font_size = "10px"
    return fig
