"""The tab contract: a tab beside the map names itself and builds its view from the session's state and page."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Protocol

import panel as pn
from panel.viewable import Viewer

if TYPE_CHECKING:
    from dashboard.state import DashboardState
    from dashboard.views.map import MapView


class Page(Protocol):
    """What a tab may use of the page it sits in (the Dashboard): the map's view, and switching tabs."""

    map: MapView

    def show(self, title: str) -> None:
        """Bring the tab named `title` forward (unless the one showing holds the focus)."""

    def showing(self, title: str) -> bool:
        """Whether the tab named `title` is the one showing."""


class Tab(ABC):
    """One tab: `title` is its label, `__init__` builds its view and wires when it brings itself forward."""

    title: ClassVar[str]
    # While a tab that holds the focus shows, other tabs asking to be shown stay behind: the review queue moves
    # the map's focus itself, and jumping to the Point tab on every item would lose the reviewer's place.
    holds_focus: ClassVar[bool] = False

    @abstractmethod
    def __init__(self, state: DashboardState, page: Page) -> None:
        """Build the tab's view on the session's state."""

    @abstractmethod
    def panel(self) -> pn.viewable.Viewable | Viewer:
        """What the tab shows."""

    def sidebar(self) -> pn.viewable.Viewable | None:
        """What the tab adds to the sidebar, under the dataset picker (most tabs add nothing)."""
        return None

    def on_key(self, pressed: str) -> None:
        """A keyboard shortcut pressed while this tab shows (most tabs have none)."""
        return None

    def on_shown(self, shown: bool) -> None:
        """The tabs switched: `shown` says whether this one is showing now."""
        return None
