"""A full disk: writes are refused before they start (507 / one CLI line naming the path and the space
needed), reads go on, health says so, and writing resumes once space is freed.

Where root can mount one, the disk is a real 512 MiB tmpfs filled to within 1 MiB (without the guard, the
embedded store's memory-mapped writes die of SIGBUS or raise ENOSPC there); elsewhere a reserve larger than
the free space stands in for the full disk (`Disk.real` says which ran)."""

from __future__ import annotations

import errno

import pytest

from service.cli import as_os_error, main
from service.settings import Settings
from tests.api.conftest import DATASET, HUMANLOOP_SMALL, ingest_fixture, running

pytestmark = pytest.mark.anyio

# Measured on tmpfs: a new qdrant-edge shard takes ~25 MiB up front, and a dataset's first opening after an
# ingest ~150 MiB (segment files), whatever its size: the reserve must cover one of those.
RESERVE = 256 * 1024 * 1024
BASE = f"/api/datasets/{DATASET}"


def make_low(disk, settings: Settings) -> None:
    """Below the reserve: the disk nearly full for real, or else the reserve raised above the free space."""
    if disk.real:
        disk.fill(leave=1024 * 1024)
    else:
        settings.min_free_bytes = disk.free() + 1024**3


def make_room(disk, settings: Settings) -> None:
    if disk.real:
        disk.empty()
    else:
        settings.min_free_bytes = RESERVE


async def test_writes_answer_507_reads_go_on_and_health_says_so(small_disk):
    settings = Settings(home=small_disk.root / "home", fake_embeddings=True, store_backend="edge",
                        min_free_bytes=RESERVE)
    async with running(settings, model_app=False) as (app, client):
        ingest_fixture(app)
        ingest_fixture(app, "spare")
        points = (await client.get(f"{BASE}/points", params={"limit": 5})).json()["data"]
        # A first relabel creates the dataset's audit log, so that what is measured below is a plain write.
        opened = await client.post(f"{BASE}/points/{points[1]['id']}/label", json={
            "action": "relabel", "label": "lost_card", "revision": points[1]["revision"], "user": "ana"})
        assert opened.status_code == 200, opened.text
        first = points[0]
        pid, revision = first["id"], first["revision"]
        health = (await client.get("/api/health")).json()
        assert health["disk"]["low"] is False and health["disk"]["reserve_bytes"] == RESERVE

        make_low(small_disk, settings)
        refused = await client.post(f"{BASE}/points/{pid}/label", json={
            "action": "relabel", "label": "lost_card", "revision": revision, "user": "ana"})
        assert refused.status_code == 507, refused.text
        body = refused.json()
        assert body["code"] == "insufficient_storage"
        assert str(settings.home) in body["message"] and "DATA_DEBUGGER_MIN_FREE_BYTES" in body["message"]
        run = await client.post(f"{BASE}/runs", json={"step": "analyze"})
        assert run.status_code == 507, run.text

        # Reads are still served, and nothing was written.
        point = await client.get(f"{BASE}/points/{pid}", params={"k": 0})
        assert point.status_code == 200 and point.json()["label"] == first["label"]
        assert (await client.get(f"{BASE}/points", params={"limit": 50})).status_code == 200
        health = await client.get("/api/health")
        assert health.status_code == 200
        disk = health.json()["disk"]
        assert disk["low"] is True and disk["free_bytes"] < disk["reserve_bytes"] == settings.min_free_bytes

        # A delete is let through: it is how space is freed.
        before = small_disk.free()
        assert (await client.delete("/api/datasets/spare")).status_code == 204
        assert (await client.get("/api/datasets/spare")).status_code == 404
        if small_disk.real:
            assert small_disk.free() > before

        make_room(small_disk, settings)
        done = await client.post(f"{BASE}/points/{pid}/label", json={
            "action": "relabel", "label": "lost_card", "revision": revision, "user": "ana"})
        assert done.status_code == 200, done.text
        assert (await client.get("/api/health")).json()["disk"]["low"] is False


@pytest.fixture
def cli_home(small_disk, monkeypatch):
    home = small_disk.root / "home"
    monkeypatch.setenv("DATA_DEBUGGER_HOME", str(home))
    monkeypatch.setenv("DATA_DEBUGGER_FAKE_EMBEDDINGS", "1")
    monkeypatch.setenv("DATA_DEBUGGER_STORE_BACKEND", "edge")
    monkeypatch.setenv("DATA_DEBUGGER_MIN_FREE_BYTES", str(RESERVE))
    return home


def cli_make_low(disk, monkeypatch) -> None:
    if disk.real:
        disk.fill(leave=1024 * 1024)
    else:
        monkeypatch.setenv("DATA_DEBUGGER_MIN_FREE_BYTES", str(disk.free() + 1024**3))


@pytest.mark.parametrize("argv", [
    ["ingest", str(HUMANLOOP_SMALL), "--dataset", "hl"],
    ["analyze", "--dataset", "hl"],
    ["datasets"],  # opening the embedded store replays its log into segments: a write too
])
def test_cli_refuses_in_one_line_naming_the_path_and_the_space(small_disk, cli_home, monkeypatch, capsys, argv):
    assert main(["ingest", str(HUMANLOOP_SMALL), "--dataset", "hl"]) == 0
    capsys.readouterr()
    cli_make_low(small_disk, monkeypatch)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert str(cli_home) in err and "free and writing needs at least" in err
    monkeypatch.setenv("DATA_DEBUGGER_MIN_FREE_BYTES", str(RESERVE))
    if small_disk.real:
        small_disk.empty()
    assert main(["datasets"]) == 0
    assert "hl: 37 points" in capsys.readouterr().out


def test_a_store_error_ending_in_an_os_error_becomes_that_os_error():
    # The shape qdrant-edge raised on the tmpfs above when written with no reserve (a plain Exception).
    raised = Exception("Service runtime error: IO Error: Failed to flush /h/qdrant/data.hl/shard/segment.json: "
                       "No space left on device (os error 28)")
    found = as_os_error(raised)
    assert found is not None and found.errno == errno.ENOSPC
    assert found.filename == "/h/qdrant/data.hl/shard/segment.json"
    assert as_os_error(Exception("collection 'x' already exists")) is None


def test_an_export_to_a_full_device_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    # /dev/full answers every write with ENOSPC, for any user: a real full disk without mounting one.
    monkeypatch.setenv("DATA_DEBUGGER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATA_DEBUGGER_FAKE_EMBEDDINGS", "1")
    monkeypatch.setenv("DATA_DEBUGGER_STORE_BACKEND", "edge")
    assert main(["ingest", str(HUMANLOOP_SMALL), "--dataset", "hl"]) == 0
    capsys.readouterr()
    assert main(["export", "points", "--dataset", "hl", "-o", "/dev/full", "--format", "csv"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: /dev/full: no space left on the device") and err.count("\n") == 1, err
