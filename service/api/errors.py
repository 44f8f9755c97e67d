"""The one place where exceptions become HTTP answers, and the error responses every route documents.
Statuses and codes come from `service.errors.STATUSES`:

    service.errors.NotFound        -> 404
    service.errors.InvalidInput    -> 422 (InvalidRecords lists every problem)
    RequestValidationError         -> 422 naming the field (e.g. "query.limit")
    service.errors.Conflict        -> 409
    service.errors.TooLarge        -> 413
    service.errors.InsufficientStorage -> 507 (reads are still served)
    NotAuthorized                  -> 401 with WWW-Authenticate: Bearer
    service.errors.Unavailable,
    store transport errors         -> 503
    anything else                  -> 500, logged with its traceback, answered without internals
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.schemas import ErrorOut
from service.errors import (
    STATUSES,
    DataDebuggerError,
    InsufficientStorage,
    InvalidRecords,
    NotAuthorized,
    Unavailable,
    status_of,
)

__all__ = ["NotAuthorized", "READ_ERRORS", "WRITE_ERRORS", "answer_for", "describe", "error_body",
           "install_error_handlers", "responses"]

log = logging.getLogger(__name__)


# The framework's own HTTP errors (unknown route, wrong method...) get the same codes as ours.
_HTTP_CODES = {**{status: code for _, status, code in STATUSES if status != 500},
               400: "bad_request", 405: "method_not_allowed", 415: "unsupported_media_type"}


def _transport_errors() -> tuple[type[Exception], ...]:
    """Exceptions meaning the store (a Qdrant server) cannot be reached."""
    import httpx
    from qdrant_client.http.exceptions import ResponseHandlingException

    return (httpx.TransportError, ConnectionError, ResponseHandlingException)


def error_body(status: int, code: str, message: str, field: str | None = None,
               problems: list[str] | None = None) -> dict[str, Any]:
    """The JSON every error answer carries (schema: ErrorOut)."""
    return ErrorOut(status=status, code=code, message=message, field=field, problems=problems or []).model_dump()


def _answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


_FIELD_PREFIX = re.compile(r"^((?:body|query|path|form|options)\.[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)[ :]")


def _field_named(message: str) -> str | None:
    """The request field a core error's message opens with ("body.label 'x' is not a label ..."), so that
    errors raised below the API name their field too."""
    match = _FIELD_PREFIX.match(message)
    return match.group(1) if match else None


def describe(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """Status and error body for any exception; unexpected ones are logged with their traceback."""
    if isinstance(exc, DataDebuggerError):
        # A subclass nobody mapped is still ours, still safe to show.
        status, code = status_of(exc)
        problems = [str(p) for p in exc.problems[:200]] if isinstance(exc, InvalidRecords) else None
        if isinstance(exc, InsufficientStorage):  # expected while the disk is low: one line, no traceback
            log.warning("write refused: %s", exc)
        elif status >= 500 and not isinstance(exc, Unavailable):
            log.error("request failed: %s", exc, exc_info=exc)
        return status, error_body(status, code, str(exc), getattr(exc, "field", None) or _field_named(str(exc)),
                                  problems)
    if isinstance(exc, _transport_errors()):
        log.warning("store unreachable: %s", exc)
        return 503, error_body(503, "unavailable", "the store cannot be reached; retry shortly")
    log.error("unexpected error", exc_info=exc)
    return 500, error_body(500, "internal_error", "internal error; the service log has the details")


def answer_for(exc: Exception) -> JSONResponse:
    """The HTTP answer for any exception."""
    status, body = describe(exc)
    return _answer(status, body, {"WWW-Authenticate": "Bearer"} if status == 401 else None)


def _validation_answer(exc: RequestValidationError) -> JSONResponse:
    problems = []
    first_field = None
    for err in exc.errors():
        loc = ".".join(str(part) for part in err.get("loc", ()))
        first_field = first_field or loc
        # Our validators' own messages say what is wrong; pydantic's "Value error, " prefix adds nothing.
        problems.append(f"{loc}: {err.get('msg', 'invalid').removeprefix('Value error, ')}")
    message = "; ".join(problems) or "invalid request"
    return _answer(422, error_body(422, "invalid_input", message, first_field, problems))


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to the one error model."""

    async def on_ours(request: Request, exc: Exception) -> JSONResponse:
        return answer_for(exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _validation_answer(exc)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return _answer(exc.status_code, error_body(exc.status_code, code, message), getattr(exc, "headers", None))

    app.add_exception_handler(DataDebuggerError, on_ours)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for cls in _transport_errors():
        app.add_exception_handler(cls, on_ours)
    # Not add_exception_handler(Exception): Starlette answers those but then re-raises them to the server.
    app.add_middleware(CatchAll)


class CatchAll:
    """ASGI middleware answering any exception no handler took with a 500 that shows no internals."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if started:  # a streamed body failed half-way: nothing valid can be sent any more
                log.exception("response failed after it started", exc_info=exc)
                raise
            await answer_for(exc)(scope, receive, send)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give."""
    text = {400: "Malformed request", 401: "Missing or wrong bearer token", 404: "Unknown dataset, point or resource",
            409: "Conflict: a stale revision, an existing resource, or a step that has not run yet",
            413: "Body or upload over the size limit", 422: "Invalid input; `field` names the field at fault",
            500: "Internal error (details in the service log)", 503: "The store cannot be reached",
            507: "The disk under the data home is below its free-space reserve; reads are still served"}
    return {s: {"model": ErrorOut, "description": text[s]} for s in statuses}


READ_ERRORS = responses(404, 422, 500, 503)
WRITE_ERRORS = responses(401, 404, 409, 413, 422, 500, 503, 507)
