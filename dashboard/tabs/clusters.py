"""The Clusters tab: clusters by error rate; a picked row is ringed on the map."""

from __future__ import annotations

import panel as pn
from panel.viewable import Viewer

from dashboard.state import DashboardState
from dashboard.tabs.base import Page, Tab
from dashboard.views.clusters import ClustersView


class ClustersTab(Tab):
    """The clusters view."""

    title = "Clusters"

    def __init__(self, state: DashboardState, page: Page) -> None:
        self.view = ClustersView(state.clusters)

    def panel(self) -> pn.viewable.Viewable | Viewer:
        """The clusters table and the picked cluster."""
        return self.view


TAB = ClustersTab
