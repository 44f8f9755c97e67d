"""The Selection tab: the box/lasso selection as a table; a confusion cell's points bring it forward."""

from __future__ import annotations

import panel as pn

from dashboard.state import DashboardState
from dashboard.tabs.base import Page, Tab


class SelectionTab(Tab):
    """The map view's selection panel; shown when the Models tab selects a confusion cell's points."""

    title = "Selection"

    def __init__(self, state: DashboardState, page: Page) -> None:
        self.view = page.map.selection_panel()
        state.models.param.watch(lambda e: page.show(self.title) if e.new else None, "cell")

    def panel(self) -> pn.viewable.Viewable:
        """The selected points."""
        return self.view


TAB = SelectionTab
