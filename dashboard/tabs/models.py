"""The Models tab: the improvement loop's card above two model versions side by side."""

from __future__ import annotations

import panel as pn
from panel.viewable import Viewer

from dashboard.state import DashboardState
from dashboard.tabs.base import Page, Tab
from dashboard.views.loop import LoopView
from dashboard.views.models import ModelsView


class ModelsTab(Tab):
    """The models view with the loop's card (Retrain, verdict, history) on top."""

    title = "Models"

    def __init__(self, state: DashboardState, page: Page) -> None:
        self.view = ModelsView(state.models, loop=LoopView(state.loop))

    def panel(self) -> pn.viewable.Viewable | Viewer:
        """The loop's card, the versions' figures and plots."""
        return self.view


TAB = ModelsTab
