"""Uploads (streamed, size-limited, validated like the CLI), background runs of the real steps
(train -> predict -> analyze on an uploaded file), run records, and delete."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.api.conftest import FIXTURES, HUMANLOOP_SMALL, LABELS, N_POINTS, original_records, running, settings_in

pytestmark = pytest.mark.anyio

BAD = FIXTURES.parent.parent / "fixtures" / "bad"


def multipart(path, **fields):
    files = {"file": (path.name, path.read_bytes(), "application/octet-stream")}
    return {"files": files, "data": {k: str(v).lower() if isinstance(v, bool) else v for k, v in fields.items()}}


async def wait_for(client, run_id: str, timeout: float = 120) -> dict:
    for _ in range(int(timeout / 0.05)):
        body = (await client.get(f"/api/runs/{run_id}")).json()
        if body["status"] not in ("queued", "running"):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


@pytest.fixture(scope="module")
async def service(tmp_path_factory):
    async with running(settings_in(tmp_path_factory.mktemp("uploads"), max_upload_bytes=64_000)) as pair:
        yield pair


async def test_upload_creates_then_updates_a_dataset(service):
    _, client = service
    created = await client.post("/api/datasets", **multipart(HUMANLOOP_SMALL, name="up"))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["dataset"]["points"] == N_POINTS and body["run"]["status"] == "succeeded"
    assert body["run"]["result"]["inserted"] == N_POINTS and body["run"]["step"] == "ingest"
    # The run pre-built the dataset's views: the first page view finds them ready.
    app = service[0]
    ready = app.state.api.views.snapshots.peek("up")
    assert ready is not None and ready._map_json is not None and app.state.api.views.snapshot("up") is ready
    again = await client.post("/api/datasets", **multipart(HUMANLOOP_SMALL, name="up"))
    assert again.status_code == 200 and again.json()["run"]["result"]["unchanged"] == N_POINTS
    exported = (await client.get("/api/datasets/up/export")).json()
    assert sorted(exported, key=lambda r: r["id"]) == sorted(original_records(), key=lambda r: r["id"])


async def test_csv_upload_with_columns_keeps_ids_and_exports_its_columns(service, tmp_path):
    _, client = service
    path = tmp_path / "intents.csv"
    path.write_text("utterance,category,lang\nwhere is my card,lost_card,en\nshow balance,check_balance,en\n")
    for _ in range(2):  # the same file twice: same default ids ("intents:1", ...), so no duplicates
        response = await client.post("/api/datasets", **multipart(
            path, name="csvset", text_column="utterance", label_column="category", split="training"))
        assert response.status_code in (200, 201), response.text
    detail = (await client.get("/api/datasets/csvset")).json()
    assert detail["points"] == 2 and detail["by_split"] == {"training": 2} and detail["format"] == "csv"
    point = (await client.get("/api/datasets/csvset/points/intents:1", params={"k": 0})).json()
    assert point["text"] == "where is my card" and point["record_id"] == "intents:1"
    exported = (await client.get("/api/datasets/csvset/export")).text.splitlines()
    assert exported[0] == "id,utterance,category,lang" and "intents:2,show balance,check_balance,en" in exported
    # Added to Humanloop data, the rows export as Humanloop records, their split as `usage`.
    added = await client.post("/api/datasets", **multipart(
        path, name="up", text_column="utterance", label_column="category", split="validation"))
    assert added.status_code == 200, added.text
    records = {r["id"]: r for r in (await client.get("/api/datasets/up/export")).json()}
    assert records["intents:1"]["usage"] == "validation"
    assert json.loads(records["intents:1"]["data"]) == {"text": "where is my card", "intent": "lost_card"}


async def test_bad_file_is_422_listing_every_problem(service):
    _, client = service
    response = await client.post("/api/datasets", **multipart(BAD / "empty_text.csv", name="bad"))
    assert response.status_code == 422
    body = response.json()
    assert body["problems"] and "record 2" in body["problems"][0] and '"text"' in body["problems"][0]
    assert (await client.get("/api/datasets/bad")).status_code == 404  # nothing was written
    skipped = await client.post("/api/datasets", **multipart(BAD / "empty_text.csv", name="bad", skip_invalid=True))
    assert skipped.status_code == 201 and skipped.json()["run"]["result"]["rejected"] == 1
    assert skipped.json()["dataset"]["points"] == 1


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"name": "bad name"}, "form.name"),
    ({}, "form.name"),
    ({"name": "x", "format": "xml"}, "form.format"),
    ({"name": "x", "colour": "red"}, "form.colour"),
    ({"name": "x", "skip_invalid": "perhaps"}, "form.skip_invalid"),
    ({"name": "x", "split": "train-ish"}, "options.split"),
])
async def test_upload_bad_fields(service, kwargs, field):
    _, client = service
    response = await client.post("/api/datasets", **multipart(HUMANLOOP_SMALL, **kwargs))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field and response.json()["message"].startswith(field)


async def test_upload_errors_speak_of_the_clients_file_and_form_fields(service, tmp_path):
    _, client = service
    path = tmp_path / "intents.csv"
    path.write_text("utterance,intent\nhello,greet\n")
    response = await client.post("/api/datasets", **multipart(path, name="cols"))
    body = response.json()
    assert response.status_code == 422 and body["field"] == "form.text_column", body
    assert "intents.csv" in body["message"] and "uploads" not in body["message"]  # not the server's temp path
    assert "`text_column`" in body["message"] and "--text-column" not in body["message"]
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,greet\n,greet\n")
    refused = (await client.post("/api/datasets", **multipart(bad, name="cols"))).json()
    assert refused["field"] == "form.file" and refused["problems"] and "skip_invalid=true" in refused["message"]


async def test_upload_of_unknown_format_names_the_format_field(service, tmp_path):
    _, client = service
    path = tmp_path / "data.bin"
    path.write_bytes(b"\x89PNG")
    response = await client.post("/api/datasets", **multipart(path, name="png"))
    assert response.status_code == 422 and response.json()["field"] == "form.format"
    assert not list((client_home(service) / "uploads").iterdir())  # the upload was removed


def client_home(service):
    return service[0].state.api.settings.home


async def test_upload_without_file_or_multipart(service):
    _, client = service
    response = await client.post("/api/datasets", data={"name": "nofile"}, files={"x": ("a.txt", b"a")})
    assert response.status_code == 422 and "file" in response.json()["message"]
    response = await client.post("/api/datasets", json={"name": "x"})
    assert response.status_code == 422 and "multipart" in response.json()["message"]


async def test_oversized_uploads_are_413(service):
    _, client = service
    big = b"text\n" + b"a fairly long line of text for the size limit\n" * 2000
    response = await client.post("/api/datasets", files={"file": ("big.csv", big)}, data={"name": "big"})
    assert response.status_code == 413 and response.json()["code"] == "too_large"

    async def chunks():  # no Content-Length: the limit is enforced while streaming
        boundary = b"--xyz\r\n"
        yield boundary + b'Content-Disposition: form-data; name="name"\r\n\r\nbig\r\n'
        yield boundary + b'Content-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
        for _ in range(200):
            yield b"text\n" + b"x" * 1000 + b"\n"
        yield b"\r\n--xyz--\r\n"

    response = await client.post("/api/datasets", content=chunks(),
                                 headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert response.status_code == 413
    big_json = await client.post("/api/datasets/up/annotations/label-studio", json=[{"data": "x" * 70_000}])
    assert big_json.status_code == 413
    assert (await client.get("/api/datasets/big")).status_code == 404


async def test_upload_without_waiting_returns_the_run_to_poll(service):
    _, client = service
    response = await client.post("/api/datasets", **multipart(HUMANLOOP_SMALL, name="later", wait=False))
    assert response.status_code == 202 and response.json()["dataset"] is None
    run = await wait_for(client, response.json()["run"]["id"])
    assert run["status"] == "succeeded" and run["progress"]["stage"] == "done"
    assert run["progress"]["done"] == N_POINTS and run["params"]["original_name"] == HUMANLOOP_SMALL.name


async def test_upload_waiting_too_long_answers_202(service, monkeypatch):
    from service.api.routers import datasets

    monkeypatch.setattr(datasets, "UPLOAD_WAIT_SECONDS", 0.0)
    response = await client_post_upload(service, "slow")
    assert response.status_code == 202 and response.json()["dataset"] is None
    run = await wait_for(service[1], response.json()["run"]["id"])
    assert run["status"] == "succeeded"  # the ingest went on: only the wait gave up


async def client_post_upload(service, name: str):
    return await service[1].post("/api/datasets", **multipart(HUMANLOOP_SMALL, name=name))


async def test_train_predict_analyze_runs_feed_the_views(service):
    _, client = service
    await client.post("/api/datasets", **multipart(HUMANLOOP_SMALL, name="steps"))
    for step, options in (("train", {"folds": 3}), ("predict", {}), ("analyze", {"seed": 1})):
        response = await client.post("/api/datasets/steps/runs", json={"step": step, "options": options})
        assert response.status_code == 202, response.text
        run = await wait_for(client, response.json()["id"])
        assert run["status"] == "succeeded", run["error"]
    detail = (await client.get("/api/datasets/steps")).json()
    assert detail["model_versions"][0]["version"] == "v1" and detail["analysis_run"]
    assert sum(detail["by_status"].values()) == N_POINTS
    issues = (await client.get("/api/datasets/steps/issues", params={"limit": 5})).json()
    scores = [p["mislabel_score"] for p in issues["data"]]
    assert issues["count"] == 31 and scores == sorted(scores, reverse=True)
    suggestions = (await client.get("/api/datasets/steps/suggestions")).json()
    assert suggestions["count"] == 6 and all(s["suggested_label"] for s in suggestions["data"])
    classes = (await client.get("/api/datasets/steps/classes", params={"split": "testing"})).json()
    assert classes["model_version"] == "v1" and classes["splits"]["testing"]["confusion"]["matrix"]
    trained = (await client.get("/api/datasets/steps/classes", params={"model_version": "v1"})).json()
    assert trained["model_version"] == "v1"
    mapped = (await client.get("/api/datasets/steps/map")).json()
    assert all(x is not None for x in mapped["x"]) and mapped["analysis_run"] == detail["analysis_run"]
    models = (await client.get("/models", params={"dataset": "steps"})).json()
    assert models["count"] == 1
    predicted = await client.post("/projects/steps/predict", json={"data": [{"text": "my card was stolen"}]})
    assert predicted.status_code == 200 and predicted.json()[0]["predictions"]
    # The all-in-one app serves the whole prediction API: one query, one version in full.
    intent = await client.get("/intent", params={"query": "my card was stolen", "project": "steps"})
    assert intent.status_code == 200 and intent.headers["X-Model-Version"] == "v1"
    assert intent.json()["intent"] in LABELS and 0 < intent.json()["probability"] <= 1
    model = (await client.get("/models/steps/v1")).json()
    assert model["version"] == "v1" and model["production"] is False and model["metrics"]  # none promoted yet


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"step": "dance"}, 422, "body.step"),
    ({"step": "train", "options": {"folds": "five"}}, 422, "options.folds"),
    ({"step": "train", "options": {"registry": "x"}}, 422, "options.registry"),
    ({"step": "train", "options": {"model": "bogus"}}, 422, "options.model"),
    ({"step": "train", "options": {"folds": 1}}, 422, "options.folds"),
    ({"step": "analyze", "options": {"seed": -1}}, 422, "options.seed"),
    ({"step": "ingest", "path": "/etc/passwd"}, 422, "options.path"),
    ({"step": "ingest"}, 422, "options.path"),
])
async def test_run_bad_input(service, body, status, field):
    _, client = service
    response = await client.post("/api/datasets/up/runs", json=body)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field


async def test_runs_list_pages_and_unknown_run(service):
    _, client = service
    missing = await client.post("/api/datasets/nope/runs", json={"step": "train"})
    assert missing.status_code == 404
    seen, cursor, total = [], None, None
    for _ in range(50):
        body = (await client.get("/api/runs", params={"limit": 2, **({"cursor": cursor} if cursor else {})})).json()
        total = body["count"]
        seen.extend(r["id"] for r in body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == total >= 3
    only = (await client.get("/api/runs", params={"dataset": "later"})).json()
    assert only["count"] == 1 and only["data"][0]["dataset"] == "later"
    assert (await client.get("/api/runs/0123456789abcdef")).status_code == 404


async def test_delete_dataset(service):
    _, client = service
    await client.post("/api/datasets", **multipart(HUMANLOOP_SMALL, name="gone"))
    await client.post("/api/datasets/gone/points/700001/label", json={"action": "reviewed"})
    assert (await client.delete("/api/datasets/gone")).status_code == 204
    assert (await client.get("/api/datasets/gone")).status_code == 404
    assert (await client.delete("/api/datasets/gone")).status_code == 404
    recreated = await client.post("/api/datasets", **multipart(HUMANLOOP_SMALL, name="gone"))
    assert recreated.status_code == 201
    assert (await client.get("/api/datasets/gone/changes")).json()["count"] == 0  # the old log went with it


async def test_uploading_the_datasets_own_export_changes_nothing_and_revisions_only_move_on(service, tmp_path):
    _, client = service
    created = await client.post("/api/datasets", **multipart(HUMANLOOP_SMALL, name="reup"))
    assert created.status_code == 201, created.text
    url = "/api/datasets/reup/points/700002"
    relabelled = await client.post(f"{url}/label", json={"action": "relabel", "label": "lost_card",
                                                         "reason": "wrong_label"})
    assert relabelled.status_code == 200, relabelled.text
    before = (await client.get(url, params={"k": 0})).json()
    assert before["revision"] == 1 and before["review_status"]
    exported = tmp_path / "reup.json"
    exported.write_bytes((await client.get("/api/datasets/reup/export")).content)
    again = await client.post("/api/datasets", **multipart(exported, name="reup"))
    assert again.status_code == 200 and again.json()["run"]["result"]["updated"] == 0
    after = (await client.get(url, params={"k": 0})).json()
    assert after == before  # the relabel, its review state and revision all kept
    # A record that really changed is written anew, and its revision moves on from the stored one.
    records = json.loads(exported.read_text())
    for record in records:
        if record["id"] == 700002:
            record["data"] = json.dumps({"text": "my card is gone", "intent": "lost_card"})
    exported.write_text(json.dumps(records))
    changed = await client.post("/api/datasets", **multipart(exported, name="reup"))
    assert changed.json()["run"]["result"]["updated"] == 1
    point = (await client.get(url, params={"k": 0})).json()
    assert point["text"] == "my card is gone" and point["revision"] == 2
    stale = await client.post(f"{url}/label", json={"action": "reviewed", "revision": 1})
    assert stale.status_code == 409
