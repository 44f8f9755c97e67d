"""The improvement loop in the dashboard: label changes since the newest version, a Retrain action with its
progress, the gate's verdict in a few words, and every version with how it came to be."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd
import param

from dashboard.client import ApiClient
from dashboard.state.map import MapState
from service.errors import DataDebuggerError

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["version", "created_at", "labelled", "reviews_added", "accuracy", "accuracy_ci", "macro_f1",
                   "macro_f1_ci", "trigger", "verdict", "serving", "why"]
ACTIVE = ("queued", "running")


def _ci(value: Any) -> str:
    return f"{value[0]:.3f}–{value[1]:.3f}" if isinstance(value, list | tuple) and len(value) == 2 else ""


def history_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per version, newest first: headline figures with intervals, trigger, verdict and reasons."""
    out = []
    for row in rows:
        retrain = row.get("retrain") or {}
        if not retrain:
            verdict = "trained"
        elif retrain.get("dry_run"):
            verdict = "what-if"
        else:
            verdict = "promoted" if retrain.get("promoted") else "refused"
        out.append({"version": row["version"], "created_at": str(row.get("created_at", ""))[:19].replace("T", " "),
                    "labelled": row.get("labelled"), "reviews_added": row.get("reviewed_added"),
                    "accuracy": row.get("accuracy"),
                    "accuracy_ci": _ci(row.get("accuracy_ci")), "macro_f1": row.get("macro_f1"),
                    "macro_f1_ci": _ci(row.get("macro_f1_ci")), "trigger": retrain.get("trigger", ""),
                    "verdict": verdict, "serving": "yes" if row.get("production") else "",
                    "why": "; ".join(retrain.get("reasons") or [])})
    return pd.DataFrame(out, columns=HISTORY_COLUMNS)


class LoopState(param.Parameterized):
    """The dataset's loop: where the labels stand against the champion, and the retrain in flight."""

    champion = param.String(default=None, allow_None=True)
    newest = param.String(default=None, allow_None=True)
    changes = param.Integer(default=0, doc="label changes since the newest version's data")
    retrain_after = param.Integer(default=0, doc="the service retrains by itself at this many (0: never)")
    run = param.Dict(default=None, allow_None=True, doc="the retrain queued, running or just finished")
    verdict = param.String(default="", doc="the last retrain's outcome in a few lines")
    evaluation = param.String(default="", doc="the champion on the labels as ingested and as reviewed")
    history = param.DataFrame(default=None, allow_None=True)
    message = param.String(default="")

    def __init__(self, client: ApiClient, map_state: MapState, on_done: Callable[[], None] | None = None,
                 **params: Any):
        super().__init__(**params)
        self.client = client
        self.map = map_state
        self.on_done = on_done

    @property
    def running(self) -> bool:
        return bool(self.run and self.run.get("status") in ACTIVE)

    def load(self) -> LoopState:
        """Fetch the loop's state and history."""
        try:
            loop = self.client.loop(self.map.dataset)
        except DataDebuggerError as exc:
            self.message = f"loop: {exc}"
            return self
        with param.parameterized.batch_call_watchers(self):
            self.champion, self.newest = loop.get("champion"), loop.get("newest")
            self.changes, self.retrain_after = int(loop.get("changes_since") or 0), int(loop.get("retrain_after") or 0)
            if loop.get("active_run") and not self.running:
                self.run = loop["active_run"]
            self.history = history_table(loop.get("history") or [])
            self.message = ""
        self.evaluation = self._evaluation()
        return self

    def _evaluation(self) -> str:
        """The champion's test (else validation) figures on the ingested and the reviewed labels."""
        if self.champion is None:
            return ""
        try:
            report = self.client.get(f"/api/datasets/{self.map.dataset}/models/{self.champion}/evaluation")
        except DataDebuggerError as exc:
            return f"evaluation: {exc}"
        splits = report.get("splits") or {}
        split = "testing" if "testing" in splits else next(iter(splits), None)
        if split is None:
            return ""
        s = splits[split]
        return (f"{self.champion} on {split} (n={s['n']}): accuracy {s['as_ingested']['accuracy']:.3f} on the labels "
                f"as ingested, {s['as_reviewed']['accuracy']:.3f} as reviewed ({s['corrected']} corrected). "
                f"{s['note']}.")

    def headline(self) -> str:
        """'N changes since vX' in words."""
        if self.champion is None:
            return "No model version yet: train one first."
        since = self.newest or self.champion
        auto = (f"; the service retrains by itself at {self.retrain_after}" if self.retrain_after
                else "; automatic retraining is off")
        return f"{self.changes} label change{'s' if self.changes != 1 else ''} since {since}{auto}."

    def retrain(self, force: bool = False) -> None:
        """Queue a retrain (forced when no label changed, so the click is never a no-op)."""
        if self.running:
            return
        try:
            options = {"force": True} if force or self.changes == 0 else {}
            self.run = self.client.start_run(self.map.dataset, "retrain", options)
            self.verdict = ""
        except DataDebuggerError as exc:
            self.message = f"retrain: {exc}"

    def poll(self) -> None:
        """Refresh the run in flight; when it ends, say what the gate decided and reload what changed."""
        if self.run is None or not self.running:
            return
        try:
            run = self.client.run(self.run["id"])
        except DataDebuggerError as exc:
            self.message = f"retrain: {exc}"
            return
        self.run = run
        if run["status"] in ACTIVE:
            return
        self.verdict = describe(run)
        self.load()
        if self.on_done is not None:
            self.on_done()

    def progress(self) -> str:
        if not self.run:
            return ""
        stage = (self.run.get("progress") or {}).get("stage") or self.run.get("status")
        return f"retrain {self.run.get('status')}: {stage}" if self.running else ""


def describe(run: dict[str, Any]) -> str:
    """A finished retrain in a few lines: promoted or not, why, what improved and what got worse."""
    if run.get("status") != "succeeded":
        return f"Retrain failed: {(run.get('error') or {}).get('message', 'unknown error')}"
    result = run.get("result") or {}
    if result.get("status") == "unchanged":
        return result.get("message", "nothing to retrain")
    status = str(result.get("status"))
    head = {"promoted": "Promoted", "refused": "Refused", "what-if": "What-if (not promoted)"}.get(status, status)
    verdict = result.get("verdict") or {}
    lines = [f"{head}: {result.get('challenger')} vs {result.get('champion') or 'no champion'}. "
             + "; ".join(verdict.get("reasons") or [])]
    if verdict.get("improved"):
        lines.append("Better: " + "; ".join(verdict["improved"][:6]))
    if verdict.get("worse"):
        lines.append("Worse: " + "; ".join(verdict["worse"][:6]))
    return "\n".join(lines)
