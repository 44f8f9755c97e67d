"""Request body limits per route: a declared Content-Length over the route's limit is refused with 413 before
the body is read, and a body without one (chunked) is cut off as soon as it passes the limit, so no route
parses a body larger than it can use (a 1M-task Label Studio import used to take +418 MB before its 422).

    body_limits(routes, settings) -> one RouteLimit per route, each also stated in the OpenAPI document
                                  (`x-max-body-bytes` and a line of the operation's description)
    BodyLimit(app, limits=...)  -> the ASGI middleware that enforces them
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException

from service.api.errors import error_body

KIB, MIB = 1024, 1024 * 1024
# A JSON body of any route not named below: search, relabel (with its evidence), runs, cross-search.
DEFAULT_BODY = 1 * MIB
# A route that takes no body still gets a bound: nothing it could be sent is worth reading.
NO_BODY = 64 * KIB
# The prediction contract: 20 texts of up to 10,000 characters, JSON-escaped at worst 6 bytes each.
PREDICT_BODY = 2 * MIB
# Routes with a limit of their own; the value is a number of bytes or the Settings field holding it.
ROUTE_LIMITS: dict[str, int | str] = {
    "create_dataset": "max_upload_bytes",
    "import_label_studio": "max_import_bytes",
    "predict": PREDICT_BODY,
    "project_predict": PREDICT_BODY,
    "label_studio_webhook": DEFAULT_BODY,  # read raw by the route: one task and its annotation
    "ml_backend_predict": 8 * MIB,  # a batch of Label Studio tasks to pre-annotate
}


def _env(setting: str) -> str:
    return f"DATA_DEBUGGER_{setting.upper()}"


@dataclass(frozen=True)
class RouteLimit:
    """A route's path pattern and methods, and the most body bytes it reads."""

    path: re.Pattern[str]
    methods: frozenset[str]
    limit: int
    setting: str | None = None  # the setting to raise, named in the 413 message


def body_limits(routes: list[Any], settings: Any) -> list[RouteLimit]:
    """Every route's body limit (`routes`: the app's APIRoutes), written into its OpenAPI operation too."""
    out = []
    for route in routes:
        named = ROUTE_LIMITS.get(route.operation_id or "")
        setting = named if isinstance(named, str) else None
        if setting is not None:
            limit = int(getattr(settings, setting))
        elif isinstance(named, int):
            limit = named
        else:
            limit = DEFAULT_BODY if route.body_field is not None else NO_BODY
        out.append(RouteLimit(route.path_regex, frozenset(route.methods or ()), limit, setting))
        if route.body_field is not None or setting is not None:
            _document(route, limit, setting)
    return out


def _document(route: Any, limit: int, setting: str | None) -> None:
    raise_it = f" (raise it with {_env(setting)})" if setting else ""
    line = f"Request body limit: {limit:,} bytes{raise_it}; a larger body is refused with 413 before it is read."
    route.description = f"{route.description}\n\n{line}" if route.description else line
    too_large = {"description": "Body over the route's limit", "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/ErrorOut"}}}}
    extra = route.openapi_extra or {}
    route.openapi_extra = {**extra, "x-max-body-bytes": limit,
                           "responses": {**extra.get("responses", {}), "413": too_large}}


def route_path(scope: dict) -> str:
    """The path the router matches: without the root path a proxy mounts the app under (as Starlette does)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def limit_for(limits: list[RouteLimit], scope: dict, default: int) -> tuple[int, str | None]:
    """The limit of the route a request goes to (the first whose path and method match), else `default`."""
    path, method = route_path(scope), scope.get("method", "")
    for entry in limits:
        if method in entry.methods and entry.path.match(path):
            return entry.limit, entry.setting
    return default, None


class BodyLimit:
    """Pure ASGI middleware (no buffering): 413 for a body over its route's limit (`limits` from body_limits);
    a request no route matches (answered 404 or 405 anyway) gets `default`."""

    def __init__(self, app: Any, limits: list[RouteLimit], default: int = NO_BODY):
        self.app = app
        self.limits = limits
        self.default = default

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = limit_for(self.limits, scope, self.default)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                if value.isdigit() and int(value) > limit:
                    await self._refuse(send, limit, setting, int(value))
                    return
                break
        seen = 0

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"the body is over this route's limit of {limit} bytes"
                                        + (f" ({_env(setting)})" if setting else ""))
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, send: Any, limit: int, setting: str | None, size: int) -> None:
        raise_it = f" ({_env(setting)})" if setting else ""
        body = json.dumps(error_body(413, "too_large", f"the body is {size} bytes; this route's limit is {limit}"
                                     f"{raise_it}")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
