"""One process holds the store; the others ask it (service.delegate): the CLI beside a real `data-debugger serve`
process does its work through the service's runs and export routes, and on its own again once it stops."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.cli import main
from service.delegate.marker import live_service, marker_path, read_marker, remove_marker, write_marker
from service.settings import Settings
from service.workspace import Workspace
from tests.conftest import REPO
from tests.predictions.conftest import write_planted
from tests.servers import free_port, running

DATASET = "planted"
TOKEN = "delegation-write-token"
THROUGH = re.compile(r"ran through the service at (\S+) \(run ([0-9a-f]{16})\)")
# Only duplicates, outliers and their kNN input: no model, no UMAP compile, so a fresh process is quick.
ANALYSES = ["knn_consistency", "outliers", "duplicates"]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATA_DEBUGGER_", "PREDICTION_API"))}
    return {**env, "PYTHONPATH": str(REPO), "DATA_DEBUGGER_HOME": str(home), "DATA_DEBUGGER_FAKE_EMBEDDINGS": "1",
            "DATA_DEBUGGER_STORE_BACKEND": "edge", "DATA_DEBUGGER_TOKEN": TOKEN}


def _cli(env: dict[str, str], *argv: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "service.cli", *map(str, argv)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def _marker_url(home: Path) -> str:
    """The URL the service's marker names (written just after it starts listening), once it answers."""
    deadline = time.monotonic() + 60
    while (found := live_service(home)) is None:
        assert time.monotonic() < deadline, "the service wrote no marker"
        time.sleep(0.1)
    return found.url


@pytest.mark.slow
def test_cli_commands_beside_a_running_service_go_through_it(tmp_path):
    home = tmp_path / "home"
    env = _env(home)
    planted = write_planted(tmp_path / "planted.csv")

    alone = _cli(env, "ingest", planted.csv, "--dataset", DATASET)
    assert alone.returncode == 0, alone.stderr
    assert "read 200, inserted 200" in alone.stdout and "the service at" not in alone.stderr  # the store itself

    port = free_port()
    command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--no-dashboard"]
    with running(command, f"http://127.0.0.1:{port}", tmp_path / "serve.log", health="/api/health", env=env,
                 cwd=REPO) as serve:
        url = _marker_url(home)
        assert url == serve.url and read_marker(home).pid == serve.process.pid
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30, trust_env=False)

        # analyze: the same step, with --only and --param mapped onto its options, run by the service.
        analyzed = _cli(env, "analyze", "--dataset", DATASET, "--only", *ANALYSES,
                        "--param", "outliers.fence=0.01", "--param", "outliers.min_distance=0")
        assert analyzed.returncode == 0, analyzed.stderr
        through = THROUGH.search(analyzed.stderr)
        assert through and through.group(1) == url, analyzed.stderr
        assert f"analyze {through.group(2)}: done 200/200 (100 %)" in analyzed.stderr  # its progress, followed
        run = api.get(f"/api/runs/{through.group(2)}").json()
        assert (run["step"], run["status"], run["dataset"]) == ("analyze", "succeeded", DATASET)
        assert run["params"]["analyses"] == ANALYSES and run["params"]["params"]["outliers"] == {
            "fence": 0.01, "min_distance": 0}
        analysis = re.search(r"^planted: analysis (\S+) \(model none\), 200 points", analyzed.stdout, re.M)
        assert analysis, analyzed.stdout
        assert api.get(f"/api/datasets/{DATASET}").json()["analysis_run"] == analysis.group(1)
        flagged = int(re.search(r"outlier (\d+)", analyzed.stdout).group(1))
        assert flagged > 0  # the --param reached the service's analysis (the defaults flag none here)

        # ingest: a file outside the service's import roots is uploaded, one inside is read in place.
        outside = tmp_path / "more.csv"
        outside.write_text("text,label\nwhere is my new card,card\ninvoice for march,bill\n")
        inside = home / "imports" / "inside.csv"
        inside.parent.mkdir(parents=True, exist_ok=True)
        inside.write_text("text,label\nsavings rate this year,rates\n")
        ingested = _cli(env, "ingest", outside, inside, "--dataset", DATASET)
        assert ingested.returncode == 0, ingested.stderr
        assert f"{outside} is outside the folders the service reads: uploading it" in ingested.stderr
        assert str(inside) not in ingested.stderr
        runs = [api.get(f"/api/runs/{run_id}").json() for _, run_id in THROUGH.findall(ingested.stderr)]
        assert [r["params"].get("original_name") for r in runs] == ["more.csv", None]
        assert runs[1]["params"]["path"] == str(inside.resolve())
        assert "read 2, inserted 2" in ingested.stdout and "read 1, inserted 1" in ingested.stdout
        assert api.get(f"/api/datasets/{DATASET}").json()["points"] == 203
        bad = tmp_path / "bad.csv"
        bad.write_text("text,label\nfine text,card\n,bill\n")
        refused = _cli(env, "ingest", bad, "--dataset", DATASET)  # the run's error, in the command's own terms
        assert refused.returncode == 2 and 'record 2 (line 3): "text" is empty' in refused.stderr
        assert "run again with --skip-invalid" in refused.stderr and "form field" not in refused.stderr
        assert api.get(f"/api/datasets/{DATASET}").json()["points"] == 203  # nothing written

        # export: downloaded through the export route into the same file.
        via = tmp_path / "via-service.csv"
        exported = _cli(env, "export", "points", "--dataset", DATASET, "-o", via)
        assert exported.returncode == 0, exported.stderr
        assert f"read through the service at {url}" in exported.stderr
        assert f"203 points row(s) written to {via} (csv)" in exported.stderr

        # A command with no counterpart keeps the lock error, now naming where the service answers.
        listed = _cli(env, "datasets")
        assert listed.returncode == 2 and f"its API answers at {url}/api" in listed.stderr
        # A run that fails: exit 2 with the run's own error.
        predicted = _cli(env, "predict", "--dataset", DATASET)
        assert predicted.returncode == 2 and re.search(r"run [0-9a-f]{16} \(predict\) failed: .*no model version",
                                                       predicted.stderr), predicted.stderr
        # Options a step cannot take, or a file the service may not read, are refused before any work starts.
        refused = _cli(env, "train", "--dataset", DATASET, "--from", outside)
        assert refused.returncode == 2 and f"copy the file under {home / 'imports'}" in refused.stderr
        refused = _cli(env, "predict", "--dataset", DATASET, "--api-url", "http://127.0.0.1:9")
        assert refused.returncode == 2 and "--api-url / --project cannot go through the running service" in (
            refused.stderr)
        assert [r["step"] for r in api.get("/api/runs", params={"dataset": DATASET}).json()["data"]] == [
            "predict", "ingest", "ingest", "ingest", "analyze"]
        api.close()
    assert not marker_path(home).exists()  # removed as the service shut down

    # The service gone, the same export opens the store itself and writes the same file.
    direct = tmp_path / "direct.csv"
    exported = _cli(env, "export", "points", "--dataset", DATASET, "-o", direct)
    assert exported.returncode == 0, exported.stderr
    assert "the service at" not in exported.stderr and direct.read_bytes() == via.read_bytes()


def test_a_stale_marker_leaves_the_lock_error(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    for key, value in _env(home).items():
        if key.startswith("DATA_DEBUGGER_"):
            monkeypatch.setenv(key, value)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    with Workspace(Settings()):  # this process holds the store, as a long CLI command would
        for pid, url in [(dead_pid, "http://127.0.0.1:9"), (os.getpid(), f"http://127.0.0.1:{free_port()}")]:
            marker_path(home).write_text(json.dumps({"url": url, "pid": pid, "started": "2026-01-01T00:00:00"}))
            assert main(["export", "points", "--dataset", DATASET]) == 2
            err = capsys.readouterr().err
            assert f"is in use by pid {os.getpid()}" in err and "goes through it" not in err, err
    marker_path(home).unlink()
    assert main(["export", "points", "--dataset", DATASET]) == 2  # free again: the command's own error
    assert "dataset 'planted' does not exist" in capsys.readouterr().err


def test_the_marker_is_whole_and_only_its_writer_removes_it(tmp_path):
    home = tmp_path / "home"
    path = write_marker(home, "http://127.0.0.1:8123")
    found = read_marker(home)
    assert path == marker_path(home) and (found.url, found.pid) == ("http://127.0.0.1:8123", os.getpid())
    assert [p.name for p in home.iterdir()] == ["service.json"]  # no temp file left beside it
    path.write_text(json.dumps({"url": "http://127.0.0.1:8124", "pid": os.getpid() + 1, "started": "x"}))
    remove_marker(home)  # another service's marker: kept
    assert read_marker(home).url == "http://127.0.0.1:8124"
    path.write_text("{not json")
    assert read_marker(home) is None and live_service(home) is None
