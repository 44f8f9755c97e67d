"""The dashboard's assembly: one state and one page per browser session, served by a Panel server."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import panel as pn

from dashboard.cache import MapCache
from dashboard.client import ApiClient
from dashboard.graphics import Backend, GraphicsProbe, backend_from_cookies
from dashboard.keyboard import KeyboardShortcuts
from dashboard.state import DashboardState
from dashboard.tabs import Tab, registered
from dashboard.views.common import esc
from dashboard.views.map import MapView
from service.errors import DataDebuggerError

log = logging.getLogger(__name__)

# The initial document of a 100k-point map is tens of MB; Bokeh's default websocket limit is 20 MB.
WEBSOCKET_MAX_BYTES = 512 * 1024 * 1024


class Dashboard:
    """The page of one session: the state, the map, the tabs beside it (dashboard/tabs), and the layout."""

    def __init__(self, client: ApiClient, dataset: str | None = None, defer_rest: bool = False,
                 cache: MapCache | None = None, backend: Backend = "webgl"):
        self.state = DashboardState(client, defer_rest=defer_rest, cache=cache)
        s = self.state
        self.map = MapView(s.map, defer_texts=defer_rest, backend=backend)
        self.probe = GraphicsProbe(width=0, height=0, margin=0)
        # dynamic: a tab's plots are built when it is first shown, so the first page carries the map only.
        self.tabs = pn.Tabs(dynamic=True, sizing_mode="stretch_both", css_classes=["dd-tabs"])
        self.tab_list: list[Tab] = [cls(s, self) for cls in registered()]
        self.shortcuts = KeyboardShortcuts(on_key=self._on_key, width=0, height=0, margin=0)
        self.dataset = pn.widgets.Select(label="Dataset", options=[], sizing_mode="stretch_width")
        self.message = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["dd-message"])
        self.tabs.extend([(tab.title, tab.panel()) for tab in self.tab_list])
        self._wire()
        start = time.perf_counter()
        s.start(dataset)
        log.info("dashboard session ready in %.2f s (%d points)", time.perf_counter() - start, s.map.size)

    def _wire(self) -> None:
        s = self.state
        self.dataset.param.watch(lambda e: setattr(s, "dataset", e.new) if e.new else None, "value")
        s.param.watch(self._on_datasets, "dataset")
        s.param.watch(lambda e: setattr(self.message, "object", self._message(e.new)), "message")
        s.map.param.watch(lambda e: setattr(self.message, "object", self._message(e.new)), "message")
        self.tabs.param.watch(self._on_active, "active")

    def tab(self, title: str) -> Tab:
        """The tab named `title`."""
        for tab in self.tab_list:
            if tab.title == title:
                return tab
        raise KeyError(f"no dashboard tab is titled {title!r}; the tabs: {[t.title for t in self.tab_list]}")

    def showing(self, title: str) -> bool:
        """Whether the tab named `title` is the one showing."""
        return self.tab_list[self.tabs.active].title == title

    def show(self, title: str) -> None:
        """Bring the tab named `title` forward, unless the one showing holds the focus (Review)."""
        if not self.tab_list[self.tabs.active].holds_focus:
            self.tabs.active = self.tab_list.index(self.tab(title))

    def _on_active(self, event: Any) -> None:
        for i, tab in enumerate(self.tab_list):
            tab.on_shown(i == event.new)

    def _on_key(self, pressed: str) -> None:
        """Keyboard shortcuts go to the tab that shows."""
        self.tab_list[self.tabs.active].on_key(pressed)

    def load_rest(self) -> None:
        """Once the page shows the map: hover texts, then clusters, review, models."""
        if self.state.map.frame is None:  # the map did not load; its message says why
            return
        start = time.perf_counter()
        self.map.send_texts()
        self.state.load_rest()
        self._on_datasets()  # a page that named its dataset has just listed the others
        log.info("dashboard views loaded in %.2f s", time.perf_counter() - start)

    def _on_datasets(self, _event: Any = None) -> None:
        self.dataset.options = list(self.state.param.dataset.objects)
        if self.dataset.value != self.state.dataset:
            self.dataset.value = self.state.dataset

    @staticmethod
    def _message(text: str) -> str:
        return f"<div style='color:#b00020;font-size:13px'>{esc(text)}</div>" if text else ""

    def page(self) -> pn.template.BaseTemplate:
        """The page: sidebar (dataset, what tabs add: the search box; colour, filters), the map, the tabs."""
        self._on_datasets()
        extras = [view for view in (tab.sidebar() for tab in self.tab_list) if view is not None]
        sidebar = [self.dataset, *extras, self.map.controls(), self.shortcuts, self.probe]
        main = pn.Row(
            pn.Column(self.message, self.map.plot(), sizing_mode="stretch_both", min_width=480),
            pn.Column(self.tabs, width=640, sizing_mode="stretch_height"),
            sizing_mode="stretch_both",
        )
        # Bootstrap, not Fast: the Fast design pulls a web font from the internet on every page load.
        return pn.template.BootstrapTemplate(
            title="Data Debugger", sidebar=sidebar, main=[main], sidebar_width=300,
            header_background="#1f3a5f",
        )


def _serve_styles_locally() -> None:
    """Point the session's stylesheets at this server before the page is built.

    Panel learns the local dist URL only when it renders the page, after the template's models exist;
    models it re-sends later (the busy indicator, the template's actions) keep a CDN URL, which fails
    offline. Setting the document's `dist_url` first, as Panel's page rendering does, avoids that.
    """
    from panel.io.resources import LOCAL_DIST

    doc = pn.state.curdoc
    if doc is not None:
        doc._template_variables["dist_url"] = f"{pn.state.rel_path}/{LOCAL_DIST}" if pn.state.rel_path else LOCAL_DIST


def build_page(api_url: str, dataset: str | None = None, token: str | None = None,
               cache: MapCache | None = None) -> pn.template.BaseTemplate:
    """A fresh page (and state, and API client) for one browser session."""
    pn.extension("tabulator", notifications=False)
    _serve_styles_locally()
    asked = (pn.state.session_args or {}).get("dataset")  # /?dataset=NAME opens that dataset
    if asked:
        dataset = asked[0].decode() if isinstance(asked[0], bytes) else str(asked[0])
    dashboard = Dashboard(ApiClient(api_url, token=token), dataset=dataset, defer_rest=True, cache=cache,
                          backend=backend_from_cookies(pn.state.cookies))
    pn.state.onload(dashboard.load_rest)
    pn.state.on_session_destroyed(lambda _ctx: dashboard.state.client.close())
    return dashboard.page()


@dataclass
class DashboardServer:
    """A running dashboard: its URL, and stop() for threaded servers."""

    url: str
    server: Any
    cache: MapCache

    def stop(self) -> None:
        """Stop a threaded server."""
        stop = getattr(self.server, "stop", None)
        if stop is not None:
            stop()


PRELOAD_TIMEOUT_S = 900.0


def preload(cache: MapCache, api_url: str, dataset: str | None = None, token: str | None = None) -> None:
    """Fetch the map of `dataset` (default: the first dataset) into the cache, so the first visitor waits less."""
    # In the background, so it may wait as long as the service's first snapshot takes (over a minute at 1M
    # points, while the service reads every payload once): a page's 60 s would give up and leave it to the visitor.
    client = ApiClient(api_url, token=token, timeout=PRELOAD_TIMEOUT_S)
    try:
        names = [d["name"] for d in client.datasets()]
        if names:
            cache.frame(client, dataset if dataset is not None and dataset in names else names[0])
    except DataDebuggerError as exc:
        log.warning("could not preload the map: %s", exc)
    finally:
        client.close()


def serve_dashboard(api_url: str, port: int, host: str = "127.0.0.1", dataset: str | None = None,
                    token: str | None = None, threaded: bool = True, show: bool = False,
                    warm: bool = True) -> DashboardServer:
    """Serve the dashboard against the API at `api_url` on http://host:port/ (in a thread by default).

    warm: fetch the first dataset's map in the background now, so the first page does not wait for it.
    """
    cache = MapCache()
    from dashboard.views.map_raster import warm as warm_raster

    # Datashader's kernels compile in a few seconds: now, not on the first large map a visitor opens.
    threading.Thread(target=warm_raster, daemon=True, name="dashboard-raster-warm").start()
    if warm:
        threading.Thread(target=preload, args=(cache, api_url, dataset, token), daemon=True,
                         name="dashboard-preload").start()
    origins = sorted({f"{host}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"})
    server = pn.serve(
        {"/": lambda: build_page(api_url, dataset=dataset, token=token, cache=cache)}, port=port, address=host,
        websocket_origin=origins, show=show, threaded=threaded, start=True, title="Data Debugger",
        verbose=False, websocket_max_message_size=WEBSOCKET_MAX_BYTES,
    )
    url = f"http://{host}:{port}/"
    log.info("dashboard on %s (API %s)", url, api_url)
    return DashboardServer(url=url, server=server, cache=cache)
