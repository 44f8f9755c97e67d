"""The loop's commands in-process on the planted dataset: retrain (nothing to do, a dry run that promotes
nothing, a real retrain), evaluate, and out-of-range gate flags as usage errors."""

from __future__ import annotations

import json

import pytest

from service.cli import main
from service.predictions.registry import ModelRegistry
from tests.predictions.conftest import DATASET


@pytest.fixture
def cli_home(home, monkeypatch):
    monkeypatch.setenv("DATA_DEBUGGER_HOME", str(home))
    monkeypatch.setenv("DATA_DEBUGGER_FAKE_EMBEDDINGS", "1")
    monkeypatch.setenv("DATA_DEBUGGER_STORE_BACKEND", "edge")
    return home


def test_retrain_and_evaluate_from_the_command_line(cli_home, capsys):
    registry = ModelRegistry(cli_home / "models")
    assert main(["retrain", "--dataset", DATASET, "--folds", "3", "--no-analyze"]) == 0
    out = capsys.readouterr()
    assert "have not changed since" in out.out and "retrain: check labels" in out.err
    assert main(["retrain", "--dataset", DATASET, "--folds", "3", "--no-analyze", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "unchanged"
    champion = registry.production(DATASET)
    count = len(registry.versions(DATASET))

    assert main(["retrain", "--dataset", DATASET, "--folds", "3", "--force", "--dry-run", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "what-if" and result["promoted"] is False
    assert registry.production(DATASET) == champion and len(registry.versions(DATASET)) == count + 1
    assert set(result["evaluation"]) == {"champion", "challenger"}

    assert main(["evaluate", "--dataset", DATASET]) == 0
    text = capsys.readouterr().out
    assert f"{DATASET} {champion} testing" in text and "as ingested" in text


@pytest.mark.parametrize(("argv", "message"), [
    (["retrain", "--tolerance", "2"], "argument --tolerance: 2.0 is not between 0 and 1"),
    (["retrain", "--min-cluster-size", "0"], "argument --min-cluster-size: 0 is below 1"),
    (["retrain", "--max-cluster-regression", "x"], "'x' is not a number"),
])
def test_gate_flags_out_of_range_are_usage_errors(cli_home, capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err
