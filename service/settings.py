"""One Settings class for every entry point; read there and passed down, never at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The real Humanloop export, kept beside the repository (never committed).
DEFAULT_HUMANLOOP_PATH = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "humanloop" / (
    "chatbot_intent_classifier_data.json"
)


class Settings(BaseSettings):
    """Everything configurable, from the environment (prefix DATA_DEBUGGER_) or arguments."""

    model_config = SettingsConfigDict(env_prefix="DATA_DEBUGGER_", extra="ignore")

    home: Path = Field(Path("data"), description="Data directory: stores, caches, model registry, reports.")

    # Embeddings
    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        description="'all-MiniLM-L6-v2' (shipped weights, sha256-verified) or a local sentence-transformers path.",
    )
    embedding_precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto = bf16 where the CPU supports it natively, else fp32."
    )
    embedding_backend: Literal["auto", "torch", "onnx"] = Field(
        "auto", description="auto = ONNX Runtime for fp32 (same vectors, faster on CPU), torch for bf16."
    )
    embedding_batch_size: int = 128
    fake_embeddings: bool = Field(False, description="Deterministic hash embeddings, for tests only.")

    # Store: embedded qdrant-edge by default; a Qdrant server when qdrant_url is set.
    qdrant_url: str | None = Field(None, validation_alias="QDRANT_URL")
    qdrant_api_key: SecretStr | None = Field(None, validation_alias="QDRANT_API_KEY")
    store_backend: str = Field(
        "auto", description="auto = server when QDRANT_URL is set, else edge; memory = qdrant-client :memory:; "
        "any name in embeddings.store.BACKENDS."
    )
    # A Qdrant cluster: how new collections spread over its nodes (None = the server's default, 1).
    qdrant_shards: int | None = Field(None, description="Shards per new collection, e.g. one per node.")
    qdrant_replicas: int | None = Field(None, description="Copies of each shard, on different nodes.")
    qdrant_write_consistency: int | None = Field(None, description="Replicas that must acknowledge a write.")

    # Ingest
    ingest_batch_size: int = 512

    # Default dataset of the main job
    default_dataset: str = "humanloop"
    humanloop_path: Path = DEFAULT_HUMANLOOP_PATH
    humanloop_url: str = (
        "https://github.com/humanloop/test/raw/main/chatbot_intent_classifier_data.json.zip"
    )

    # Prediction API
    prediction_api_url: str | None = Field(
        None, description="A server speaking the Humanloop predict contract; None = the built-in model server."
    )
    prediction_api_key: SecretStr | None = Field(None, validation_alias="PREDICTION_API_KEY")
    prediction_project: str = "default"

    # The improvement loop: retrain triggers and the gate (see service/predictions/gate.py)
    retrain_after: int = Field(50, ge=0, description="Reviewed changes since the champion's data that queue a "
                               "retrain by themselves; 0 = never.")
    retrain_accuracy_drop: float = Field(0.05, ge=0, le=1, description="A labelled upload on which the champion's "
                                         "accuracy is lower than its test accuracy by more than this queues a retrain.")
    gate_tolerance: float = Field(0.01, ge=0, le=1, description="How much worse (accuracy, macro-F1) a challenger "
                                  "may be and still be promoted.")
    gate_min_cluster_size: int = Field(20, ge=1, description="Clusters with fewer compared points are not judged.")
    gate_max_cluster_regression: float = Field(0.10, ge=0, le=1, description="The largest rise of a cluster's "
                                               "error rate a promoted challenger may bring.")
    new_label_validation_share: float = Field(0.0, ge=0, le=0.5, description="Share of newly labelled points "
                                              "(seeded by id) sent to validation instead of training.")
    # MLflow: every train and retrain is logged when the tracking URI is set.
    mlflow_tracking_uri: str | None = Field(None, validation_alias="MLFLOW_TRACKING_URI")
    mlflow_required: bool = Field(True, description="An unreachable MLflow server fails the run (false: warn, "
                                  "train untracked).")

    # Service
    host: str = "127.0.0.1"
    port: int = 8000
    token: SecretStr | None = Field(None, description="Bearer token required for every write when set.")
    cors_origins: list[str] = Field(default_factory=list)
    max_upload_bytes: int = 200 * 1024 * 1024
    # The embedded store writes through mmap: on a full disk it dies of SIGBUS instead of raising, so
    # writes are refused (507 / a CLI error) while less than this is free under the home (service/diskspace.py).
    min_free_bytes: int = Field(
        1024 * 1024 * 1024, ge=0,
        description="Free-space reserve under the home: writes are refused below it, reads still served.")
    malloc_arenas: int = Field(
        2, ge=0, description="glibc malloc arenas of `serve` (0 = glibc's default, 8 per core); see service/memory.py.")
    # Server-side files a client may name (a runs' ingest path, train's from_file): <home>/imports and these.
    import_dirs: list[Path] = Field(
        default_factory=list, description="More folders whose files clients may name for a server-side ingest.")

    # Label Studio (connected mode: push/pull; the token is a Label Studio user's API token, never logged)
    label_studio_url: str | None = Field(None, description="Label Studio server, e.g. http://localhost:8080.")
    label_studio_token: SecretStr | None = Field(None, description="API token of the Label Studio user to act as.")
    label_studio_webhook_secret: SecretStr | None = Field(
        None, description="Shared secret Label Studio's webhooks send (X-Data-Debugger-Secret); unset = webhook off.")
    label_studio_webhook_base: str | None = Field(
        None, description="This service's URL as Label Studio reaches it; set = push registers the webhook.")

    @field_validator("store_backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from embeddings.store import BACKENDS

        if value != "auto" and value not in BACKENDS:
            raise ValueError(f"store_backend {value!r} is not one of auto, {', '.join(BACKENDS)}")
        return value

    @property
    def resolved_backend(self) -> str:
        """The store backend actually used."""
        if self.store_backend != "auto":
            return self.store_backend
        return "server" if self.qdrant_url else "edge"

    @property
    def imports_dir(self) -> Path:
        """Where files for a server-side ingest go; clients can name files here and nowhere else."""
        return self.home / "imports"

    @property
    def store_dir(self) -> Path:
        return self.home / "qdrant"

    @property
    def cache_path(self) -> Path:
        return self.home / "embedding_cache.sqlite"

    @property
    def onnx_dir(self) -> Path:
        """The embedding model exported to ONNX, once per model."""
        return self.home / "onnx"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"
