"""`data-debugger label-studio`: config, import of an export file (JSON and a refused CSV), and push/pull's
refusals when no server is configured or nothing was pushed (the real server: tests/labelstudio/)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from tests.analyses.conftest import DATASET


def test_label_studio_cli(analysed, monkeypatch, tmp_path, capsys):
    from service.cli import main

    monkeypatch.setenv("DATA_DEBUGGER_HOME", str(analysed.settings.home))
    monkeypatch.setenv("DATA_DEBUGGER_FAKE_EMBEDDINGS", "1")
    for name in ("URL", "TOKEN", "WEBHOOK_SECRET", "WEBHOOK_BASE"):
        monkeypatch.delenv(f"DATA_DEBUGGER_LABEL_STUDIO_{name}", raising=False)
    assert main(["label-studio", "config", "--dataset", DATASET]) == 0
    labels = {c.get("value") for c in ET.fromstring(capsys.readouterr().out).iter("Choice")}
    assert labels == {"bill", "card", "rates", "rewards", "travel"}

    tasks_file = tmp_path / "tasks.json"
    assert main(["export", "suggestions", "--dataset", DATASET, "-o", str(tasks_file)]) == 0
    tasks = json.loads(tasks_file.read_text())[:2]
    for task, choice in zip(tasks, ("bill", "travel"), strict=True):
        task["annotations"] = [{"id": 1, "completed_by": {"id": 1, "email": "ann@example.com"}, "result": [
            {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [choice]}}]}]
    tasks_file.write_text(json.dumps(tasks))
    capsys.readouterr()
    assert main(["label-studio", "import", str(tasks_file), "--dataset", DATASET]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["applied"] == 2 and result["format"] == "JSON" and "(JSON): " in captured.err
    assert main(["label-studio", "import", str(tasks_file), "--dataset", DATASET]) == 0
    assert json.loads(capsys.readouterr().out)["unchanged"] == 2

    foreign = tmp_path / "export.csv"
    foreign.write_text("id,text,label,annotator\n5,hi,bill,1\n")
    assert main(["label-studio", "import", str(foreign), "--dataset", DATASET]) == 2
    assert "CSV export" in capsys.readouterr().err

    assert main(["label-studio", "push", "--dataset", DATASET, "--limit", "3"]) == 2
    assert "DATA_DEBUGGER_LABEL_STUDIO_URL" in capsys.readouterr().err
    monkeypatch.setenv("DATA_DEBUGGER_LABEL_STUDIO_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("DATA_DEBUGGER_LABEL_STUDIO_TOKEN", "t" * 40)
    assert main(["label-studio", "pull", "--dataset", DATASET]) == 2
    err = capsys.readouterr().err
    assert "label-studio push --dataset" in err and "t" * 40 not in err
