"""A real uvicorn server on a random loopback port, and an ASGI wrapper that injects faults on predictions."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from tests.servers import serve_app


@dataclass
class Seen:
    """One predict request as the server saw it."""

    n: int
    fault: str | None
    at: float
    texts: list[str]
    status: int | None = None


@dataclass
class FaultInjector:
    """Wraps an ASGI app; the schedule maps the n-th predict request (1-based) to a fault or None.

    Faults: "429" (with `retry_after`), "500", "503", "stall" (wait `stall_s`, then answer: the client has
    timed out by then, so the server did the work and the answer is lost, as in a real timeout).
    """

    app: Callable
    schedule: Callable[[int], str | None]
    retry_after: str = "0"
    stall_s: float = 1.0
    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].endswith("/predict"):
            return await self.app(scope, receive, send)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        texts = [d.get("text") for d in json.loads(body or b"{}").get("data", [])]
        record = Seen(len(self.seen) + 1, None, time.monotonic(), texts)
        record.fault = self.schedule(record.n)
        self.seen.append(record)
        if record.fault in ("429", "500", "503"):
            headers = [(b"content-type", b"application/json")]
            if record.fault == "429":
                headers.append((b"retry-after", self.retry_after.encode()))
            record.status = int(record.fault)
            await send({"type": "http.response.start", "status": record.status, "headers": headers})
            await send({"type": "http.response.body", "body": b'{"detail": "injected"}'})
            return
        if record.fault == "stall":
            await asyncio.sleep(self.stall_s)

        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def watch(message):
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        await self.app(scope, replay, watch)

    def answered(self) -> list[Seen]:
        """Requests answered 200 that were not stalled past the client's timeout."""
        return [s for s in self.seen if s.status == 200 and s.fault != "stall"]


def live_server(app) -> AbstractContextManager[str]:
    """Serve `app` (no lifespan: the fault injector wraps bare apps) on a free loopback port; yields the URL."""
    return serve_app(app, lifespan="off", timeout_graceful_shutdown=2)
