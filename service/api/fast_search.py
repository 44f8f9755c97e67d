"""The search route's fast lane: `POST /api/datasets/{d}/search` answered without FastAPI's routing,
dependency and response layers.

Profiled at 100k points under 16 concurrent clients, those layers cost as much as the search itself
(README, "Similarity search"), and search is what the dashboard and notebooks
call in a loop. The lane parses the body with the route's own model (`SearchIn`) and answers with the
route's own code (`search_page`), so both give the same bytes. Anything it does not answer plainly (a body
that does not validate, an unknown dataset or point, a cross-origin request, any error) is replayed through
the full app, which answers it exactly as it would have without the lane: one error model, one place.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pydantic import ValidationError

from service.api.routers.search import search_page
from service.api.schemas import SearchIn
from service.errors import DataDebuggerError

log = logging.getLogger(__name__)

PATH = re.compile(r"^/api/datasets/([^/]{1,64})/search$")
MAX_BODY = 64 * 1024  # a search body is a few hundred bytes; anything larger takes the full path
JSON_HEADERS = [(b"content-type", b"application/json")]


class FastSearch:
    """Pure ASGI middleware in front of the app; `state` is the app's ApiState."""

    def __init__(self, app: Any, state: Any):
        self.app = app
        self.state = state
        self.answered = 0  # requests the lane answered itself (tests read it)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        match = PATH.match(scope.get("path", "")) if scope["type"] == "http" and scope["method"] == "POST" else None
        if match is None or any(name == b"origin" for name, _ in scope["headers"]):
            # Cross-origin requests need the CORS middleware's headers: full path.
            await self.app(scope, receive, send)
            return
        body, complete, messages = b"", True, []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                complete = False
                break
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                complete = False
                break
            if not message.get("more_body", False):
                break
        answer = await self._answer(match.group(1), body) if complete else None
        if answer is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        self.answered += 1
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*JSON_HEADERS, (b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})

    async def _answer(self, dataset: str, body: bytes) -> bytes | None:
        try:
            return await search_page(self.state, dataset, SearchIn.model_validate_json(body))
        except (ValidationError, DataDebuggerError):
            return None  # the full path answers it with the error model
        except Exception:  # noqa: BLE001 - the full path logs it and answers 500 without internals
            log.debug("fast search lane declined a request", exc_info=True)
            return None


def _replay(messages: list[dict], receive: Any) -> Any:
    """A receive that hands back the messages already read, then the connection's own."""
    pending = list(messages)

    async def replayed() -> dict:
        return pending.pop(0) if pending else await receive()

    return replayed
