"""The real dashboard in headless Chromium against the real service with the Humanloop data: the map's points,
colour by prediction, a click on a point, accepting a suggestion with the keyboard; screenshots of the main
views; then a map of a million synthetic points: first render, pan and zoom, a click and a box selection on its
image. Times to first render and of each move are printed, not asserted."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from selenium.common.exceptions import StaleElementReferenceException

from dashboard.app import DashboardServer, serve_dashboard
from scripts.synthetic import PAINTED, VIEW_RANGE, move_view, on_map, wait_idle, wait_painted
from tests.dashboard.conftest import BIG_POINTS, DATASET, N_POINTS, REAL_MODEL, Service
from tests.servers import free_port

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1600,1000",
                  "--disable-dev-shm-usage")

# Searches through Panel's shadow roots: every element matching `selector` whose text contains `text`.
FIND_ALL = """
const [selector, text] = arguments;
const out = [];
const walk = (root) => {
  for (const el of root.querySelectorAll('*')) {
    if (el.matches(selector) && (!text || (el.textContent || '').includes(text))) out.push(el);
    if (el.shadowRoot) walk(el.shadowRoot);
  }
};
walk(document);
return out;
"""
# The map as BokehJS holds it: points in the source, whether the plot has painted, the colour-by field.
MAP_STATE = on_map("""
  const source = doc.get_model_by_name('map-source');
  const points = doc.get_model_by_name('map-points');
  return {n: source.get_length(), painted: !!(view && view.has_finished()), t: performance.now(),
          field: points.glyph.fill_color.field || null,
          focus: doc.get_model_by_name('map-focus').get_length()};""")
# Three cluster names planted in the map: the first two overlap on screen, the third sits at the frame's left side.
PLANT_NAMES = """
const doc = Bokeh.documents[0];
const fig = doc.get_model_by_name('data-map'), source = doc.get_model_by_name('map-cluster-names');
const [xr, yr] = [fig.x_range, fig.y_range];
const cx = (xr.start + xr.end) / 2, cy = (yr.start + yr.end) / 2, dx = (xr.end - xr.start) / 100;
source.data = {x: [cx, cx + dx, xr.start + dx], y: [cy, cy, yr.start + (yr.end - yr.start) / 10],
               name: ['big one', 'small one', 'far away'], size: [30, 10, 5], alpha: [1, 1, 1],
               background_alpha: [0.7, 0.7, 0.7], shift: [0, 0, 0]};
return [xr.start, xr.end, cx, dx];
"""
RASTER_POINTS = "return Number(Bokeh.documents[0].get_model_by_name('map-raster').data.points[0] || 0);"
# A checksum of the map's image (every 7th pixel), to tell one colouring from another; null without an image.
RASTER_SUM = """
const d = Bokeh.documents[0].get_model_by_name('map-raster').data;
if (!d.image.length) return null;
const a = d.image[0];
let s = 0;
for (let i = 0; i < a.length; i += 7) s = (s * 31 + a[i]) % 2147483647;
return s;
"""
# Sets the value of the widget whose css class is arguments[0], as a user's pick would (Panel syncs it back).
SET_WIDGET = """
const [cls, value] = arguments;
for (const doc of Bokeh.documents) for (const m of doc.all_models) {
  if (m.css_classes && m.css_classes.includes(cls) && 'value' in m) { m.value = value; return true; }
}
return false;
"""
NEIGHBOUR_LINES = "return Bokeh.documents[0].get_model_by_name('map-neighbours').get_length();"
NAMES = "return Array.from(Bokeh.documents[0].get_model_by_name('map-cluster-names').data.name);"
# Makes the lasso the map's drag tool (the box is the default).
USE_LASSO = """
const fig = Bokeh.documents[0].get_model_by_name('data-map');
const lasso = fig.toolbar.tools.find(t => [t.type, t.constructor.__name__, t.tool_name].some(
  name => typeof name === 'string' && name.replace(' ', '').startsWith('LassoSelect')));
if (!lasso) return false;
fig.toolbar.active_drag = lasso;
return !!lasso;
"""
HIGHLIGHTED = "return Bokeh.documents[0].get_model_by_name('map-highlight').get_length();"
NAME_ALPHAS = "return Array.from(Bokeh.documents[0].get_model_by_name('map-cluster-names').data.alpha);"
NAME_SHIFTS = "return Array.from(Bokeh.documents[0].get_model_by_name('map-cluster-names').data.shift);"
SET_X_RANGE = """
const xr = Bokeh.documents[0].get_model_by_name('data-map').x_range;
xr.setv({start: arguments[0], end: arguments[1]});
"""
# The data point under a place on the page, from the plot's own scales.
DATA_POSITION = """
const [px, py] = arguments;
const view = Bokeh.index.find_one(Bokeh.documents[0].get_model_by_name('data-map'));
const rect = view.canvas_view.el.getBoundingClientRect();
return [view.frame.x_scale.invert(px - rect.left), view.frame.y_scale.invert(py - rect.top)];
"""
# Where a data point is on the page, from the plot's own scales.
SCREEN_POSITION = """
const [x, y] = arguments;
const doc = Bokeh.documents[0];
const view = Bokeh.index.find_one(doc.get_model_by_name('data-map'));
const sx = view.frame.x_scale.compute(x), sy = view.frame.y_scale.compute(y);
const rect = view.canvas_view.el.getBoundingClientRect();
return [rect.left + sx, rect.top + sy];
"""


@pytest.fixture(scope="module")
def chrome() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service as DriverService

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        pytest.fail("headless Chromium is needed: apt-get install -y chromium chromium-driver (.ci/run does)")
    options = Options()
    options.binary_location = binary
    profile = tempfile.mkdtemp(prefix="dd-chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=DriverService(driver), options=options)
    browser.set_script_timeout(60)
    yield browser
    browser.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def dashboard(service: Service) -> Iterator[DashboardServer]:
    running = serve_dashboard(service.url, free_port())
    deadline = time.monotonic() + 120
    while not running.cache.holds(service.url, DATASET):  # the server preloads the first dataset's map
        assert time.monotonic() < deadline, "the dashboard did not preload the map"
        time.sleep(0.1)
    yield running
    running.stop()


def wait_for(predicate, timeout: float = 60, what: str = "the page") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except StaleElementReferenceException:  # the page redrew the element between finding and reading it
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def open_map(browser, url: str, points: int) -> float:
    """Load the page on an idle dashboard; seconds from navigation to the map painted with all its points (as
    glyphs or in its image): the render benchmark's rule and check (scripts/synthetic.py)."""
    browser.get("about:blank")
    wait_idle()
    browser.get(url)
    return wait_painted(browser, points, timeout=300)


def find(browser, selector: str, text: str = "") -> list[Any]:
    return browser.execute_script(FIND_ALL, selector, text)


def click(browser, selector: str, text: str, exact: bool = False, scroll: bool = False) -> None:
    """Click the first element matching `selector` with `text` (or exactly that text), once the page has it.
    Found and clicked in one try, tried again if the page redraws it in between (a table re-rendering its rows)."""
    def clicked() -> bool:
        found = [e for e in find(browser, selector, text) if not exact or e.text.strip() == text]
        if not found:
            return False
        if scroll:  # a table cell may lie below the fold
            browser.execute_script("arguments[0].scrollIntoView(); arguments[0].click();", found[0])
        else:
            found[0].click()
        return True
    wait_for(clicked, what=f"{selector} {text!r}")


def click_tab(browser, title: str) -> None:
    click(browser, ".bk-tab", title, exact=True)


def page_text(browser) -> str:
    return browser.execute_script("""
const parts = [];
const walk = (root) => { for (const el of root.querySelectorAll('*')) {
  if (el.shadowRoot) walk(el.shadowRoot);
  if (!el.children.length && el.textContent) parts.push(el.textContent); } };
walk(document); return parts.join(' ');""")


def shot(browser, folder: Path, name: str) -> Path:
    time.sleep(0.8)  # let the last patch paint
    path = folder / f"{name}.png"
    browser.save_screenshot(str(path))
    return path


def isolated_point(frame) -> int:
    """The row of a point far from every other one, so a click on it hits it alone."""
    xy = frame[["x", "y"]].to_numpy(float)
    span = xy.max(axis=0) - xy.min(axis=0)
    xy = (xy - xy.min(axis=0)) / np.where(span > 0, span, 1)
    best, best_gap = 0, -1.0
    for i in range(len(xy)):
        d = np.sqrt(((xy - xy[i]) ** 2).sum(axis=1))
        d[i] = np.inf
        if d.min() > best_gap:
            best, best_gap = i, float(d.min())
    return best


def test_dashboard_in_a_browser(chrome, dashboard: DashboardServer, service: Service, screenshots_dir: Path,
                                capsys: pytest.CaptureFixture):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    from dashboard.state.map import map_frame

    timings: dict[str, float] = {}
    timings["2.3k"] = open_map(chrome, dashboard.url, N_POINTS)
    assert chrome.execute_script(MAP_STATE)["n"] == N_POINTS  # small data: every point a glyph, with hover
    assert chrome.execute_script(RASTER_POINTS) == 0
    assert f"{N_POINTS:,} points" in page_text(chrome)

    # Colour by prediction through the sidebar's select, as a user would.
    select = wait_for(lambda: [s for s in find(chrome, "select") if "Correct / incorrect" in s.text],
                      what="the colour-by select")[0]
    chrome.execute_script("const s = arguments[0];"
                          "s.value = [...s.options].find(o => o.text === 'Prediction').value;"
                          "s.dispatchEvent(new Event('change', {bubbles: true}));", select)
    wait_for(lambda: chrome.execute_script(MAP_STATE)["field"] == "prediction", what="colour by prediction")
    shot(chrome, screenshots_dir, "map")

    # Click a point: the Point tab shows it with its neighbours, the map stars it.
    frame = map_frame(service.http.get(f"/api/datasets/{DATASET}/map").json())
    row = isolated_point(frame)
    x, y = chrome.execute_script(SCREEN_POSITION, float(frame.at[row, "x"]), float(frame.at[row, "y"]))
    actions = ActionBuilder(chrome)
    actions.pointer_action.move_to_location(int(round(x)), int(round(y))).click()
    actions.perform()
    wait_for(lambda: chrome.execute_script(MAP_STATE)["focus"] == 1, what="the clicked point")
    text = frame.at[row, "text"][:40]
    wait_for(lambda: text in page_text(chrome), what="the clicked point's text")
    assert "Nearest neighbours" in page_text(chrome)
    shot(chrome, screenshots_dir, "point")

    click_tab(chrome, "Clusters")
    wait_for(lambda: "Worst error rate first" in page_text(chrome), what="the clusters table")
    shot(chrome, screenshots_dir, "clusters")
    # Picking a cluster (a Panel table event, handled outside Bokeh's document lock) rings it on the map.
    cluster = service.http.get(f"/api/datasets/{DATASET}/clusters").json()["data"][0]
    row = wait_for(lambda: find(chrome, ".tabulator-row", cluster["name"]), what="the cluster's row")[0]
    chrome.execute_script("arguments[0].scrollIntoView(); arguments[0].click();", row)
    ringed = wait_for(lambda: chrome.execute_script(HIGHLIGHTED), what="the cluster ringed on the map")
    assert ringed == cluster["size"], (ringed, cluster)

    # Review queue: suggestions, accept the first with the keyboard, see the label change through the API.
    click_tab(chrome, "Review")
    click(chrome, "button", "Suggestions")
    first = service.http.get(f"/api/datasets/{DATASET}/suggestions", params={"limit": 1}).json()["data"][0]
    wait_for(lambda: "Suggestion 1 of" in page_text(chrome), what="the suggestions queue")
    wait_for(lambda: first["text"][:40] in page_text(chrome), what="the first suggestion")
    shot(chrome, screenshots_dir, "review")
    chrome.execute_script("document.activeElement && document.activeElement.blur()")
    ActionChains(chrome).send_keys("a").perform()
    point = wait_for(lambda: (p := service.http.get(f"/api/datasets/{DATASET}/points/{first['id']}").json())
                     ["label"] is not None and p, what="the accepted label in the API")
    assert point["label"] == first["suggested_label"]
    assert point["review_status"] == "accepted"
    wait_for(lambda: "accepted the suggestion" in page_text(chrome), what="the review message")

    click_tab(chrome, "Labelling queue")
    click(chrome, "button", "Preview")
    wait_for(lambda: "points to label" in page_text(chrome), what="the queue preview")
    shot(chrome, screenshots_dir, "labelling-queue")

    click_tab(chrome, "Models")
    wait_for(lambda: "macro f1" in page_text(chrome), what="the model views")
    shot(chrome, screenshots_dir, "models")

    # Cluster names that would overlap: the larger cluster's stays, the other shows once a zoom makes room.
    # (The zoom moves the third name off screen; it counts as shown, as nothing clashes with it.)
    start, end, cx, dx = chrome.execute_script(PLANT_NAMES)
    wait_for(lambda: chrome.execute_script(NAME_ALPHAS) == [1, 0, 1], what="the overlapping name hidden")
    shifts = chrome.execute_script(NAME_SHIFTS)
    assert shifts[:2] == [0, 0] and shifts[2] > 10  # the name at the side slid inwards (pixels), not cut
    chrome.execute_script(SET_X_RANGE, cx - 2 * dx, cx + 3 * dx)
    wait_for(lambda: chrome.execute_script(NAME_ALPHAS)[:2] == [1, 1], what="both names once zoomed in")
    chrome.execute_script(SET_X_RANGE, start, end)
    wait_for(lambda: chrome.execute_script(NAME_ALPHAS) == [1, 0, 1], what="the name hidden again")

    severe = [e["message"] for e in chrome.get_log("browser") if e["level"] == "SEVERE"]
    with capsys.disabled():  # printed in the test run's output, not only on a failure
        print(f"\nscreenshots in {screenshots_dir}")
        if REAL_MODEL:  # the README shows a map worth looking at: the real model's, not the fake embedder's cloud
            shutil.copyfile(screenshots_dir / "map.png", REPO / "dashboard" / "screenshots" / "map.png")
            print(f"map screenshot copied to {REPO / 'dashboard' / 'screenshots' / 'map.png'}")
        print("time to first render of the map (navigation -> painted), headless Chromium (canvas):")
        for name, seconds in timings.items():
            print(f"  {name:>10}: {seconds:.2f} s")
    assert not severe, f"browser errors: {severe}"


def choose(browser, select: Any, option: str) -> None:
    """Pick an option of a <select> by its text, as a user would (a change event Panel listens to)."""
    browser.execute_script("const s = arguments[0];"
                           "s.value = [...s.options].find(o => o.text === arguments[1]).value;"
                           "s.dispatchEvent(new Event('change', {bubbles: true}));", select, option)


def in_polygon(x: np.ndarray, y: np.ndarray, corners: list[tuple[float, float]]) -> np.ndarray:
    """Points inside a convex polygon (corners in order): on the same side of every edge."""
    side = []
    for (ax, ay), (bx, by) in zip(corners, corners[1:] + corners[:1], strict=True):
        side.append((bx - ax) * (y - ay) - (by - ay) * (x - ax) > 0)
    return np.logical_and.reduce(side) | np.logical_and.reduce([~s for s in side])


@pytest.mark.slow
@pytest.mark.timeout(2400)  # writing a million points to the store is most of it: ~3 min idle, 10 under load
def test_a_million_points_in_a_browser(chrome, dashboard: DashboardServer, service: Service, big_dataset: str,
                                       screenshots_dir: Path, capsys: pytest.CaptureFixture):
    """BIG_POINTS (a million unless set lower) on the map: every point in the image at first render, glyphs once
    a zoom holds few enough; then everything the map does, at that size: colour by each field, a filter, a
    click with its neighbours, box and lasso selections into the table, a cluster ringed, a queue preview ringed,
    cluster names."""
    import re

    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    from dashboard.client import ApiClient
    from dashboard.colours import COLOUR_FIELDS
    from dashboard.state.clusters import cluster_table
    from dashboard.state.map import map_frame
    from dashboard.views.map_figure import GLYPH_LIMIT

    timings: dict[str, float] = {}
    url = f"{dashboard.url}?dataset={big_dataset}"
    # The first visit fetches the map from the API (Arrow); the next one revalidates the dashboard's copy.
    timings["first visit"] = open_map(chrome, url, BIG_POINTS)
    timings["again"] = open_map(chrome, url, BIG_POINTS)
    assert chrome.execute_script(RASTER_POINTS) == BIG_POINTS and chrome.execute_script(MAP_STATE)["n"] == 0
    wait_for(lambda: f"{BIG_POINTS:,} points" in page_text(chrome), what="the map summary")
    shot(chrome, screenshots_dir, "map-large")

    api = ApiClient(service.url)
    frame = map_frame(api.map(big_dataset, arrow=True)[0])
    api.close()
    x, y = frame["x"].to_numpy(), frame["y"].to_numpy()
    x0, x1, y0, y1 = chrome.execute_script(VIEW_RANGE)
    w, h = x1 - x0, y1 - y0
    moves = {"zoom in": (x0 + w / 4, x1 - w / 4, y0 + h / 4, y1 - h / 4),
             "pan": (x0 + w / 2, x1, y0 + h / 4, y1 - h / 4),
             "zoom to glyphs": (x[0] - 0.02, x[0] + 0.02, y[0] - 0.02, y[0] + 0.02), "zoom out": (x0, x1, y0, y1)}
    for name, (a, b, c, d) in moves.items():
        wait_idle()
        shown, timings[name] = move_view(chrome, a, b, c, d)
        in_view = int(((x >= a) & (x <= b) & (y >= c) & (y <= d)).sum())
        assert shown == ("image" if in_view > GLYPH_LIMIT else "glyphs"), (name, shown, in_view)
        if shown == "glyphs":  # every point in the window, as glyphs the browser hovers and clicks
            assert chrome.execute_script(MAP_STATE)["n"] == in_view
    assert chrome.execute_script(RASTER_POINTS) == BIG_POINTS

    # Cluster names (from the analysis report) stand on the map.
    names = wait_for(lambda: chrome.execute_script(NAMES), what="the cluster names")
    assert set(names) == {f"blob {c}" for c in frame["cluster"].unique()}

    # Colour by each field: the image is rasterised again in that field's colours, every point still in it.
    select = wait_for(lambda: [s for s in find(chrome, "select") if "Correct / incorrect" in s.text],
                      what="the colour-by select")[0]
    sums = {}
    for field, (_, title) in COLOUR_FIELDS.items():
        wait_idle()
        started = time.perf_counter()
        choose(chrome, select, title)
        wait_for(lambda f=field: chrome.execute_script(MAP_STATE)["field"] == f, what=f"colour by {field}")
        wait_for(lambda: chrome.execute_script(RASTER_POINTS) == BIG_POINTS, what=f"the image coloured by {field}")
        sums[field] = chrome.execute_script(RASTER_SUM)
        timings[f"colour by {field}"] = time.perf_counter() - started
    varied = [f for f in COLOUR_FIELDS if frame[f].nunique() > 1]  # split and triage hold one value here
    assert len(varied) >= 7 and len({sums[f] for f in varied}) == len(varied), sums
    choose(chrome, select, COLOUR_FIELDS["label"][1])
    wait_for(lambda: chrome.execute_script(MAP_STATE)["field"] == "label", what="colour by label again")

    # A filter: the image holds exactly the points that pass it; cleared, every point again.
    label = str(frame["label"].iloc[1])
    assert chrome.execute_script(SET_WIDGET, "dd-filter-label", [label])
    passing = int((frame["label"] == label).sum())
    # As glyphs or in the image, by how many pass (at a million, a label's 25k points are an image).
    wait_for(lambda: chrome.execute_script(PAINTED)[0] == passing, what=f"the map filtered to {label}")
    wait_for(lambda: find(chrome, "div", f"{passing:,} shown"), what="the filtered summary")
    assert chrome.execute_script(SET_WIDGET, "dd-filter-label", [])
    wait_for(lambda: chrome.execute_script(RASTER_POINTS) == BIG_POINTS, what="the filter cleared")

    # A click on the image shows the point under the pointer with its neighbours, lines drawn to them.
    sx, sy = chrome.execute_script(SCREEN_POSITION, float(x[0]), float(y[0]))
    actions = ActionBuilder(chrome)
    actions.pointer_action.move_to_location(int(round(sx)), int(round(sy))).click()
    actions.perform()
    wait_for(lambda: chrome.execute_script(MAP_STATE)["focus"] == 1, what="the clicked point")
    wait_for(lambda: "synthetic request" in page_text(chrome), what="the clicked point's text")
    wait_for(lambda: chrome.execute_script(NEIGHBOUR_LINES) == 10, what="lines to the 10 neighbours")
    assert "Nearest neighbours" in page_text(chrome)

    # A box drawn over the image selects every visible point inside it.
    corners = [(int(round(sx)) - 40, int(round(sy)) - 30), (int(round(sx)) + 40, int(round(sy)) + 30)]
    actions = ActionBuilder(chrome)
    actions.pointer_action.move_to_location(*corners[0]).pointer_down().move_to_location(*corners[1]).pointer_up()
    actions.perform()
    (a, d), (b, c) = (chrome.execute_script(DATA_POSITION, *corner) for corner in corners)
    expected = int(((x >= a) & (x <= b) & (y >= c) & (y <= d)).sum())
    click_tab(chrome, "Selection")

    def selected() -> int | None:
        found = re.search(r"of ([\d,]+)\b|([\d,]+) selected", page_text(chrome))
        return int((found.group(1) or found.group(2)).replace(",", "")) if found else None

    count = wait_for(selected, what="the box selection")
    assert expected > 0 and abs(count - expected) <= max(2, expected // 100), (count, expected)

    # A lasso (a triangle here) selects the points inside its outline.
    assert chrome.execute_script(USE_LASSO)
    outline = [(int(round(sx)) - 60, int(round(sy)) + 40), (int(round(sx)) + 60, int(round(sy)) + 40),
               (int(round(sx)), int(round(sy)) - 50)]
    actions = ActionBuilder(chrome)
    path = [*outline, outline[0]]
    pointer = actions.pointer_action.move_to_location(*path[0]).pointer_down()
    for (ax, ay), (bx, by) in zip(path, path[1:], strict=False):
        for step in range(1, 6):  # a drawn outline: the lasso follows the pointer's path
            pointer.move_to_location(ax + (bx - ax) * step // 5, ay + (by - ay) * step // 5)
    pointer.pointer_up()
    actions.perform()
    lasso = int(in_polygon(x, y, [tuple(chrome.execute_script(DATA_POSITION, *c)) for c in outline]).sum())
    wait_for(lambda: selected() not in (None, count), what="the lasso selection")
    assert lasso > 0 and abs(selected() - lasso) <= max(2, lasso // 100), (selected(), lasso)

    # A cluster picked in the clusters table is ringed on the map, every one of its points.
    click_tab(chrome, "Clusters")
    cluster = str(cluster_table(frame, {}).iloc[0]["cluster"])  # the table's first row: drawn, not scrolled to
    name = f"blob {cluster}"
    click(chrome, ".tabulator-cell", name, exact=True, scroll=True)
    members = int((frame["cluster"] == cluster).sum())
    wait_for(lambda: chrome.execute_script(HIGHLIGHTED) == members, what=f"the {members:,} points of the cluster")

    # The labelling queue's preview is ringed on the map.
    click_tab(chrome, "Labelling queue")
    click(chrome, "button", "Preview")
    found = wait_for(lambda: re.search(r"(\d+) points to label", page_text(chrome)), what="the queue preview")
    assert int(found.group(1)) > 0
    wait_for(lambda: chrome.execute_script(HIGHLIGHTED) == int(found.group(1)), what="the queue ringed")
    assert chrome.execute_script(RASTER_POINTS) == BIG_POINTS  # through all of it, the map holds every point

    severe = [e["message"] for e in chrome.get_log("browser") if e["level"] == "SEVERE"]
    with capsys.disabled():
        print(f"\nmap of {BIG_POINTS:,} points, headless Chromium (canvas): " +
              ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items()))
    assert not severe, f"browser errors: {severe}"
