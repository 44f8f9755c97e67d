"""A crash in the middle of analyze's write-back is visible (issue 13.7): the points mix two runs, so the
dataset detail, `data-debugger datasets` and the dashboard say "analysis incomplete: re-run analyze", the API
serves no report that does not match the points (409 naming the fix), and a full re-run clears it all."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter

import pytest

from embeddings.embedder import FakeEmbedder
from embeddings.store import load_all
from service.analyses import runner
from service.analyses.report import begin_writeback, interrupted_writeback, load_report, writeback_path
from service.analyses.runner import analyze
from service.cli import main
from service.errors import Conflict
from tests.analyses.conftest import DATASET, DIM
from tests.api.conftest import running
from tests.conftest import REPO

BATCH = 100


def runs_on_points(settings) -> Counter:
    from service.workspace import Workspace

    with Workspace(settings, embedder=FakeEmbedder(DIM)) as ws:
        _, payloads, _ = load_all(ws.collection(DATASET))
    return Counter(p.get("analysis_run") for p in payloads)


def crash_after_first_batch(monkeypatch) -> None:
    """Make the write-back die after its first batch of points reached the store."""
    real = runner.write_payloads

    def first_then_crash(collection, batches):
        real(collection, [next(iter(batches))])
        raise RuntimeError("killed in the middle of the write-back")

    monkeypatch.setattr(runner, "WRITE_BATCH", BATCH)
    monkeypatch.setattr(runner, "write_payloads", first_then_crash)


async def _api_views(settings) -> dict:
    async with running(settings, embedder=FakeEmbedder(DIM)) as (_, client):
        return {path: await client.get(f"/api/datasets/{DATASET}{path}") for path in ("", "/report", "/clusters")}


def test_a_crash_during_the_write_back_is_visible_until_a_run_completes(analysed, monkeypatch, capsys):
    old_run = analysed.report["run_id"]
    with monkeypatch.context() as patched, analysed.workspace() as ws, pytest.raises(RuntimeError, match="killed"):
        crash_after_first_batch(patched)
        analyze(ws, DATASET)
    runs = runs_on_points(analysed.settings)
    marker = interrupted_writeback(analysed.settings, DATASET)
    assert marker is not None and marker["previous_run"] == old_run
    assert runs == {marker["run_id"]: BATCH, old_run: len(analysed.planted.records) - BATCH}
    assert load_report(analysed.settings, DATASET)["run_id"] == old_run  # the old report, no longer true

    views = asyncio.run(_api_views(analysed.settings))
    detail = views[""].json()
    assert detail["analysis_state"] == "incomplete"
    assert detail["analysis_warning"].startswith("analysis incomplete: re-run analyze")
    assert f"data-debugger analyze --dataset {DATASET}" in detail["analysis_warning"]
    for path in ("/report", "/clusters"):
        assert views[path].status_code == 409, path
        assert "analysis incomplete: re-run analyze" in views[path].json()["message"]

    monkeypatch.setenv("DATA_DEBUGGER_HOME", str(analysed.settings.home))
    monkeypatch.setenv("DATA_DEBUGGER_FAKE_EMBEDDINGS", "1")
    monkeypatch.setenv("DATA_DEBUGGER_STORE_BACKEND", "edge")
    assert main(["datasets"]) == 0
    assert "analysis incomplete: re-run analyze" in capsys.readouterr().out
    assert main(["datasets", "--json"]) == 0
    assert "re-run analyze" in json.loads(capsys.readouterr().out)[DATASET]["analysis_warning"]

    with analysed.workspace() as ws:
        with pytest.raises(Conflict, match="analysis incomplete.*no --only"):
            analyze(ws, DATASET, analyses=["outliers"])  # a partial run would keep the half-written rest
        report = analyze(ws, DATASET)
    assert runs_on_points(analysed.settings) == {report["run_id"]: len(analysed.planted.records)}
    assert interrupted_writeback(analysed.settings, DATASET) is None
    assert not writeback_path(analysed.settings, DATASET).exists()
    views = asyncio.run(_api_views(analysed.settings))
    assert views[""].json()["analysis_state"] == "complete" and views[""].json()["analysis_warning"] is None
    assert views["/report"].status_code == 200 and views["/report"].json()["run_id"] == report["run_id"]
    assert main(["datasets"]) == 0 and "incomplete" not in capsys.readouterr().out


def test_a_marker_whose_run_wrote_its_report_is_stale(analysed):
    # Killed after the report was written but before the marker was cleared: points and report agree.
    begin_writeback(analysed.settings, DATASET, analysed.report["run_id"], None)
    assert interrupted_writeback(analysed.settings, DATASET) is None
    begin_writeback(analysed.settings, DATASET, "another-run", analysed.report["run_id"])
    assert interrupted_writeback(analysed.settings, DATASET)["run_id"] == "another-run"


def test_the_dashboard_says_analysis_incomplete(analysed, monkeypatch):
    from dashboard.client import ApiClient
    from dashboard.state import DashboardState
    from service.api.app import create_app
    from tests.servers import serve_app

    with monkeypatch.context() as patched, analysed.workspace() as ws, pytest.raises(RuntimeError):
        crash_after_first_batch(patched)
        analyze(ws, DATASET)
    app = create_app(analysed.settings, embedder=FakeEmbedder(DIM))
    with serve_app(app) as url:
        client = ApiClient(url)
        state = DashboardState(client).start(DATASET)
        assert state.message.startswith("analysis incomplete: re-run analyze"), state.message
        assert state.map.size == len(analysed.planted.records)  # the points are still shown
        client.close()


KILLER = textwrap.dedent("""
    import os, signal, sys
    from embeddings.embedder import FakeEmbedder
    from service.analyses import runner
    from service.settings import Settings
    from service.workspace import Workspace

    real = runner.write_payloads

    def first_then_kill(collection, batches):
        real(collection, [next(iter(batches))])
        os.kill(os.getpid(), signal.SIGKILL)  # no finally, no atexit: what a power cut or an OOM kill leaves

    runner.WRITE_BATCH = int(sys.argv[2])
    runner.write_payloads = first_then_kill
    settings = Settings(home=sys.argv[1], fake_embeddings=True, store_backend="edge")
    with Workspace(settings, embedder=FakeEmbedder(int(sys.argv[3]))) as ws:
        runner.analyze(ws, "planted", params={"clusters": {"projection": "pca"}})
""")


@pytest.mark.slow
def test_kill_9_during_the_write_back_leaves_the_state_visible(analysed):
    done = subprocess.run([sys.executable, "-c", KILLER, str(analysed.settings.home), str(BATCH), str(DIM)],
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    marker = interrupted_writeback(analysed.settings, DATASET)
    assert marker is not None and marker["previous_run"] == analysed.report["run_id"]
    runs = runs_on_points(analysed.settings)
    assert runs[marker["run_id"]] == BATCH and runs[analysed.report["run_id"]] == len(analysed.planted.records) - BATCH
    with analysed.workspace() as ws:
        report = analyze(ws, DATASET, params={"clusters": {"projection": "pca"}})
    assert interrupted_writeback(analysed.settings, DATASET) is None
    assert runs_on_points(analysed.settings) == {report["run_id"]: len(analysed.planted.records)}
