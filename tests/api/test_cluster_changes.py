"""GET /api/datasets/{d}/clusters/changes: two registered versions compared cluster by cluster."""

from __future__ import annotations

import numpy as np
import pytest

from service.predictions.registry import ModelRegistry
from tests.api.conftest import DATASET, LABELS, ingest_fixture, plant_analysis, point_ids_of, running

pytestmark = pytest.mark.anyio
BASE = f"/api/datasets/{DATASET}/clusters/changes"


def register(registry: ModelRegistry, labels_of: dict, wrong: set) -> str:
    """A version whose out-of-fold answer is the point's label, except for the `wrong` points."""
    ids = list(labels_of)
    proba = np.zeros((len(ids), len(LABELS)), np.float32)
    for row, pid in enumerate(ids):
        label = labels_of[pid]
        answer = LABELS[(LABELS.index(label) + 1) % 3] if pid in wrong else label
        proba[row, LABELS.index(answer)] = 1.0
    meta = {"labels": list(LABELS), "metrics": {}, "params": {"model": "planted"}, "embedding_model": "fake-32",
            "needs_vectors": False, "data_hash": "0" * 64, "sizes": {}}
    return registry.create(DATASET, {"planted": True}, meta, ids, proba).version


async def test_compares_the_latest_version_with_the_one_before(api_settings):
    async with running(api_settings) as (app, client):
        ingest_fixture(app)
        plant_analysis(app)
        assert (await client.get(BASE)).status_code == 409  # no version yet
        collection = app.state.api.workspace.collection(DATASET)
        payloads = {p.id: p.payload for p in collection.retrieve(list(point_ids_of(app).values()))}
        labels_of = {pid: p["label"] for pid, p in payloads.items() if p.get("label")}
        by_cluster: dict[int, list] = {}
        for pid in labels_of:
            by_cluster.setdefault(payloads[pid]["cluster"], []).append(pid)
        registry = ModelRegistry(api_settings.models_dir)
        register(registry, labels_of, wrong=set(by_cluster[0][:4]))  # v1: 4 errors in cluster 0
        one = await client.get(BASE)
        assert one.status_code == 409 and "train another" in one.json()["message"]
        register(registry, labels_of, wrong=set(by_cluster[1][:3]))  # v2: cluster 0 fixed, 3 errors in cluster 1

        answer = await client.get(BASE)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["a"], body["b"]) == ("v2", "v1")  # the default: latest against the one before
        assert body["points"] == len(labels_of)
        first, second = body["clusters"][:2]
        n0, n1 = len(by_cluster[0]), len(by_cluster[1])
        assert (first["cluster"], first["name"], first["size"]) == (0, "balance account", n0)
        assert first["error_rate_a"] == 0.0 and first["error_rate_b"] == pytest.approx(4 / n0)
        assert first["change"] == pytest.approx(-4 / n0)  # negative: v2 errs less there than v1
        assert second["cluster"] == 1 and second["change"] == pytest.approx(3 / n1)
        assert abs(first["change"]) >= abs(second["change"])

        swapped = (await client.get(BASE, params={"a": "v1", "b": "v2"})).json()
        assert swapped["clusters"][0]["change"] == pytest.approx(-first["change"])
        assert len((await client.get(BASE, params={"limit": 1})).json()["clusters"]) == 1
        assert (await client.get(BASE, params={"a": "v9"})).status_code == 404
        bad = await client.get(BASE, params={"b": "latest"})
        assert bad.status_code == 422 and bad.json()["field"] == "query.b"
        assert (await client.get("/api/datasets/nope/clusters/changes")).status_code == 404
        same = await client.get(BASE, params={"a": "v1", "b": "v1"})
        assert same.status_code == 422 and same.json()["field"] == "query.b"
        # The first version promoted: the default compares it with the newest other one.
        registry.promote(DATASET, "v1")
        promoted = (await client.get(BASE)).json()
        assert (promoted["a"], promoted["b"]) == ("v1", "v2")

        # A version that was trained but not analysed: /classes answers from its training metrics, and a
        # split is looked up by either spelling of the held-out one, or named as unknown.
        ids = list(labels_of)
        meta = {"labels": list(LABELS), "metrics": {"validation": {"macro_f1": 0.8}, "test": {"macro_f1": 0.7}},
                "params": {"model": "planted"}, "embedding_model": "fake-32", "needs_vectors": False,
                "data_hash": "0" * 64, "sizes": {}}
        version = registry.create(DATASET, {"planted": True}, meta, ids,
                                  np.full((len(ids), len(LABELS)), 1 / 3, np.float32)).version
        url = f"/api/datasets/{DATASET}/classes"
        held_out = (await client.get(url, params={"model_version": version, "split": "testing"})).json()
        assert held_out["source"] == "training" and held_out["splits"] == {"test": {"macro_f1": 0.7}}
        unknown = await client.get(url, params={"model_version": version, "split": "bogus"})
        assert unknown.status_code == 404 and "validation, test" in unknown.json()["message"]
