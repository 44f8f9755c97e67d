"""The Search tab: the nearest points to a text; its box sits in the sidebar, and results bring it forward."""

from __future__ import annotations

import panel as pn
from panel.viewable import Viewer

from dashboard.state import DashboardState
from dashboard.tabs.base import Page, Tab
from dashboard.views.search import SearchView


class SearchTab(Tab):
    """The hits table; a hit clicked focuses the map on it."""

    title = "Search"

    def __init__(self, state: DashboardState, page: Page) -> None:
        self.view = SearchView(state.search, on_pick=state.map.focus_on)
        state.search.param.watch(lambda e: page.show(self.title) if e.new is not None else None, "hits")

    def panel(self) -> pn.viewable.Viewable | Viewer:
        """The hits."""
        return self.view

    def sidebar(self) -> pn.viewable.Viewable:
        """The search box and its button."""
        return self.view.box_row()


TAB = SearchTab
