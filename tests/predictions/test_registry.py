"""The model registry: numbering, default and production versions, integrity, concurrent writers."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from service.errors import IntegrityError, NotFound
from service.predictions.models import EmbeddingLogReg
from service.predictions.registry import ModelRegistry
from tests.predictions.conftest import DATASET


def test_versions_default_and_promotion(registry):
    assert [v.version for v in registry.versions(DATASET)] == ["v1", "v2"]
    assert registry.latest(DATASET).version == "v2"
    assert registry.get(DATASET).version == "v2"  # nothing promoted: the latest
    registry.promote(DATASET, "v1")
    assert registry.production(DATASET) == "v1"
    assert registry.get(DATASET).version == "v1"
    # Another registry (another process) sees the same marker, and this one sees that one's promotion.
    other = ModelRegistry(registry.root)
    assert other.get(DATASET).version == "v1"
    other.promote(DATASET, "v2")
    assert registry.get(DATASET).version == "v2"


def test_unknown_names_are_not_found(registry):
    with pytest.raises(NotFound, match=r"'v9' of 'planted' does not exist \(versions: v1, v2\)"):
        registry.get(DATASET, "v9")
    with pytest.raises(NotFound, match="train one with"):
        registry.get("nothing-here")
    with pytest.raises(NotFound):
        registry.get(DATASET, "../planted/v1")
    with pytest.raises(NotFound):
        registry.promote(DATASET, "v3")
    assert registry.latest("nothing-here") is None
    assert registry.versions("nothing-here") == []


def test_metadata_carries_what_the_version_needs(shared_registry):
    v = shared_registry.get(DATASET, "v2")
    assert v.embedding_model == "fake-32" and v.needs_vectors
    assert len(v.data_hash) == 64
    assert v.created_at and v.params["folds"] == 5
    summary = v.summary()
    assert summary["metrics"]["test"]["macro_f1"] == v.metrics["test"]["macro_f1"]
    assert "curves" not in summary


def test_a_changed_artifact_is_refused(registry):
    v = registry.get(DATASET, "v1")
    artifact = v.path / "model.joblib"
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    with pytest.raises(IntegrityError, match="retrain"):
        ModelRegistry(registry.root).get(DATASET, "v1").model()


def test_concurrent_creates_get_distinct_numbers(registry):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 4)), np.arange(20) % 2
    model = EmbeddingLogReg().fit([], x, y, 2)
    meta = {"labels": ["a", "b"], "params": model.params(), "metrics": {}, "embedding_model": "fake-4",
            "needs_vectors": True, "data_hash": "0" * 64, "sizes": {}}
    made: list[str] = []
    watcher = ModelRegistry(registry.root)  # another process's view, read before the versions exist
    assert watcher.versions("other") == []

    def create():
        made.append(registry.create("other", model, meta, list(range(20)), np.full((20, 2), 0.5)).version)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(made) == ["v1", "v2", "v3", "v4"]
    assert [v.version for v in registry.versions("other")] == ["v1", "v2", "v3", "v4"]
    assert [v.version for v in watcher.versions("other")] == ["v1", "v2", "v3", "v4"]
    assert "other" in registry.datasets() and DATASET in registry.datasets()
    # Nothing half-written is left behind.
    assert not [p for p in (registry.root / "other").iterdir() if p.name.startswith(".tmp")]
    assert json.loads((registry.root / "other" / "v3" / "meta.json").read_text())["version"] == "v3"
