"""Views without a browser: what each view puts into its Bokeh models and widgets when the state changes."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from dashboard.app import Dashboard, serve_dashboard
from dashboard.client import ApiClient
from dashboard.keyboard import KeyboardShortcuts
from dashboard.views.model_plots import confusion_heatmap
from tests.dashboard.conftest import DATASET, N_POINTS
from tests.servers import free_port


@pytest.fixture
def dashboard(client: ApiClient) -> Dashboard:
    return Dashboard(client, dataset=DATASET)


def test_map_sends_binary_columns_and_recolours_by_mapper(dashboard: Dashboard):
    figure, state = dashboard.map.figure, dashboard.state.map
    data = figure.source.data
    assert len(data["x"]) == N_POINTS and data["x"].dtype == np.float32
    assert data["label"].dtype == np.int16  # factor codes, not strings
    decoded = np.array(figure.specs["label"].factors)[data["label"]]
    assert list(decoded) == list(state.frame["label"])
    assert list(data["unlabelled"]) == list((~state.frame["labelled"]).astype(int))
    state.colour_by = "prediction"
    fill = figure.points.glyph.fill_color
    assert fill.field == "prediction"
    assert list(fill.transform.palette) == figure.specs["prediction"].colours
    assert "Prediction" in dashboard.map.legend.object
    state.colour_by = "entropy"
    assert figure.points.glyph.fill_color.transform.high == pytest.approx(state.frame["entropy"].max(), rel=1e-6)


def test_texts_are_sent_after_the_first_render(client: ApiClient):
    deferred = Dashboard(client, dataset=DATASET, defer_rest=True)
    assert "text" not in deferred.map.figure.source.data
    # The other views wait for the page to show the map.
    assert not deferred.state.clusters.details and not deferred.state.review.items
    deferred.load_rest()
    assert list(deferred.map.figure.source.data["text"][:3]) == list(deferred.state.map.frame["text"][:3])
    assert deferred.state.clusters.details and deferred.state.review.items and deferred.state.models.versions


def test_cluster_names_arrive_without_resending_the_points(client: ApiClient):
    deferred = Dashboard(client, dataset=DATASET, defer_rest=True)
    figure = deferred.map.figure
    assert figure.names_source.data["name"] == []
    sent = {}
    figure.source.on_change("data", lambda attr, old, new: sent.setdefault("data", new))
    deferred.state.clusters.load()
    names = list(figure.names_source.data["name"])
    assert names and set(names) <= set(deferred.state.map.cluster_names.values())
    assert "data" not in sent  # the 2,327 points' columns were not sent again for the names


def test_cluster_names_come_largest_cluster_first_all_shown_until_the_browser_declutters(dashboard: Dashboard):
    data = dashboard.map.figure.names_source.data
    visible = dashboard.state.map.visible()
    named = [c for c, name in dashboard.state.map.cluster_names.items() if name]
    expected = visible[visible["cluster"].isin(named)]["cluster"].value_counts()
    expected = expected[expected > 0]  # the column is categorical: value_counts lists absent clusters too
    assert len(data["name"]) == len(expected) >= 2
    assert list(data["size"]) == sorted(expected.tolist(), reverse=True)
    assert list(data["alpha"]) == [1.0] * len(expected) and min(data["background_alpha"]) > 0


def test_filters_selection_and_click(dashboard: Dashboard):
    view, state, figure = dashboard.map, dashboard.state.map, dashboard.map.figure
    view.filters["split"].value = ["validation"]
    assert state.split == ["validation"]
    assert figure.filter.booleans.sum() == state.mask().sum() == 213
    assert "213 shown" in view.summary.object
    figure._selected("indices", [], [3, 4, 5])  # what Bokeh calls on a box selection
    assert len(view.selection.value) == sum(state.mask()[[3, 4, 5]])
    figure._selected("indices", [], [7])  # a tap
    assert state.focus_key == state.frame.at[7, "key"]
    assert len(view.neighbours.value) == 10
    assert len(figure.neighbour_source.data["x1"]) == 10
    assert figure.focus_source.data["x"] == [pytest.approx(state.frame.at[7, "x"])]


def test_cluster_pick_rings_members(dashboard: Dashboard):
    clusters = dashboard.tab("Clusters").view
    clusters.table.selection = [0]
    chosen = dashboard.state.clusters.selected_cluster
    members = dashboard.state.clusters.members
    assert chosen == clusters.table.value.iloc[0]["cluster"]
    assert len(dashboard.map.figure.highlight_source.data["x"]) == len(members)
    assert "Highlighted" in dashboard.map.highlight_note.object
    names = dashboard.map.figure.names_source.data["name"]
    assert len(names) and all(names)


def test_review_keys_act_only_on_the_review_tab(dashboard: Dashboard, service):
    review, state = dashboard.tab("Review").view, dashboard.state.review
    item = state.current
    dashboard.tabs.active = 0
    review.on_key("k")
    assert not state.history  # not on the review tab: ignored
    dashboard.tabs.active = 3
    assert state.follow and dashboard.state.map.focus_key == str(item["id"])
    n_best = item["n_best"]
    review.on_key("2")  # relabel as the model's second guess
    assert service.http.get(f"/api/datasets/{DATASET}/points/{item['id']}").json()["label"] == n_best[1]["label"]
    review.on_key("u")
    assert service.http.get(f"/api/datasets/{DATASET}/points/{item['id']}").json()["label"] == item["label"]
    assert "undid" in review.message.object


def test_keyboard_component_forwards_keys():
    pressed = []
    shortcuts = KeyboardShortcuts(on_key=pressed.append)
    shortcuts._handle_msg({"key": "a"})
    shortcuts._handle_msg({})
    assert pressed == ["a"] and shortcuts.last_key == ""


def test_confusion_tap_calls_back_with_the_cell():
    cells = []
    fig = confusion_heatmap(["a", "b"], [[3, 1], [0, 2]], on_cell=lambda t, p: cells.append((t, p)))
    source = fig.renderers[0].data_source
    source.selected.indices = [1]  # row-major: true a, predicted b
    assert cells == [("a", "b")]
    assert list(source.data["count"]) == [3, 1, 0, 2]


def test_models_view_draws_both_versions(dashboard: Dashboard):
    models = dashboard.tab("Models").view
    models._redraw()
    headline = models.headline.object
    assert "v1" in headline and "v2" in headline
    names = [getattr(getattr(p, "object", None), "name", None) for p in models.plots.objects]
    assert {"f1-bars", "confusion", "reliability"} <= set(names)
    changes = models.changes
    assert changes.visible and len(changes.value) == len(dashboard.state.models.cluster_changes)
    assert "changed most" in models.changes_note.object
    changes.selection = [0]  # a row click rings that cluster on the map
    assert dashboard.state.map.highlighted
    assert len(dashboard.map.figure.highlight_source.data["x"]) == len(dashboard.state.map.highlighted)


def test_served_page_answers(service):
    port = free_port()
    running = serve_dashboard(service.url, port, warm=False)
    try:
        page = httpx.get(running.url, timeout=60)
        assert page.status_code == 200 and "Data Debugger" in page.text
    finally:
        running.stop()


def test_queue_downloads_are_named_after_the_dataset_once_it_is_known(client: ApiClient):
    from dashboard.state.map import MapState
    from dashboard.state.queue import QueueState
    from dashboard.views.queue import QueueView

    view = QueueView(QueueState(client, MapState(client)))
    assert view.downloads[0].filename.startswith("-queue-")  # built before its dataset is known
    view.state.map.dataset = DATASET
    assert [w.filename.split("-queue-")[0] for w in view.downloads] == [DATASET] * len(view.downloads)


def test_past_the_glyph_limit_the_map_is_an_image_and_glyphs_come_back_on_zoom(client: ApiClient, monkeypatch):
    """The large-map path on the Humanloop data, with the glyph limit lowered below its 2,327 points."""
    from dashboard.views import map_figure

    monkeypatch.setattr(map_figure, "GLYPH_LIMIT", 500)
    dashboard = Dashboard(client, dataset=DATASET)
    view, state, figure = dashboard.map, dashboard.state.map, dashboard.map.figure
    raster = figure.raster_source.data
    assert figure.large and figure.raster_shown
    assert raster["points"] == [N_POINTS] and len(figure.source.data["x"]) == 0  # every point, in the image
    image = raster["image"][0]
    assert image.dtype == np.uint32 and image.shape == map_figure.RASTER_SIZE[::-1]
    assert (image >> 24).astype(bool).sum() > 100  # pixels painted (alpha > 0)

    # Colour and filters redraw the image: a filter leaves only its points in it.
    state.colour_by = "prediction"
    assert not np.array_equal(figure.raster_source.data["image"][0], image)
    view.filters["split"].value = ["training"]
    training = int((state.frame["split"] == "training").sum())
    assert figure.raster_source.data["points"] == [int(state.mask().sum())] == [training]
    view.filters["split"].value = ["validation"]  # 213 points: few enough for glyphs
    assert not figure.raster_shown and len(figure.source.data["x"]) == len(figure.shown_rows) == 213
    view.filters["split"].value = []

    # A click on the image picks the nearest visible point; a box picks every visible point inside it.
    x, y = state.frame["x"].to_numpy(), state.frame["y"].to_numpy()
    far = int(np.argmax(np.hypot(x - np.median(x), y - np.median(y))))  # an outlier: nothing else near it
    figure._on_tap(type("Tap", (), {"x": x[far], "y": y[far]})())
    assert state.focus_key == state.frame.at[far, "key"] and len(figure.focus_source.data["x"]) == 1
    x0, x1, y0, y1 = np.percentile(x, 25), np.percentile(x, 60), np.percentile(y, 25), np.percentile(y, 60)
    box = {"type": "rect", "x0": x0, "x1": x1, "y0": y0, "y1": y1}
    figure._on_geometry(type("Geometry", (), {"final": True, "geometry": box})())
    expected = state.frame[(x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)]
    assert sorted(state.selected) == sorted(expected["key"]) and len(expected) > 10
    # A lasso: the triangle of the box's lower-left half.
    lasso = {"type": "poly", "x": [x0, x1, x0], "y": [y0, y0, y1]}
    figure._on_geometry(type("Geometry", (), {"final": True, "geometry": lasso})())
    under = (x - x0) / (x1 - x0) + (y - y0) / (y1 - y0) < 1
    assert sorted(state.selected) == sorted(state.frame[(x >= x0) & (y >= y0) & under]["key"])

    # Zoomed into few enough points: they come as glyphs (with hover texts); a click on one names its frame row.
    cx, cy = float(x[far]), float(y[far])
    figure._on_ranges(type("Ranges", (), {"x0": cx - 0.01, "x1": cx + 0.01, "y0": cy - 0.01, "y1": cy + 0.01})())
    assert not figure.raster_shown and list(figure.shown_rows) == [far]
    assert list(figure.source.data["text"]) == [state.frame.at[far, "text"]]
    figure._selected("indices", [], [0])
    assert state.focus_key == state.frame.at[far, "key"]
    # And back out: the image again, over the new range.
    figure._on_ranges(type("Ranges", (), {"x0": x.min() - 1, "x1": x.max() + 1, "y0": y.min() - 1,
                                          "y1": y.max() + 1})())
    assert figure.raster_shown and figure.raster_source.data["points"] == [N_POINTS]
    assert figure.raster_source.data["x"] == [x.min() - 1]
