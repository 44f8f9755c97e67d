"""Exports: exact columns, orders and formats (CSV, JSONL, Label Studio), streaming, and the `export` CLI."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest

from service.errors import InvalidInput, NotFound
from service.exports import (
    CLUSTER_COLUMNS,
    ISSUE_COLUMNS,
    POINT_COLUMNS,
    QUEUE_COLUMNS,
    SUGGESTION_COLUMNS,
    label_studio_config,
    stream_export,
    write_export,
)
from tests.analyses.conftest import DATASET


def read_csv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def exported(analysed_master, tmp_path_factory):
    """Every kind written once as CSV (and the queue also as JSONL and Label Studio tasks)."""
    folder = tmp_path_factory.mktemp("exports")
    counts = {}
    with analysed_master.workspace() as ws:
        for kind in ("points", "issues", "suggestions", "clusters"):
            counts[kind] = write_export(kind, ws, DATASET, folder / f"{kind}.csv")
        counts["queue"] = write_export("queue", ws, DATASET, folder / "queue.csv", strategy="entropy", limit=7)
        write_export("queue", ws, DATASET, folder / "queue.jsonl", "jsonl", strategy="entropy", limit=7)
        write_export("queue", ws, DATASET, folder / "queue.json", "label-studio", strategy="entropy", limit=7)
        stream = io.StringIO()
        write_export("issues", ws, DATASET, stream, "jsonl", only_flagged=True)
        streamed = "".join(stream_export("points", ws, DATASET, "csv"))
    return folder, counts, stream.getvalue(), streamed


def test_points_csv(exported, analysed_master):
    folder, counts, _, streamed = exported
    columns, rows = read_csv((folder / "points.csv").read_text())
    assert columns == POINT_COLUMNS
    assert columns[:13] == ["id", "text", "label", "split", "prediction", "confidence", "entropy", "cluster", "x",
                            "y", "mislabel_score", "suggested_label", "triage"]
    planted = analysed_master.planted
    assert counts["points"] == len(rows) == len(planted.records)
    by_id = {int(r["id"]): r for r in rows}
    for rid in planted.mislabelled[:3]:
        assert by_id[rid]["triage"] == "label_error" and by_id[rid]["suggested_label"] == planted.truth[rid]
    assert by_id[planted.outlier]["outlier"] == "true" and "outlier" in by_id[planted.outlier]["flags"]
    assert all(r["label_issue"] in ("true", "false") for r in rows)
    assert streamed == (folder / "points.csv").open(newline="").read()  # the same bytes, CRLF line ends


def test_issues_most_suspicious_first(exported, analysed_master):
    folder, counts, flagged_jsonl, _ = exported
    columns, rows = read_csv((folder / "issues.csv").read_text())
    assert columns == ISSUE_COLUMNS
    planted = analysed_master.planted
    assert counts["issues"] == sum(r["label"] is not None for r in planted.records)
    scores = [float(r["mislabel_score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert {int(r["id"]) for r in rows[: len(planted.mislabelled)]} == set(planted.mislabelled)
    assert "neighbours" in rows[0]["reasons"]
    flagged = [json.loads(line) for line in flagged_jsonl.splitlines()]
    assert flagged and len(flagged) < len(rows)
    assert {int(r["id"]) for r in flagged} <= {int(r["id"]) for r in rows[: len(flagged) + 2]}
    assert all(isinstance(r["reasons"], list) for r in flagged)


def test_suggestions_and_clusters(exported, analysed_master):
    folder, counts, _, _ = exported
    columns, rows = read_csv((folder / "suggestions.csv").read_text())
    assert columns == SUGGESTION_COLUMNS
    assert counts["suggestions"] == len(analysed_master.planted.unlabelled)
    confidences = [float(r["confidence"]) for r in rows]
    assert confidences == sorted(confidences, reverse=True)
    assert {r["agreement"] for r in rows} <= {"agree", "conflict", "model_only"}
    columns, rows = read_csv((folder / "clusters.csv").read_text())
    assert columns == CLUSTER_COLUMNS
    report = analysed_master.report
    assert len(rows) == len(report["clusters"]) + (1 if report["noise"] else 0)
    assert [int(r["id"]) for r in rows[: len(report["clusters"])]] == [c["id"] for c in report["clusters"]]
    assert any(r["candidate_new_intent"] == "true" for r in rows)
    assert json.loads(rows[0]["label_distribution"]) == report["clusters"][0]["label_distribution"]


def test_queue_in_three_formats(exported):
    folder, counts, _, _ = exported
    columns, rows = read_csv((folder / "queue.csv").read_text())
    assert columns == QUEUE_COLUMNS and counts["queue"] == len(rows) == 7
    lines = [json.loads(line) for line in (folder / "queue.jsonl").read_text().splitlines()]
    assert [r["id"] for r in lines] == [int(r["id"]) for r in rows]
    assert list(lines[0]) == QUEUE_COLUMNS
    tasks = json.loads((folder / "queue.json").read_text())
    assert len(tasks) == 7
    for task, row in zip(tasks, lines, strict=True):
        assert task["data"]["text"] == row["text"] and task["data"]["id"] == row["id"]
        prediction = task["predictions"][0]
        assert prediction["model_version"] == "v1"
        assert 0 < prediction["score"] <= 1
        result = prediction["result"][0]
        assert result["type"] == "choices" and result["from_name"] == "label" and result["to_name"] == "text"
        assert result["value"]["choices"] == [row["suggested_label"]]


def test_label_studio_config_matches_the_tasks():
    root = ET.fromstring(label_studio_config(["card & pin", "bill"]))
    choices = root.find("Choices")
    assert choices.get("name") == "label" and choices.get("toName") == "text"
    assert [c.get("value") for c in choices.findall("Choice")] == ["card & pin", "bill"]
    assert root.find("Text").get("name") == "text"


def test_bad_export_requests(analysed_master, settings):
    with analysed_master.workspace() as ws:
        with pytest.raises(InvalidInput, match="label-studio export is for"):
            write_export("points", ws, DATASET, io.StringIO(), "label-studio")
        with pytest.raises(InvalidInput, match="kind 'everything'"):
            write_export("everything", ws, DATASET, io.StringIO())
        with pytest.raises(InvalidInput, match="format 'xlsx'"):
            stream_export("points", ws, DATASET, "xlsx")
    from embeddings.embedder import FakeEmbedder
    from service.workspace import Workspace

    with Workspace(settings, embedder=FakeEmbedder()) as ws:
        with pytest.raises(NotFound):
            stream_export("issues", ws, "nothing", "csv")
        # Ingested, never analysed: a clear refusal, not a file of rows with blank scores.
        from service.datasets.ingest import ingest, make_sources
        from tests.conftest import FIXTURES

        ingest(ws.catalog, ws.embedder, "fresh", make_sources([FIXTURES / "small.csv"]))
        for kind in ("issues", "suggestions", "clusters"):
            with pytest.raises(NotFound, match="analy"):
                stream_export(kind, ws, "fresh", "csv")
        assert len("".join(stream_export("points", ws, "fresh", "csv")).splitlines()) > 1  # points need none


def test_export_cli(analysed, monkeypatch, tmp_path, capsys):
    from service.cli import main

    monkeypatch.setenv("DATA_DEBUGGER_HOME", str(analysed.settings.home))
    monkeypatch.setenv("DATA_DEBUGGER_FAKE_EMBEDDINGS", "1")
    out = tmp_path / "queue.jsonl"
    assert main(["export", "queue", "--dataset", DATASET, "--strategy", "margin", "--limit", "4", "-o", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 4
    assert "4 queue row(s)" in capsys.readouterr().err
    tasks, config = tmp_path / "tasks.json", tmp_path / "config.xml"
    assert main(["export", "suggestions", "--dataset", DATASET, "-o", str(tasks), "--label-config", str(config)]) == 0
    assert len(json.loads(tasks.read_text())) == len(analysed.planted.unlabelled)
    labels = {c.get("value") for c in ET.fromstring(config.read_text()).iter("Choice")}
    assert labels == {"bill", "card", "rates", "rewards", "travel"}
    assert main(["export", "clusters", "--dataset", DATASET]) == 0
    assert capsys.readouterr().out.startswith(",".join(CLUSTER_COLUMNS))
    assert main(["export", "points", "--dataset", DATASET, "--format", "label-studio", "-o", str(tasks)]) == 2
    from service.analyses.report import report_path

    report_path(analysed.settings, DATASET).unlink()
    assert main(["export", "clusters", "--dataset", DATASET]) == 2
    assert "has not been analysed yet" in capsys.readouterr().err


def test_label_studio_scores_the_choice_only_with_its_own_confidence():
    from service.exports import label_studio_task

    issue = label_studio_task({"id": 1, "text": "t", "label": "a", "suggested_label": "b", "mislabel_score": 0.9})
    assert "score" not in issue["predictions"][0] and issue["data"]["mislabel_score"] == 0.9
    suggestion = label_studio_task({"id": 2, "text": "u", "suggested_label": "b", "suggestion_confidence": 0.7})
    assert suggestion["predictions"][0]["score"] == 0.7
