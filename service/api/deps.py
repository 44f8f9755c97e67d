"""FastAPI dependencies: the typed app state, the workspace, a dataset's collection and snapshot, and the
bearer-token check every write carries."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator

from embeddings.store import NAME_PATTERN, Collection, check_name
from service.api.audit import AuditLog
from service.api.errors import NotAuthorized
from service.api.snapshots import Snapshot, report_stamp
from service.api.state import ApiState
from service.errors import InvalidInput
from service.workspace import Workspace

_bearer = HTTPBearer(auto_error=False, description="Required for writes when DATA_DEBUGGER_TOKEN is set")


# The dependencies are `async def` although they do not await: FastAPI runs a plain `def` dependency in
# its thread pool, and three thread hops per request cost more than the work they do.


async def get_state(request: Request) -> ApiState:
    return request.app.state.api


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_workspace(state: StateDep) -> Workspace:
    return state.workspace


WorkspaceDep = Annotated[Workspace, Depends(get_workspace)]


def _dataset_name(name: str) -> str:
    """The store's rule for names, checked here so that a bad one answers 422 naming `path.dataset`."""
    try:
        return check_name(name)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None


# The rule is also stated in the OpenAPI document, so that clients (and fuzzers) know it.
DatasetName = Annotated[str, AfterValidator(_dataset_name), Path(
    description="Dataset name", min_length=1, max_length=64, examples=["humanloop"],
    json_schema_extra={"pattern": NAME_PATTERN})]


async def require_writer(
    state: StateDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """When a token is configured, a write must carry `Authorization: Bearer <token>`."""
    token = state.settings.token
    if token is None:
        return
    expected = token.get_secret_value()
    given = credentials.credentials if credentials is not None else ""
    if not given:
        raise NotAuthorized("this service requires a bearer token for writes: send 'Authorization: Bearer <token>'")
    if not secrets.compare_digest(given.encode(), expected.encode()):
        raise NotAuthorized("the bearer token is wrong; use the one the service was started with")


Writer = Depends(require_writer)


async def dataset_collection(dataset: DatasetName, ws: WorkspaceDep) -> Collection:
    """The dataset's collection (404 naming the dataset when it does not exist)."""
    return ws.collection(dataset)


CollectionDep = Annotated[Collection, Depends(dataset_collection)]


def get_audit(state: ApiState, dataset: str) -> AuditLog:
    return state.audits.get(state.workspace.store, dataset)


def snapshot_of(state: ApiState, dataset: str) -> Snapshot:
    """The dataset's cached snapshot, rebuilt when an ingest, analysis or run changed it."""
    ws = state.workspace
    entry = ws.catalog.get(dataset)
    key = (entry.get("updated_at"), report_stamp(state.settings, dataset), state.generation(dataset))
    assert state.snapshots is not None
    return state.snapshots.get(dataset, key, ws.collection(dataset), lambda: len(get_audit(state, dataset)))


def warm_snapshot(state: ApiState, dataset: str) -> None:
    """Build the dataset's snapshot and encode its map now (after a run, at start-up), so the first page
    view does not wait for them: at 100k points that is ~1.5 s of reading the store and ~0.3 s of gzip."""
    snap = snapshot_of(state, dataset)
    snap.map_arrow()  # the dashboard's form first
    snap.map_json()
    snap.map_json(gzipped=True)
