"""The built-in model called in-process without HTTP: the enrichment client's stand-in when no API is named.

The Humanloop contract caps a request at 20 texts, which a remote server needs and an in-process model does
not: through the ASGI app every 20 texts paid a request's routing, validation and JSON both ways, and an
embedding-cache look-up and a store write of their own. Here the same answers (same version, n best, entropy,
to the last digit) come from the registry's model in batches of IN_PROCESS_BATCH.
"""

from __future__ import annotations

import asyncio

import numpy as np

from service.errors import DataDebuggerError
from service.predictions.client import Answer, BatchFailed
from service.predictions.metrics import entropy
from service.predictions.registry import ModelRegistry
from service.predictions.server import Predictor

IN_PROCESS_BATCH = 1024


class DirectClient:
    """PredictionClient's interface (default_version, predict, version, requests, retries) over the registry."""

    def __init__(self, registry: ModelRegistry, embedder, project: str, *, n_best: int = 5,
                 version: str | None = None):
        self.registry = registry
        self.predictor = Predictor(registry, embedder)
        self.project = project
        self.n_best = n_best
        self.version = version
        self.requests = 0
        self.retries = 0

    async def default_version(self) -> str | None:
        """The version a request without one gets: production, else the latest (None without any)."""
        return self.registry.default_version(self.project)

    async def predict(self, texts: list[str], label: str = "batch") -> list[Answer]:
        """Answers for `texts`, in order, as the model server would give them; a refusal (unknown project or
        version, another embedding model) stops the run with its own error."""
        self.requests += 1
        try:
            chosen = self.predictor.version(self.project, self.version)
            proba = await asyncio.to_thread(self.predictor.proba, chosen, texts)
        except DataDebuggerError as exc:
            raise BatchFailed(f"{label}: {exc}", fatal=True, error=exc) from exc
        return answers(chosen.version, chosen.labels, proba, self.n_best)


def answers(version: str, labels: list[str], proba: np.ndarray, n_best: int) -> list[Answer]:
    """The answers the model server's project_predict route sends for `proba`, already parsed."""
    k = min(n_best, len(labels))
    order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    ent = entropy(proba).tolist()
    top = np.take_along_axis(proba, order, axis=1).tolist()
    out = []
    for i, (columns, probs) in enumerate(zip(order.tolist(), top, strict=True)):
        best = [{"label": labels[j], "probability": p} for j, p in zip(columns, probs, strict=True)]
        out.append(Answer(version, best[0]["label"], best[0]["probability"], best, ent[i]))
    return out
