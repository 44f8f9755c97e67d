"""A real Label Studio server (from its own virtual environment, SQLite, a free port, a user and token from the
environment, a HOME of its own) and the real Data Debugger service on another port, so Label Studio's webhooks
and ML-backend calls reach it over HTTP. One of each per test module: Label Studio takes a minute to start.

The Label Studio venv is `.ls-venv` in the repository root, or DATA_DEBUGGER_LS_VENV. It is never installed
here: when it is missing the tests fail, naming the install command (CI runs it, see .ci/run).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from embeddings.embedder import FakeEmbedder
from service.api.app import create_app
from tests.api.conftest import ingest_fixture, plant_analysis, settings_in
from tests.servers import free_port, running, serve_app

ROOT = Path(__file__).resolve().parents[2]
LS_VERSION = "1.23.2"
INSTALL = f"python3.11 -m venv .ls-venv && .ls-venv/bin/pip install label-studio=={LS_VERSION}"
START_TIMEOUT = 600  # first start migrates a new SQLite database: about a minute on 2 busy cores


@dataclass
class LabelStudio:
    """A running server: its URL, the admin's token and email, and an HTTP client acting as that admin."""

    url: str
    token: str
    email: str
    http: httpx.Client

    def user(self, email: str) -> int:
        """A Label Studio user (an annotator) made through the API; returns the user id."""
        made = self.http.post("/api/users/", json={"email": email, "username": email.split("@")[0],
                                                   "password": secrets.token_hex(8)})
        assert made.status_code == 201, made.text
        return int(made.json()["id"])


def label_studio_bin() -> Path:
    venv = Path(os.environ.get("DATA_DEBUGGER_LS_VENV") or ROOT / ".ls-venv")
    exe = venv / "bin" / "label-studio"
    if not exe.exists():
        pytest.fail(f"no Label Studio at {exe}: install it with `{INSTALL}` (in the repository root), or point "
                    "DATA_DEBUGGER_LS_VENV at a venv that has it", pytrace=False)
    return exe


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    """Label Studio started for this module and stopped (its whole process group) after it."""
    exe = label_studio_bin()
    folder = tmp_path_factory.mktemp("label-studio")
    port, token = free_port(), secrets.token_hex(20)
    email = "admin@example.com"
    env = {
        "PATH": f"{exe.parent}:{os.environ.get('PATH', '')}", "HOME": str(folder / "home"), "LANG": "C.UTF-8",
        "LABEL_STUDIO_BASE_DATA_DIR": str(folder / "data"), "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "LABEL_STUDIO_USERNAME": email, "LABEL_STUDIO_PASSWORD": secrets.token_hex(8),
        "LABEL_STUDIO_USER_TOKEN": token, "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        # Its webhooks and ML-backend calls go to the service on 127.0.0.1, which it refuses by default.
        "SSRF_PROTECTION_ENABLED": "false", "ML_BLOCK_LOCAL_IP": "false",
    }
    (folder / "home").mkdir()
    command = [str(exe), "start", "--no-browser", "--port", str(port), "--internal-host", "127.0.0.1",
               "--data-dir", str(folder / "data"), "--enable-legacy-api-token"]
    try:
        with running(command, f"http://127.0.0.1:{port}", folder / "label-studio.log", timeout=START_TIMEOUT,
                     env=env) as server, \
                httpx.Client(base_url=server.url, headers={"Authorization": f"Token {token}"}, timeout=60) as http:
            yield LabelStudio(server.url, token, email, http)
    finally:
        shutil.rmtree(folder / "home", ignore_errors=True)


@dataclass
class Service:
    """The Data Debugger service on a real port: its app (for in-process checks), URL and HTTP client."""

    app: Any
    url: str
    http: httpx.Client
    webhook_secret: str


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, label_studio: LabelStudio) -> Iterator[Service]:
    """The service connected to `label_studio`, the small Humanloop dataset ingested and analysed (planted)."""
    secret = secrets.token_hex(12)
    settings = settings_in(tmp_path_factory.mktemp("service"), label_studio_url=label_studio.url,
                           label_studio_token=label_studio.token, label_studio_webhook_secret=secret)
    app = create_app(settings, embedder=FakeEmbedder())
    with serve_app(app, lifespan="on") as url:
        ingest_fixture(app)
        plant_analysis(app)
        with httpx.Client(base_url=url, timeout=120) as http:
            yield Service(app, url, http, secret)
