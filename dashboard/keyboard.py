"""Keyboard shortcuts: a tiny JS component that forwards key presses (outside text inputs) to Python."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import param
from panel.custom import JSComponent

log = logging.getLogger(__name__)


class KeyboardShortcuts(JSComponent):
    """Calls `on_key(key)` for each key pressed on the page, unless the focus is in a text field."""

    last_key = param.String(default="", doc="the last key forwarded (for tests and debugging)")

    # composedPath()[0] is the real target even inside Panel's shadow roots, so typing in a search box or a
    # select never fires a shortcut.
    _esm = """
    export function render({ model }) {
      const handler = (event) => {
        if (event.ctrlKey || event.metaKey || event.altKey) { return }
        const target = event.composedPath()[0] || event.target
        const tag = ((target && target.tagName) || "").toLowerCase()
        if (tag === "input" || tag === "textarea" || tag === "select" || (target && target.isContentEditable)) {
          return
        }
        model.send_msg({ key: event.key })
      }
      document.addEventListener("keydown", handler)
      model.on("remove", () => document.removeEventListener("keydown", handler))
      const el = document.createElement("span")
      el.className = "dd-shortcuts"
      return el
    }
    """

    def __init__(self, on_key: Callable[[str], Any] | None = None, **params: Any):
        super().__init__(**params)
        self._on_key = on_key

    def _handle_msg(self, data: Any) -> None:
        key = str((data or {}).get("key", ""))
        self.last_key = key
        if key and self._on_key is not None:
            self._on_key(key)
