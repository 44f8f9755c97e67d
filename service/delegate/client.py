"""The CLI's client of a running service: start a run (or upload a file to ingest), follow its progress in
the terminal, and read or download through the API, with the token the CLI's settings hold. The service's
error answers come back as the project's own errors, so the CLI reports them as it reports its own."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

from service.delegate.marker import RunningService
from service.errors import STATUSES, DataDebuggerError, InvalidInput
from service.settings import Settings

POLL_S = 0.5
FINISHED = ("succeeded", "failed", "interrupted")


def service_error(url: str, status: int, body: Any) -> DataDebuggerError:
    """The project's error for an error answer (its body is service.api.errors' ErrorOut when it is ours)."""
    body = body if isinstance(body, dict) else {}
    message = str(body.get("message") or f"HTTP {status}")
    problems = body.get("problems") or []
    if problems and str(problems[0]) not in message:  # a bad file's message already lists them
        message += "\n" + "\n".join(f"  {p}" for p in problems[:50])
    if status == 401:
        message += (" (the CLI sends DATA_DEBUGGER_TOKEN, else DATA_DEBUGGER_READ_TOKEN: set the service's token "
                    "in this shell)")
    cls = next((c for c, s, _ in STATUSES if s == status), DataDebuggerError)
    exc = cls(f"the service at {url}: {message}")
    exc.field = body.get("field")  # type: ignore[attr-defined]
    return exc


class ServiceClient:
    """HTTP to one running service; every request carries the CLI's bearer token when it has one."""

    def __init__(self, service: RunningService, settings: Settings, err: IO[str] | None = None):
        self.service = service
        self.url = service.url
        self.err = err or sys.stderr
        # The write token also reads; a read token alone is enough for `export`.
        secret = settings.token or settings.read_token
        headers = {"Authorization": f"Bearer {secret.get_secret_value()}"} if secret else {}
        # No proxy from the environment: the marker names this machine's own service.
        self.http = httpx.Client(base_url=self.url, headers=headers, trust_env=False,
                                 timeout=httpx.Timeout(300.0, connect=10.0))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _checked(self, response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text[:500]}
        raise service_error(self.url, response.status_code, body)

    def get_json(self, path: str, **params: Any) -> Any:
        return self._checked(self.http.get(path, params=params)).json()

    def get_text(self, path: str) -> str:
        return self._checked(self.http.get(path)).text

    def post_json(self, path: str, body: Any = None) -> Any:
        return self._checked(self.http.post(path, json=body)).json()

    def start_run(self, dataset: str, step: str, options: dict[str, Any]) -> dict[str, Any]:
        """Queue `step` on `dataset` through POST /api/datasets/{dataset}/runs; the run as answered (202)."""
        return self.post_json(f"/api/datasets/{dataset}/runs", {"step": step, "options": options})

    def upload(self, path: Path, dataset: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Send a file to POST /api/datasets (the service ingests it as a run); the run, not waited for."""
        form = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in fields.items() if v is not None}
        form.update(name=dataset, wait="false")
        with path.open("rb") as fh:
            answer = self._checked(self.http.post("/api/datasets", data=form, files={"file": (path.name, fh)}))
        return answer.json()["run"]

    def follow(self, run: dict[str, Any]) -> dict[str, Any]:
        """Poll the run until it finishes, writing a line to stderr each time its stage or count changes."""
        shown: tuple[Any, ...] | None = None
        while True:
            progress = run.get("progress") or {}
            now = (run["status"], progress.get("stage"), progress.get("done"), progress.get("total"))
            if now != shown:
                shown = now
                print(f"  {run['step']} {run['id']}: {_progress_line(run['status'], progress)}", file=self.err,
                      flush=True)
            if run["status"] in FINISHED:
                return run
            time.sleep(POLL_S)
            run = self.get_json(f"/api/runs/{run['id']}")

    def run(self, dataset: str, step: str, options: dict[str, Any]) -> dict[str, Any]:
        """Start a run, follow it, and return its result; a failed run raises its error."""
        return self.finished(self.follow(self.start_run(dataset, step, options)))

    def finished(self, run: dict[str, Any]) -> dict[str, Any]:
        """The result of a finished run, after saying where it ran; its error as the project's error if it
        failed."""
        if run["status"] != "succeeded":
            error = run.get("error") or {}
            raise service_error(self.url, int(error.get("status") or 500),
                                {**error, "message": f"run {run['id']} ({run['step']}) {run['status']}: "
                                 f"{error.get('message') or 'no reason given'}"})
        print(f"ran through the service at {self.url} (run {run['id']})", file=self.err, flush=True)
        return run.get("result") or {}

    @contextmanager
    def download(self, path: str, params: dict[str, Any]) -> Iterator[Iterator[bytes]]:
        """Stream a GET's body: yields its chunks, once the answer is known to be a success."""
        with self.http.stream("GET", path, params=params) as response:
            if not response.is_success:
                response.read()
                self._checked(response)
            yield response.iter_bytes()


def _progress_line(status: str, progress: dict[str, Any]) -> str:
    if status == "queued":
        return "queued (the service runs one step at a time)"
    stage, done, total = progress.get("stage") or status, progress.get("done") or 0, progress.get("total")
    if total:
        return f"{stage} {done}/{total} ({100 * done / total:.0f} %)"
    return f"{stage} {done}" if done else str(stage)


def refuse(flag: str, why: str) -> InvalidInput:
    """The error for a CLI option the service's step cannot take: what to do instead."""
    return InvalidInput(f"{flag} cannot go through the running service ({why}); stop the service "
                        "(it holds the embedded store) to run this command on its own, or leave the option out")

