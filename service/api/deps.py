"""FastAPI dependencies: the typed app state, the workspace, a dataset's collection, and the bearer-token
check every write carries."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator

from embeddings.store import NAME_PATTERN, Collection, check_name
from service.api.errors import NotAuthorized
from service.api.state import ApiState
from service.diskspace import ensure_space
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


async def require_write_room(request: Request, state: StateDep, _: Annotated[None, Depends(require_writer)]) -> None:
    """A write that passed the token check is refused (507) while the home's disk is below the free-space
    reserve, before it starts; after the token check, so a client without it learns nothing of the disk.
    A delete is let through: it is how space is freed, and it writes no more than a few log records."""
    if request.method != "DELETE":
        ensure_space(state.settings, f"{request.method} {request.url.path}")


Writer = Depends(require_write_room)


async def dataset_collection(dataset: DatasetName, ws: WorkspaceDep) -> Collection:
    """The dataset's collection (404 naming the dataset when it does not exist)."""
    return ws.collection(dataset)


CollectionDep = Annotated[Collection, Depends(dataset_collection)]

