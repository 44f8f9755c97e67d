"""Cluster names on the map: where each goes, and the browser-side rule that hides names that would overlap."""

from __future__ import annotations

from typing import Any

import numpy as np

from dashboard.state.map import MapState

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



def name_positions(state: MapState) -> dict[str, Any]:
    """The names source's columns: each named cluster's median position among the visible points, largest
    cluster first (the order DECLUTTER_NAMES keeps names in)."""
    names = state.cluster_names
    if not state.show_cluster_names or not names or state.frame is None:
        return dict(NO_NAMES)
    visible = state.frame.loc[state.mask(), ["cluster", "x", "y"]]
    members = visible[visible["cluster"].isin([c for c, name in names.items() if name])]
    centres = members.groupby("cluster", observed=True)[["x", "y"]].median()
    centres["size"] = members.groupby("cluster", observed=True).size()
    centres = centres.sort_values("size", ascending=False, kind="stable")
    n = len(centres)
    return {"x": centres["x"].to_numpy(), "y": centres["y"].to_numpy(), "name": [names[c] for c in centres.index],
            "size": centres["size"].to_numpy(), "alpha": np.ones(n),
            "background_alpha": np.full(n, NAME_BACKGROUND_ALPHA), "shift": np.zeros(n)}
