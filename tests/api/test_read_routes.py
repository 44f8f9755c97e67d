"""Read routes on one shared app: datasets, points (filters, paging to the end), the map, search, the
debugger views, export, the OpenAPI document, and bad input."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest

from embeddings.embedder import FakeEmbedder
from service.datasets.ingest import ingest, make_sources
from tests.api.conftest import (
    DATASET,
    HUMANLOOP_SMALL,
    LABELS,
    N_POINTS,
    N_UNLABELLED,
    PLANTED,
    ingest_fixture,
    original_records,
)

pytestmark = pytest.mark.anyio


def fixture_rows() -> list[dict]:
    """The fixture's records as (id, text, label, split), read independently of the service."""
    rows = []
    for item in original_records():
        data = json.loads(item["data"])
        rows.append({"id": item["id"], "text": data["text"], "label": data["intent"] or None, "split": item["usage"]})
    return rows


async def test_openapi_lists_operation_ids_and_error_responses(shared):
    _, client = shared
    doc = (await client.get("/openapi.json")).json()
    ids = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            ids.append(op["operationId"])
            if not path.startswith("/api") or path == "/api/health":
                continue
            codes = set(op["responses"])
            assert {"422", "500", "503"} <= codes, (method, path)
            if "{dataset}" in path:
                assert "404" in codes, (method, path)
            if method in ("post", "delete", "put", "patch") and path != "/api/search" and not path.endswith("/search"):
                assert {"401", "409", "413"} <= codes, (method, path)
    assert len(ids) == len(set(ids)), Counter(ids).most_common(3)
    assert {"list_points", "get_map", "search_dataset", "label_point", "undo_change", "start_run",
            "predict", "project_predict", "list_models"} <= set(ids)
    error = doc["components"]["schemas"]["ErrorOut"]
    assert {"status", "code", "message", "field"} <= set(error["properties"])


async def test_health(shared):
    _, client = shared
    body = (await client.get("/api/health")).json()
    assert body["status"] == "ok" and body["store"] == "edge" and body["datasets"] >= 1


async def test_dataset_list_and_detail_counts(shared):
    _, client = shared
    rows = fixture_rows()
    listing = (await client.get("/api/datasets")).json()
    assert listing["count"] == len(listing["data"])
    summary = next(d for d in listing["data"] if d["name"] == DATASET)
    assert summary["points"] == len(rows) == N_POINTS
    assert summary["unlabelled"] == sum(r["label"] is None for r in rows) == N_UNLABELLED
    assert summary["by_label"] == dict(Counter(r["label"] for r in rows if r["label"]))
    detail = (await client.get(f"/api/datasets/{DATASET}")).json()
    assert detail["by_split"]["validation"] == sum(r["split"] == "validation" for r in rows)
    assert detail["by_status"] == {"correct": N_POINTS - N_UNLABELLED - len(PLANTED), "incorrect": len(PLANTED),
                                   "unlabelled": N_UNLABELLED}
    assert sum(detail["by_prediction"].values()) == N_POINTS
    assert detail["last_analysis_at"] == "2025-01-01T00:00:00+00:00" and detail["analysis_run"] == "run-1"
    assert detail["format"] == "humanloop" and detail["embedding_model"] == "fake-32"


async def _all_pages(client, url: str, params: dict) -> tuple[list[dict], list[int]]:
    items, counts, cursor = [], [], None
    for _ in range(100):
        page = (await client.get(url, params={**params, **({"cursor": cursor} if cursor else {})})).json()
        items.extend(page["data"])
        counts.append(page["count"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items, counts
    raise AssertionError("paging never ended")


@pytest.mark.parametrize("limit", [1, 4, 37, 1000])
async def test_points_paging_reaches_the_end_exactly_once(shared, limit):
    _, client = shared
    items, counts = await _all_pages(client, f"/api/datasets/{DATASET}/points", {"limit": limit})
    ids = [p["id"] for p in items]
    assert sorted(ids) == sorted(r["id"] for r in fixture_rows())
    assert len(ids) == len(set(ids)) and set(counts) == {N_POINTS}


def _expected(rows, **conds) -> set[int]:
    return {r["id"] for r in rows if all(cond(r) for cond in conds.values())}


async def test_points_filters_match_the_data(shared):
    _, client = shared
    rows = fixture_rows()
    cases = [
        ({"label": "lost_card"}, _expected(rows, a=lambda r: r["label"] == "lost_card")),
        ({"label": ["lost_card", "check_balance"]},
         _expected(rows, a=lambda r: r["label"] in ("lost_card", "check_balance"))),
        ({"has_label": "false"}, _expected(rows, a=lambda r: r["label"] is None)),
        ({"split": "validation"}, _expected(rows, a=lambda r: r["split"] == "validation")),
        ({"text": "card"}, _expected(rows, a=lambda r: "card" in r["text"].split())),
        ({"text": "my card"}, _expected(rows, a=lambda r: {"my", "card"} <= set(r["text"].split()))),
        ({"status": "incorrect"}, set(PLANTED)),
        ({"status": "incorrect", "label": "lost_card"}, {700025}),
        ({"triage": "label_error"}, {700002}),
        ({"flag": "label_issue"}, set(PLANTED)),
        ({"min_score": 0.6}, {rid for rid, v in PLANTED.items() if v[2] >= 0.6}),
        ({"min_score": 0.5, "max_score": 0.8}, {700013, 700025}),
        ({"min_confidence": 0.84, "max_confidence": 0.86}, {700013}),
    ]
    for params, expected in cases:
        items, counts = await _all_pages(client, f"/api/datasets/{DATASET}/points", {**params, "limit": 5})
        assert {p["id"] for p in items} == expected, params
        assert counts[0] == len(expected), params


@pytest.mark.parametrize(("params", "field"), [
    ({"cursor": "not-a-cursor"}, "query.cursor"),
    ({"cursor": "Im5vdC1hLXV1aWQi"}, "query.cursor"),  # a well-formed cursor holding no point id
    ({"limit": 0}, "query.limit"),
    ({"limit": 5000}, "query.limit"),
    ({"status": "maybe"}, "query.status"),
    ({"split": "train"}, "query.split"),
    ({"min_score": 2}, "query.min_score"),
    ({"min_score": 0.9, "max_score": 0.1}, "query.min_score"),
    ({"colour": "red"}, "query.colour"),
])
async def test_points_bad_input_names_the_field(shared, params, field):
    _, client = shared
    response = await client.get(f"/api/datasets/{DATASET}/points", params=params)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_input" and body["field"].startswith(field), body


async def test_unknown_dataset_and_point_are_404(shared):
    _, client = shared
    for url in ("/api/datasets/nope", "/api/datasets/nope/points", "/api/datasets/nope/map",
                "/api/datasets/nope/issues", "/api/datasets/nope/export", f"/api/datasets/{DATASET}/points/999"):
        response = await client.get(url)
        assert response.status_code == 404, url
        assert "nope" in response.json()["message"] or "999" in response.json()["message"]
    assert (await client.get("/api/datasets/bad%20name/points")).status_code == 422


async def test_a_bad_dataset_name_is_422_naming_the_path_and_the_rule(shared):
    _, client = shared
    for response in (await client.get("/api/datasets/bad%20name/points"),
                     await client.delete("/api/datasets/.hidden"),
                     await client.post("/api/datasets/bad%20name/search", json={"text": "card"})):
        body = response.json()
        assert response.status_code == 422 and body["field"] == "path.dataset", body
        assert body["message"].startswith("path.dataset: dataset name") and "letters, digits" in body["message"]
    doc = (await client.get("/openapi.json")).json()
    [param] = doc["paths"]["/api/datasets/{dataset}"]["get"]["parameters"]
    assert param["schema"]["pattern"].startswith("^[A-Za-z0-9]")


async def test_point_with_neighbours(shared):
    _, client = shared
    body = (await client.get(f"/api/datasets/{DATASET}/points/700026", params={"k": 5})).json()
    assert body["text"] == "someone stole my debit card" and body["label"] == "lost_card"
    assert body["revision"] == 0 and body["source"]["project_id"] == 411
    neighbours = body["neighbours"]
    assert len(neighbours) == 5 and 700026 not in [n["id"] for n in neighbours]
    sims = [n["similarity"] for n in neighbours]
    assert sims == sorted(sims, reverse=True)
    # The fake embedder puts texts sharing words together: the nearest shares "card".
    assert "card" in neighbours[0]["text"]
    assert (await client.get(f"/api/datasets/{DATASET}/points/700026", params={"k": 101})).status_code == 422


async def test_map_is_columnar_cached_and_conditional(shared):
    _, client = shared
    url = f"/api/datasets/{DATASET}/map"
    response = await client.get(url)
    body = response.json()
    keys = ("ids", "x", "y", "text", "label", "prediction", "confidence", "split", "cluster", "triage",
            "mislabel_score", "entropy", "correct")
    assert all(len(body[k]) == N_POINTS for k in keys)
    by_id = dict(zip(body["ids"], body["correct"], strict=True))
    assert [rid for rid, ok in by_id.items() if ok is False] == sorted(PLANTED)
    assert sum(ok is None for ok in by_id.values()) == N_UNLABELLED
    etag = response.headers["etag"]
    again = await client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    for header in (f'W/{etag}', f'"other", {etag}', "*"):  # weak comparison, lists, any
        assert (await client.get(url, headers={"If-None-Match": header})).status_code == 304, header
    assert (await client.get(url, headers={"If-None-Match": '"other"'})).status_code == 200
    zipped = await client.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.json() == body  # httpx decodes


async def test_search_by_text_by_id_and_with_filters(shared):
    _, client = shared
    url = f"/api/datasets/{DATASET}/search"
    by_text = (await client.post(url, json={"text": "stolen card", "k": 3})).json()
    assert by_text["count"] == 3 and "card" in by_text["data"][0]["text"]
    scores = [h["score"] for h in by_text["data"]]
    assert scores == sorted(scores, reverse=True)
    by_id = (await client.post(url, json={"id": 700026, "k": 4})).json()
    assert len(by_id["data"]) == 4 and 700026 not in [h["id"] for h in by_id["data"]]
    by_str_id = (await client.post(url, json={"id": "700026", "k": 4})).json()
    assert by_str_id["data"] == by_id["data"]
    filtered = (await client.post(url, json={"text": "card", "k": 10, "label": ["check_balance"]})).json()
    assert filtered["data"] and {h["label"] for h in filtered["data"]} == {"check_balance"}
    unlabelled = (await client.post(url, json={"text": "card", "k": 50, "has_label": False})).json()
    assert len(unlabelled["data"]) == N_UNLABELLED
    contains = (await client.post(url, json={"text": "money", "k": 50, "contains": "savings"})).json()
    assert contains["data"] and all("savings" in h["text"] for h in contains["data"])


def fast_lane(app):
    from service.api.fast_search import FastSearch

    node = app.middleware_stack
    while node is not None and not isinstance(node, FastSearch):
        node = getattr(node, "app", None)
    assert node is not None, "the search fast lane is not in the middleware stack"
    return node


async def test_the_fast_lane_answers_plain_searches_as_the_full_route_does(shared):
    app, client = shared
    url = f"/api/datasets/{DATASET}/search"
    lane = fast_lane(app)
    for body in ({"id": 700026, "k": 5}, {"text": "stolen card", "k": 4, "label": ["lost_card"]}):
        before = lane.answered
        fast = await client.post(url, json=body)
        assert lane.answered == before + 1
        # A request with an Origin header goes the full way (CORS): the same answer, byte for byte.
        full = await client.post(url, json=body, headers={"Origin": "http://elsewhere.example"})
        assert lane.answered == before + 1
        assert (fast.status_code, fast.content) == (full.status_code, full.content)
        assert fast.headers["content-type"] == full.headers["content-type"] == "application/json"
    before = lane.answered
    refused = await client.post(url, content=b'{"k": 3', headers={"Content-Type": "application/json"})
    assert refused.status_code == 422 and refused.json()["code"]  # the error model, from the full path
    missing = await client.post("/api/datasets/nope/search", json={"id": 1})
    assert missing.status_code == 404 and "nope" in missing.json()["message"]
    assert lane.answered == before


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"k": 3}, 422, "body"),
    ({"text": "x", "id": 700001}, 422, "body"),
    ({"text": "", "k": 3}, 422, "body.text"),
    ({"text": " \n\t ", "k": 3}, 422, "body.text"),  # blank: no words to search for
    ({"text": "card", "k": 0}, 422, "body.k"),
    ({"text": "card", "label": "lost_card"}, 422, "body.label"),  # a list, not a string
    ({"id": 123456789}, 404, None),
])
async def test_search_bad_input(shared, body, status, field):
    _, client = shared
    response = await client.post(f"/api/datasets/{DATASET}/search", json=body)
    assert response.status_code == status, response.text
    if field:
        assert response.json()["field"] == field


async def test_views_rank_what_was_planted(shared):
    _, client = shared
    base = f"/api/datasets/{DATASET}"
    issues = (await client.get(f"{base}/issues", params={"limit": 3})).json()
    assert [p["id"] for p in issues["data"]] == sorted(PLANTED, key=lambda r: -PLANTED[r][2])
    assert issues["count"] == N_POINTS - N_UNLABELLED and issues["next_cursor"]
    assert issues["data"][0]["suggested_label"] == "transfer_money" and issues["data"][0]["reasons"]
    everything, _ = await _all_pages(client, f"{base}/issues", {"limit": 7})
    assert len(everything) == N_POINTS - N_UNLABELLED
    assert [p["mislabel_score"] for p in everything] == sorted((p["mislabel_score"] for p in everything), reverse=True)
    triaged = (await client.get(f"{base}/issues", params={"triage": "model_error"})).json()
    assert [p["id"] for p in triaged["data"]] == [700013]

    disagreements = (await client.get(f"{base}/disagreements", params={"min_confidence": 0.8})).json()
    assert [p["id"] for p in disagreements["data"]] == [700002, 700013]

    suggestions, _ = await _all_pages(client, f"{base}/suggestions", {"limit": 4})
    assert len(suggestions) == N_UNLABELLED and all(s["label"] is None for s in suggestions)
    confs = [s["suggestion_confidence"] for s in suggestions]
    assert confs == sorted(confs, reverse=True) and all(s["agreement"] == 0.75 for s in suggestions)

    clusters = (await client.get(f"{base}/clusters")).json()
    assert [c["id"] for c in clusters["data"]] == [1, 0, 2]  # by error rate
    by_size = (await client.get(f"{base}/clusters", params={"sort": "size"})).json()
    assert [c["id"] for c in by_size["data"]] == [0, 1, 2]
    members, cursor = [], None
    for _ in range(20):
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        cluster_two = (await client.get(f"{base}/clusters/2", params=params)).json()
        members.extend(cluster_two["members"]["data"])
        cursor = cluster_two["members"]["next_cursor"]
        if cursor is None:
            break
    assert cluster_two["name"] == "card lost" and cluster_two["members"]["count"] == len(members) > 3
    assert all(m["cluster"] == 2 for m in members)
    assert (await client.get(f"{base}/clusters/9")).status_code == 404

    dupes = (await client.get(f"{base}/duplicates")).json()
    assert dupes["duplicates"]["groups"] == [[700001, 700009]] and "pairs" in dupes["leakage"]
    classes = (await client.get(f"{base}/classes", params={"split": "testing"})).json()
    assert list(classes["splits"]) == ["testing"] and classes["model_version"] == "v1"
    assert classes["splits"]["testing"]["confusion"]["labels"] == list(LABELS)
    assert (await client.get(f"{base}/classes", params={"split": "nope"})).status_code == 404
    assert (await client.get(f"{base}/classes", params={"model_version": "v9"})).status_code == 404
    advice = (await client.get(f"{base}/advice")).json()
    assert advice["advice"]["merge"][0]["labels"] == ["transfer_money", "check_balance"]
    report = (await client.get(f"{base}/report")).json()
    assert report["run_id"] == "run-1" and len(report["clusters"]) == 3


async def test_other_model_and_unanalysed_dataset(shared):
    app, client = shared
    ws = app.state.api.workspace
    # A dataset embedded by another model (dimension 16): not analysed, not predicted, not text-searchable.
    ingest(ws.catalog, FakeEmbedder(dim=16), "other", make_sources([HUMANLOOP_SMALL], "humanloop"))
    for view in ("issues", "suggestions", "clusters", "duplicates", "classes", "advice", "report"):
        response = await client.get(f"/api/datasets/other/{view}")
        assert response.status_code == 409, view
        assert "not analysed yet" in response.json()["message"]
    response = await client.get("/api/datasets/other/disagreements")
    assert response.status_code == 409 and "predict" in response.json()["message"]
    assert (await client.post("/api/datasets/other/search", json={"text": "card"})).status_code == 422
    assert (await client.post("/api/datasets/other/search", json={"id": 700026, "k": 2})).status_code == 200
    across = (await client.post("/api/search", json={"text": "stolen card", "k": 5})).json()
    assert across["count"] == 5 and {h["dataset"] for h in across["data"]} == {DATASET}
    response = await client.post("/api/search", json={"text": "card", "datasets": [DATASET, "other"]})
    assert response.status_code == 422 and response.json()["field"] == "body.datasets"
    response = await client.post("/api/search", json={"text": "card", "datasets": ["missing"]})
    assert response.status_code == 404


async def test_export_without_changes_is_the_original_file(shared):
    _, client = shared
    response = await client.get(f"/api/datasets/{DATASET}/export")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == f'attachment; filename="{DATASET}.json"'
    exported = sorted(response.json(), key=lambda r: r["id"])
    assert exported == sorted(original_records(), key=lambda r: r["id"])
    as_jsonl = await client.get(f"/api/datasets/{DATASET}/export", params={"format": "jsonl"})
    lines = [json.loads(line) for line in as_jsonl.text.splitlines()]
    assert len(lines) == N_POINTS and {"id", "text", "label", "split", "project_id"} <= set(lines[0])
    as_csv = await client.get(f"/api/datasets/{DATASET}/export", params={"format": "csv"})
    assert as_csv.text.splitlines()[0].startswith("id,text,label,split") and len(as_csv.text.splitlines()) == 38
    bad = await client.get(f"/api/datasets/{DATASET}/export", params={"format": "xml"})
    assert bad.status_code == 422


async def test_prediction_routes_are_mounted_with_the_error_model(shared):
    _, client = shared
    models = await client.get("/models")
    assert models.status_code == 200 and models.json()["count"] == 0
    response = await client.post("/predict", json={"text": "lost card"})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_map_gzip_bytes_are_gzip(shared):
    app, client = shared
    snap = app.state.api.views.snapshots.peek(DATASET)
    assert snap is not None
    assert json.loads(gzip.decompress(snap.map_json(gzipped=True))) == json.loads(snap.map_json())


async def test_a_dataset_without_predictions_answers_409_saying_which_steps_to_run(shared):
    app, client = shared
    ingest_fixture(app, "bare")
    for url, params in (("/api/datasets/bare/issues", {}), ("/api/datasets/bare/suggestions", {}),
                        ("/api/datasets/bare/queue", {"strategy": "entropy"})):
        response = await client.get(url, params=params)
        assert response.status_code == 409, (url, response.text)
        assert "predict" in response.json()["message"], response.text
    assert "train" in (await client.get("/api/datasets/bare/issues")).json()["message"]
    random_queue = await client.get("/api/datasets/bare/queue", params={"strategy": "random", "limit": 2})
    assert random_queue.status_code == 200 and len(random_queue.text.splitlines()) == 3
