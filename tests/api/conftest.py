"""API test fixtures: the real app on embedded Qdrant in a temp dir, called in-process through
httpx.ASGITransport with its lifespan running; a small Humanloop-format dataset with planted predictions
and analysis fields whose answers are known."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Match

from embeddings.embedder import FakeEmbedder
from embeddings.store import load_all
from service.api.app import api_routes, create_app
from service.datasets.ingest import ingest, make_sources
from service.settings import Settings

FIXTURES = Path(__file__).resolve().parent / "fixtures"
HUMANLOOP_SMALL = FIXTURES / "humanloop_small.json"
DATASET = "hl"
N_POINTS = 37
N_UNLABELLED = 6
LABELS = ("check_balance", "transfer_money", "lost_card")

# Planted answers: record id -> (prediction, confidence, mislabel_score, triage, suggested_label)
PLANTED = {
    700002: ("transfer_money", 0.95, 0.92, "label_error", "transfer_money"),
    700013: ("lost_card", 0.85, 0.71, "model_error", "lost_card"),
    700025: ("check_balance", 0.60, 0.55, "ambiguous", "check_balance"),
}
CLUSTER_OF = {"check_balance": 0, "transfer_money": 1, "lost_card": 2}


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def settings_in(folder: Path, **overrides: Any) -> Settings:
    return Settings(home=folder / "home", fake_embeddings=True, store_backend="edge", **overrides)


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    return settings_in(tmp_path)


# The operation ids that requests reached during this test session (tests/api/test_route_coverage.py reads it).
EXERCISED: set[str] = set()


class RouteRecorder:
    """ASGI wrapper noting the route each request matches, before the app answers it."""

    def __init__(self, app: Any):
        self.app = app
        self.routes = api_routes(app.routes)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for route in self.routes:  # in the app's order: the first full match is the one that answers
                if route.matches(scope)[0] == Match.FULL:
                    EXERCISED.add(route.operation_id)
                    break
        await self.app(scope, receive, send)


@asynccontextmanager
async def running(settings: Settings, **kwargs: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The app with its lifespan running, and an in-process client."""
    app = create_app(settings, embedder=kwargs.pop("embedder", FakeEmbedder()), **kwargs)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=RouteRecorder(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
            yield app, client


def ingest_fixture(app: Any, dataset: str = DATASET, path: Path = HUMANLOOP_SMALL, fmt: str = "humanloop") -> None:
    ws = app.state.api.workspace
    ingest(ws.catalog, ws.embedder, dataset, make_sources([path], fmt))


def plant_analysis(app: Any, dataset: str = DATASET) -> dict[str, Any]:
    """Write what predict and analyze would: prediction fields, scores, triage, clusters, x/y, and a report."""
    state = app.state.api
    collection = state.workspace.collection(dataset)
    ids, payloads, _ = load_all(collection, with_vectors=False)
    updates: dict[Any, dict[str, Any]] = {}
    for n, (pid, p) in enumerate(zip(ids, payloads, strict=True)):
        rid, label = p["record_id"], p["label"]
        fields: dict[str, Any] = {"x": float(n), "y": float(n % 5), "analysis_run": "run-1", "model_version": "v1"}
        if label is None:
            guess = LABELS[n % 3]
            fields.update(prediction=guess, confidence=0.3 + 0.005 * (n % 10), prediction_status="unlabelled",
                          suggested_label=guess, suggestion_confidence=0.4 + 0.01 * n, knn_agreement=0.75,
                          triage="unlabelled", cluster=CLUSTER_OF[guess], entropy=0.8, flags=[])
        elif rid in PLANTED:
            pred, conf, score, triage, suggested = PLANTED[rid]
            fields.update(prediction=pred, confidence=conf, mislabel_score=score, triage=triage,
                          suggested_label=suggested, prediction_status="incorrect", cluster=CLUSTER_OF[pred],
                          entropy=0.4, reasons=[f"model says {pred}"], flags=["label_issue"])
        else:
            fields.update(prediction=label, confidence=0.9, mislabel_score=0.001 * (n % 50), triage="agree",
                          suggested_label=label, prediction_status="correct", cluster=CLUSTER_OF[label],
                          entropy=0.2, flags=[])
        updates[pid] = fields
    collection.set_payloads(updates)
    collection.flush()
    report = {
        "run_id": "run-1", "created_at": "2025-01-01T00:00:00+00:00", "model_version": "v1", "n_points": N_POINTS,
        "stages": {"knn": 0.1},
        "clusters": [
            {"id": 0, "name": "balance account", "size": 14, "error_rate": 0.2, "issue_rate": 0.1, "purity": 0.8},
            {"id": 1, "name": "money transfer", "size": 12, "error_rate": 0.5, "issue_rate": 0.3, "purity": 0.7},
            {"id": 2, "name": "card lost", "size": 11, "error_rate": 0.0, "issue_rate": 0.0, "purity": 1.0},
        ],
        "duplicates": {"groups": [[700001, 700009]], "conflicting": []},
        "leakage": {"pairs": [], "effect_on_test_accuracy": 0.0},
        "per_class": {"validation": {"check_balance": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}},
                      "testing": {"lost_card": {"precision": 0.5, "recall": 1.0, "f1": 0.67, "support": 1}}},
        "confusion": {"validation": {"labels": list(LABELS), "matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]},
                      "testing": {"labels": list(LABELS), "matrix": [[1, 0, 0], [0, 0, 1], [0, 0, 1]]}},
        "confused_pairs": [{"a": "transfer_money", "b": "lost_card", "count": 1}],
        "advice": {"merge": [{"labels": ["transfer_money", "check_balance"], "score": 0.3}], "split": []},
        "summary": {"issues": 3},
    }
    folder = state.settings.reports_dir / dataset
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "analysis.json").write_text(json.dumps(report))
    return report


def original_records() -> list[dict[str, Any]]:
    return json.loads(HUMANLOOP_SMALL.read_text())


@pytest.fixture(scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory):
    """(app, client) shared by a module: the small Humanloop dataset ingested and analysed (planted).
    Creating a store collection costs seconds, so tests that write use points or datasets of their own."""
    async with running(settings_in(tmp_path_factory.mktemp("api"))) as (app, client):
        ingest_fixture(app)
        plant_analysis(app)
        yield app, client


def point_ids_of(app: Any, dataset: str = DATASET) -> dict[Any, Any]:
    """record id -> point id."""
    ids, payloads, _ = load_all(app.state.api.workspace.collection(dataset), with_vectors=False)
    return {p["record_id"]: pid for pid, p in zip(ids, payloads, strict=True)}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The route-coverage test reads what every other test reached, so it runs after them."""
    items.sort(key=lambda item: item.get_closest_marker("route_coverage") is not None)
