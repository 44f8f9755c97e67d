"""The debugger service: `create_app(settings, workspace=None, ...)` builds the FastAPI app whose lifespan
opens the store and the embedder once (a Workspace), with one router per resource, one error model, an
optional bearer token for writes, CORS from settings, and the prediction API mounted at the root."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from embeddings.embedder import LazyEmbedder
from service.api.auth import ReadGuard
from service.api.deps import Writer
from service.api.errors import READ_ERRORS, WRITE_ERRORS, install_error_handlers
from service.api.fast_search import FastSearch
from service.api.limits import BodyLimit, body_limits
from service.api.routers import (
    datasets,
    exports,
    health,
    labelstudio,
    loop,
    points,
    queue,
    review,
    runs,
    search,
    views,
)
from service.api.state import ApiState
from service.errors import Unavailable
from service.settings import Settings
from service.workspace import Workspace

log = logging.getLogger(__name__)

# Search first: routes are matched in order, and it is the hot path.
ROUTERS = (search.router, health.router, datasets.router, points.router, views.router, queue.router,
           exports.router, review.router, labelstudio.router, runs.router, loop.router)
# Prediction routes that write (the registry's production marker) take the service's bearer token too.
PREDICTION_WRITES = {"promote_model"}
PREDICTION_SKIPPED = {"/health", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc"}


def _prediction_app(state: ApiState) -> FastAPI:
    from service.predictions.registry import ModelRegistry
    from service.predictions.server import create_model_app

    key = state.settings.prediction_api_key
    embedder = LazyEmbedder(lambda: state.workspace.embedder)  # the workspace opens in the lifespan, later
    return create_model_app(ModelRegistry(state.settings.models_dir), embedder,
                            api_key=key.get_secret_value() if key else None,
                            default_project=state.settings.default_dataset, settings=state.settings)


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """The APIRoutes of a route list, looking inside included routers (FastAPI >= 0.16x keeps an included
    router as one entry holding the original router)."""
    out: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append(route)
        elif getattr(route, "original_router", None) is not None:
            out.extend(api_routes(route.original_router.routes))
    return out


def _include_prediction_routes(app: FastAPI, model_app: FastAPI) -> None:
    """Copy the prediction app's routes into this app (same paths), so they share its error model, its
    OpenAPI document and, for writes, its bearer token."""
    for route in api_routes(model_app.routes):
        if route.path in PREDICTION_SKIPPED:
            continue
        extra = [Writer] if route.operation_id in PREDICTION_WRITES else []
        app.router.add_api_route(
            route.path, route.endpoint, methods=sorted(route.methods or ()), response_model=route.response_model,
            status_code=route.status_code, tags=["predictions"], dependencies=[*route.dependencies, *extra],
            summary=route.summary, description=route.description,
            responses={**(WRITE_ERRORS if extra else READ_ERRORS), **route.responses},
            operation_id=route.operation_id, name=route.name, response_class=route.response_class,
        )


class DebuggerApp(FastAPI):
    """FastAPI with the search fast lane in front of its whole middleware stack (see fast_search): plain
    searches skip even the error and body-limit layers; anything else goes through them as usual."""

    def build_middleware_stack(self) -> Any:
        return FastSearch(super().build_middleware_stack(), self.state.api)


def _settle_audit_logs(state: ApiState) -> None:
    """Open every dataset's audit log now, which settles the entries a stopped process left pending, so no
    request ever sees one from a previous run."""
    if not state.workspace_open:
        return  # opened, and so settled, when the store comes back
    try:
        for name in state.workspace.catalog.names():
            state.audit(name)
    except Exception as exc:  # noqa: BLE001 - serving anyway; each log is settled when first opened
        log.warning("audit logs not settled at start-up: %s", exc)


def create_app(
    settings: Settings,
    workspace: Workspace | None = None,
    *,
    embedder: Any = None,
    model_app: FastAPI | bool = True,
) -> FastAPI:
    """The service app.

    workspace: an open Workspace to serve (the caller closes it); None opens one from `settings` in the
    lifespan (with `embedder` as its base embedder, e.g. the fake one in tests) and closes it on shutdown.
    model_app: True mounts the prediction API built from the registry; an app mounts that one; False none.
    """
    state = ApiState.build(settings, workspace, embedder=embedder)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            state.workspace  # noqa: B018 - open the store and catalog now, not on the first request
        except Unavailable as exc:
            # Serve anyway: requests answer 503 until the store can be opened, then it recovers.
            log.warning("store not available at start-up: %s", exc)
        _settle_audit_logs(state)
        state.runs.start()
        if state.workspace_open:
            state.query_embedder.warm_up()  # the model loads on its worker thread while we serve
        try:
            yield
        finally:
            state.runs.shutdown(wait=True)
            state.query_embedder.close()
            state.close()

    app = DebuggerApp(
        title="Data Debugger",
        version=health.VERSION,
        description="Find wrong labels, weak spots and what to label next in a text classifier's data. "
        "Writes need `Authorization: Bearer <token>` when the service has a token; every route but /api/health "
        "and these docs needs one (the read or the write token) when it has a read token.",
        lifespan=lifespan,
    )
    app.state.api = state
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    predictions = _prediction_app(state) if model_app is True else (model_app or None)
    if predictions is not None:
        _include_prediction_routes(app, predictions)
    # Middleware last, once every route is known: the body limits are per route. The last added runs first.
    app.add_middleware(BodyLimit, limits=body_limits(api_routes(app.routes), settings))
    if settings.read_token is not None:
        app.add_middleware(ReadGuard, settings=settings)  # before any body is read, inside CORS for its headers
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
                           allow_methods=["*"], allow_headers=["*"], expose_headers=["ETag", "X-Model-Version"])
    return app
