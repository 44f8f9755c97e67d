"""The data-debugger command, in-process: ingest, datasets, show, and clear errors with exit code 2."""

from __future__ import annotations

import json

import pytest

from service.cli import main
from tests.conftest import FIXTURES


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DEBUGGER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATA_DEBUGGER_FAKE_EMBEDDINGS", "1")
    monkeypatch.setenv("DATA_DEBUGGER_STORE_BACKEND", "edge")
    return tmp_path / "home"


def test_ingest_datasets_show(home, capsys):
    assert main(["ingest", str(FIXTURES / "humanloop_small.json"), "--dataset", "hl"]) == 0
    assert "inserted 6" in capsys.readouterr().out
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "hl: 6 points, 5 labelled, 1 unlabelled, 3 labels" in out
    assert "training 3" in out and "card_issue 2" in out
    assert main(["datasets", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hl"]["by_split"]["validation"] == 1
    assert main(["show", "hl", "700002"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "what is my credit limit"


def test_ingest_csv_with_flags(home, capsys):
    args = ["ingest", str(FIXTURES / "small.csv"), "--dataset", "b", "--label-column", "category",
            "--split", "training"]
    assert main(args) == 0
    capsys.readouterr()
    main(["datasets", "--json"])
    assert json.loads(capsys.readouterr().out)["b"]["by_split"] == {"training": 3}


def test_errors_exit_2_with_the_message(home, capsys):
    assert main(["ingest", str(FIXTURES / "bad" / "empty_text.csv"), "--dataset", "x"]) == 2
    err = capsys.readouterr().err
    assert 'record 2 (line 3): "text" is empty' in err and "--skip-invalid" in err
    assert main(["show", "nope", "1"]) == 2
    assert "dataset 'nope' does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["analyze", "--dataset", "x", "--seed", "-1"], "argument --seed: -1 is below 0"),
    (["analyze", "--dataset", "x", "-k", "0"], "argument -k: 0 is below 1"),
    (["train", "--dataset", "x", "--folds", "1"], "argument --folds: 1 is below 2"),
    (["export", "issues", "--dataset", "x", "-o", "i.csv", "--limit", "-1"], "argument --limit: -1 is below 1"),
    (["export", "queue", "--dataset", "x", "-o", "q.csv", "--seed", "ten"], "'ten' is not a whole number"),
])
def test_counts_out_of_range_are_usage_errors_not_tracebacks(home, capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err
