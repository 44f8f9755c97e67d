"""With the real MiniLM model on Humanloop data: an embedding model trained from a file answers /intent."""

from __future__ import annotations

import csv
import json

import pytest
from fastapi.testclient import TestClient

from embeddings.embedder import SentenceTransformerEmbedder
from service.predictions.registry import ModelRegistry
from service.predictions.server import create_model_app
from service.predictions.training import train_version
from service.settings import Settings
from service.workspace import Workspace
from tests.conftest import HUMANLOOP, requires_shared

pytestmark = [pytest.mark.slow, requires_shared]


def test_logreg_on_minilm_embeddings_answers_intents(tmp_path):
    rows, per_label = [], {}
    for item in json.loads(HUMANLOOP.read_text()):
        data = json.loads(item["data"])
        label, split = data.get("intent"), item.get("usage")
        if not label or split not in ("training", "validation"):
            continue
        key = (label, split)
        per_label[key] = per_label.get(key, 0) + 1
        if per_label[key] <= (25 if split == "training" else 5):
            rows.append({"id": item["id"], "text": data["text"], "label": label, "split": split})
    path = tmp_path / "subset.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "text", "label", "split"])
        writer.writeheader()
        writer.writerows(rows)

    settings = Settings(home=tmp_path / "home", store_backend="edge")
    embedder = SentenceTransformerEmbedder()
    with Workspace(settings, embedder=embedder) as ws:
        version = train_version(ws, "humanloop", from_file=path, model="logreg", folds=3, learning_repeats=1,
                                grids={"logreg": [{"C": 3.0}, {"C": 30.0}]})
        assert version.embedding_model.startswith("all-MiniLM-L6-v2") and version.needs_vectors
        assert version.metrics["validation"]["accuracy"] > 0.7  # 12 intents: chance is under 0.1
        app = create_model_app(ModelRegistry(settings.models_dir), ws.embedder, default_project="humanloop")
        with TestClient(app) as client:
            r = client.get("/intent", params={"query": "what is my new credit limit"})
    assert r.status_code == 200
    assert r.json()["intent"] == "credit_question" and r.json()["model_version"] == "v1"
