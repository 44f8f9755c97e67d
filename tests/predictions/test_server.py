"""The model server's routes, called in-process: the Humanloop contract, online routes, versions, errors."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from embeddings.embedder import FakeEmbedder
from service.predictions.metrics import entropy
from service.predictions.server import create_model_app
from tests.predictions.conftest import DATASET

KEY = "s3cret-key"


@pytest.fixture
def client(registry):
    app = create_model_app(registry, FakeEmbedder(), api_key=KEY, default_project=DATASET)
    with TestClient(app, headers={"X-API-Key": KEY}) as c:
        yield c


def test_project_predict_follows_the_contract(client, registry):
    texts = ["my card is blocked pin", "invoice payment due", "what is the interest rate"]
    r = client.post(f"/projects/{DATASET}/predict", json={"data": [{"text": t} for t in texts], "n_best": 2})
    assert r.status_code == 200, r.text
    assert r.headers["X-Model-Version"] == "v2"
    body = r.json()
    assert [item["data"]["text"] for item in body] == texts
    v2 = registry.get(DATASET, "v2")
    proba = v2.predict_proba(texts, FakeEmbedder().embed(texts))
    for i, item in enumerate(body):
        preds = item["predictions"]
        assert len(preds) == 2 and preds[0]["confidence"] >= preds[1]["confidence"]
        assert preds[0]["value"] == v2.labels[int(proba[i].argmax())]
        assert preds[0]["confidence"] == pytest.approx(proba[i].max())
        assert item["entropy"] == pytest.approx(entropy(proba[i : i + 1])[0])
        assert item["model_version"] == "v2"
    assert [item["predictions"][0]["value"] for item in body] == ["card", "bill", "rates"]


def test_two_versions_answer_side_by_side_and_promotion_moves_the_default(client):
    for version in ("v1", "v2"):
        r = client.post(f"/projects/{DATASET}/predict", params={"version": version},
                        json={"data": [{"text": "lost debit card"}]})
        assert r.json()[0]["model_version"] == version
        r = client.get("/intent", params={"query": "lost debit card", "version": version})
        assert r.json()["model_version"] == version and r.json()["intent"] == "card"
        r = client.post("/predict", json={"id": 7, "text": "lost debit card", "version": version})
        assert r.json()["model_version"] == version
    assert client.get("/intent", params={"query": "trip abroad"}).json()["model_version"] == "v2"
    r = client.post(f"/models/{DATASET}/v1/promote")
    assert r.status_code == 200 and r.json()["production"] is True
    assert client.get("/intent", params={"query": "trip abroad"}).json()["model_version"] == "v1"
    listed = client.get("/models", params={"dataset": DATASET}).json()
    assert listed["count"] == 2
    flags = {row["version"]: (row["production"], row["default"]) for row in listed["data"]}
    assert flags == {"v1": (True, True), "v2": (False, False)}


def test_online_routes(client):
    r = client.post("/predict", json={"id": "abc", "text": "overseas currency exchange"})
    assert r.status_code == 200
    assert r.json()["id"] == "abc" and r.json()["label"] == "travel" and 0 < r.json()["probability"] <= 1
    r = client.get("/intent", params={"query": "what is my mortgage interest rate", "project": DATASET})
    assert r.status_code == 200 and r.json()["intent"] == "rates"


def test_models_detail_carries_metrics_and_curves(client):
    r = client.get(f"/models/{DATASET}/v2")
    assert r.status_code == 200
    body = r.json()
    assert body["metrics"]["test"]["confusion"]["labels"] == body["labels"]
    assert "learning_curve" in body["curves"] and "iterations" in body["curves"]
    assert client.get("/models").json()["count"] == 2


@pytest.mark.parametrize(("request_args", "status", "fragment"), [
    ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422, "JSON"),
    ({"json": {"data": [{}]}}, 422, "text"),
    ({"json": {"data": [{"text": "  "}]}}, 422, "text is empty"),
    ({"json": {"data": []}}, 422, "at least 1"),
    ({"json": {"data": [{"text": "x"}] * 21}}, 422, "at most 20"),
    ({"json": {"data": [{"text": "x"}], "n_best": 0}}, 422, "greater than or equal to 1"),
    ({"json": {"data": [{"text": "x"}]}, "params": {"version": "v9"}}, 404, "'v9'"),
])
def test_bad_requests_get_a_clear_4xx(client, request_args, status, fragment):
    r = client.post(f"/projects/{DATASET}/predict", **request_args)
    assert r.status_code == status
    assert fragment in r.text


def test_other_bad_requests(client):
    assert client.post("/projects/nope/predict", json={"data": [{"text": "x"}]}).status_code == 404
    assert client.get("/intent").status_code == 422
    assert client.get("/intent", params={"query": "   "}).status_code == 422
    assert client.post("/predict", json={"id": 1}).status_code == 422
    assert client.post("/predict", content=b"text", headers={"Content-Type": "text/plain"}).status_code == 422
    assert client.post(f"/models/{DATASET}/v7/promote").status_code == 404


def test_api_key_is_required_and_never_echoed(registry):
    app = create_model_app(registry, FakeEmbedder(), api_key=KEY, default_project=DATASET)
    with TestClient(app) as c:
        assert c.get("/health").status_code == 200
        for headers in ({}, {"X-API-Key": "wrong"}):
            r = c.get("/intent", params={"query": "card"}, headers=headers)
            assert r.status_code == 401 and KEY not in r.text
        assert c.post(f"/models/{DATASET}/v1/promote").status_code == 401
        assert c.get("/intent", params={"query": "card"}, headers={"X-API-Key": KEY}).status_code == 200


def test_a_version_needing_other_embeddings_is_a_conflict(registry):
    app = create_model_app(registry, FakeEmbedder(dim=16), default_project=DATASET)
    with TestClient(app) as c:
        r = c.get("/intent", params={"query": "card lost", "version": "v2"})
        assert r.status_code == 409 and "fake-32" in r.json()["detail"]


def test_probabilities_sum_to_one_over_all_labels(client):
    r = client.post(f"/projects/{DATASET}/predict", json={"data": [{"text": "card bill trip"}], "n_best": 50})
    preds = r.json()[0]["predictions"]
    assert len(preds) == 4
    assert sum(p["confidence"] for p in preds) == pytest.approx(1.0)
    assert np.all(np.diff([p["confidence"] for p in preds]) <= 0)
