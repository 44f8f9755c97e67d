"""`make train` then `make api`, exactly as a user types them, in a temp data home: the curl of the README
answers with an intent and a probability; `make api` before any training stops with the fix.

The Makefile's install stamp would reinstall the environment when pyproject.toml is newer than it; the tests
give make a stamp of their own, just made, and check with `make -n` that nothing would be installed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, requires_shared
from tests.servers import free_port, running

QUERY = "what is my new credit limit"
HUMANLOOP_LABELS = {"bill_question", "calculator", "card_issue", "chat_settings", "credit_question", "finances",
                    "insurance_question", "international", "new_application", "rates_related", "rewards_related",
                    "work_inquiry"}


@pytest.fixture
def make_env(tmp_path: Path) -> dict[str, str]:
    """A data home of the test's own; fake embeddings (the real MiniLM doubles `make train`'s 4 minutes here)."""
    env = {**os.environ, "DATA_DEBUGGER_HOME": str(tmp_path / "home"), "DATA_DEBUGGER_FAKE_EMBEDDINGS": "true",
           "DATA_DEBUGGER_STORE_BACKEND": "edge"}
    for key in ("QDRANT_URL", "PREDICTION_API_KEY", "MAKEFLAGS", "MFLAGS", "NUMBA_CACHE_DIR"):
        env.pop(key, None)
    return env


@pytest.fixture
def stamp(tmp_path: Path) -> str:
    """An install stamp newer than pyproject.toml and constraints.txt: make sees the install as done."""
    path = tmp_path / "installed"
    path.touch()
    return f"STAMP={path}"


def _make(target: str, stamp: str, env: dict[str, str], *extra: str, **kwargs) -> subprocess.CompletedProcess:
    planned = subprocess.run(["make", "-n", target, stamp, *extra], cwd=REPO, env=env, capture_output=True,
                             text=True, check=True)
    assert "pip install" not in planned.stdout, f"make {target} would reinstall:\n{planned.stdout}"
    return subprocess.run(["make", target, stamp, *extra], cwd=REPO, env=env, capture_output=True, text=True,
                          **kwargs)


def test_make_api_without_a_trained_version_exits_non_zero_with_the_fix(make_env, stamp):
    done = _make("api", stamp, make_env, timeout=300)
    assert done.returncode != 0
    assert "run make train first" in done.stderr


@requires_shared
@pytest.mark.slow
def test_make_train_then_make_api_answer_the_readme_curl(make_env, stamp, tmp_path):
    trained = _make("train", stamp, make_env, timeout=900)
    assert trained.returncode == 0, trained.stderr[-3000:]
    out = trained.stdout
    assert "is not in the store yet: ingesting" in out and "humanloop v1:" in out
    for split in ("validation", "test"):
        assert f"{split} (n=213)" in out and f"{split} confusion matrix" in out
    assert out.count("micro P") == 2 and out.count("macro P") == 2
    images = [Path(line.split("image: ")[1]) for line in out.splitlines() if "image: " in line]
    assert len(images) == 2 and all(image.read_bytes().startswith(b"\x89PNG") for image in images)

    again = _make("train", stamp, make_env, timeout=900)  # nothing changed: nothing retrained
    assert again.returncode == 0 and "humanloop v1 was trained on the same data" in again.stdout
    assert sorted(p.name for p in (tmp_path / "home" / "models" / "humanloop").glob("v*")) == ["v1"]

    port = free_port()
    planned = subprocess.run(["make", "-n", "api", stamp, f"API_PORT={port}"], cwd=REPO, env=make_env,
                             capture_output=True, text=True, check=True)
    assert "pip install" not in planned.stdout
    # In a session of its own (running() does that), so that make and the server it started stop together.
    with running(["make", "api", stamp, f"API_PORT={port}"], f"http://localhost:{port}", tmp_path / "api.log",
                 cwd=REPO, env=make_env) as api:
        # The README's curl: curl -G "http://localhost:4002/intent" --data-urlencode "query=..."
        answer = httpx.get(f"http://localhost:{port}/intent", params={"query": QUERY}).json()
        assert answer["intent"] in HUMANLOOP_LABELS and 0 < answer["probability"] <= 1
        printed = api.output()
        assert f"model server on http://127.0.0.1:{port}" in printed
        assert f'curl -G "http://127.0.0.1:{port}/intent" --data-urlencode "query={QUERY}"' in printed
