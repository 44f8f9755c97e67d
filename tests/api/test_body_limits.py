"""Request bodies are bounded per route (issue 13.5): a body over its route's limit is refused with 413 before
it is parsed, whether it declares its length or streams without one, and the limits are in the OpenAPI
document. The requests are driven through the app's ASGI interface, so the test sees how many body bytes the
service pulled and how much memory the refusal cost."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator

import pytest

from service.api.limits import DEFAULT_BODY, PREDICT_BODY
from tests.api.conftest import DATASET, ingest_fixture, running, settings_in

pytestmark = pytest.mark.anyio

IMPORT_LIMIT = 1024 * 1024
IMPORT = f"/api/datasets/{DATASET}/annotations/label-studio"
CHUNK = 64 * 1024


def tasks(n: int) -> Iterator[bytes]:
    """A Label Studio export of n tasks, as the chunks a client would stream (never held whole)."""
    yield b"["
    buffer = []
    for i in range(n):
        task = {"id": i, "data": {"point_id": 700001, "text": "lost my card"},
                "annotations": [{"result": [{"type": "choices", "value": {"choices": ["lost_card"]}}]}]}
        buffer.append(("," if i else "") + json.dumps(task))
        if len(buffer) == 500:
            yield "".join(buffer).encode()
            buffer = []
    yield ("".join(buffer) + "]").encode()


class Client:
    """One request straight through the app's ASGI interface, counting the body bytes the app pulls."""

    def __init__(self, chunks: Iterator[bytes]):
        self.chunks = chunks
        self.pulled = 0
        self.status: int | None = None
        self.body = b""

    async def receive(self) -> dict:
        chunk = next(self.chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        self.pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    async def post(self, app, path: str, length: int | None = None, root: str = "") -> Client:
        headers = [(b"content-type", b"application/json"), (b"host", b"test")]
        if length is not None:
            headers.append((b"content-length", str(length).encode()))
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": root + path, "raw_path": (root + path).encode(), "root_path": root,
                 "query_string": b"",
                 "headers": headers, "client": ("127.0.0.1", 50000), "server": ("test", 80)}
        await app(scope, self.receive, self.send)
        return self


@pytest.fixture(scope="module")
async def small_limits(tmp_path_factory):
    async with running(settings_in(tmp_path_factory.mktemp("limits"), max_import_bytes=IMPORT_LIMIT)) as (app, c):
        ingest_fixture(app)
        yield app, c


async def test_a_declared_length_over_the_limit_is_refused_unread(small_limits):
    app, _ = small_limits
    audit = len(app.state.api.audits.get(app.state.api.workspace.store, DATASET))
    done = await Client(tasks(1_000_000)).post(app, IMPORT, length=150_000_000)
    assert done.status == 413 and done.pulled == 0, (done.status, done.pulled)
    assert "DATA_DEBUGGER_MAX_IMPORT_BYTES" in json.loads(done.body)["message"]
    assert len(app.state.api.audits.get(app.state.api.workspace.store, DATASET)) == audit  # nothing applied


async def test_a_streamed_million_task_import_stops_at_the_limit(small_limits):
    app, _ = small_limits
    audit = len(app.state.api.audits.get(app.state.api.workspace.store, DATASET))
    tracemalloc.start()
    try:
        done = await Client(tasks(1_000_000)).post(app, IMPORT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"1M-task import refused after {done.pulled:,} bytes, peak traced memory {peak / 2**20:.1f} MiB")
    assert done.status == 413, (done.status, done.body[:300])
    assert IMPORT_LIMIT < done.pulled <= IMPORT_LIMIT + CHUNK  # stopped at the limit, of a ~150 MB body
    assert peak < 16 * 2**20  # the whole body would be ~150 MB of bytes and several times that parsed
    assert len(app.state.api.audits.get(app.state.api.workspace.store, DATASET)) == audit


async def test_a_body_under_the_limit_is_served(small_limits):
    app, client = small_limits
    small = b"".join(tasks(3))
    got = await client.post(IMPORT, content=small, headers={"content-type": "application/json"})
    assert got.status_code == 200 and got.json()["applied"] + got.json()["unchanged"] == 3, got.text


async def test_limits_follow_the_route_behind_a_root_path(small_limits):
    app, _ = small_limits  # a proxy mounting the service under /dd: the import keeps its own limit
    under = await Client(iter([b"".join(tasks(2000))])).post(app, IMPORT, root="/dd")
    assert under.status == 200 and 100_000 < under.pulled < IMPORT_LIMIT, (under.status, under.body[:200])
    over = await Client(tasks(1_000_000)).post(app, IMPORT, length=IMPORT_LIMIT + 1, root="/dd")
    assert over.status == 413 and over.pulled == 0


async def test_each_route_has_its_own_limit(small_limits):
    _, client = small_limits
    big_evidence = {"action": "reviewed", "evidence": {"note": "x" * (DEFAULT_BODY + 10)}}
    label = await client.post(f"/api/datasets/{DATASET}/points/700001/label", json=big_evidence)
    assert label.status_code == 413 and label.json()["code"] == "too_large", label.text
    search = await client.post(f"/api/datasets/{DATASET}/search", json={"text": "card", "contains": "x" * DEFAULT_BODY})
    assert search.status_code == 413, search.text
    # The same size is fine where the route takes more: an upload (here refused for its format, not its size).
    upload = await client.post("/api/datasets", files={"file": ("big.bin", b"x" * (DEFAULT_BODY + 10))},
                               data={"name": "big"})
    assert upload.status_code == 422 and upload.json()["field"] == "form.format", upload.text
    # A route that takes no body reads none of a large one.
    promote = await client.post(f"/models/{DATASET}/v1/promote", content=b"x" * (DEFAULT_BODY + 10))
    assert promote.status_code == 413, promote.text


async def test_the_limits_are_in_the_openapi_document(small_limits):
    _, client = small_limits
    paths = (await client.get("/openapi.json")).json()["paths"]
    ls_import = paths["/api/datasets/{dataset}/annotations/label-studio"]["post"]
    assert ls_import["x-max-body-bytes"] == IMPORT_LIMIT
    assert "DATA_DEBUGGER_MAX_IMPORT_BYTES" in ls_import["description"] and "413" in ls_import["responses"]
    assert paths["/api/datasets/{dataset}/search"]["post"]["x-max-body-bytes"] == DEFAULT_BODY
    assert paths["/api/datasets"]["post"]["x-max-body-bytes"] == 200 * 1024 * 1024
    assert paths["/predict"]["post"]["x-max-body-bytes"] == PREDICT_BODY
    assert "413" in paths["/api/datasets/{dataset}/search"]["post"]["responses"]
