"""The model server: a FastAPI app answering predictions from the registry's versions.

Routes: `POST /projects/{project}/predict` (the Humanloop contract, project = dataset), `POST /predict` (one
text, online), `GET /intent?query=`, `GET /models`, `GET /models/{dataset}/{version}`,
`POST /models/{dataset}/{version}/promote`, `GET /health`. Every prediction route takes an optional model
version (default: production, else the latest). Runs alone (`data-debugger model-server`) or mounted.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from service.errors import Conflict, DataDebuggerError, status_of
from service.predictions.metrics import entropy
from service.predictions.registry import ModelRegistry, ModelVersion
from service.predictions.schemas import (
    MAX_TEXTS,
    IntentResponse,
    ModelsPublic,
    PredictRequest,
    PredictResponse,
    ProjectPrediction,
    ProjectPredictRequest,
)
from service.settings import Settings

if TYPE_CHECKING:
    from embeddings.embedder import Embedder

log = logging.getLogger(__name__)

VERSION_HEADER = "X-Model-Version"
VersionQuery = Annotated[str | None, Query(description="model version; default: production, else the latest")]
ProjectQuery = Annotated[str | None, Query(description="dataset; default: the server's default project")]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or wrong X-API-Key"}, 404: {"description": "unknown project or version"},
    409: {"description": "the version needs another embedding model than this server's"},
}


class Predictor:
    """Texts to probability matrices with a version's model, embedding them only when the model needs it."""

    def __init__(self, registry: ModelRegistry, embedder: Embedder):
        self.registry = registry
        self.embedder = embedder

    def version(self, project: str, version: str | None) -> ModelVersion:
        return self.registry.get(project, version or None)

    async def aproba(self, chosen: ModelVersion, texts: list[str]) -> np.ndarray:
        """`proba` from the event loop: inline for a loaded text-only model (about a millisecond, less than a
        thread hand-off costs), in the thread pool when it must embed or load (tens of ms to seconds)."""
        if chosen.loaded and not chosen.needs_vectors:
            return self.proba(chosen, texts)
        return await run_in_threadpool(self.proba, chosen, texts)

    def proba(self, chosen: ModelVersion, texts: list[str]) -> np.ndarray:
        vectors = None
        if chosen.needs_vectors:
            ours, theirs = self.embedder.name.split("@")[0], chosen.embedding_model.split("@")[0]
            if ours != theirs:
                raise Conflict(
                    f"{chosen.dataset} {chosen.version} was trained on {theirs!r} embeddings but this server "
                    f"embeds with {ours!r}; start it with DATA_DEBUGGER_EMBEDDING_MODEL={theirs}"
                )
            vectors = self.embedder.embed(texts)
        return chosen.predict_proba(texts, vectors)


def create_model_app(registry: ModelRegistry, embedder: Embedder, api_key: str | None = None,
                     default_project: str = "humanloop", settings: Settings | None = None) -> FastAPI:
    """The prediction API over `registry`; `api_key`, when set, is required as X-API-Key on every route
    but /health; `default_project` serves /predict and /intent requests that name no project. With
    `settings`, a promotion also moves the MLflow champion alias when tracking is configured."""
    app = FastAPI(title="Data Debugger model server", version="1", docs_url="/docs")
    predictor = Predictor(registry, embedder)
    app.state.predictor = predictor

    @app.exception_handler(DataDebuggerError)
    async def _error(request: Request, exc: DataDebuggerError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc)[0])

    async def require_key(x_api_key: Annotated[str | None, Header()] = None) -> None:
        if api_key is None:
            return
        if x_api_key is None or not hmac.compare_digest(x_api_key.encode(), api_key.encode()):
            # The key itself is never echoed or logged.
            raise HTTPException(401, "missing or wrong X-API-Key header", headers={"WWW-Authenticate": "X-API-Key"})

    @app.get("/health", operation_id="health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    routes = APIRouter(dependencies=[Depends(require_key)])

    @routes.post("/projects/{project}/predict", operation_id="project_predict",
              response_model=list[ProjectPrediction], responses=ERRORS)
    async def project_predict(project: str, body: ProjectPredictRequest, response: Response,
                        version: VersionQuery = None) -> list[dict[str, Any]]:
        """Humanloop contract: for each of up to 20 texts, the n best labels and the distribution's entropy."""
        chosen = predictor.version(project, body.version or version)
        texts = [item.text for item in body.data]
        proba = await predictor.aproba(chosen, texts)
        labels = chosen.labels
        k = min(body.n_best, len(labels))
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        ent = entropy(proba)
        response.headers[VERSION_HEADER] = chosen.version
        return [
            {"id": uuid.uuid4().hex, "data": item.model_dump(), "model_version": chosen.version,
             "entropy": float(ent[i]),
             "predictions": [{"value": labels[j], "confidence": float(proba[i, j])} for j in order[i]]}
            for i, item in enumerate(body.data)
        ]

    @routes.post("/predict", operation_id="predict", response_model=PredictResponse, responses=ERRORS)
    async def predict(body: PredictRequest, response: Response, version: VersionQuery = None,
                project: ProjectQuery = None) -> dict[str, Any]:
        """One text in, its top label and probability out."""
        chosen = predictor.version(body.project or project or default_project, body.version or version)
        proba = (await predictor.aproba(chosen, [body.text]))[0]
        best = int(proba.argmax())
        response.headers[VERSION_HEADER] = chosen.version
        return {"id": body.id, "label": chosen.labels[best], "probability": float(proba[best]),
                "model_version": chosen.version}

    @routes.get("/intent", operation_id="intent", response_model=IntentResponse, responses=ERRORS)
    async def intent(query: Annotated[str, Query(min_length=1, max_length=10_000, pattern=r"\S")], response: Response,
               version: VersionQuery = None,
               project: ProjectQuery = None) -> dict[str, Any]:
        """The intent of one query string."""
        chosen = predictor.version(project or default_project, version)
        proba = (await predictor.aproba(chosen, [query]))[0]
        best = int(proba.argmax())
        response.headers[VERSION_HEADER] = chosen.version
        return {"intent": chosen.labels[best], "probability": float(proba[best]), "model_version": chosen.version}

    @routes.get("/models", operation_id="list_models", response_model=ModelsPublic)
    def list_models(dataset: Annotated[str | None, Query()] = None) -> dict[str, Any]:
        """Every version with its headline metrics; `default` marks what a request without a version gets."""
        rows = []
        for name in [dataset] if dataset else registry.datasets():
            production, default = registry.production(name), registry.default_version(name)
            for v in registry.versions(name):
                rows.append({**v.summary(), "production": v.version == production,
                             "default": v.version == default})
        return {"data": rows, "count": len(rows)}

    @routes.get("/models/{dataset}/{version}", operation_id="get_model", responses=ERRORS)
    def get_model(dataset: str, version: str) -> dict[str, Any]:
        """One version in full: metrics (per-label report, confusion matrix, candidates) and curves."""
        v = registry.get(dataset, version)
        return {**v.summary(), "metrics": v.metrics, "curves": v.curves,
                "production": registry.production(dataset) == v.version}

    @routes.post("/models/{dataset}/{version}/promote", operation_id="promote_model", responses=ERRORS)
    def promote(dataset: str, version: str) -> dict[str, Any]:
        """Make a version the default of its dataset."""
        if settings is not None:
            from service.predictions.tracking import promote as promote_tracked

            v = promote_tracked(settings, registry, dataset, version)
        else:
            v = registry.promote(dataset, version)
        return {**v.summary(), "production": True, "default": True}

    app.include_router(routes)
    # Label Studio's ML-backend protocol over the same models (service/labelstudio/mlbackend.py).
    from service.labelstudio.mlbackend import ml_backend_router

    app.include_router(ml_backend_router(predictor, api_key))
    return app


def warm_up(registry: ModelRegistry, embedder: Embedder, datasets: list[str] | None = None) -> None:
    """Load every dataset's default model (and the embedder when one needs it) before the first request."""
    for name in datasets or registry.datasets():
        chosen = registry.get(name)
        chosen.model()
        vectors = embedder.embed(["warm up"]) if chosen.needs_vectors else None
        chosen.predict_proba(["warm up"], vectors)
        log.info("warmed up %s %s", name, chosen.version)


__all__ = ["MAX_TEXTS", "Predictor", "create_model_app", "warm_up"]
