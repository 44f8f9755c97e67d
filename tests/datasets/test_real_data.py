"""The real exports beside the repo: the Humanloop export with the real model, Banking77 train + test."""

from __future__ import annotations

import pytest

from embeddings.embedder import FakeEmbedder
from service.datasets.ingest import ingest, make_sources
from service.datasets.readers import ColumnMap
from service.settings import Settings
from service.workspace import Workspace, dataset_counts
from tests.conftest import BANKING77, HUMANLOOP, requires_shared


@requires_shared
@pytest.mark.slow
def test_real_humanloop_export_with_the_real_model(tmp_path):
    settings = Settings(home=tmp_path / "home", store_backend="edge")
    with Workspace(settings) as ws:
        report = ingest(ws.catalog, ws.embedder, "humanloop", make_sources([HUMANLOOP]))
        counts = dataset_counts(ws.collection("humanloop"))
        assert ws.collection("humanloop").dim == 384
        second = ingest(ws.catalog, ws.embedder, "humanloop", make_sources([HUMANLOOP]))
    assert report.inserted == 2327 and report.rejected == 0
    assert (counts["points"], counts["labelled"], counts["unlabelled"], counts["labels"]) == (2327, 2134, 193, 12)
    assert counts["by_split"] == {"none": 193, "testing": 213, "training": 1708, "validation": 213}
    assert second.unchanged == 2327 and second.embedded == 0


@requires_shared
def test_banking77_train_and_test_into_one_dataset(tmp_path):
    settings = Settings(home=tmp_path / "home", store_backend="edge")
    with Workspace(settings, embedder=FakeEmbedder()) as ws:
        for name, split in (("train.csv", "training"), ("test.csv", "testing")):
            columns = ColumnMap(label="category", fixed_split=split)
            ingest(ws.catalog, ws.embedder, "banking77", make_sources([BANKING77 / name], columns=columns),
                   batch_size=2000)
        counts = dataset_counts(ws.collection("banking77"))
    assert counts["points"] == 13083 and counts["labels"] == 77
    assert counts["by_split"] == {"testing": 3080, "training": 10003}


@requires_shared
def test_real_export_source_fields_come_back_exactly(tmp_path):
    import json

    items = json.loads(HUMANLOOP.read_text())
    settings = Settings(home=tmp_path / "home", store_backend="edge")
    with Workspace(settings, embedder=FakeEmbedder()) as ws:
        ingest(ws.catalog, ws.embedder, "hl", make_sources([HUMANLOOP]), batch_size=2000)
        stored = {p.id: p.payload for p in ws.collection("hl").retrieve([item["id"] for item in items])}
    for item in items:
        source = json.loads(stored[item["id"]]["source_json"])
        assert source == {k: v for k, v in item.items() if k != "data"}
