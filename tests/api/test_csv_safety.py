"""CSV exports never hand a spreadsheet a formula (issue 13.3): every CSV path (CLI `export points|issues`,
the API's queue download, the dashboard's queue download, the original-format export when asked to be
spreadsheet-safe) writes a text starting with =, +, -, @, tab, CR or LF with a leading `'`; JSONL and the
default original-format export keep the data exact."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from embeddings.store import load_all
from service.cli import main
from service.datasets.ingest import ingest, make_sources
from service.spreadsheet import FORMULA_TRIGGERS, safe_cell
from tests.api.conftest import running, settings_in
from tests.servers import serve_app

DATASET = "formulas"
# Texts a hostile source could carry, one per formula trigger.
TEXTS = ['=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "\tx", "\rx", "\nx", "=1+1 plain"]
# Labels keep no leading whitespace (ingest strips them), so the whitespace triggers are tested on texts.
LABELS = ['=HYPERLINK("x")', "+1", "-2", "@SUM(A1)"]
NEW_LABEL = '=HYPERLINK("http://evil","new")'  # set by relabel with allow_new_label
SAFE_TEXTS = ["plain", "'=already quoted", " =leading space"]


def write_source(folder: Path) -> Path:
    """A CSV whose labelled rows carry the hostile texts and labels, and unlabelled rows for the queue."""
    path = folder / "formulas.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text", "label"])
        n = 0
        for text in TEXTS + SAFE_TEXTS:
            for label in (*LABELS, ""):
                n += 1
                writer.writerow([n, f"{text} {n}" if text in SAFE_TEXTS else text + f" {n}", label])
    return path


def plant(ws) -> None:
    """What predict and analyze would write, with hostile strings in the fields a CSV export shows."""
    collection = ws.collection(DATASET)
    ids, payloads, _ = load_all(collection, with_vectors=False)
    updates = {}
    for n, (pid, p) in enumerate(zip(ids, payloads, strict=True)):
        fields = {"prediction": LABELS[n % 4], "confidence": 0.5 + (n % 7) / 20, "entropy": 0.3 + (n % 5) / 10,
                  "suggested_label": LABELS[(n + 1) % 4], "x": -1.5 - n, "y": -0.25, "cluster": n % 3,
                  "reasons": ["=cmd|' /C calc'!A0", "model says so"]}
        if p.get("label") is not None:
            fields.update(mislabel_score=0.1 + (n % 9) / 10, triage="label_error", flags=["label_issue"])
        else:
            fields.update(suggestion_confidence=0.6, triage="unlabelled", flags=[])
        updates[pid] = fields
    collection.set_payloads(updates)
    collection.flush()
    folder = ws.settings.reports_dir / DATASET
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "analysis.json").write_text(json.dumps({"run_id": "r1", "clusters": [], "summary": {}}))


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def assert_spreadsheet_safe(rows: list[list[str]]) -> int:
    """Every cell is safe to open (a number such as -1.5 is not a formula); returns how many cells carry the
    guard, so a test can see it worked."""
    guarded = 0
    for row in rows:
        for cell in row:
            assert number(cell) or not cell.startswith(FORMULA_TRIGGERS), (cell, row)
            guarded += cell.startswith("'") and cell[1:].startswith(FORMULA_TRIGGERS)
    return guarded


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory):
    """A data home holding the dataset, planted, with one point relabelled to NEW_LABEL through the API."""
    import anyio

    folder = tmp_path_factory.mktemp("formulas")
    settings = settings_in(folder)
    source = write_source(folder)

    async def build() -> None:
        async with running(settings) as (app, client):
            ws = app.state.api.workspace
            ingest(ws.catalog, ws.embedder, DATASET, make_sources([source], "csv"))
            plant(ws)
            done = await client.post(f"/api/datasets/{DATASET}/points/1/label",
                                     json={"action": "relabel", "label": NEW_LABEL, "allow_new_label": True})
            assert done.status_code == 200 and done.json()["label"] == NEW_LABEL, done.text

    anyio.run(build)
    return settings, source


def test_safe_cell_guards_each_trigger_and_nothing_else():
    for trigger in FORMULA_TRIGGERS:
        assert safe_cell(trigger + "x") == "'" + trigger + "x"
    for value in ("x", "", "'=x", " =x", "a=b", -2, -1.5, 0, None, True):
        assert safe_cell(value) == value


def test_cli_exports_of_points_and_issues_are_spreadsheet_safe(home, tmp_path, monkeypatch):
    settings, _ = home
    monkeypatch.setenv("DATA_DEBUGGER_HOME", str(settings.home))
    monkeypatch.setenv("DATA_DEBUGGER_FAKE_EMBEDDINGS", "1")
    monkeypatch.setenv("DATA_DEBUGGER_STORE_BACKEND", "edge")
    for kind in ("points", "issues", "suggestions"):
        out = tmp_path / f"{kind}.csv"
        assert main(["export", kind, "--dataset", DATASET, "--output", str(out)]) == 0
        rows = cells(out.read_text(encoding="utf-8"))
        assert assert_spreadsheet_safe(rows) > 0, kind
        texts = {row[rows[0].index("text")] for row in rows[1:]}
        assert any(t.startswith("'\t") for t in texts) and any(t.startswith("'=HYPERLINK") for t in texts)
        if kind == "points":
            by_id = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
            assert by_id["1"]["label"] == "'" + NEW_LABEL  # relabelled with allow_new_label
            assert by_id["1"]["x"] == "-1.5"  # numbers stay numbers
            assert by_id["1"]["reasons"].startswith("'=cmd")
            assert by_id["3"]["label"] == "'-2" and by_id["2"]["label"] == "'+1"  # text, even when numeric
        jsonl = tmp_path / f"{kind}.jsonl"
        assert main(["export", kind, "--dataset", DATASET, "--output", str(jsonl), "--format", "jsonl"]) == 0
        exact = [json.loads(line) for line in jsonl.read_text().splitlines()]
        assert any(r["text"].startswith("\r") for r in exact), kind  # JSONL keeps the data exact


@pytest.mark.anyio
async def test_api_queue_and_original_exports(home):
    settings, source = home
    async with running(settings) as (_, client):
        queue = await client.get(f"/api/datasets/{DATASET}/queue", params={"strategy": "random", "limit": 500})
        assert queue.status_code == 200
        rows = cells(queue.text)
        assert len(rows) > len(TEXTS) and assert_spreadsheet_safe(rows) > 0
        exact_queue = await client.get(f"/api/datasets/{DATASET}/queue",
                                       params={"strategy": "random", "limit": 500, "format": "jsonl"})
        assert any(json.loads(line)["text"].startswith("\r") for line in exact_queue.text.splitlines())

        # The original-format export is the dataset: by default it reads back exactly as it was ingested,
        # with the relabel applied.
        original = await client.get(f"/api/datasets/{DATASET}/export")
        assert original.status_code == 200 and original.headers["content-type"].startswith("text/csv")
        expected = cells(source.open(encoding="utf-8", newline="").read())
        expected[1][2] = NEW_LABEL
        got = cells(original.text)
        assert [r[:3] for r in got] == [r[:3] for r in expected]

        safe = await client.get(f"/api/datasets/{DATASET}/export", params={"spreadsheet_safe": True})
        rows = cells(safe.text)
        assert assert_spreadsheet_safe(rows) > 0
        assert [r[:3] for r in rows] == [[safe_cell(c) for c in r[:3]] for r in expected]
        tsv = await client.get(f"/api/datasets/{DATASET}/export", params={"format": "tsv", "spreadsheet_safe": True})
        assert assert_spreadsheet_safe(list(csv.reader(io.StringIO(tsv.text, newline=""), delimiter="\t"))) > 0
        jsonl = await client.get(f"/api/datasets/{DATASET}/export",
                                 params={"format": "jsonl", "spreadsheet_safe": True})
        assert jsonl.status_code == 422 and "csv" in jsonl.json()["message"]


def test_dashboard_queue_download_is_spreadsheet_safe(home):
    from dashboard.client import ApiClient
    from dashboard.state.map import MapState
    from dashboard.state.queue import QueueState
    from embeddings.embedder import FakeEmbedder
    from service.api.app import create_app

    settings, _ = home
    with serve_app(create_app(settings, embedder=FakeEmbedder())) as url:
        client = ApiClient(url)
        queue = QueueState(client, MapState(client, dataset=DATASET), strategy="random", budget=500)
        rows = cells(queue.download("csv").getvalue().decode("utf-8"))
    assert len(rows) > len(TEXTS) and assert_spreadsheet_safe(rows) > 0
