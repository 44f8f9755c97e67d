"""Pieces several views share: point tables, a point's evidence card, a legend, escaping."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
import panel as pn
import param
from param.parameters import NoNone

from dashboard.colours import NONE

POINT_COLUMNS = ["id", "text", "label", "prediction", "confidence", "split", "cluster", "triage",
                 "mislabel_score"]
MAX_TABLE_ROWS = 2_000  # a lasso over 100k points must not ship 100k rows to the browser

StateT = TypeVar("StateT", bound=param.Parameterized)


def state_param(cls: type[StateT]) -> param.ClassSelector[StateT]:
    """A view's state: every view is built with one, so it is typed as never None.

    param types `ClassSelector(class_=X)` as `X | None` (its default is None); `allow_None=NoNone` is param's
    way to say "typed as X", and changes nothing at run time.
    """
    return param.ClassSelector(class_=cls, allow_None=NoNone)


class RunPoller:
    """Calls `poll` every `period_ms` while `running()` holds, as a periodic callback of this session: started
    after a run is submitted, it stops itself once the run has ended."""

    def __init__(self, poll: Callable[[], object], running: Callable[[], bool], period_ms: int = 1000):
        self.poll, self.running, self.period_ms = poll, running, period_ms
        self._callback: Any = None

    @property
    def active(self) -> bool:
        """Whether the periodic callback is installed (a run is being followed)."""
        return self._callback is not None

    def start(self) -> None:
        if self._callback is None and self.running():
            self._callback = pn.state.add_periodic_callback(self.tick, period=self.period_ms)

    def tick(self) -> None:
        """One poll; the callback removes itself once the run has ended."""
        self.poll()
        if not self.running() and self._callback is not None:
            self._callback.stop()
            self._callback = None


def esc(value: Any) -> str:
    """HTML-escape a value (None as empty)."""
    return html.escape("" if value is None else str(value))


def fmt(value: Any, digits: int = 2) -> str:
    """A number for display, a dash for missing."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return esc(value)


def points_table(height: int = 320, **kwargs: Any) -> pn.widgets.Tabulator:
    """A read-only, paginated table of points."""
    return pn.widgets.Tabulator(
        pd.DataFrame(columns=POINT_COLUMNS), disabled=True, show_index=False, pagination="local",
        page_size=10, layout="fit_data_table", sizing_mode="stretch_width", height=height,
        formatters={"confidence": {"type": "money", "precision": 2},
                    "mislabel_score": {"type": "money", "precision": 2}},
        widths={"text": 340}, **kwargs,
    )


def table_rows(frame: pd.DataFrame | None, columns: list[str] = POINT_COLUMNS) -> tuple[pd.DataFrame, str]:
    """The first MAX_TABLE_ROWS rows of the columns that exist, and a note when rows were left out."""
    if frame is None or frame.empty:
        return pd.DataFrame(columns=columns), ""
    shown = frame[[c for c in columns if c in frame]].head(MAX_TABLE_ROWS).reset_index(drop=True)
    note = f"showing the first {MAX_TABLE_ROWS:,} of {len(frame):,}" if len(frame) > MAX_TABLE_ROWS else ""
    return shown, note


def legend_html(entries: list[tuple[str, str]], title: str) -> str:
    """Colour swatches with their values, as HTML."""
    items = "".join(
        f'<div style="display:flex;align-items:center;gap:6px;margin:2px 0">'
        f'<span style="display:inline-block;width:12px;height:12px;border-radius:6px;background:{c}"></span>'
        f"<span>{esc(t)}</span></div>"
        for c, t in entries
    )
    return f'<div style="font-size:12px"><div style="font-weight:600;margin-bottom:4px">{esc(title)}</div>{items}</div>'


def evidence_html(point: dict[str, Any] | None) -> str:
    """A point's text, label, prediction, triage, reasons and model probabilities."""
    if not point:
        return '<div style="color:#777">Click a point on the map to see it and its neighbours.</div>'
    label = point.get("label")
    label_html = esc(label) if label not in (None, NONE) else "<i>unlabelled</i>"
    rows = [
        f'<div style="font-size:15px;font-weight:600;margin-bottom:6px">{esc(point.get("text"))}</div>',
        f"<div>label <b>{label_html}</b> &middot; prediction <b>{esc(point.get('prediction'))}</b> "
        f"({fmt(point.get('confidence'))}) &middot; {esc(point.get('split'))}</div>",
    ]
    if point.get("original_label") and point.get("original_label") != label:
        rows.append(f"<div>originally <b>{esc(point['original_label'])}</b> &middot; "
                    f"{esc(point.get('review_status'))}</div>")
    extra = [f"triage <b>{esc(point['triage'])}</b>" if point.get("triage") else "",
             f"mislabel score {fmt(point.get('mislabel_score'))}" if point.get("mislabel_score") is not None else "",
             f"suggested <b>{esc(point['suggested_label'])}</b>" if point.get("suggested_label") else "",
             f"cluster {esc(point['cluster'])}" if point.get("cluster") is not None else ""]
    if any(extra):
        rows.append("<div>" + " &middot; ".join(e for e in extra if e) + "</div>")
    reasons = point.get("reasons") or []
    if reasons:
        rows.append("<ul style='margin:4px 0 4px 18px;padding:0'>" +
                    "".join(f"<li>{esc(r)}</li>" for r in reasons) + "</ul>")
    n_best = point.get("n_best") or []
    if n_best:
        bars = "".join(
            f'<div style="display:flex;align-items:center;gap:6px;font-size:12px">'
            f'<span style="width:140px;overflow:hidden;text-overflow:ellipsis">{esc(b.get("label"))}</span>'
            f'<span style="display:inline-block;height:10px;width:{_bar(b.get("probability"))}px;'
            f'background:#4c78a8"></span><span>{fmt(b.get("probability"))}</span></div>'
            for b in n_best[:5]
        )
        rows.append(f"<div style='margin-top:4px'><div style='color:#666;font-size:12px'>model probabilities"
                    f"</div>{bars}</div>")
    return "".join(rows)


def _bar(probability: Any, width: int = 160) -> int:
    return max(1, int(width * float(probability or 0)))


def neighbours_frame(point: dict[str, Any] | None) -> pd.DataFrame:
    """A point's neighbours as a table."""
    columns = ["id", "similarity", "text", "label", "prediction"]
    neighbours = (point or {}).get("neighbours") or []
    return pd.DataFrame([{c: n.get(c) for c in columns} for n in neighbours], columns=columns)
