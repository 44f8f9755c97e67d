"""Real servers for the tests, started once here: a command in its own process, or an ASGI app on uvicorn in a
thread, each on a free loopback port, waited for until it answers and stopped after the block."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    """A loopback port nobody listens on now (for a server that must be given its port on its command line)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Process:
    """A running server process: its base URL, the process and the file its output goes to."""

    url: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        return self.log.read_text(errors="replace")


@contextmanager
def running(command: Sequence[str], url: str, log: Path, *, health: str = "/health", timeout: float = 120,
            env: Mapping[str, str] | None = None, cwd: Path | str | None = None) -> Iterator[Process]:
    """Run `command` until the block ends, once `url + health` answers 200.

    The test fails with the end of the log when the process exits first or does not answer in `timeout` s. The
    process gets a session of its own, so that stopping it stops what it started too (make, worker processes).
    """
    with log.open("wb") as out:
        process = subprocess.Popen(list(command), env=None if env is None else dict(env), cwd=cwd, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    server = Process(url, process, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(url + health, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                pytest.fail(f"{command[0]} exited ({process.returncode}) before {url}{health} answered:\n"
                            f"{server.output()[-3000:]}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"{command[0]} did not answer {url}{health} in {timeout:g} s:\n{server.output()[-3000:]}",
                            pytrace=False)
            time.sleep(0.2)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM to the process's session, SIGKILL after `grace` seconds if it is still running."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:  # already gone, with everything it started
            break
        try:
            process.wait(grace)
            break
        except subprocess.TimeoutExpired:
            continue
    process.wait(grace)


@contextmanager
def serve_app(app: Any, *, timeout: float = 60, **config: Any) -> Iterator[str]:
    """Serve the ASGI `app` with uvicorn on 127.0.0.1 in a thread until the block ends; yields its base URL.

    The socket is bound here and handed to uvicorn, so no other process can take the port in between. `config`
    goes to uvicorn.Config (e.g. lifespan="off" for an app without one).
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **{"log_level": "warning", **config}))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dd-test-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the test server did not start in {timeout:g} s (uvicorn's error is above)")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
