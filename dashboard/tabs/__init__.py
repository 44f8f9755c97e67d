"""The tabs beside the map, in the order they appear. A new tab is one module here defining `TAB` (a `Tab`
subclass, see base.py), named once below."""

from __future__ import annotations

import importlib

from dashboard.tabs.base import Page, Tab

# One line per tab module, in tab order. A leading dot names a module of this package; a tab defined elsewhere
# is named in full.
MODULES = (".point", ".selection", ".clusters", ".review", ".queue", ".models", ".search")


def registered() -> list[type[Tab]]:
    """The `TAB` of each module in MODULES, in order."""
    tabs = []
    for name in MODULES:
        module = importlib.import_module(name, package=__name__)
        tab = getattr(module, "TAB", None)
        if not (isinstance(tab, type) and issubclass(tab, Tab)):
            raise TypeError(f"dashboard tab module {module.__name__} must define TAB, a Tab subclass; it has "
                            f"{tab!r}")
        tabs.append(tab)
    titles = [t.title for t in tabs]
    if len(set(titles)) != len(titles):
        raise ValueError(f"two dashboard tabs share a title: {titles}")
    return tabs


__all__ = ["MODULES", "Page", "Tab", "registered"]
