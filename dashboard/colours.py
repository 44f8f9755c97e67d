"""How the map colours its points: one spec per colour-by field, categorical or numeric, with a legend."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

NONE = "(none)"
NOISE = "-1"
GREY = "#b8b8b8"

# Fields the map can colour by, with the kind of scale and the name shown in the menu.
COLOUR_FIELDS: dict[str, tuple[str, str]] = {
    "label": ("categorical", "Label"),
    "prediction": ("categorical", "Prediction"),
    "correct": ("categorical", "Correct / incorrect"),
    "cluster": ("categorical", "Cluster"),
    "split": ("categorical", "Split"),
    "triage": ("categorical", "Triage"),
    "mislabel_score": ("numeric", "Mislabel score"),
    "entropy": ("numeric", "Entropy"),
    "confidence": ("numeric", "Confidence"),
}

# Values whose meaning is fixed get fixed colours, so red means "wrong" whatever the data.
FIXED: dict[str, dict[str, str]] = {
    "correct": {"correct": "#2ca02c", "incorrect": "#d62728", "unlabelled": "#9e9e9e", NONE: GREY},
    "triage": {
        "label_error": "#d62728", "model_error": "#ff7f0e", "ambiguous": "#9467bd", "outlier": "#8c564b",
        "agree": "#aec7e8", "unlabelled": "#9e9e9e", NONE: GREY,
    },
    "split": {"training": "#1f77b4", "validation": "#ff7f0e", "testing": "#2ca02c", NONE: GREY},
}

# Enough distinct colours for Banking77's 77 intents; glasbey keeps neighbours in the list far apart.
_DISTINCT = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
    "#3a0183", "#004301", "#0fffa8", "#5d003f", "#bcbcff", "#d8afa1", "#b80080", "#004d52", "#6b6400",
    "#7c0100", "#6026ff", "#ffff9a", "#564964", "#8cb893", "#93fbff", "#018267", "#90ff00", "#8200a0",
    "#ac8944", "#5b3400", "#ffbff2", "#ff6e75", "#798cff", "#dd00ff", "#505646", "#004489", "#ffbf60",
    "#ff018c", "#bdc8cf", "#af97b5", "#b65600", "#017000", "#cd87ff", "#1cd646", "#bfebc3", "#7997b5",
    "#a56089", "#6e8956", "#bc7c75", "#8a2844", "#00acff", "#8ed4ff", "#4b6d77", "#00d4b1", "#9300f2",
    "#8a9500", "#5d5b9e", "#fddfba", "#00939e", "#ffdb00", "#00aa3e", "#9a0056", "#f3007d", "#7c8a8a",
    "#a35d2b", "#a5a300", "#c9b0ff", "#cdffa8", "#4a5fb2", "#ffa58a", "#4c2f3d", "#b5009c", "#fe92ca",
    "#006b44", "#8df3b5", "#ff5b01", "#76005f", "#2a2b00", "#d8ff6e", "#a8c95c", "#77426a",
]
# Viridis, 16 steps: numeric fields are binned into these on the client side by a linear colour mapper.
RAMP = [
    "#440154", "#481a6c", "#472f7d", "#414487", "#39568c", "#31688e", "#2a788e", "#23888e", "#1f988b",
    "#22a884", "#35b779", "#54c568", "#7ad151", "#a5db36", "#d2e21b", "#fde725",
]


@dataclass(frozen=True)
class ColourSpec:
    """What the map needs to colour by one field: categorical factors and colours, or a numeric range."""

    field: str
    kind: str
    # dataclasses.field by its module: the `field` attribute above shadows the bare name in this class body.
    factors: list[str] = dataclasses.field(default_factory=list)
    colours: list[str] = dataclasses.field(default_factory=list)
    low: float = 0.0
    high: float = 1.0

    def legend(self, counts: dict[str, int] | None = None) -> list[tuple[str, str]]:
        """(colour, text) pairs for the legend; numeric fields show the ends of the ramp."""
        if self.kind == "numeric":
            return [(RAMP[0], f"{self.low:.2f}"), (RAMP[len(RAMP) // 2], f"{(self.low + self.high) / 2:.2f}"),
                    (RAMP[-1], f"{self.high:.2f}")]
        counts = counts or {}
        pairs = zip(self.factors, self.colours, strict=True)
        return [(c, f"{f} ({counts[f]:,})" if f in counts else f) for f, c in pairs]


def label_colours(labels: list[str]) -> dict[str, str]:
    """One colour per class, shared by 'label' and 'prediction' so a disagreement shows as a colour change."""
    ordered = sorted(set(labels) - {NONE})
    colours = {name: _DISTINCT[i % len(_DISTINCT)] for i, name in enumerate(ordered)}
    colours[NONE] = GREY
    return colours


def colour_spec(frame: pd.DataFrame, field_name: str) -> ColourSpec:
    """The colour spec of `field_name` over the map frame (see dashboard.state.map.map_frame)."""
    if field_name not in COLOUR_FIELDS:
        raise ValueError(f"cannot colour by {field_name!r}; choose one of {', '.join(COLOUR_FIELDS)}")
    kind = COLOUR_FIELDS[field_name][0]
    if kind == "numeric":
        values = pd.to_numeric(frame[field_name], errors="coerce").to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if high <= low:
            high = low + 1e-9
        return ColourSpec(field_name, kind, low=low, high=high)
    present = [str(v) for v in pd.unique(frame[field_name])]
    if field_name in ("label", "prediction"):
        mapping = label_colours([*frame["label"].unique(), *frame["prediction"].unique()])
        factors = sorted(present, key=lambda v: (v == NONE, v))
    elif field_name in FIXED:
        mapping = dict(FIXED[field_name])
        order = list(mapping)
        factors = sorted(present, key=lambda v: (order.index(v) if v in order else len(order), v))
        extra = [v for v in factors if v not in mapping]
        mapping.update({v: _DISTINCT[i % len(_DISTINCT)] for i, v in enumerate(extra)})
    else:  # cluster ids: noise grey, the rest distinct
        factors = sorted(present, key=lambda v: (v == NOISE, v == NONE, int(v) if v.lstrip("-").isdigit() else 0, v))
        real = [v for v in factors if v not in (NOISE, NONE)]
        mapping = {v: _DISTINCT[i % len(_DISTINCT)] for i, v in enumerate(real)}
        mapping.update({NOISE: GREY, NONE: GREY})
    return ColourSpec(field_name, kind, factors=factors, colours=[mapping[f] for f in factors])
