"""`serve()` (the `data-debugger serve` command) on a real uvicorn server on 127.0.0.1: the URLs it prints,
an upload, search, and concurrent relabels of one point over real HTTP connections."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from service.api.commands import serve
from service.cli import build_parser
from tests.api.conftest import HUMANLOOP_SMALL, N_POINTS, settings_in


@pytest.fixture
def live(tmp_path):
    """A served app on a random port; yields its base URL and what serve() printed."""
    settings = settings_in(tmp_path)
    printed: list[str] = []
    servers: list = []
    up = threading.Event()

    def started(server) -> None:
        servers.append(server)
        up.set()

    thread = threading.Thread(target=serve, args=(settings,), kwargs={
        "host": "127.0.0.1", "port": 0, "companions": [], "announce": printed.append, "started": started},
        daemon=True)
    thread.start()
    assert up.wait(60), "the server did not start"
    url = re.search(r"API\s+(http://127\.0\.0\.1:\d+)/api", printed[0]).group(1)
    yield url, printed[0]
    servers[0].should_exit = True
    thread.join(30)
    assert not thread.is_alive()


def test_serve_prints_urls_and_serves_over_real_http(live):
    url, printed = live
    assert f"{url}/docs" in printed and f"{url}/openapi.json" in printed
    with httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/api/health").json()["status"] == "ok"
        created = client.post("/api/datasets", files={"file": (HUMANLOOP_SMALL.name, HUMANLOOP_SMALL.read_bytes())},
                              data={"name": "live"})
        assert created.status_code == 201 and created.json()["dataset"]["points"] == N_POINTS
        hits = client.post("/api/datasets/live/search", json={"text": "stolen card", "k": 3}).json()
        assert len(hits["data"]) == 3 and "card" in hits["data"][0]["text"]
        revision = client.get("/api/datasets/live/points/700010", params={"k": 0}).json()["revision"]

    def relabel(i: int) -> int:
        with httpx.Client(base_url=url, timeout=60) as c:  # one connection per client
            return c.post("/api/datasets/live/points/700010/label", json={
                "action": "relabel", "label": ["lost_card", "transfer_money"][i % 2], "revision": revision,
                "user": f"user{i}"}).status_code

    with ThreadPoolExecutor(12) as pool:
        codes = sorted(pool.map(relabel, range(12)))
    assert codes == [200] + [409] * 11
    with httpx.Client(base_url=url, timeout=60) as client:
        log = client.get("/api/datasets/live/changes", params={"point": "700010"}).json()
        assert log["count"] == 1
        assert client.get("/api/datasets/live/points/700010", params={"k": 0}).json()["revision"] == revision + 1


def test_serve_command_arguments():
    args = build_parser().parse_args(["serve", "--port", "9001", "--no-dashboard"])
    assert args.port == 9001 and args.host is None and args.no_dashboard and args.handler.__name__ == "cmd_serve"
