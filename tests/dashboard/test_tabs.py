"""Adding a dashboard tab is one file plus one registration line: a throw-away tab defined in this file alone and
named in `dashboard.tabs.MODULES` appears in the built page, in order, with its sidebar part, its keys and its
own "show me" wiring; the stock tabs keep their order, and Review keeps the focus."""

from __future__ import annotations

import panel as pn
import pytest

import dashboard.tabs as tabs
from dashboard.app import Dashboard
from dashboard.client import ApiClient
from dashboard.state import DashboardState
from dashboard.tabs.base import Page, Tab
from tests.dashboard.conftest import DATASET, N_POINTS

STOCK = ["Point", "Selection", "Clusters", "Review", "Labelling queue", "Models", "Search"]


class NotesTab(Tab):
    """A throw-away tab: the map's point count, a sidebar note, the keys it gets; a colour change brings it up."""

    title = "Notes"

    def __init__(self, state: DashboardState, page: Page) -> None:
        self.keys: list[str] = []
        self.view = pn.pane.HTML("no map yet")
        self.note = pn.pane.HTML("notes")
        state.map.param.watch(lambda e: setattr(self.view, "object", f"{state.map.size:,} points"), "frame")
        state.map.param.watch(lambda e: page.show(self.title), "colour_by")

    def panel(self) -> pn.viewable.Viewable:
        return self.view

    def sidebar(self) -> pn.viewable.Viewable:
        return self.note

    def on_key(self, pressed: str) -> None:
        self.keys.append(pressed)


TAB = NotesTab


def titles(dashboard: Dashboard) -> list[str]:
    """The tab titles as the browser gets them: the Bokeh model's panels."""
    return [panel.title for panel in dashboard.tabs.get_root().tabs]


def test_the_stock_tabs_come_in_their_order(client: ApiClient):
    assert titles(Dashboard(client, dataset=DATASET)) == STOCK


def test_a_throwaway_tab_is_one_file_and_one_line(client: ApiClient, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(tabs, "MODULES", (*tabs.MODULES, __name__))  # the one registration line
    dashboard = Dashboard(client, dataset=DATASET)
    notes = dashboard.tab("Notes")
    assert isinstance(notes, NotesTab) and titles(dashboard) == [*STOCK, "Notes"]
    assert notes.view.object == f"{N_POINTS:,} points"  # built before the dataset opened, and wired to it
    assert any(obj is notes.note for obj in dashboard.page().sidebar)

    # Its own wiring brings it forward; keys go to the tab that shows.
    dashboard.state.map.colour_by = "prediction"
    assert dashboard.showing("Notes")
    dashboard.shortcuts._handle_msg({"key": "n"})
    dashboard.tabs.active = STOCK.index("Clusters")
    dashboard.shortcuts._handle_msg({"key": "k"})
    assert notes.keys == ["n"]

    # A tab asking to show waits behind Review, which moves the map's focus itself.
    dashboard.tabs.active = STOCK.index("Review")
    assert dashboard.state.review.follow
    dashboard.state.map.colour_by = "label"
    assert dashboard.showing("Review")
    dashboard.show("Notes")
    assert dashboard.showing("Review")
    dashboard.tabs.active = STOCK.index("Point")
    assert not dashboard.state.review.follow
    dashboard.show("Notes")
    assert dashboard.showing("Notes")


def test_a_tab_module_without_a_tab_or_with_a_taken_title_is_refused(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(tabs, "MODULES", (".point", "dashboard.tabs.base"))
    with pytest.raises(TypeError, match="dashboard.tabs.base must define TAB"):
        tabs.registered()
    monkeypatch.setattr(tabs, "MODULES", (".point", ".search", ".point"))
    with pytest.raises(ValueError, match="share a title"):
        tabs.registered()
