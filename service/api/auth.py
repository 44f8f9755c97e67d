"""Bearer tokens: the write token (`DATA_DEBUGGER_TOKEN`, checked by deps.require_writer on every write) and
the optional read token (`DATA_DEBUGGER_READ_TOKEN`), which ReadGuard requires on every route but the open
ones, so that a service bound beyond loopback shows nothing to a client without a token.

The guard is ASGI middleware rather than a route dependency so that it covers every route, the prediction
routes and the search fast lane included, and refuses before a body is read.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from pydantic import SecretStr

from service.api.errors import error_body
from service.api.limits import route_path

# Open without a token: the health check (load balancers and container probes carry no secret; it shows the
# store's state, counts and the version, no data) and the API's description (routes and schemas, no data).
OPEN_PATHS = frozenset({"/api/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


def token_matches(given: str | None, expected: SecretStr | None) -> bool:
    """Whether a presented token is the expected one, compared in constant time."""
    if not given or expected is None:
        return False
    return secrets.compare_digest(given.encode(), expected.get_secret_value().encode())


def bearer_of(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if any."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


def _header(headers: list[tuple[bytes, bytes]], wanted: bytes) -> str | None:
    for name, value in headers:
        if name == wanted:
            return value.decode("latin-1")
    return None


def may_read(scope: dict, settings: Any) -> bool:
    """Whether a request may pass the read guard: no read token set, an open path, a CORS preflight, the read
    or write token as a bearer, or (prediction routes only) the prediction API's own X-API-Key."""
    path = route_path(scope)
    if settings.read_token is None or scope.get("method") == "OPTIONS" or path in OPEN_PATHS:
        return True
    headers = scope.get("headers", [])
    given = bearer_of(headers)
    if token_matches(given, settings.read_token) or token_matches(given, settings.token):
        return True
    # Label Studio's webhook carries its own secret, and can send no bearer token.
    if path.endswith("/label-studio/webhook") and token_matches(
            _header(headers, b"x-data-debugger-secret"), getattr(settings, "label_studio_webhook_secret", None)):
        return True
    # Clients of the Humanloop predict contract and Label Studio's ML backend authenticate with the prediction
    # key (X-API-Key, or as the Basic auth password), not a bearer; it opens those routes, never /api.
    return not path.startswith("/api/") and (
        token_matches(_header(headers, b"x-api-key"), settings.prediction_api_key)
        or token_matches(_basic_password(headers), settings.prediction_api_key))


def _basic_password(headers: list[tuple[bytes, bytes]]) -> str | None:
    value = _header(headers, b"authorization") or ""
    if not value.lower().startswith("basic "):
        return None
    try:
        return base64.b64decode(value[6:]).decode().partition(":")[2]
    except ValueError:
        return None


class ReadGuard:
    """Pure ASGI middleware: 401 for a request that `may_read` refuses, before its body is read."""

    def __init__(self, app: Any, settings: Any):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or may_read(scope, self.settings):
            await self.app(scope, receive, send)
            return
        given = bearer_of(scope.get("headers", []))
        message = ("the bearer token is wrong; use the service's read or write token" if given else
                   "this service requires a bearer token for reads: send 'Authorization: Bearer <token>' "
                   "(DATA_DEBUGGER_READ_TOKEN or DATA_DEBUGGER_TOKEN)")
        body = json.dumps(error_body(401, "not_authorized", message)).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})
