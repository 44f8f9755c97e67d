"""The Point tab: the clicked point's evidence and nearest neighbours; a click on the map brings it forward."""

from __future__ import annotations

import panel as pn

from dashboard.state import DashboardState
from dashboard.tabs.base import Page, Tab


class PointTab(Tab):
    """The map view's point panel; shown when the map's focus moves (a click, a table row, a search hit)."""

    title = "Point"

    def __init__(self, state: DashboardState, page: Page) -> None:
        self.view = page.map.point_panel()
        state.map.param.watch(lambda e: page.show(self.title) if e.new else None, "focus_key")

    def panel(self) -> pn.viewable.Viewable:
        """The point's evidence and neighbours."""
        return self.view


TAB = PointTab
