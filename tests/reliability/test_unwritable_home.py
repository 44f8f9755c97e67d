"""A data home the process cannot write: the CLI says so in one line naming the path and the fix (no
traceback), and the service answers 503 with the same reason (health included) instead of failing."""

from __future__ import annotations

import pytest

from service.cli import main
from service.settings import Settings
from tests.api.conftest import HUMANLOOP_SMALL, running


@pytest.fixture
def env_home(unwritable_home, monkeypatch):
    home, how = unwritable_home
    monkeypatch.setenv("DATA_DEBUGGER_HOME", str(home))
    monkeypatch.setenv("DATA_DEBUGGER_FAKE_EMBEDDINGS", "1")
    monkeypatch.setenv("DATA_DEBUGGER_STORE_BACKEND", "edge")
    return home, how


@pytest.mark.parametrize("argv", [
    ["datasets"],
    ["ingest", str(HUMANLOOP_SMALL), "--dataset", "hl"],
    ["analyze", "--dataset", "hl"],
])
def test_cli_names_the_home_and_the_fix_in_one_line(env_home, capsys, argv):
    home, how = env_home
    assert main(argv) == 2, how
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, (how, err)
    assert f"the data home {home} is not writable" in err and "set DATA_DEBUGGER_HOME" in err, (how, err)
    assert "Traceback" not in err


@pytest.mark.anyio
async def test_service_answers_503_with_the_reason(unwritable_home):
    home, how = unwritable_home
    settings = Settings(home=home, fake_embeddings=True, store_backend="edge")
    async with running(settings, model_app=False) as (_, client):
        health = await client.get("/api/health")
        assert health.status_code == 503, how
        assert f"the data home {home} is not writable" in health.json()["reason"]
        listed = await client.get("/api/datasets")
        assert listed.status_code == 503 and "DATA_DEBUGGER_HOME" in listed.json()["message"]
