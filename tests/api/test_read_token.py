"""The optional read token (issue 13.9): with DATA_DEBUGGER_READ_TOKEN set, every route but the health check
and the API docs answers 401 without a token and serves the read (or the write) token; writes still need the
write token; the dashboard's client and the CLI's dashboard send it."""

from __future__ import annotations

import base64
import re

import pytest

from dashboard.client import ApiClient
from service.api.app import api_routes
from service.api.auth import OPEN_PATHS
from service.api.commands import ServeContext, dashboard_token
from service.api.deps import Writer
from service.errors import DataDebuggerError
from tests.api.conftest import DATASET, ingest_fixture, plant_analysis, running, settings_in
from tests.servers import serve_app

pytestmark = pytest.mark.anyio

READ, WRITE, KEY, HOOK = "r3ad-token", "wr1te-token", "pred1ct-key", "h00k-secret"
SAMPLE = {"dataset": DATASET, "point_id": "700001", "cluster_id": "0", "change_id": "1", "run_id": "nope",
          "project": DATASET, "version": "v1", "kind": "points"}
BODIES = {"search_dataset": {"text": "card"}, "search_all": {"text": "card"}, "predict": {"texts": ["card"]},
          "project_predict": {"texts": ["card"]}, "label_point": {"action": "reviewed"},
          "start_run": {"step": "no-such-step"}}


def routes_of(app) -> list[tuple[str, str, str, bool]]:
    """(method, url, operation id, is a write) for every route, with sample path values."""
    out = []
    for route in api_routes(app.routes):
        url = re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], route.path)
        write = any(d.dependency is Writer.dependency for d in route.dependencies)
        for method in sorted(route.methods or ()):
            out.append((method, url, route.operation_id, write))
    return out


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def test_every_route_but_health_and_docs_needs_a_token(tmp_path):
    settings = settings_in(tmp_path, read_token=READ, token=WRITE)
    async with running(settings) as (app, client):
        ingest_fixture(app)
        plant_analysis(app)
        checked = 0
        for method, url, op, write in routes_of(app):
            kwargs = {"json": BODIES[op]} if op in BODIES else {}
            if url in OPEN_PATHS:
                assert (await client.request(method, url)).status_code == 200, url
                continue
            for token in (None, "wrong"):
                refused = await client.request(method, url, headers=auth(token), **kwargs)
                assert refused.status_code == 401, (op, token, refused.status_code, refused.text)
                assert refused.headers["www-authenticate"] == "Bearer" and READ not in refused.text
            if op == "delete_dataset":
                continue  # reached with the right token it would drop the fixture; its write check is below
            with_read = await client.request(method, url, headers=auth(READ), **kwargs)
            if write:
                assert with_read.status_code == 401, (op, with_read.text)  # the read token does not write
            else:
                assert with_read.status_code != 401, (op, with_read.text)
            with_write = await client.request(method, url, headers=auth(WRITE), **kwargs)
            assert with_write.status_code != 401, (op, with_write.text)  # the write token reads and writes
            checked += 1
        assert checked >= 30
        for url in ("/api/health", "/openapi.json", "/docs"):
            assert (await client.get(url)).status_code == 200, url
        # Paths that match no route answer 401 too: a client without a token learns nothing of the routes.
        assert (await client.get("/api/nothing-here")).status_code == 401
        assert (await client.delete(f"/api/datasets/{DATASET}", headers=auth(READ))).status_code == 401


async def test_reads_that_matter_serve_their_data_with_the_read_token(tmp_path):
    settings = settings_in(tmp_path, read_token=READ)
    async with running(settings) as (app, client):
        ingest_fixture(app)
        plant_analysis(app)
        for url in (f"/api/datasets/{DATASET}/export", f"/api/datasets/{DATASET}/changes", "/api/runs",
                    f"/api/datasets/{DATASET}/points", "/api/datasets"):
            assert (await client.get(url)).status_code == 401, url
            assert (await client.get(url, headers=auth(READ))).status_code == 200, url
        # The search fast lane answers only a request the guard lets through.
        lane = app.middleware_stack
        before = lane.answered
        assert (await client.post(f"/api/datasets/{DATASET}/search", json={"text": "card"})).status_code == 401
        assert lane.answered == before
        hit = await client.post(f"/api/datasets/{DATASET}/search", json={"text": "card"}, headers=auth(READ))
        assert hit.status_code == 200 and hit.json()["count"] > 0 and lane.answered == before + 1
        # With only a read token, that token also writes (there is no write token to ask for).
        done = await client.post(f"/api/datasets/{DATASET}/points/700001/label", json={"action": "reviewed"},
                                 headers=auth(READ))
        assert done.status_code == 200


async def test_prediction_routes_take_their_own_key(tmp_path):
    settings = settings_in(tmp_path, read_token=READ, prediction_api_key=KEY, label_studio_webhook_secret=HOOK)
    async with running(settings) as (_, client):
        assert (await client.get("/models")).status_code == 401
        assert (await client.get("/models", headers={"X-API-Key": "wrong"})).status_code == 401
        assert (await client.get("/models", headers={"X-API-Key": KEY})).status_code == 200
        # The prediction key opens the prediction routes only, not the debugger's data.
        assert (await client.get("/api/datasets", headers={"X-API-Key": KEY})).status_code == 401
        # Label Studio's ML backend sends the key as the Basic auth password, its webhook its own secret.
        basic = {"Authorization": "Basic " + base64.b64encode(f"ls:{KEY}".encode()).decode()}
        assert (await client.get(f"/label-studio/ml/{DATASET}/health")).status_code == 401
        assert (await client.get(f"/label-studio/ml/{DATASET}/health", headers=basic)).status_code == 200
        hook = f"/api/datasets/{DATASET}/label-studio/webhook"
        assert (await client.post(hook, json={"action": "PROJECT_UPDATED"})).status_code == 401
        passed = await client.post(hook, json={"action": "PROJECT_UPDATED"}, headers={"X-Data-Debugger-Secret": HOOK})
        assert passed.status_code != 401, passed.text


async def test_without_a_read_token_reads_stay_open(shared):
    _, client = shared
    assert (await client.get("/api/runs")).status_code == 200


def test_dashboard_client_and_cli_send_the_token(tmp_path):
    from embeddings.embedder import FakeEmbedder
    from service.api.app import create_app

    settings = settings_in(tmp_path, read_token=READ)
    assert dashboard_token(ServeContext(settings, "127.0.0.1", "")) == READ
    both = settings_in(tmp_path, read_token=READ, token=WRITE)
    assert dashboard_token(ServeContext(both, "127.0.0.1", "")) == WRITE  # it relabels, and the write token reads
    with serve_app(create_app(settings, embedder=FakeEmbedder())) as url:
        assert ApiClient(url, token=READ).get("/api/datasets")["count"] == 0
        with pytest.raises(DataDebuggerError, match="401"):
            ApiClient(url).get("/api/datasets")
