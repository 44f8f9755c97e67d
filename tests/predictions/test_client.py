"""The enrichment client against a real HTTP server on loopback that injects 429s, 500s and timeouts."""

from __future__ import annotations

import json
import logging
import random
from collections import Counter

import httpx
import pytest

from embeddings.embedder import FakeEmbedder
from embeddings.store import iter_points
from service.errors import NotFound, Unavailable
from service.fields import PREDICTION_FIELDS
from service.predictions.client import enrich
from service.predictions.retry import RetryPolicy, parse_retry_after
from service.predictions.server import create_model_app
from tests.predictions.conftest import DATASET, planted_settings
from tests.predictions.live import FaultInjector, live_server

POINTS = 200
FAST = RetryPolicy(max_retries=8, base=0.01, cap=0.05)


class CountingCollection:
    """Delegates to the real collection and counts how often each point's predictions are written."""

    def __init__(self, inner):
        self.inner = inner
        self.writes: Counter = Counter()

    def set_payloads(self, updates):
        self.writes.update(updates.keys())
        self.inner.set_payloads(updates)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def counted(ws, monkeypatch) -> CountingCollection:
    counting = CountingCollection(ws.collection(DATASET))
    monkeypatch.setattr(ws, "collection", lambda name: counting)
    return counting


def _payloads(ws) -> dict:
    return {p.id: p.payload for page in iter_points(ws.collection(DATASET)) for p in page}


def test_every_point_gets_exactly_one_prediction_despite_faults(ws, registry, counted, planted):
    def schedule(n: int) -> str | None:
        return {1: "429", 3: "500", 4: "stall"}.get(n % 6) or ("503" if n % 10 == 7 else None)

    faulty = FaultInjector(create_model_app(registry, FakeEmbedder(), default_project=DATASET), schedule)
    with live_server(faulty) as url:
        report = enrich(ws, DATASET, api_url=url, concurrency=4, timeout=0.3, policy=FAST, rng=random.Random(1))
    assert report.predicted == POINTS and report.failed_batches == 0 and report.model_version == "v2"
    assert report.retries > 0
    assert {s.fault for s in faulty.seen} >= {"429", "500", "503", "stall"}
    # Exactly one write per point: none lost, none duplicated.
    assert set(counted.writes) == set(planted.labels) and set(counted.writes.values()) == {1}
    # Every answered text came back once per answer; every point's text was answered.
    answered = Counter(t for s in faulty.answered() for t in s.texts)
    assert sum(answered.values()) == POINTS
    payloads = _payloads(ws)
    assert len(payloads) == POINTS
    for pid, payload in payloads.items():
        assert all(f in payload for f in PREDICTION_FIELDS)
        assert payload["model_version"] == "v2" and payload["n_best"][0]["label"] == payload["prediction"]
        expected = "unlabelled" if planted.labels[pid] is None else (
            "correct" if planted.labels[pid] == payload["prediction"] else "incorrect")
        assert payload["prediction_status"] == expected
    # Predictions recover most flipped labels' true intent: the server's model, not a stale one, answered.
    assert sum(payloads[pid]["prediction"] == planted.truth[pid] for pid in planted.flipped) >= 4

    # A re-run asks nothing: every point is already predicted by this version.
    with live_server(faulty) as url:
        before = len(faulty.seen)
        again = enrich(ws, DATASET, api_url=url, policy=FAST)
    assert again.predicted == 0 and again.skipped == POINTS and len(faulty.seen) == before


def test_retry_after_is_honoured(ws, registry, counted):
    faulty = FaultInjector(create_model_app(registry, FakeEmbedder(), default_project=DATASET),
                           lambda n: "429" if n == 1 else None, retry_after="1")
    with live_server(faulty) as url:
        enrich(ws, DATASET, api_url=url, concurrency=1, policy=FAST)
    first, second = faulty.seen[0], faulty.seen[1]
    assert first.fault == "429" and second.texts == first.texts
    assert second.at - first.at >= 0.95  # backoff alone would wait at most 0.05 s


def test_interrupted_run_resumes_without_losing_or_repeating(ws, registry, counted, planted):
    app = create_model_app(registry, FakeEmbedder(), default_project=DATASET)
    broken = FaultInjector(app, lambda n: "500" if n > 4 else None)
    with live_server(broken) as url, pytest.raises(Unavailable, match="run the same command again|Run the same"):
        enrich(ws, DATASET, api_url=url, concurrency=2, policy=RetryPolicy(max_retries=1, base=0.01, cap=0.02))
    written = set(counted.writes)
    assert len(written) == 4 * 20  # the four answered batches, nothing else
    healthy = FaultInjector(app, lambda n: None)
    with live_server(healthy) as url:
        report = enrich(ws, DATASET, api_url=url, policy=FAST)
    assert report.skipped == 80 and report.predicted == POINTS - 80
    assert sum(len(s.texts) for s in healthy.seen) == POINTS - 80
    assert set(counted.writes) == set(planted.labels) and set(counted.writes.values()) == {1}


def test_api_key_from_the_environment_and_never_logged(ws, home, registry, monkeypatch, caplog):
    key = "pk-live-very-secret-4242"
    app = create_model_app(registry, FakeEmbedder(), api_key=key, default_project=DATASET)
    caplog.set_level(logging.DEBUG)
    with live_server(app) as url:
        with pytest.raises(Unavailable, match="PREDICTION_API_KEY"):
            enrich(ws, DATASET, api_url=url, policy=FAST)
        monkeypatch.setenv("PREDICTION_API_KEY", key)
        ws.settings = planted_settings(home)
        report = enrich(ws, DATASET, api_url=url, policy=FAST)
    assert report.predicted == POINTS
    assert key not in caplog.text and key not in report.summary()


def test_unknown_version_stops_the_run_clearly(ws, registry):
    app = create_model_app(registry, FakeEmbedder(), default_project=DATASET)
    with live_server(app) as url, pytest.raises(NotFound, match="version v9"):
        enrich(ws, DATASET, api_url=url, version="v9", policy=FAST)


def test_in_process_default_server_and_version_change(ws, registry):
    report = enrich(ws, DATASET)
    assert report.api == "in-process" and report.predicted == POINTS and report.model_version == "v2"
    registry.promote(DATASET, "v1")
    report = enrich(ws, DATASET)  # a new default version: every point is predicted again, by it
    assert report.model_version == "v1" and report.predicted == POINTS
    assert {p["model_version"] for p in _payloads(ws).values()} == {"v1"}


def test_a_server_that_does_not_say_its_version(ws):
    """Another server speaking only the contract: no /models, no version, no entropy in its answers."""
    calls = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        calls[request.url.path] += 1
        if request.url.path != "/projects/intents/predict":
            return httpx.Response(404, json={"detail": "Not Found"})
        texts = [d["text"] for d in json.loads(request.content)["data"]]
        return httpx.Response(200, json=[
            {"id": str(i), "data": {"text": t},
             "predictions": [{"output": "intent", "value": "card", "confidence": 0.7},
                             {"output": "intent", "value": "bill", "confidence": 0.2}]}
            for i, t in enumerate(texts)])

    report = enrich(ws, DATASET, api_url="http://elsewhere.test", transport=httpx.MockTransport(handler),
                    project="intents", policy=FAST)
    assert report.model_version == "external" and report.predicted == POINTS
    payload = next(iter(_payloads(ws).values()))
    assert payload["prediction"] == "card" and payload["confidence"] == 0.7
    assert payload["entropy"] == pytest.approx(0.7 * 0.35667494 + 0.2 * 1.60943791 + 0.1 * 2.30258509)
    again = enrich(ws, DATASET, api_url="http://elsewhere.test", transport=httpx.MockTransport(handler),
                   project="intents", policy=FAST)
    assert again.predicted == 0 and again.skipped == POINTS


def test_retry_policy():
    rng = random.Random(0)
    policy = RetryPolicy(base=0.5, cap=4.0, max_retry_after=30)
    waits = [policy.backoff(a, rng) for a in range(8) for _ in range(50)]
    assert max(waits) <= 4.0 and min(waits) >= 0
    assert max(policy.backoff(0, rng) for _ in range(50)) <= 0.5
    assert policy.delay(0, "7", rng) >= 7 and policy.delay(0, "999", rng) == 30
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: retry now
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_an_unreachable_or_malformed_api_url_is_named_with_the_fix(ws):
    from service.errors import DataDebuggerError, InvalidInput
    from tests.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"  # a port nobody listens on
    with pytest.raises(DataDebuggerError) as failed:
        enrich(ws, DATASET, api_url=url, policy=RetryPolicy(max_retries=1, base=0.01, cap=0.02))
    assert url in str(failed.value) and "--api-url" in str(failed.value)
    with pytest.raises(InvalidInput, match="'not-a-url' is not an http:// or https:// URL"):
        enrich(ws, DATASET, api_url="not-a-url", policy=FAST)
