"""MLflow tracking against a real tracking server (mlflow server, SQLite backend, free port) started here:
a trained version's run carries its parameters, metrics with intervals, figures and model; a retrain logs
the gate's verdict and promotion moves the champion alias; an unreachable server fails before training."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from embeddings.embedder import FakeEmbedder
from embeddings.store import load_all
from service.errors import Unavailable
from service.predictions.gate import GatePolicy
from service.predictions.registry import ModelRegistry
from service.predictions.retrain import RetrainOptions, retrain
from service.predictions.tracking import ALIAS, model_name
from service.predictions.training import train_version
from service.settings import Settings
from service.workspace import Workspace
from tests.predictions.conftest import DATASET, TEST_GRIDS
from tests.servers import free_port, running

pytestmark = [pytest.mark.slow, pytest.mark.mlflow]

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("DATA_DEBUGGER_MLFLOW_VENV", ROOT / ".mlflow-venv"))


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server on loopback, stopped after the module."""
    binary = VENV / "bin" / "mlflow"
    if not binary.exists():
        pytest.fail(f"no MLflow server at {binary}: python3.11 -m venv {VENV} && {VENV}/bin/pip install mlflow "
                    "(.ci/run does this), or point DATA_DEBUGGER_MLFLOW_VENV at a venv with mlflow")
    folder = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    command = [str(binary), "server", "--backend-store-uri", f"sqlite:///{folder}/mlflow.db", "--artifacts-destination",
               str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with running(command, f"http://127.0.0.1:{port}", folder / "server.log", timeout=180, cwd=folder,
                 env={**os.environ, "HOME": str(folder)}) as server:
        yield server.url


def _settings(home: Path, **extra) -> Settings:
    return Settings(home=home, fake_embeddings=True, store_backend="edge", **extra)


def test_train_and_retrain_are_tracked(mlflow_server, home, planted):
    from mlflow import MlflowClient

    settings = _settings(home, MLFLOW_TRACKING_URI=mlflow_server)
    assert settings.mlflow_tracking_uri == mlflow_server
    registry = ModelRegistry(settings.models_dir)
    with Workspace(settings, embedder=FakeEmbedder()) as ws:
        version = train_version(ws, DATASET, grids=TEST_GRIDS, learning_repeats=1, registry=registry)
        record = registry.read_record(DATASET, version.version, "mlflow")
        assert record is not None and record["tracking_uri"] == mlflow_server
        client = MlflowClient(tracking_uri=mlflow_server)
        run = client.get_run(record["run_id"])
        assert run.info.status == "FINISHED"
        assert run.data.params["data_hash"] == version.data_hash
        assert run.data.metrics["test_macro_f1"] == pytest.approx(version.metrics["test"]["macro_f1"])
        low, high = run.data.metrics["test_macro_f1_ci_low"], run.data.metrics["test_macro_f1_ci_high"]
        assert low <= run.data.metrics["test_macro_f1"] <= high
        curve = client.get_metric_history(run.info.run_id, "learning_curve_validation_macro_f1")
        assert len(curve) == len(version.curves["learning_curve"]["train_sizes"])
        figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
        assert {"figures/confusion_test.png", "figures/reliability_test.png"} <= figures
        model_files = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
        assert "model/model.joblib" in model_files and "model/meta.json" in model_files
        registered = client.get_model_version(model_name(DATASET), record["model_version"])
        assert registered.run_id == run.info.run_id

        # Fix the planted label errors, retrain: the challenger's run holds the verdict, and the promotion
        # moves the champion alias to its registered version.
        collection = ws.collection(DATASET)
        ids, payloads, _ = load_all(collection, with_vectors=False)
        by_record = {p["record_id"]: pid for pid, p in zip(ids, payloads, strict=True)}
        collection.set_payloads({by_record[rid]: {"label": planted.truth[rid]} for rid in planted.flipped})
        collection.flush()
        out = retrain(ws, DATASET, RetrainOptions(grids=TEST_GRIDS, folds=3, analyze=False,
                                                  policy=GatePolicy(rounds=200, min_cluster_size=5)),
                      registry=registry)
    assert out["status"] == "promoted", out["summary"]
    challenger = registry.read_record(DATASET, out["challenger"], "mlflow")
    run = client.get_run(challenger["run_id"])
    assert run.data.tags["data_debugger.kind"] == "retrain"
    assert run.data.metrics["gate_promoted"] == 1.0
    assert "gate_macro_f1_difference" in run.data.metrics and run.data.tags["data_debugger.verdict"]
    alias = client.get_model_version_by_alias(model_name(DATASET), ALIAS)
    assert alias.version == challenger["model_version"]


def test_an_unreachable_server_fails_before_training(home):
    closed = f"http://127.0.0.1:{free_port()}"
    registry = ModelRegistry(home / "models")
    before = len(registry.versions(DATASET))
    with Workspace(_settings(home, MLFLOW_TRACKING_URI=closed), embedder=FakeEmbedder()) as ws:
        with pytest.raises(Unavailable, match=closed):
            train_version(ws, DATASET, grids=TEST_GRIDS, learning_repeats=1, registry=registry)
    assert len(registry.versions(DATASET)) == before  # nothing trained, nothing registered
    with Workspace(_settings(home, MLFLOW_TRACKING_URI=closed, mlflow_required=False),
                   embedder=FakeEmbedder()) as ws:
        version = train_version(ws, DATASET, grids=TEST_GRIDS, learning_repeats=1, registry=registry)
    assert registry.read_record(DATASET, version.version, "mlflow") is None  # trained, untracked
