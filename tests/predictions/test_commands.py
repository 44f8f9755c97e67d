"""The CLI: train, models, predict in-process, and model-server as its own process on a loopback port."""

from __future__ import annotations

import os
import sys

import httpx
import pytest

from service.cli import main
from tests.conftest import REPO
from tests.predictions.conftest import DATASET
from tests.servers import free_port, running


@pytest.fixture
def env(home, monkeypatch) -> dict[str, str]:
    values = {"DATA_DEBUGGER_HOME": str(home), "DATA_DEBUGGER_FAKE_EMBEDDINGS": "1",
              "DATA_DEBUGGER_STORE_BACKEND": "edge"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PREDICTION_API_KEY", raising=False)
    return values


def test_train_models_predict(env, capsys):
    assert main(["train", "--dataset", DATASET, "--model", "logreg", "--folds", "3", "--promote"]) == 0
    out = capsys.readouterr().out
    assert "planted v3: logreg" in out and "v3 is now production" in out
    assert "validation (n=32)" in out and "test (n=32)" in out and "95% CI" in out
    assert "out-of-fold (3 folds, n=184)" in out

    assert main(["models", "--dataset", DATASET]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["planted v1", "planted v2", "planted v3 [production]"]

    assert main(["predict", "--dataset", DATASET]) == 0
    assert "200 of 200 points predicted by v3" in capsys.readouterr().out
    assert main(["models", "--dataset", DATASET, "--promote", "v1"]) == 0
    assert "planted v1 [production]" in capsys.readouterr().out


def test_train_errors_exit_2_with_a_message(env, capsys, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["train", "--dataset", DATASET, "--from", str(empty)]) == 2
    assert "the file is empty" in capsys.readouterr().err
    assert main(["models", "--promote", "v1"]) == 2
    assert "--promote needs --dataset" in capsys.readouterr().err


def test_model_server_process_answers_two_versions(env, tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "service.cli", "model-server", "--port", str(port), "--dataset", DATASET]
    with running(command, f"http://127.0.0.1:{port}", tmp_path / "model-server.log", timeout=60, cwd=REPO,
                 env={**os.environ, **env}) as server:
        base = server.url
        for version in ("v1", "v2"):
            r = httpx.get(f"{base}/intent", params={"query": "what is my savings interest rate", "version": version})
            assert r.status_code == 200 and r.json() == {**r.json(), "intent": "rates", "model_version": version}
            r = httpx.post(f"{base}/predict", params={"version": version}, json={"id": 1, "text": "lost card pin"})
            assert r.json()["label"] == "card" and r.json()["model_version"] == version
            texts = [{"text": "invoice due amount"}, {"text": "trip abroad currency"}]
            r = httpx.post(f"{base}/projects/{DATASET}/predict", params={"version": version},
                           json={"data": texts, "n_best": 2})
            assert [item["predictions"][0]["value"] for item in r.json()] == ["bill", "travel"]
        assert httpx.get(f"{base}/models").json()["count"] == 2


def _versions(home) -> list[str]:
    return sorted(p.name for p in (home / "models" / DATASET).iterdir() if p.name.startswith("v"))


def test_train_if_changed_keeps_the_version_until_data_or_options_change(env, home, capsys, tmp_path, planted):
    source = tmp_path / "data.csv"
    source.write_text(planted.csv.read_text())
    argv = ["train", "--dataset", DATASET, "--from", str(source), "--model", "logreg", "--folds", "3", "--if-changed"]
    assert main(argv) == 0
    trained = _versions(home)
    assert trained == ["v1", "v2", "v3"] and "not retrained" not in capsys.readouterr().out
    assert main(argv) == 0
    assert _versions(home) == trained and "planted v3 was trained on the same data" in capsys.readouterr().out
    assert main([*argv, "--seed", "1"]) == 0  # other options: a new version
    assert _versions(home) == ["v1", "v2", "v3", "v4"]
    lines = source.read_text().splitlines()
    header, first = lines[0].split(","), lines[1].split(",")
    label = header.index("label")
    first[label] = "rates" if first[label] != "rates" else "card"  # one label corrected: other data
    source.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    assert main([*argv, "--seed", "1"]) == 0
    assert _versions(home) == ["v1", "v2", "v3", "v4", "v5"]


def test_train_confusion_prints_the_matrices_and_writes_their_images(env, home, capsys):
    from matplotlib.image import imread

    from service.predictions.registry import ModelRegistry

    assert main(["train", "--dataset", DATASET, "--model", "logreg", "--folds", "3", "--confusion"]) == 0
    out = capsys.readouterr().out
    assert "micro P" in out and "macro P" in out
    version = ModelRegistry(home / "models").latest(DATASET)
    images = [line.split("image: ")[1] for line in out.splitlines() if "image: " in line]
    assert [image.rsplit("/", 1)[1] for image in images] == [f"confusion_{version.version}_validation.png",
                                                            f"confusion_{version.version}_test.png"]
    for split, image in zip(("validation", "test"), images, strict=True):
        rows = out.split(f"{split} confusion matrix")[1].splitlines()[2:2 + len(version.labels)]
        printed = [[int(count) for count in row.split()[2:]] for row in rows]
        assert printed == version.metrics[split]["confusion"]["matrix"]
        assert [row.split()[1] for row in rows] == version.labels
        height, width, _ = imread(image).shape
        assert height > 200 and width > 200


def test_model_server_require_model_refuses_without_a_version(env, capsys):
    assert main(["model-server", "--dataset", "never_trained", "--require-model"]) == 2
    err = capsys.readouterr().err
    assert "no trained model version of 'never_trained'" in err and "run make train first" in err
