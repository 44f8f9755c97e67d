"""The dashboard's state stores against the real service, without a browser."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest

from dashboard.cache import MapCache
from dashboard.client import ApiClient
from dashboard.colours import NONE, colour_spec
from dashboard.state import DashboardState
from dashboard.state.clusters import cluster_table
from dashboard.state.map import MapState, map_frame, set_value
from service.errors import Conflict, DataDebuggerError, NotFound, Unavailable
from tests.dashboard.conftest import DATASET, N_POINTS


@pytest.fixture
def state(client: ApiClient) -> DashboardState:
    return DashboardState(client).start(DATASET)


# -- the client ---------------------------------------------------------------------------------------


def test_client_maps_status_codes_back_to_the_exception_tree(client: ApiClient):
    with pytest.raises(NotFound, match="no-such-dataset"):
        client.dataset("no-such-dataset")
    with pytest.raises(Unavailable, match="Is `data-debugger serve` running"):
        ApiClient("http://127.0.0.1:9", timeout=2).datasets()


def test_client_follows_cursors_to_the_end(client: ApiClient, service):
    total = service.http.get(f"/api/datasets/{DATASET}/points", params={"split": "validation"}).json()["count"]
    # limit=None pages through with the API's page size until next_cursor is null.
    items = client.get_list(f"/api/datasets/{DATASET}/points", split="validation", limit=None)
    assert len(items) == total == 213
    assert len({i["id"] for i in items}) == total


# -- the map ------------------------------------------------------------------------------------------


def test_map_frame_normalises_missing_values():
    frame = map_frame({"ids": [1, "a"], "x": [0.5, None], "y": [1.0, None], "text": ["hi", None],
                       "label": ["x", None], "prediction": ["y", None], "correct": [False, None],
                       "cluster": [3, None], "confidence": [0.9, None]})
    assert list(frame["key"]) == ["1", "a"]
    assert list(frame["label"]) == ["x", NONE] and list(frame["labelled"]) == [True, False]
    assert list(frame["correct"]) == ["incorrect", "unlabelled"]
    assert list(frame["cluster"]) == ["3", NONE]
    assert list(frame["has_xy"]) == [True, False]
    assert np.isnan(frame.at[1, "confidence"])


def test_map_frame_reads_arrow_as_it_reads_json():
    import pyarrow as pa

    long_text = "é" * 200  # longer than the hover's cut, in characters and in bytes
    columns = {"ids": [5, 9, 2], "x": [0.5, None, 1.0], "y": [1.0, None, 2.0], "text": ["hi", long_text, None],
               "label": ["a", None, "b"], "prediction": ["b", "a", None], "correct": [False, None, True],
               "cluster": [3, None, 3], "confidence": [0.9, None, 0.5]}
    table = pa.table({name: pa.array(values) for name, values in columns.items()})
    for name in ("label", "prediction"):  # the API sends keywords dictionary-encoded
        table = table.set_column(table.schema.get_field_index(name), name, table[name].dictionary_encode())
    from_arrow, from_json = map_frame(table), map_frame(columns)
    pd.testing.assert_frame_equal(from_arrow, from_json)
    assert list(from_arrow["correct"]) == ["incorrect", "unlabelled", NONE]  # the last has no prediction
    assert list(from_arrow["cluster"]) == ["3", NONE, "3"] and len(from_arrow.at[1, "text"]) == 160


def test_row_index_finds_a_point_by_its_key():
    from dashboard.state.map import rows_by_key

    rows = rows_by_key(map_frame({"ids": [10, 3, 7]}))
    assert rows.get("3") == 1 and rows.get("03") is None and rows.get("x") is None and rows.get("-3") is None
    assert rows.positions(["7", "nope", "10", str(2**70)]).tolist() == [2, 0]
    mixed = rows_by_key(map_frame({"ids": [1, "a"]}))  # UUID-like ids are keys as they are
    assert mixed.get("a") == 1 and mixed.get("1") == 0
    repeated = rows_by_key(map_frame({"ids": [4, 4, 5]}))  # never from Qdrant; the last row, as a dict kept
    assert repeated.get("4") == 1 and repeated.positions(["5", "4"]).tolist() == [2, 1]


def test_map_frame_refuses_ragged_columns():
    with pytest.raises(DataDebuggerError, match="'label' has 1 values for 2 ids"):
        map_frame({"ids": [1, 2], "label": ["a"]})


def test_map_loads_every_point_with_coordinates(state: DashboardState, service):
    frame = state.map.frame
    assert len(frame) == N_POINTS
    assert frame["has_xy"].all()  # the analysis ran: every point is on the map
    # 193 before any review; other tests may have labelled a suggestion since.
    assert (~frame["labelled"]).sum() == service.http.get(f"/api/datasets/{DATASET}").json()["unlabelled"]
    assert set(frame["split"]) == {"training", "validation", "testing", NONE}


def test_filters_agree_with_the_api(state: DashboardState, service):
    m = state.map
    m.split = ["validation"]
    api_count = service.http.get(f"/api/datasets/{DATASET}/points", params={"split": "validation"}).json()["count"]
    assert m.mask().sum() == api_count == 213
    label = m.options("label")[0]
    m.label = [label]
    both = service.http.get(f"/api/datasets/{DATASET}/points",
                            params={"split": "validation", "label": label}).json()["count"]
    assert m.mask().sum() == both
    assert set(m.visible()["label"]) == {label}
    m.clear_filters()
    assert m.mask().sum() == N_POINTS


def test_colour_specs_cover_every_value(state: DashboardState):
    frame = state.map.frame
    for field in ("label", "prediction", "correct", "cluster", "split", "triage"):
        spec = colour_spec(frame, field)
        assert set(spec.factors) == set(frame[field])
        assert len(spec.colours) == len(spec.factors)
    label, prediction = colour_spec(frame, "label"), colour_spec(frame, "prediction")
    # One colour per class whether it is the label or the prediction.
    shared = set(label.factors) & set(prediction.factors)
    assert shared
    for name in shared:
        assert label.colours[label.factors.index(name)] == prediction.colours[prediction.factors.index(name)]
    entropy = colour_spec(frame, "entropy")
    assert entropy.low == pytest.approx(frame["entropy"].min())
    assert entropy.high == pytest.approx(frame["entropy"].max())
    with pytest.raises(ValueError, match="cannot colour by 'nope'"):
        colour_spec(frame, "nope")


def test_click_fetches_neighbours_through_the_api(state: DashboardState, service):
    m = state.map
    m.select_rows([5])
    assert m.selected == [m.frame.at[5, "key"]]
    m.focus_on(m.selected[0])
    expected = service.http.get(f"/api/datasets/{DATASET}/points/{m.frame.at[5, 'id']}").json()
    assert m.focus["text"] == expected["text"]
    assert [n["id"] for n in m.focus["neighbours"]] == [n["id"] for n in expected["neighbours"]]
    assert len(m.focus["neighbours"]) == 10


def test_map_cache_revalidates_with_the_etag(client: ApiClient):
    cache = MapCache()
    first = cache.frame(client, DATASET)
    set_value(first, 0, "label", "edited in this session")  # a session's copy must not leak into the cache
    second = cache.frame(client, DATASET)
    assert second.loc[0, "label"] != "edited in this session"
    columns, etag = client.map(DATASET)
    assert client.map(DATASET, etag=etag) == (None, etag)  # unchanged: 304, no body
    pd.testing.assert_frame_equal(second, map_frame(columns))


# -- clusters -----------------------------------------------------------------------------------------


def test_cluster_table_is_sorted_by_error_rate_with_noise_last():
    frame = map_frame({
        "ids": list(range(8)), "x": [0.0] * 8, "y": [0.0] * 8,
        "label": ["a", "a", "b", "b", "a", None, "b", "b"], "prediction": ["a", "b", "b", "b", "a", "a", "a", "a"],
        "correct": [True, False, True, True, True, None, False, False], "cluster": [0, 0, 1, 1, 2, 2, -1, -1],
    })
    table = cluster_table(frame, {"0": "zero"})
    assert list(table["cluster"]) == ["0", "1", "2", "-1"]
    first = table.iloc[0]
    assert (first["name"], first["size"], first["error_rate"], first["purity"]) == ("zero", 2, 0.5, 1.0)
    assert table.set_index("cluster").at["2", "unlabelled_share"] == 0.5


def test_cluster_table_figures_match_a_count_by_hand():
    """Every figure of every cluster, on random points, against a count over plain lists."""
    import random

    rng = random.Random(4)
    n = 600
    columns = {"ids": list(range(n)), "x": [0.0] * n, "y": [0.0] * n,
               "label": [rng.choice(["a", "b", "c", None]) for _ in range(n)],
               "prediction": [rng.choice(["a", "b", "c"]) for _ in range(n)],
               "correct": [rng.choice([True, False, None]) for _ in range(n)],
               "cluster": [rng.randrange(-1, 9) for _ in range(n)]}
    table = cluster_table(map_frame(columns), {}).set_index("cluster")
    for c in set(columns["cluster"]):
        rows = [i for i in range(n) if columns["cluster"][i] == c]
        labelled = [i for i in rows if columns["label"][i] is not None]
        judged = [i for i in labelled if columns["correct"][i] is not None]
        counts = {label: sum(columns["label"][i] == label for i in labelled) for label in ("a", "b", "c")}
        got = table.loc[str(c)]
        assert got["size"] == len(rows)
        assert got["unlabelled_share"] == pytest.approx(1 - len(labelled) / len(rows))
        assert got["purity"] == pytest.approx(max(counts.values()) / len(labelled))
        assert counts[got["dominant_label"]] == max(counts.values())
        assert got["error_rate"] == pytest.approx(sum(not columns["correct"][i] for i in judged) / len(judged))


def test_clusters_follow_filters_and_highlight_members(state: DashboardState, service):
    clusters = state.clusters
    table = clusters.table
    named = [c for c in table["cluster"] if c != "-1"]
    rates = table[table["cluster"] != "-1"]["error_rate"].fillna(-1).tolist()
    assert rates == sorted(rates, reverse=True)
    api_names = {str(c["id"]): c["name"] for c in service.http.get(f"/api/datasets/{DATASET}/clusters").json()["data"]}
    assert table.set_index("cluster").loc[named[0], "name"] == api_names[named[0]]
    clusters.select(named[0])
    members = clusters.members
    assert len(members) == int(table.set_index("cluster").at[named[0], "size"])
    assert set(members["cluster"]) == {named[0]}
    assert sorted(state.map.highlighted) == sorted(members["key"])
    state.map.split = ["training"]
    assert set(clusters.members["split"]) == {"training"}
    assert clusters.table["size"].sum() == (state.map.frame["split"] == "training").sum()


# -- review -------------------------------------------------------------------------------------------


def test_accept_relabels_through_the_api_and_undo_restores(state: DashboardState, service):
    review = state.review
    assert review.mode == "issues" and review.items
    item = review.current
    old, suggested = item["label"], item["suggested_label"]
    if suggested == old:  # an issue whose suggestion is its own label: relabel to another class instead
        suggested = next(label for label in review.labels if label != old)
        review.relabel(suggested)
    else:
        review.accept()
    point = service.http.get(f"/api/datasets/{DATASET}/points/{item['id']}").json()
    assert point["label"] == suggested
    assert point["review_status"] in ("accepted", "relabelled")
    assert state.map.frame.at[state.map.row(item["id"]), "label"] == suggested
    assert review.current["id"] != item["id"]  # moved on to the next item
    review.undo()
    point = service.http.get(f"/api/datasets/{DATASET}/points/{item['id']}").json()
    assert point["label"] == old
    assert state.map.frame.at[state.map.row(item["id"]), "label"] == old
    assert review.current["id"] == item["id"] and not review.history


def test_keep_and_ambiguous_are_audited(state: DashboardState, service):
    review = state.review
    first, second = review.items[0], review.items[1]
    review.go(0)
    review.keep()
    review.go(1)
    review.ambiguous()
    changes = service.http.get(f"/api/datasets/{DATASET}/changes", params={"limit": 5}).json()["data"]
    actions = {(c["point_id"], c["action"]) for c in changes}
    assert (first["id"], "reviewed") in actions and (second["id"], "ambiguous") in actions
    assert service.http.get(f"/api/datasets/{DATASET}/points/{second['id']}").json()["review_status"] == "ambiguous"


def test_stale_revision_is_refused_and_reloaded(state: DashboardState, client: ApiClient, service):
    review = state.review
    review.go(2)
    item = review.current
    # Someone else reviews the point first: our revision is now stale.
    client.label(DATASET, item["id"], "reviewed", reason="other reviewer", revision=item.get("revision"))
    with pytest.raises(Conflict):
        client.label(DATASET, item["id"], "ambiguous", revision=item.get("revision"))
    review.ambiguous()
    assert "changed meanwhile" in review.message
    assert service.http.get(f"/api/datasets/{DATASET}/points/{item['id']}").json()["review_status"] == "reviewed"


def test_suggestions_label_unlabelled_points(state: DashboardState, service):
    review = state.review
    review.mode = "suggestions"
    assert review.items and all(i.get("label") is None for i in review.items)
    item = review.current
    review.accept()
    point = service.http.get(f"/api/datasets/{DATASET}/points/{item['id']}").json()
    assert point["label"] == item["suggested_label"]
    row = state.map.row(item["id"])
    assert state.map.frame.at[row, "labelled"]


def test_review_items_follow_the_map_filters(state: DashboardState):
    review = state.review
    everything = len(review.items)
    label = review.items[0]["label"]
    state.map.label = [label]
    assert review.items and all(i["label"] == label for i in review.items)
    assert len(review.items) < everything


# -- labelling queue, models, search ---------------------------------------------------------------------


def test_queue_preview_and_downloads(state: DashboardState):
    queue = state.queue
    queue.param.update(strategy="entropy", budget=15)
    queue.preview()
    assert len(queue.rows) == 15
    assert sorted(state.map.highlighted) == sorted(str(i) for i in queue.rows["id"])
    rows = list(csv.DictReader(io.StringIO(queue.download("csv").getvalue().decode())))
    assert len(rows) == 15
    lines = queue.download("jsonl").getvalue().decode().strip().splitlines()
    assert len(lines) == 15 and all(json.loads(line) for line in lines)
    tasks = json.loads(queue.download("label-studio").getvalue())
    assert len(tasks) == 15 and "data" in tasks[0]
    assert queue.filename("label-studio").endswith(".json")


def test_models_compare_two_versions(state: DashboardState, service):
    models = state.models
    assert models.versions == ["v1", "v2"]
    assert models.version_a == "v2" and models.version_b == "v1"
    assert models.split == "validation"
    full = service.http.get(f"/models/{DATASET}/v2").json()
    per_class = full["metrics"]["validation"]["per_class"]
    table = models.per_class.set_index("label")
    assert set(table.index) == set(per_class)
    some = next(iter(per_class))
    assert table.at[some, "f1"] == pytest.approx(per_class[some]["f1"])
    assert "f1_b" in table and table["f1_change"].notna().all()
    labels, matrix = models.confusion()
    assert labels and len(matrix) == len(labels)
    assert models.reliability() and models.curves()
    models.split = "test"
    assert models.metrics_a["n"] == 213


def test_models_list_the_clusters_whose_error_rate_changed_most(state: DashboardState, service):
    models = state.models
    table = models.cluster_changes
    answer = service.http.get(f"/api/datasets/{DATASET}/clusters/changes", params={"a": "v2", "b": "v1"}).json()
    assert table is not None and len(table) == len(answer["clusters"]) > 0
    assert list(table["change"].abs()) == sorted(table["change"].abs(), reverse=True)
    assert table.iloc[0]["change"] == pytest.approx(answer["clusters"][0]["change"])
    assert "v2" in models.changes_note and "v1" in models.changes_note
    keys = models.select_cluster_change(0)
    chosen = table.iloc[0]["cluster"]
    frame = state.map.frame
    assert keys and set(frame.loc[frame["key"].isin(keys), "cluster"]) == {chosen}
    assert state.map.highlighted == keys and "error rate v2" in state.map.highlight_reason
    models.version_b = None
    assert models.cluster_changes is None


def test_confusion_cell_selects_those_points(state: DashboardState):
    models = state.models
    frame = state.map.frame
    val = frame[(frame["split"] == "validation") & frame["labelled"]]
    wrong = val[val["label"] != val["prediction"]].iloc[0]
    keys = models.select_cell(wrong["label"], wrong["prediction"])
    assert wrong["key"] in keys
    rows = state.map.rows_of(keys)
    assert set(rows["label"]) == {wrong["label"]} and set(rows["prediction"]) == {wrong["prediction"]}
    assert set(rows["split"]) == {"validation"}
    assert state.map.selected == keys and state.map.highlighted == keys


def test_search_highlights_the_nearest_points(state: DashboardState):
    search = state.search
    search.k = 8
    search.run("credit card limit")
    assert len(search.hits) == 8
    assert sorted(state.map.highlighted) == sorted(str(i) for i in search.hits["id"])
    scores = search.hits["score"].tolist()
    assert scores == sorted(scores, reverse=True)
    state.map.split = ["testing"]
    search.run()
    assert len(search.hits) and {state.map.frame.at[state.map.row(i), "split"] for i in search.hits["id"]} == {
        "testing"}
    search.run("   ")
    assert search.hits is None and not state.map.highlighted


def test_unknown_dataset_is_a_message_not_a_crash(client: ApiClient):
    state = MapState(client)
    with pytest.raises(NotFound):
        state.load("missing")
    dashboard = DashboardState(client).start("missing")  # falls back to the first dataset
    assert dashboard.dataset == DATASET and dashboard.map.size == N_POINTS


def test_review_knows_how_many_items_the_api_ranks_beyond_those_it_loaded(client: ApiClient):
    from dashboard.state.review import ReviewState

    review = DashboardState(client).start(DATASET).review
    everything = client.list_count(f"/api/datasets/{DATASET}/issues")
    assert review.loaded == min(review.limit, everything) and review.total == everything > 10
    capped = ReviewState(client, review.map, limit=10).load()
    assert capped.loaded == 10 and capped.total == everything
