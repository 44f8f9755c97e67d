"""The Labelling queue tab: what to label next, its preview, downloads and Label Studio."""

from __future__ import annotations

import panel as pn
from panel.viewable import Viewer

from dashboard.state import DashboardState
from dashboard.tabs.base import Page, Tab
from dashboard.views.queue import QueueView


class QueueTab(Tab):
    """The labelling-queue view."""

    title = "Labelling queue"

    def __init__(self, state: DashboardState, page: Page) -> None:
        self.view = QueueView(state.queue)

    def panel(self) -> pn.viewable.Viewable | Viewer:
        """Strategy, budget, preview and downloads."""
        return self.view


TAB = QueueTab
