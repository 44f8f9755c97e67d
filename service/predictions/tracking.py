"""MLflow tracking of model versions, when MLFLOW_TRACKING_URI is set (otherwise mlflow is never imported).

Each trained version becomes an MLflow run in the experiment ``data-debugger/<dataset>``: parameters, the
data hash and sizes, validation and test metrics with their bootstrap intervals, the confusion matrix and
reliability diagram as images, the learning curve, and the model folder as artifacts; it is registered as
a version of the registered model ``data-debugger-<dataset>``. A retrain adds the gate's verdict and
comparison to the challenger's run, and promotion moves the ``champion`` alias. The registry keeps the run
id beside the version (`mlflow.json`).

The client talks to the server through MlflowClient (no global active run, so concurrent runs in the
service cannot mix). A server that does not answer fails the run before any training, naming its URL, or
with DATA_DEBUGGER_MLFLOW_REQUIRED=false, logs a warning and trains untracked.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from service.errors import Unavailable
from service.predictions.registry import ModelRegistry, ModelVersion
from service.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

RECORD = "mlflow"  # <version>/mlflow.json: run id, experiment and registered model version
ALIAS = "champion"


def experiment_name(dataset: str) -> str:
    return f"data-debugger/{dataset}"


def model_name(dataset: str) -> str:
    return f"data-debugger-{dataset}"


class Tracker:
    """Logs versions and verdicts to one MLflow tracking server."""

    def __init__(self, uri: str, required: bool = True, timeout: float = 5.0):
        self.uri = uri.rstrip("/")
        self.required = required
        self.timeout = timeout
        self._client: MlflowClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Tracker | None:
        """A tracker when MLFLOW_TRACKING_URI is set, else None."""
        if not settings.mlflow_tracking_uri:
            return None
        return cls(settings.mlflow_tracking_uri, required=settings.mlflow_required)

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            try:
                from mlflow import MlflowClient
            except ImportError as exc:  # an optional dependency: say how to get it
                raise Unavailable("MLFLOW_TRACKING_URI is set but mlflow is not installed; "
                                  "pip install mlflow-skinny, or unset MLFLOW_TRACKING_URI") from exc
            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    def ready(self) -> bool:
        """Whether the server answers; raises Unavailable naming the URL when tracking is required.
        Checked before training, with a short timeout, instead of mlflow's minutes of retries."""
        if not self.uri.startswith(("http://", "https://")):
            return True  # a local store (file:, sqlite:) has nothing to reach
        try:
            answer = httpx.get(f"{self.uri}/health", timeout=self.timeout)
            if answer.status_code < 500:
                return True
            problem = f"answered {answer.status_code}"
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        message = (f"the MLflow tracking server {self.uri} cannot be reached ({problem}); start it, fix "
                   "MLFLOW_TRACKING_URI, or set DATA_DEBUGGER_MLFLOW_REQUIRED=false to train untracked")
        if self.required:
            raise Unavailable(message)
        log.warning("%s: training goes on untracked", message)
        return False

    def _experiment(self, dataset: str) -> str:
        found = self.client.get_experiment_by_name(experiment_name(dataset))
        if found is not None:
            return found.experiment_id
        return self.client.create_experiment(experiment_name(dataset))

    def log_version(self, registry: ModelRegistry, version: ModelVersion, kind: str = "train") -> str:
        """One MLflow run for a trained version; returns its run id (also recorded in the registry)."""
        from service.predictions.plots import confusion_png, reliability_png

        client = self.client
        dataset = version.dataset
        run = client.create_run(self._experiment(dataset), run_name=f"{dataset} {version.version}",
                                tags={"data_debugger.kind": kind, "data_debugger.version": version.version,
                                      "data_debugger.dataset": dataset})
        run_id = run.info.run_id
        try:
            params = {**version.params, "data_hash": version.data_hash,
                      "embedding_model": version.embedding_model, "labels": len(version.labels),
                      **{f"size_{k}": v for k, v in version.sizes.items()}}
            for key, value in params.items():
                client.log_param(run_id, key, str(value)[:500])
            for metric, value in _metrics(version.metrics).items():
                client.log_metric(run_id, metric, value)
            curve = version.curves.get("learning_curve") or {}
            # The learning curve as a metric whose step is the training-set size: MLflow plots it as is.
            for size, f1 in zip(curve.get("train_sizes", []), curve.get("validation_macro_f1", []), strict=False):
                client.log_metric(run_id, "learning_curve_validation_macro_f1", f1, step=int(size))
            client.log_dict(run_id, version.curves, "curves.json")
            with tempfile.TemporaryDirectory() as tmp:
                for split in ("validation", "test"):
                    m = version.metrics.get(split)
                    if not m:
                        continue
                    confusion_png(m["confusion"]["matrix"], m["confusion"]["labels"],
                                  Path(tmp) / f"confusion_{split}.png", f"{dataset} {version.version} {split}")
                    reliability_png(m.get("reliability", []), Path(tmp) / f"reliability_{split}.png",
                                    f"{dataset} {version.version} {split} (ECE {m.get('ece', 0):.3f})")
                client.log_artifacts(run_id, tmp, "figures")
            client.log_artifacts(run_id, str(version.path), "model")
            registered = self._register(dataset, run_id, client.get_run(run_id).info.artifact_uri)
            client.set_terminated(run_id, "FINISHED")
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        registry.record(dataset, version.version, RECORD, {
            "tracking_uri": self.uri, "run_id": run_id, "experiment": experiment_name(dataset),
            "registered_model": model_name(dataset), "model_version": registered})
        log.info("logged %s %s to MLflow run %s", dataset, version.version, run_id)
        return run_id

    def _register(self, dataset: str, run_id: str, artifact_uri: str) -> str:
        from mlflow.exceptions import MlflowException

        name = model_name(dataset)
        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc) and "already exists" not in str(exc):
                raise
        created = self.client.create_model_version(name, source=f"{artifact_uri}/model", run_id=run_id)
        return str(created.version)

    def log_verdict(self, registry: ModelRegistry, dataset: str, version: str, verdict: dict[str, Any],
                    promoted: bool) -> None:
        """The gate's verdict and comparison on the challenger's run."""
        record = registry.read_record(dataset, version, RECORD)
        if record is None:
            return
        run_id = record["run_id"]
        headline = verdict.get("comparison", {}).get("headline", {})
        for metric in ("accuracy", "macro_f1"):
            row = headline.get(metric)
            if row:
                self.client.log_metric(run_id, f"gate_{metric}_difference", row["difference"])
                self.client.log_metric(run_id, f"gate_{metric}_difference_ci_low", row["ci"][0])
                self.client.log_metric(run_id, f"gate_{metric}_difference_ci_high", row["ci"][1])
        self.client.log_metric(run_id, "gate_promoted", 1.0 if promoted else 0.0)
        self.client.set_tag(run_id, "data_debugger.verdict", "; ".join(verdict.get("reasons", []))[:5000])
        self.client.log_dict(run_id, verdict, "gate.json")

    def promote(self, registry: ModelRegistry, dataset: str, version: str) -> None:
        """Move the champion alias to the promoted version's registered model version."""
        record = registry.read_record(dataset, version, RECORD)
        if record is None:
            log.warning("%s %s was never logged to MLflow; the %r alias stays where it was", dataset, version, ALIAS)
            return
        self.client.set_registered_model_alias(record["registered_model"], ALIAS, record["model_version"])


def _metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The headline figures of each split, flattened to MLflow metric names."""
    out: dict[str, float] = {}
    for split in ("validation", "test"):
        m = metrics.get(split) or {}
        for key in ("accuracy", "macro_f1", "macro_precision", "macro_recall", "weighted_f1", "log_loss", "ece"):
            if isinstance(m.get(key), int | float):
                out[f"{split}_{key}"] = float(m[key])
        for key in ("accuracy_ci", "macro_f1_ci"):
            if m.get(key):
                out[f"{split}_{key}_low"], out[f"{split}_{key}_high"] = float(m[key][0]), float(m[key][1])
    oof = metrics.get("oof") or {}
    for key in ("accuracy", "macro_f1"):
        if isinstance(oof.get(key), int | float):
            out[f"oof_{key}"] = float(oof[key])
    return out


def promote(settings: Settings, registry: ModelRegistry, dataset: str, version: str) -> ModelVersion:
    """Make `version` production, and with MLflow move the champion alias to it. Tracking is the
    registry's shadow: an MLflow failure here is logged and never undoes the promotion."""
    chosen = registry.promote(dataset, version)
    tracker = Tracker.from_settings(settings)
    if tracker is not None:
        try:
            tracker.promote(registry, dataset, version)
        except Exception as exc:  # noqa: BLE001
            log.warning("MLflow: could not move the %r alias of %s to %s: %s", ALIAS, dataset, version, exc)
    return chosen
