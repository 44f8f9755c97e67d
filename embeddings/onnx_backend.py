"""A sentence-transformers model run by ONNX Runtime: exported once (torch's own exporter) to a file kept next
to the data, checked against the torch model before first use, then run in fp32.

Why: on CPUs without native bf16, ONNX Runtime's fused kernels run MiniLM faster than torch eager for the
short texts this tool sees, with the same vectors (figures in the README, "Benchmarks": ONNX Runtime against
torch).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

log = logging.getLogger(__name__)

OPSET = 17
# The exported graph must give the torch model's vectors: anything less is a broken export, not a rounding.
MIN_COSINE = 0.99999
# Larger batches pad more and gain nothing (README, "Benchmarks": ONNX Runtime against torch).
MAX_BATCH = 64
PROBE_TEXTS = [
    "what is my new credit limit",
    "my card got stolen",
    "",
    "hi",
    "I ordered a replacement card three weeks ago and it still has not arrived, can you check on it? " * 12,
    "¿Dónde está mi tarjeta? 我的卡丢了",
]


def onnx_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def _pipeline_module(model, input_names: list[str], constants: dict):
    """The sentence-transformers pipeline (transformer, pooling, normalisation) as a module of tensors;
    `constants` are the non-tensor features (such as the modality) it is always called with."""
    import torch

    class Pipeline(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            return self.model({**constants, **dict(zip(input_names, inputs, strict=True))})["sentence_embedding"]

    return Pipeline().eval()


def export(model, path: Path) -> None:
    """Write the model (a loaded fp32 SentenceTransformer) to `path` as ONNX, atomically."""
    import torch

    features = model.preprocess(["an example text", "hi"])
    input_names = [n for n, v in features.items() if isinstance(v, torch.Tensor)]
    wrapped = _pipeline_module(model, input_names, {n: v for n, v in features.items() if n not in input_names})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    os.close(fd)
    try:
        with torch.no_grad():
            torch.onnx.export(
                wrapped, tuple(features[n] for n in input_names), tmp,
                input_names=input_names, output_names=["sentence_embedding"],
                dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in input_names},
                              "sentence_embedding": {0: "batch"}},
                opset_version=OPSET, dynamo=False,
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it private; it holds public weights
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class OnnxEncoder:
    """Encodes texts with an exported model; tokenisation stays the sentence-transformers model's own."""

    def __init__(self, model, path: Path, threads: int | None = None, spin: bool = True):
        self._model = model  # for its tokenizer, max length and the check against torch
        self.path = path
        self._threads = threads
        self._spin = spin
        self._session: InferenceSession | None = None
        self._input_names: list[str] = []

    def _open(self) -> InferenceSession:
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if self._threads:
                options.intra_op_num_threads = self._threads
            if not self._spin:
                # Idle pool threads sleep instead of spinning, leaving the cores to the service's event loop.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            self._input_names = [i.name for i in self._session.get_inputs()]
        return self._session

    def set_threads(self, threads: int | None, spin: bool) -> None:
        """Thread settings are fixed per session, so a change opens a new one (now, not on a query)."""
        if (threads, spin) != (self._threads, self._spin):
            self._threads, self._spin, self._session = threads, spin, None
            self._open()

    def _run(self, texts: list[str]) -> np.ndarray:
        session = self._open()
        features = self._model.preprocess(texts)
        feed = {n: features[n].numpy() for n in self._input_names}
        return session.run(None, feed)[0]

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Unit vectors, float32, in the order of `texts`. Longest first, as sentence-transformers does, so
        each batch pads to similar lengths."""
        batch_size = min(batch_size, MAX_BATCH)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), 0), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            chunk = order[start:start + batch_size]
            vectors = self._run([texts[i] for i in chunk])
            if out.shape[1] == 0:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[chunk] = vectors
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def check_against_torch(self) -> float:
        """The lowest cosine between this encoder's and the torch model's vectors over the probe texts."""
        ours = self.encode(PROBE_TEXTS, batch_size=4)
        theirs = self._model.encode(PROBE_TEXTS, normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False)
        return float(np.min(np.sum(ours * theirs, axis=1)))


def load_or_export(model, path: Path) -> OnnxEncoder | None:
    """An encoder over `path`, exported first if missing (or re-exported once if the file there does not
    load or gives other vectors); None, with the reason logged, when torch must keep the job."""
    for attempt in ("existing", "fresh") if path.exists() else ("fresh",):
        try:
            if attempt == "fresh":
                log.info("exporting the embedding model to ONNX at %s (once)", path)
                export(model, path)
            encoder = OnnxEncoder(model, path)
            cosine = encoder.check_against_torch()
        except Exception as exc:  # noqa: BLE001 - any failure leaves the torch path, which always works
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if cosine >= MIN_COSINE:
                return encoder
            problem = f"its vectors are off torch's (min cosine {cosine:.6f} < {MIN_COSINE})"
        log.warning("ONNX model at %s unusable (%s)", path, problem)
        path.unlink(missing_ok=True)
    log.warning("embedding with torch instead of ONNX Runtime")
    return None
