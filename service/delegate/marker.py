"""The running service's marker, `<home>/service.json` ({url, pid, started}): written by `serve` once it
listens, removed when it stops, and read by a CLI command that finds the embedded store locked, to learn
where to send its work. A marker whose process is gone or whose URL does not answer is stale and ignored."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

MARKER_NAME = "service.json"
HEALTH_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class RunningService:
    """Where a service serving this home answers, and which process it is."""

    url: str
    pid: int
    started: str


def marker_path(home: Path) -> Path:
    return home / MARKER_NAME


def write_marker(home: Path, url: str) -> Path:
    """Say that this process serves `home` at `url`; written whole or not at all (temp file, then rename)."""
    path = marker_path(home)
    home.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"url": url, "pid": os.getpid(), "started": datetime.now(UTC).isoformat(timespec="seconds")})
    fd, temp = tempfile.mkstemp(prefix=".service-", suffix=".json", dir=home)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(body)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def remove_marker(home: Path) -> None:
    """Remove the marker if this process wrote it (a newer service's marker stays)."""
    found = read_marker(home)
    if found is not None and found.pid == os.getpid():
        marker_path(home).unlink(missing_ok=True)


def read_marker(home: Path) -> RunningService | None:
    """The marker as written, or None when there is none or it cannot be read."""
    try:
        raw = json.loads(marker_path(home).read_text())
        return RunningService(url=str(raw["url"]).rstrip("/"), pid=int(raw["pid"]), started=str(raw["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, but it exists
        return True
    return True


def live_service(home: Path) -> RunningService | None:
    """The service serving `home`, when its marker names a live process whose URL answers /api/health with 200
    (a 503 means that service does not hold the store either, so it could not do the work)."""
    found = read_marker(home)
    if found is None:
        return None
    if not _alive(found.pid):
        log.debug("ignoring %s: process %d is gone", marker_path(home), found.pid)
        return None
    try:
        # No proxy from the environment: the marker names this machine's own service.
        answer = httpx.get(f"{found.url}/api/health", timeout=HEALTH_TIMEOUT_S, trust_env=False)
    except httpx.HTTPError as exc:
        log.debug("ignoring %s: %s does not answer (%s)", marker_path(home), found.url, exc)
        return None
    if answer.status_code != 200:
        log.debug("ignoring %s: %s/api/health answered %d", marker_path(home), found.url, answer.status_code)
        return None
    return found
