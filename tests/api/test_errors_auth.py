"""The error model and limits: bearer token on writes, 503 while the store is locked or unreachable (and
recovery), 500 without internals, CORS, and the audit log and runs surviving a restart."""

from __future__ import annotations

import pytest

from embeddings.store import EdgeStore, MetadataStore
from service.runs.records import RUNS_COLLECTION, Run
from tests.api.conftest import DATASET, ingest_fixture, running, settings_in

pytestmark = pytest.mark.anyio


async def test_token_guards_every_write_but_no_read(tmp_path):
    settings = settings_in(tmp_path, token="s3cret")
    async with running(settings) as (app, client):
        ingest_fixture(app)
        writes = [
            ("post", f"/api/datasets/{DATASET}/points/700001/label", {"json": {"action": "reviewed"}}),
            ("post", f"/api/datasets/{DATASET}/changes/1/undo", {}),
            ("post", f"/api/datasets/{DATASET}/annotations/label-studio", {"json": []}),
            ("post", f"/api/datasets/{DATASET}/runs", {"json": {"step": "analyze"}}),
            ("post", "/api/datasets", {"files": {"file": ("a.csv", b"text\nhi\n")}, "data": {"name": "a"}}),
            ("delete", f"/api/datasets/{DATASET}", {}),
            ("post", f"/models/{DATASET}/v1/promote", {}),
        ]
        for method, url, kwargs in writes:
            missing = await client.request(method, url, **kwargs)
            assert missing.status_code == 401, (url, missing.text)
            assert missing.headers["www-authenticate"] == "Bearer" and missing.json()["code"] == "not_authorized"
            wrong = await client.request(method, url, headers={"Authorization": "Bearer nope"}, **kwargs)
            assert wrong.status_code == 401 and "s3cret" not in wrong.text
        assert (await client.get(f"/api/datasets/{DATASET}/points")).status_code == 200
        assert (await client.post(f"/api/datasets/{DATASET}/search", json={"text": "card"})).status_code == 200
        ok = await client.post(f"/api/datasets/{DATASET}/points/700001/label", json={"action": "reviewed"},
                               headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["review_status"] == "reviewed"


async def test_locked_store_answers_503_then_recovers(tmp_path):
    settings = settings_in(tmp_path)
    holder = EdgeStore(settings.store_dir)  # another "process" holds the embedded store
    try:
        async with running(settings) as (_, client):
            health = await client.get("/api/health")
            assert health.status_code == 503 and health.json()["status"] == "unavailable"
            listing = await client.get("/api/datasets")
            assert listing.status_code == 503 and listing.json()["code"] == "unavailable"
            assert "in use" in listing.json()["message"]
            holder.close()
            assert (await client.get("/api/health")).status_code == 200
            assert (await client.get("/api/datasets")).json()["count"] == 0
    finally:
        holder.close()


class _BrokenCollection:
    """A collection whose server went away mid-request."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            import httpx

            raise httpx.ConnectError("connection refused by 10.0.0.7:6333")

        return fail


async def test_unreachable_store_is_503_and_a_bug_is_500_without_internals(tmp_path, monkeypatch, caplog):
    async with running(settings_in(tmp_path)) as (app, client):
        ingest_fixture(app)
        ws = app.state.api.workspace
        monkeypatch.setattr(ws, "collection", lambda name: _BrokenCollection())
        response = await client.get(f"/api/datasets/{DATASET}/points")
        assert response.status_code == 503 and "10.0.0.7" not in response.text
        monkeypatch.undo()

        def boom(*args, **kwargs):
            raise RuntimeError("secret internals at /srv/data")

        monkeypatch.setattr(app.state.api.workspace.catalog, "names", boom)
        with caplog.at_level("ERROR"):
            response = await client.get("/api/datasets")
        assert response.status_code == 500 and response.json()["code"] == "internal_error"
        assert "secret" not in response.text and "Traceback" not in response.text
        assert any("secret internals" in (r.exc_text or "") for r in caplog.records)  # logged with traceback


async def test_cors_from_settings(tmp_path):
    async with running(settings_in(tmp_path, cors_origins=["http://dash.example"])) as (_, client):
        preflight = await client.options("/api/datasets", headers={
            "Origin": "http://dash.example", "Access-Control-Request-Method": "POST"})
        assert preflight.headers["access-control-allow-origin"] == "http://dash.example"
        other = await client.get("/api/health", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers


async def test_audit_log_and_runs_survive_a_restart(tmp_path):
    settings = settings_in(tmp_path)
    async with running(settings) as (app, client):
        ingest_fixture(app)
        changed = await client.post(f"/api/datasets/{DATASET}/points/700001/label",
                                    json={"action": "relabel", "label": "lost_card", "user": "ana"})
        assert changed.status_code == 200
        done = await client.post(f"/api/datasets/{DATASET}/runs", json={"step": "ingest", "options": {
            "path": str(app.state.api.settings.home / "missing.json")}})
        assert done.status_code == 422  # not a file: refused before queueing
        # A run record left "running" by a process that died.
        ghost = Run(id="00000000000000aa", dataset=DATASET, step="analyze", params={}, status="running")
        MetadataStore(app.state.api.workspace.store, RUNS_COLLECTION).put(ghost.id, ghost.to_dict())
    async with running(settings) as (_, client):
        log = (await client.get(f"/api/datasets/{DATASET}/changes")).json()
        assert log["count"] == 1 and log["data"][0]["user"] == "ana" and log["data"][0]["new"]["label"] == "lost_card"
        point = (await client.get(f"/api/datasets/{DATASET}/points/700001", params={"k": 0})).json()
        assert point["label"] == "lost_card" and point["revision"] == 1
        ghost_now = (await client.get("/api/runs/00000000000000aa")).json()
        assert ghost_now["status"] == "interrupted" and ghost_now["error"]["code"] == "interrupted"
        undone = await client.post(f"/api/datasets/{DATASET}/changes/1/undo")
        assert undone.status_code == 200 and undone.json()["label"] == "check_balance"
