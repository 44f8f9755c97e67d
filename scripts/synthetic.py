"""Synthetic map data and the browser's "map painted" check, shared by scripts/bench_map.py and the browser tests.

`add_synthetic` writes n points in 40 blobs straight to a workspace's store (10% mispredicted, 1 in 13
unlabelled), with every field the map reads; `PAINTED` asks BokehJS how many points the map represents
(as glyphs or inside its rasterised image) and whether the plot has painted.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

N_LABELS = 40
BATCH = 20_000


def on_map(body: str) -> str:
    """A browser script that runs `body` with `doc`, `fig` (the map) and `view` (its BokehJS view) bound, on the
    first Bokeh document holding the page's map; the script answers null before the map exists."""
    return f"""
const docs = (window.Bokeh && Bokeh.documents) || [];
for (const doc of docs) {{
  const fig = doc.get_model_by_name('data-map');
  if (!fig) continue;
  const view = Bokeh.index.find_one(fig);
{body}
}}
return null;
"""


# [points represented, painted, performance.now()] of the page's map, or null before it exists. A point is
# represented when it is drawn as a glyph (map-source) or counted in the rasterised image (map-raster).
PAINTED = on_map("""
  const glyphs = doc.get_model_by_name('map-source').get_length() || 0;
  const raster = doc.get_model_by_name('map-raster');
  const image = raster && raster.get_length() ? Number(raster.data.points[0]) : 0;
  return [Math.max(glyphs, image), !!(view && view.has_finished()), performance.now()];""")


# Moves the map's view to [x0, x1] x [y0, y1] as a pan or zoom tool does (ranges, then the RangesUpdate event
# the server answers); returns performance.now() at the move.
SET_VIEW = """
const [x0, x1, y0, y1] = arguments;
const doc = Bokeh.documents[0], fig = doc.get_model_by_name('data-map');
fig.x_range.setv({start: x0, end: x1});
fig.y_range.setv({start: y0, end: y1});
Bokeh.index.find_one(fig).trigger_ranges_update_event();
return performance.now();
"""
# [what the server answered for the view [x0, x1]: 'image' (the points rasterised) or 'glyphs' (an empty image
# over that range, the points as glyphs), or null before it answered; painted; performance.now()].
VIEW_SHOWN = """
const [x0, x1] = arguments;
const doc = Bokeh.documents[0], fig = doc.get_model_by_name('data-map');
const d = doc.get_model_by_name('map-raster').data;
const close = (a, b) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));
const answered = d.image.length && close(d.x[0], x0) && close(d.x[0] + d.dw[0], x1);
const shown = answered ? (Number(d.points[0]) > 0 ? 'image' : 'glyphs') : null;
const view = Bokeh.index.find_one(fig);
return [shown, !!(view && view.has_finished()), performance.now()];
"""
VIEW_RANGE = """
const fig = Bokeh.documents[0].get_model_by_name('data-map');
return [fig.x_range.start, fig.x_range.end, fig.y_range.start, fig.y_range.end];
"""


def synthetic_payloads(ids: np.ndarray, rng: np.random.Generator, centres: np.ndarray) -> list[dict[str, Any]]:
    """The payloads of `ids`: a blob (label, cluster) each, a prediction that is wrong 10% of the time."""
    n = len(ids)
    which = rng.integers(0, len(centres), n)
    xy = centres[which] + rng.normal(0, 1.2, (n, 2))
    predicted = np.where(rng.random(n) < 0.1, rng.integers(0, len(centres), n), which)
    confidence, entropy, score = rng.uniform(0.3, 1, n), rng.uniform(0, 2, n), rng.random(n)
    labels = [f"intent_{i:02d}" for i in range(len(centres))]
    unlabelled = ids % 13 == 0
    status = np.where(unlabelled, "unlabelled", np.where(predicted == which, "correct", "incorrect"))
    # Plain Python values column by column (tolist), then zipped: ~10x faster than indexing numpy per point.
    columns = zip(ids.tolist(), which.tolist(), predicted.tolist(), unlabelled.tolist(), status.tolist(),
                  confidence.tolist(), entropy.tolist(), score.tolist(), xy[:, 0].tolist(), xy[:, 1].tolist(),
                  strict=True)
    return [{
        "record_id": pid, "text": f"synthetic request {pid} about {labels[w]}", "split": "training",
        "label": None if unl else labels[w], "prediction": labels[p], "confidence": c, "entropy": e,
        "prediction_status": st, "cluster": w, "triage": "agree", "mislabel_score": s, "x": x, "y": y,
    } for pid, w, p, unl, st, c, e, s, x, y in columns]


def add_synthetic(ws: Any, name: str, n: int, seed: int = 0) -> None:
    """Write n synthetic points with map fields as dataset `name` of the workspace `ws` (4-d random vectors)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 8, (N_LABELS, 2))
    collection = ws.catalog.create(name, 4, "synthetic", "synthetic")
    for start in range(0, n, BATCH):
        ids = np.arange(start, min(n, start + BATCH))
        payloads = synthetic_payloads(ids, rng, centres)
        collection.upsert(ids.tolist(), rng.standard_normal((len(ids), 4)).astype(np.float32), payloads)
    collection.flush()


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system, all threads) of this process, or of process `pid` (read from /proc)."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def wait_idle(quiet_share: float = 0.1, window: float = 0.3, limit: float = 60.0, pid: int | None = None) -> None:
    """Until the servers use under `quiet_share` of a core over `window` s: this process's (the API and
    dashboard run in it), or process `pid`'s when they run in another (scripts/bench_scale.py)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        cpu = cpu_seconds(pid)
        time.sleep(window)
        if cpu_seconds(pid) - cpu < quiet_share * window:
            return


def wait_painted(browser: Any, n: int, timeout: float = 180) -> float:
    """Seconds from the page's navigation to its map painted with all `n` points represented."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = browser.execute_script(PAINTED)
        if state and state[0] == n and state[1]:
            return float(state[2]) / 1000
        time.sleep(0.02)
    raise TimeoutError(f"the map of {n:,} points did not paint in {timeout:.0f} s")


def move_view(browser: Any, x0: float, x1: float, y0: float, y1: float, timeout: float = 60) -> tuple[str, float]:
    """Pan or zoom the map to the given ranges; what the view then shows ('image' or 'glyphs') and the seconds
    from the move to the answer painted."""
    moved = float(browser.execute_script(SET_VIEW, x0, x1, y0, y1))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown, painted, now = browser.execute_script(VIEW_SHOWN, x0, x1)
        if shown and painted:
            return shown, (float(now) - moved) / 1000
        time.sleep(0.01)
    raise TimeoutError(f"the map did not answer a move to x {x0:.3g}..{x1:.3g} in {timeout:.0f} s")
