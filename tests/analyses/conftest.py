"""A planted dataset whose answers are known (flipped labels, cross-split duplicates, a conflicting duplicate,
an outlier, an unlabelled new intent), ingested, trained and analysed once per session with the real parts:
embedded Qdrant, the fake embedder, the model registry, UMAP and HDBSCAN. UMAP's numba compile is paid here,
once."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from embeddings.embedder import FakeEmbedder
from service.analyses.context import AnalysisContext, build_context
from service.datasets.ingest import ingest, make_sources
from service.predictions.client import enrich
from service.predictions.training import train_version
from service.settings import Settings
from service.workspace import Workspace

DATASET = "planted"
DIM = 128  # wide enough that unrelated texts are far apart (random 32-d vectors are not)
VOCAB = {
    "card": ["card", "blocked", "lost", "stolen", "pin", "debit", "frozen", "chip"],
    "bill": ["bill", "invoice", "payment", "due", "electricity", "amount", "owe", "utility"],
    "travel": ["abroad", "travel", "foreign", "overseas", "trip", "visa", "passport", "airport"],
    "rates": ["rate", "interest", "apr", "savings", "percent", "mortgage", "yield", "deposit"],
    "rewards": ["rewards", "points", "cashback", "redeem", "bonus", "miles", "loyalty", "perks"],
}
NEW_INTENT = ["bitcoin", "crypto", "wallet", "ethereum", "blockchain", "token", "coin", "mining"]
FILLER = ["my", "the", "please", "help", "what", "is", "how", "do", "i", "can"]
OUTLIER_TEXT = "zebra quantum violin glacier saxophone nebula"
PER_SPLIT = {"training": 30, "validation": 8, "testing": 8}


@dataclass
class Planted:
    """The planted records and the answers each analysis should find."""

    records: list[dict]
    truth: dict[int, str | None] = field(default_factory=dict)  # id -> true intent (None: the new intent)
    flipped: list[int] = field(default_factory=list)  # training ids stored with a wrong label
    leaked: list[tuple[int, int]] = field(default_factory=list)  # (testing id, training id) with equal text
    conflicting: list[int] = field(default_factory=list)  # two ids: same text, different labels
    outlier: int = 0
    new_intent: list[int] = field(default_factory=list)  # unlabelled ids of an intent nobody labelled
    unlabelled: list[int] = field(default_factory=list)

    @property
    def mislabelled(self) -> list[int]:
        """Every id stored with a wrong label: the flips and the wrong half of the conflicting pair."""
        return [*self.flipped, self.conflicting[1]]

    def by_id(self, rid: int) -> dict:
        return next(r for r in self.records if r["id"] == rid)


def _text(rng: np.random.Generator, words: list[str]) -> str:
    chosen = list(rng.choice(words, size=4, replace=False)) + list(rng.choice(FILLER, size=2, replace=False))
    rng.shuffle(chosen)
    return " ".join(chosen)


def make_planted(seed: int = 3) -> Planted:
    """5 intents x (30 training, 8 validation, 8 testing) plus the planted answers; 312 records."""
    rng = np.random.default_rng(seed)
    planted = Planted(records=[])
    next_id = 1

    def add(text: str, label: str | None, split: str | None, truth: str | None) -> int:
        nonlocal next_id
        rid = next_id
        next_id += 1
        planted.records.append({"id": rid, "text": text, "label": label, "split": split})
        planted.truth[rid] = truth
        return rid

    intents = sorted(VOCAB)
    training: dict[str, list[int]] = {intent: [] for intent in intents}
    for intent in intents:
        for split, count in PER_SPLIT.items():
            for _ in range(count):
                rid = add(_text(rng, VOCAB[intent]), intent, split, intent)
                if split == "training":
                    training[intent].append(rid)
    # Flipped: the 2nd training point of 3 intents and the 5th of 3, each given the next intent's label.
    for j, intent in enumerate(intents + [intents[0]]):
        rid = training[intent][1 if j < 3 else 4]
        wrong = intents[(intents.index(intent) + 1) % len(intents)]
        planted.by_id(rid)["label"] = wrong
        planted.flipped.append(rid)
    # Leakage: 3 testing points copying a training point's text (and label).
    for intent in intents[:3]:
        source = planted.by_id(training[intent][10])
        planted.leaked.append((add(source["text"], intent, "testing", intent), source["id"]))
    # A conflicting duplicate: the same travel text twice in training, once labelled rates.
    text = _text(rng, VOCAB["travel"])
    planted.conflicting = [add(text, "travel", "training", "travel"), add(text, "rates", "training", "travel")]
    planted.outlier = add(OUTLIER_TEXT, "card", "training", None)
    for intent in intents:
        for _ in range(4):
            planted.unlabelled.append(add(_text(rng, VOCAB[intent]), None, None, intent))
    for _ in range(30):
        rid = add(_text(rng, NEW_INTENT), None, None, None)
        planted.new_intent.append(rid)
        planted.unlabelled.append(rid)
    return planted


def planted_context(planted: Planted, embedder: FakeEmbedder | None = None, with_model: bool = True,
                    k: int = 15) -> AnalysisContext:
    """An analysis context of the planted records, with logistic-regression probabilities (out-of-fold for
    labelled points) computed here, so analyses are tested without the store or the registry."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    embedder = embedder or FakeEmbedder(DIM)
    records = planted.records
    vectors = embedder.embed([r["text"] for r in records])
    labels = [r["label"] for r in records]
    names = sorted({label for label in labels if label is not None})
    probs = oof = None
    if with_model:
        y = np.array([names.index(label) if label is not None else -1 for label in labels])
        lab = np.flatnonzero(y >= 0)
        train = np.array([i for i in lab if records[i]["split"] == "training"])
        model = LogisticRegression(C=10.0, max_iter=2000).fit(vectors[train], y[train])
        probs = model.predict_proba(vectors)
        oof = np.full_like(probs, np.nan)
        oof[lab] = cross_val_predict(LogisticRegression(C=10.0, max_iter=2000), vectors[lab], y[lab], cv=5,
                                     method="predict_proba")
    return build_context([r["id"] for r in records], [r["text"] for r in records], vectors, labels,
                         [r["split"] for r in records], probs=probs, model_labels=names if with_model else (),
                         oof=oof, k=k)


@pytest.fixture(scope="session")
def planted() -> Planted:
    return make_planted()


@pytest.fixture
def ctx(planted: Planted) -> AnalysisContext:
    """A fresh context per test (analyses store their results in it)."""
    return planted_context(planted)


@dataclass
class AnalysedHome:
    """A data home holding the planted dataset, ingested, trained and analysed; the first report."""

    settings: Settings
    report: dict
    planted: Planted

    def workspace(self) -> Workspace:
        return Workspace(self.settings, embedder=FakeEmbedder(DIM))


def _ingest_planted(settings: Settings, planted: Planted, folder: Path) -> None:
    path = folder / "planted.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in planted.records) + "\n")
    with Workspace(settings, embedder=FakeEmbedder(DIM)) as ws:
        ingest(ws.catalog, ws.embedder, DATASET, make_sources([path], "jsonl"))
        train_version(ws, DATASET, model="logreg", grids={"logreg": [{"C": 10.0}]}, learning_repeats=1)
        enrich(ws, DATASET)  # the predict step: prediction, confidence, n_best, entropy on every point


@pytest.fixture(scope="session")
def analysed_master(tmp_path_factory, planted: Planted) -> AnalysedHome:
    """Ingest + train + predict + analyse once per session (UMAP compiles here)."""
    from service.analyses.runner import analyze

    folder = tmp_path_factory.mktemp("analysed")
    settings = Settings(home=folder / "home", fake_embeddings=True, store_backend="edge")
    _ingest_planted(settings, planted, folder)
    with Workspace(settings, embedder=FakeEmbedder(DIM)) as ws:
        report = analyze(ws, DATASET)
    return AnalysedHome(settings, report, planted)


@pytest.fixture
def analysed(analysed_master: AnalysedHome, tmp_path: Path) -> AnalysedHome:
    """A private copy of the analysed home, so a test may change it."""
    home = tmp_path / "home"
    shutil.copytree(analysed_master.settings.home, home, ignore=shutil.ignore_patterns(".lock"))
    settings = Settings(home=home, fake_embeddings=True, store_backend="edge")
    return AnalysedHome(settings, analysed_master.report, analysed_master.planted)
