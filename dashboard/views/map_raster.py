"""The map's overview as an image: every visible point aggregated by Datashader into the plot's pixels.

A million points cannot travel to a browser and be drawn as glyphs within seconds; an image of the plot's
size can, whatever the number of points. Each pixel takes the mean colour of the points it holds (the same
blend `datashader.transfer_functions.shade` makes of a `count_cat` aggregate, but summed as three colour
channels, so its cost does not grow with the number of categories) and an opacity that grows with the log
of their count, so single points stay visible beside dense blobs.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.colours import GREY, RAMP, ColourSpec

log = logging.getLogger(__name__)

MIN_ALPHA = 110  # of 255: a pixel holding one point
MAX_PIXELS = (1600, 1200)  # beyond this the image costs more to send than it shows


@dataclass(frozen=True)
class Raster:
    """An RGBA image (uint32 per pixel, rows bottom-up as Bokeh's image_rgba wants) over a data range."""

    image: np.ndarray
    x0: float
    x1: float
    y0: float
    y1: float
    points: int  # how many points the image holds


def hex_rgb(colours: list[str]) -> np.ndarray:
    """'#rrggbb' colours as an (n, 3) float32 array."""
    return np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colours], dtype=np.float32).reshape(-1, 3)


def raster_frame(x: np.ndarray, y: np.ndarray, rgb: np.ndarray, keep: np.ndarray) -> pd.DataFrame:
    """The points where `keep` is true with their colours (n, 3): what `rasterise` aggregates. Built once per
    colour and filter, so a pan or a zoom only aggregates."""
    return pd.DataFrame({"x": x[keep], "y": y[keep], "r": rgb[keep, 0], "g": rgb[keep, 1], "b": rgb[keep, 2]})


def rasterise(points: pd.DataFrame, x_range: tuple[float, float], y_range: tuple[float, float], width: int,
              height: int) -> Raster:
    """The points of a `raster_frame` inside the ranges as an image of width x height pixels."""
    import datashader as ds

    width, height = max(1, min(int(width), MAX_PIXELS[0])), max(1, min(int(height), MAX_PIXELS[1]))
    (x0, x1), (y0, y1) = x_range, y_range
    canvas = ds.Canvas(plot_width=width, plot_height=height, x_range=(x0, x1), y_range=(y0, y1))
    agg = canvas.points(points, "x", "y", agg=ds.summary(n=ds.count(), r=ds.sum("r"), g=ds.sum("g"),
                                                         b=ds.sum("b")))
    count = agg["n"].to_numpy()
    held = count > 0
    rgba = np.zeros((height, width, 4), dtype=np.uint8)
    for channel, name in enumerate("rgb"):
        rgba[..., channel][held] = (agg[name].to_numpy()[held] / count[held]).clip(0, 255)
    top = np.log1p(count.max()) if held.any() else 1.0
    rgba[..., 3] = np.where(held, MIN_ALPHA + (255 - MIN_ALPHA) * np.log1p(count) / top, 0).astype(np.uint8)
    return Raster(rgba.view(np.uint32).reshape(height, width), x0, x1, y0, y1, int(count.sum()))


_warmed = threading.Event()


def warm() -> None:
    """Compile Datashader's kernels (numba, a few seconds) before the first map needs them."""
    if _warmed.is_set():
        return
    rng = np.random.default_rng(0)
    xy = rng.random((64, 2))  # float64, as the map frame's x and y: numba compiles per dtype
    points = raster_frame(xy[:, 0], xy[:, 1], np.zeros((64, 3), np.float32), np.ones(64, bool))
    rasterise(points, (0.0, 1.0), (0.0, 1.0), 8, 8)  # float ranges: integer ones compile other kernels
    _warmed.set()
    log.info("datashader kernels compiled")


def point_colours(values: pd.Series, spec: ColourSpec) -> np.ndarray:
    """Each point's colour under `spec` as (n, 3) float32: its category's colour, or its value's step of the
    ramp; grey where missing."""
    grey = hex_rgb([GREY])[0]
    if spec.kind == "numeric":
        v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        ramp = hex_rgb(RAMP)
        finite = np.isfinite(v)
        steps = np.zeros(len(v), dtype=np.int64)
        steps[finite] = ((v[finite] - spec.low) / (spec.high - spec.low) * len(RAMP)).clip(0, len(RAMP) - 1)
        rgb = ramp[steps]
        rgb[~finite] = grey
        return rgb
    codes = pd.Categorical(values, categories=spec.factors).codes  # -1 where absent: the grey appended last
    return np.vstack([hex_rgb(spec.colours), grey])[codes]


def nearest(x: np.ndarray, y: np.ndarray, keep: np.ndarray, at: tuple[float, float], radius: tuple[float, float],
            ) -> int | None:
    """The row of the kept point nearest to `at` within an ellipse of `radius` (data units), or None."""
    dx, dy = (x - at[0]) / radius[0], (y - at[1]) / radius[1]
    d = np.where(keep, dx * dx + dy * dy, np.inf)
    row = int(np.argmin(d)) if len(d) else -1
    return row if row >= 0 and d[row] <= 1.0 else None


def inside(x: np.ndarray, y: np.ndarray, keep: np.ndarray, geometry: dict) -> np.ndarray:
    """Rows of the kept points inside a Bokeh selection geometry (a box, or a lasso's polygon)."""
    if geometry.get("type") == "rect":
        x0, x1 = sorted((geometry["x0"], geometry["x1"]))
        y0, y1 = sorted((geometry["y0"], geometry["y1"]))
        return np.flatnonzero(keep & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
    px, py = np.asarray(geometry.get("x", []), float), np.asarray(geometry.get("y", []), float)
    if len(px) < 3:
        return np.zeros(0, dtype=np.int64)
    box = keep & (x >= px.min()) & (x <= px.max()) & (y >= py.min()) & (y <= py.max())
    rows = np.flatnonzero(box)
    cx, cy = x[rows], y[rows]
    hit = np.zeros(len(rows), dtype=bool)
    # Even-odd rule: a point is inside when a ray from it crosses the polygon's edges an odd number of times.
    for (ax, ay), (bx, by) in zip(zip(px, py, strict=True), zip(np.roll(px, 1), np.roll(py, 1), strict=True),
                                  strict=True):
        crosses = (ay > cy) != (by > cy)
        with np.errstate(divide="ignore", invalid="ignore"):
            hit ^= crosses & (cx < (bx - ax) * (cy - ay) / (by - ay) + ax)
    return rows[hit]
