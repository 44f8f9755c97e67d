"""Body size limit for every request: a declared Content-Length over the limit is refused before the body
is read, and a chunked body is cut off as soon as it passes the limit."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException

from service.api.errors import error_body


class BodyLimit:
    """Pure ASGI middleware (no buffering): 413 for bodies over `limit` bytes."""

    def __init__(self, app: Any, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                if value.isdigit() and int(value) > self.limit:
                    await self._refuse(send, int(value))
                    return
                break
        seen = 0
        limit = self.limit

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"the body is over the limit of {limit} bytes")
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, send: Any, size: int) -> None:
        import json

        body = json.dumps(error_body(413, "too_large", f"the body is {size} bytes; the limit is {self.limit} "
                                     "(DATA_DEBUGGER_MAX_UPLOAD_BYTES)")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
