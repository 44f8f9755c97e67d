"""The Review tab: the review queue, one item at a time, with keyboard shortcuts while it shows."""

from __future__ import annotations

import panel as pn
from panel.viewable import Viewer

from dashboard.state import DashboardState
from dashboard.tabs.base import Page, Tab
from dashboard.views.review import ReviewView


class ReviewTab(Tab):
    """The review view; while it shows, the map follows the current item and keys act on it."""

    title = "Review"
    holds_focus = True

    def __init__(self, state: DashboardState, page: Page) -> None:
        self.state = state
        self.view = ReviewView(state.review, active=lambda: page.showing(self.title))

    def panel(self) -> pn.viewable.Viewable | Viewer:
        """The current item, its actions and the queue."""
        return self.view

    def on_key(self, pressed: str) -> None:
        """A review shortcut (accept, keep, relabel, skip, ...)."""
        self.view.on_key(pressed)

    def on_shown(self, shown: bool) -> None:
        """The map's focus follows the review queue only while this tab shows."""
        self.state.review.follow = shown


TAB = ReviewTab
