"""Integers and names from a request are checked before the store sees them (issue 13.4): point ids at and
past 2^64, clusters and cursors at and past 2^63, and dataset names with a trailing newline or control
characters answer 4xx, never 500, and create nothing."""

from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import quote

import pytest

from embeddings.store import ClientStore, EdgeStore, check_name, point_id
from service.errors import InvalidInput
from tests.api.conftest import DATASET

pytestmark = pytest.mark.anyio

U64 = 2**64
I64 = 2**63
# Dataset names that the old `^...$` rule let through (a final newline) or that carry control characters.
BAD_NAMES = ["hl\n", "hl\r", "hl\t", "hl\x00", "\nhl", "h\x1bl", "hl\u2028", "hl\x7f"]


def cursor_of(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("name", BAD_NAMES)
def test_name_rule_matches_the_whole_name(name):
    with pytest.raises(InvalidInput, match="is not allowed"):
        check_name(name)


def test_point_ids_past_uint64_map_like_any_other_string_id():
    assert point_id(U64 - 1) == U64 - 1 and point_id(str(U64 - 1)) == U64 - 1
    big = point_id(U64)
    assert str(uuid.UUID(big)) == big  # a UUID, as for any id that is not an unsigned 64-bit integer
    assert point_id(str(U64)) == big and point_id(10**30) == point_id(str(10**30))
    assert point_id("\u00b2") != 2 and point_id("\u0661\u0662") != 12  # not ASCII digits: not an int id
    assert isinstance(point_id("9" * 5000), str)  # past Python's int-from-string digit limit


@pytest.mark.parametrize("backend", ["edge", "memory"])
def test_store_takes_every_id_point_id_gives(tmp_path, backend):
    store = EdgeStore(tmp_path / "q") if backend == "edge" else ClientStore(":memory:")
    try:
        collection = store.create("c", 4)
        ids = [point_id(U64 - 1), point_id(U64), point_id(str(10**25))]
        collection.upsert(ids, [[1.0, 0.0, 0.0, 0.0]] * 3, [{"n": 1}, {"n": 2}, {"n": 3}])
        got = {p.id: p.payload["n"] for p in collection.retrieve(ids)}
        assert got == {ids[0]: 1, ids[1]: 2, ids[2]: 3}
    finally:
        store.close()


@pytest.mark.parametrize("raw", [str(U64), str(U64 + 1), "9" * 30, str(I64)])
async def test_point_routes_answer_404_for_ids_past_the_store(shared, raw):
    _, client = shared
    got = await client.get(f"/api/datasets/{DATASET}/points/{raw}")
    assert got.status_code == 404 and raw in got.json()["message"], got.text
    label = await client.post(f"/api/datasets/{DATASET}/points/{raw}/label", json={"action": "reviewed"})
    assert label.status_code == 404, label.text
    by_string = await client.post(f"/api/datasets/{DATASET}/search", json={"id": raw})
    assert by_string.status_code == 404, by_string.text
    changes = await client.get(f"/api/datasets/{DATASET}/changes", params={"point": raw})
    assert changes.status_code == 200 and changes.json()["count"] == 0


@pytest.mark.parametrize("value", [U64, U64 + 1, 10**30, -1])
async def test_search_refuses_an_integer_id_outside_uint64(shared, value):
    _, client = shared
    got = await client.post(f"/api/datasets/{DATASET}/search", json={"id": value})
    assert got.status_code == 422 and got.json()["field"] == "body.id", got.text


async def test_search_takes_the_largest_uint64_id(shared):
    _, client = shared
    got = await client.post(f"/api/datasets/{DATASET}/search", json={"id": U64 - 1})
    assert got.status_code == 404, got.text


@pytest.mark.parametrize("value", [I64, I64 + 1, U64, -2])
async def test_cluster_filters_past_int64_answer_422(shared, value):
    _, client = shared
    listed = await client.get(f"/api/datasets/{DATASET}/points", params={"cluster": value})
    assert listed.status_code == 422 and listed.json()["field"].startswith("query.cluster"), listed.text
    searched = await client.post(f"/api/datasets/{DATASET}/search", json={"text": "card", "cluster": [value]})
    assert searched.status_code == 422, searched.text
    detail = await client.get(f"/api/datasets/{DATASET}/clusters/{value}")
    assert detail.status_code == 422, detail.text


async def test_cluster_filter_at_int64_max_is_an_empty_answer(shared):
    _, client = shared
    listed = await client.get(f"/api/datasets/{DATASET}/points", params={"cluster": I64 - 1})
    assert listed.status_code == 200 and listed.json()["count"] == 0
    detail = await client.get(f"/api/datasets/{DATASET}/clusters/{I64 - 1}")
    assert detail.status_code == 404 and "cluster" in detail.json()["message"], detail.text  # no such cluster


@pytest.mark.parametrize("path,value", [
    ("points", U64), ("points", 10**40), ("changes", I64), ("clusters/0", U64),
])
async def test_cursors_past_the_store_integers_answer_422(shared, path, value):
    _, client = shared
    got = await client.get(f"/api/datasets/{DATASET}/{path}", params={"cursor": cursor_of(value)})
    assert got.status_code == 422 and got.json()["field"] == "query.cursor", got.text


async def test_revision_past_int64_answers_422(shared):
    _, client = shared
    got = await client.post(f"/api/datasets/{DATASET}/points/700001/label",
                            json={"action": "reviewed", "revision": I64})
    assert got.status_code == 422 and got.json()["field"] == "body.revision", got.text


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_names_with_control_characters_answer_422_and_create_nothing(shared, name):
    app, client = shared
    before = app.state.api.workspace.catalog.names()
    encoded = quote(name, safe="")
    for method, url, kwargs in [
        ("get", f"/api/datasets/{encoded}", {}),
        ("get", f"/api/datasets/{encoded}/export", {}),
        ("post", f"/api/datasets/{encoded}/runs", {"json": {"step": "ingest", "options": {"path": "x.csv"}}}),
        ("post", "/api/search", {"json": {"text": "card", "datasets": [name]}}),
    ]:
        got = await client.request(method, url, **kwargs)
        assert got.status_code in (404, 422), (url, got.status_code, got.text)
        if got.status_code == 422:
            assert "not allowed" in got.json()["message"] or got.json()["field"], got.text
    upload = await client.post("/api/datasets", files={"file": ("a.csv", b"text,label\nhi,a\n")},
                               data={"name": f"new{name}x"})  # the form's name is stripped: embed it
    assert upload.status_code == 422 and upload.json()["field"] == "form.name", upload.text
    assert app.state.api.workspace.catalog.names() == before


async def test_a_trailing_newline_cannot_name_a_new_dataset(shared):
    app, client = shared
    state = app.state.api
    state.settings.imports_dir.mkdir(parents=True, exist_ok=True)
    (state.settings.imports_dir / "nl.csv").write_text("text,label\nhello,a\n")
    got = await client.post("/api/datasets/fresh%0A/runs",
                            json={"step": "ingest", "options": {"path": "nl.csv", "format": "csv"}})
    assert got.status_code == 422 and "not allowed" in got.json()["message"], got.text
    assert not any(name.startswith("fresh") for name in state.workspace.catalog.names())
    assert not any(r.dataset.startswith("fresh") for r in state.runs.list(None, None))


async def test_label_studio_tasks_with_ids_past_the_store_are_skipped(shared):
    app, client = shared
    tasks = [{"data": {"point_id": pid}, "annotations": [{"result": [{"type": "choices",
                                                                     "value": {"choices": ["lost_card"]}}]}]}
             for pid in (U64, U64 + 1, 10**30, str(10**30), "\u00b2")]
    got = await client.post(f"/api/datasets/{DATASET}/annotations/label-studio", json=tasks)
    assert got.status_code == 200 and got.json()["applied"] == 0, got.text
    assert len(got.json()["skipped"]) == len(tasks)
