"""The review queue: label issues (or suggestions for unlabelled points) one at a time, acted on via the API."""

from __future__ import annotations

import logging
from typing import Any

import param

from dashboard.client import ApiClient
from dashboard.state.map import FILTER_FIELDS, MapState, key
from service.errors import Conflict, DataDebuggerError

log = logging.getLogger(__name__)

MODES = ("issues", "suggestions")


def flatten(item: dict[str, Any]) -> dict[str, Any]:
    """An API item as one flat dict: payload fields and the item's own fields (id, score, neighbours)."""
    flat = dict(item.get("payload") or {})
    flat.update({k: v for k, v in item.items() if k != "payload"})
    if "id" not in flat and "record_id" in flat:
        flat["id"] = flat["record_id"]
    if "neighbours" not in flat and "neighbors" in flat:
        flat["neighbours"] = flat.pop("neighbors")
    return flat


def _change_id(answer: dict[str, Any]) -> Any:
    for name in ("change_id", "change"):
        value = answer.get(name)
        if isinstance(value, dict):
            value = value.get("id", value.get("change_id"))
        if value is not None:
            return value
    return None


class ReviewState(param.Parameterized):
    """One item at a time: accept the suggestion, choose a label, keep, mark ambiguous, skip, undo."""

    mode: param.Selector[str] = param.Selector(objects=list(MODES), default="issues")
    items = param.List(default=[], doc="the ranked items that pass the map's filters, flattened")
    total = param.Integer(default=0, doc="how many items the API ranks in this mode (the first `limit` are loaded)")
    position = param.Integer(default=0, bounds=(0, None))
    current = param.Dict(default=None, allow_None=True, doc="the item under review with its evidence")
    done = param.Dict(default={}, doc="key -> the action taken on it in this session")
    history = param.List(default=[], doc="actions that can be undone, newest last")
    labels = param.List(default=[], doc="every class, for 'choose label'")
    choice = param.String(default=None, allow_None=True, doc="the label 'choose label' applies")
    user = param.String(default="dashboard")
    follow = param.Boolean(default=False, doc="show the item under review on the map (while its tab is open)")
    message = param.String(default="")

    def __init__(self, client: ApiClient, map_state: MapState, limit: int = 500, **params: Any):
        super().__init__(**params)
        self.client = client
        self.map = map_state
        self.limit = limit
        self._all: dict[str, list[dict[str, Any]]] = {}
        self.param.watch(lambda *_: self.load(), "mode")
        self.param.watch(lambda e: self.go(self.position) if e.new else None, "follow")
        self.map.param.watch(lambda *_: self._apply_filters(), list(FILTER_FIELDS))

    # -- loading -------------------------------------------------------------------------------------

    def load(self) -> ReviewState:
        """Fetch the ranked items of the current mode (issues or suggestions)."""
        fetch = self.client.issues if self.mode == "issues" else self.client.suggestions
        try:
            self._all[self.mode] = [flatten(i) for i in fetch(self.map.dataset, limit=self.limit)]
            loaded = len(self._all[self.mode])
            # Only the `limit` highest-ranked are loaded; the page says so when the API holds more.
            self.total = loaded if loaded < self.limit else self.client.list_count(
                f"/api/datasets/{self.map.dataset}/{self.mode}")
            self.message = ""
        except DataDebuggerError as exc:
            self._all[self.mode] = []
            self.total = 0
            self.message = f"no {self.mode}: {exc}"
        if self.map.frame is not None:
            self.labels = sorted(v for v in self.map.options("label") if v != "(none)")
        self._apply_filters()
        return self

    @property
    def loaded(self) -> int:
        """How many of the mode's ranked items were fetched (before the map's filters)."""
        return len(self._all.get(self.mode, []))

    def _apply_filters(self) -> None:
        items = [i for i in self._all.get(self.mode, []) if self.map.passes(i.get("id"))]
        self.items = items
        self.go(0)

    # -- navigation ----------------------------------------------------------------------------------

    def go(self, position: int) -> None:
        """Show the item at `position` with its evidence (payload, neighbours, probabilities)."""
        if not self.items:
            self.param.update(position=0, current=None)
            return
        position = max(0, min(position, len(self.items) - 1))
        item = self.items[position]
        try:
            raw = self.client.point(self.map.dataset, item["id"])
        except DataDebuggerError as exc:
            raw = {}
            self.message = f"evidence for {item['id']} unavailable: {exc}"
        current = {**item, **flatten(raw)}
        suggested = current.get("suggested_label")
        self.param.update(position=position, current=current,
                          choice=suggested if suggested in self.labels else self.choice)
        if self.follow and raw and self.map.row(item["id"]) is not None:  # the item and its neighbours
            self.map.param.update(focus_key=key(item["id"]), focus=raw)

    def next(self) -> None:
        """The next item not yet acted on (wrapping), or stay when all are done."""
        n = len(self.items)
        for step in range(1, n + 1):
            candidate = (self.position + step) % n
            if key(self.items[candidate]["id"]) not in self.done:
                self.go(candidate)
                return
        self.message = f"all {n} {self.mode} reviewed"

    def skip(self) -> None:
        """Leave this item as it is for now."""
        if self.items:
            self.go((self.position + 1) % len(self.items))

    def back(self) -> None:
        """The previous item."""
        if self.items:
            self.go((self.position - 1) % len(self.items))

    # -- actions -------------------------------------------------------------------------------------

    def accept(self) -> None:
        """Take the suggested label."""
        suggested = (self.current or {}).get("suggested_label")
        if not suggested:
            self.message = "this item has no suggested label; choose one"
            return
        self._act("accept", suggested, "accepted the suggestion")

    def relabel(self, label: str | None = None) -> None:
        """Give the item `label` (default: the chosen one)."""
        label = label or self.choice
        if not label:
            self.message = "choose a label first"
            return
        self._act("relabel", label, f"relabelled as {label}")

    def keep(self) -> None:
        """The current label is right: mark reviewed."""
        self._act("reviewed", None, "kept the label")

    def ambiguous(self) -> None:
        """Mark the item ambiguous: neither label fits."""
        self._act("ambiguous", None, "marked ambiguous")

    def _act(self, action: str, label: str | None, reason: str) -> None:
        item = self.current
        if not item:
            self.message = f"nothing to review in {self.mode}"
            return
        old = item.get("label")
        try:
            answer = self.client.label(self.map.dataset, item["id"], action, label=label, reason=reason,
                                       user=self.user, revision=item.get("revision"))
        except Conflict as exc:
            self.message = f"point {item['id']} changed meanwhile; reloaded it. ({exc})"
            self.go(self.position)
            return
        except DataDebuggerError as exc:
            self.message = str(exc)
            return
        point = flatten(answer.get("point", answer)) if isinstance(answer, dict) else {}
        point.setdefault("id", item["id"])
        self.map.apply_point(point)
        entry = {"id": item["id"], "action": action, "old": old, "new": point.get("label", label),
                 "change_id": _change_id(answer) if isinstance(answer, dict) else None,
                 "position": self.position}
        self.param.update(history=[*self.history, entry], done={**self.done, key(item["id"]): action},
                          message=f"{item['id']}: {reason}")
        self.next()

    def undo(self) -> None:
        """Undo the newest action of this session through the API (which appends an inverse change)."""
        if not self.history:
            self.message = "nothing to undo"
            return
        entry = self.history[-1]
        change_id = entry["change_id"] or self._latest_change(entry["id"])
        try:
            if change_id is None:
                raise DataDebuggerError(f"the API did not say which change relabelled {entry['id']}")
            self.client.undo(self.map.dataset, change_id)
            point = flatten(self.client.point(self.map.dataset, entry["id"]))
        except DataDebuggerError as exc:
            self.message = f"undo failed: {exc}"
            return
        point.setdefault("id", entry["id"])
        self.map.apply_point(point)
        done = dict(self.done)
        done.pop(key(entry["id"]), None)
        self.param.update(history=self.history[:-1], done=done, message=f"{entry['id']}: undid {entry['action']}")
        positions = [i for i, it in enumerate(self.items) if key(it["id"]) == key(entry["id"])]
        if positions:
            self.go(positions[0])

    def _latest_change(self, point_id: Any) -> Any:
        """The newest logged change of a point (when a relabel's answer did not carry its change id)."""
        try:
            changes = self.client.get_list(f"/api/datasets/{self.map.dataset}/changes", limit=1,
                                           point=str(point_id))
        except DataDebuggerError:
            return None
        return changes[0].get("change_id") if changes else None
