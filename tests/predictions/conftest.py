"""A planted intent dataset (known labels, a few flipped), trained once per session and copied per test."""

from __future__ import annotations

import csv
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from embeddings.embedder import FakeEmbedder
from service.datasets.ingest import ingest, make_sources
from service.predictions.registry import ModelRegistry
from service.predictions.training import train_version
from service.settings import Settings
from service.workspace import Workspace

DATASET = "planted"
VOCAB = {
    "card": ["card", "blocked", "lost", "stolen", "pin", "debit", "frozen"],
    "bill": ["bill", "invoice", "payment", "due", "electricity", "amount", "owe"],
    "travel": ["abroad", "travel", "foreign", "currency", "overseas", "exchange", "trip"],
    "rates": ["rate", "interest", "apr", "savings", "percent", "mortgage", "yield"],
}
FILLER = ["my", "the", "please", "help", "what", "is", "how", "do", "i", "can", "you", "a"]
PER_SPLIT = {"training": 30, "validation": 8, "testing": 8}
FLIPS = 6  # training points whose stored label is another intent's
# Smaller grids than production's keep the session's training to seconds; selection logic is the same.
TEST_GRIDS = {"logreg": [{"C": 1.0}, {"C": 10.0}], "tfidf-svm": [{"C": 0.1}, {"C": 1.0}]}


@dataclass
class Planted:
    """The planted data: the CSV, each record's true intent, and the ids whose labels were flipped."""

    csv: Path
    truth: dict[int, str]
    labels: dict[int, str | None]
    flipped: list[int]
    unlabelled: list[int]


def _text(rng: np.random.Generator, intent: str) -> str:
    words = list(rng.choice(VOCAB[intent], size=3, replace=False)) + list(rng.choice(FILLER, size=3))
    rng.shuffle(words)
    return " ".join(words)


def write_planted(path: Path, seed: int = 7) -> Planted:
    """200 records: 4 intents x (30 train, 8 validation, 8 test), 6 flipped labels, 16 unlabelled."""
    rng = np.random.default_rng(seed)
    rows, truth, labels = [], {}, {}
    next_id = 1
    intents = sorted(VOCAB)
    for intent in intents:
        for split, n in PER_SPLIT.items():
            for _ in range(n):
                rows.append({"id": next_id, "text": _text(rng, intent), "label": intent, "split": split})
                truth[next_id] = intent
                next_id += 1
    flipped = []
    training = [r for r in rows if r["split"] == "training"]
    for i, row in enumerate(training[:: len(training) // FLIPS][:FLIPS]):
        row["label"] = intents[(intents.index(row["label"]) + 1 + i % 3) % len(intents)]
        flipped.append(row["id"])
    unlabelled = []
    for i in range(16):
        intent = intents[i % len(intents)]
        rows.append({"id": next_id, "text": _text(rng, intent), "label": "", "split": ""})
        truth[next_id] = intent
        unlabelled.append(next_id)
        next_id += 1
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "text", "label", "split"])
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        labels[row["id"]] = row["label"] or None
    return Planted(path, truth, labels, flipped, unlabelled)


def planted_settings(home: Path) -> Settings:
    return Settings(home=home, fake_embeddings=True, store_backend="edge")


@pytest.fixture(scope="session")
def planted(tmp_path_factory) -> Planted:
    return write_planted(tmp_path_factory.mktemp("planted") / "planted.csv")


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory, planted) -> Path:
    """A home with the planted dataset ingested and two versions: v1 (auto: best family), v2 (logreg)."""
    home = tmp_path_factory.mktemp("trained") / "home"
    with Workspace(planted_settings(home), embedder=FakeEmbedder()) as ws:
        ingest(ws.catalog, ws.embedder, DATASET, make_sources([planted.csv]))
        train_version(ws, DATASET, grids=TEST_GRIDS, learning_repeats=1)
        train_version(ws, DATASET, model="logreg", grids=TEST_GRIDS, learning_repeats=1)
    return home


@pytest.fixture(scope="session")
def shared_registry(trained_home) -> ModelRegistry:
    """The session's registry, for tests that only read."""
    return ModelRegistry(trained_home / "models")


@pytest.fixture
def home(trained_home, tmp_path) -> Path:
    """A private copy of the trained home: tests may write predictions and versions freely."""
    target = tmp_path / "home"
    # Qdrant's segment files are sparse (32 MB each, mostly holes): a plain copy writes hundreds of MB.
    if shutil.which("cp"):
        subprocess.run(["cp", "-a", "--sparse=always", str(trained_home), str(target)], check=True)
    else:
        shutil.copytree(trained_home, target)
    return target


@pytest.fixture
def ws(home):
    workspace = Workspace(planted_settings(home), embedder=FakeEmbedder())
    yield workspace
    workspace.close()


@pytest.fixture
def registry(home) -> ModelRegistry:
    """A registry over the test's private copy."""
    return ModelRegistry(home / "models")
