"""Dashboard fixtures: the REAL service (create_app on embedded Qdrant in a temp dir) with the Humanloop data
ingested with the fake embedder, two trained model versions, predictions and a real analysis, served by
uvicorn on 127.0.0.1 in a thread. Built once per session: training and UMAP are the slow part."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from embeddings.embedder import FakeEmbedder
from service.settings import Settings
from tests.conftest import HUMANLOOP
from tests.servers import serve_app

log = logging.getLogger(__name__)

# The fake embedder keeps the suite fast; its map is a shapeless cloud. Set this to 1 to run the dashboard
# tests on the real MiniLM model (slower), e.g. to refresh the README's screenshot of the map.
REAL_MODEL = os.environ.get("DATA_DEBUGGER_DASHBOARD_REAL_MODEL") == "1"
DATASET = "humanloop"
N_POINTS = 2327  # the Humanloop export: 1708/213/213 labelled + 193 unlabelled
# The large map of the browser test: a million points, what the map is built for (issue 17). Writing them to the
# store takes ~3 minutes on 2 cores, reading them back into the service's snapshot ~1; set this lower to iterate.
BIG_POINTS = int(os.environ.get("DATA_DEBUGGER_BIG_MAP_POINTS", "1000000"))
BIG = f"synthetic{BIG_POINTS}"


@dataclass
class Service:
    """The running service: its URL, the app (for its workspace) and a plain HTTP client of it."""

    url: str
    app: Any
    http: httpx.Client
    settings: Settings


def prepare(settings: Settings) -> None:
    """Ingest, train v1 and v2 (logistic regression, one C each, to keep it quick), predict with v2, analyse."""
    from service.analyses.runner import analyze
    from service.datasets.ingest import ingest, make_sources
    from service.predictions.client import enrich
    from service.predictions.registry import ModelRegistry
    from service.predictions.training import train_version
    from service.workspace import Workspace

    with Workspace(settings, embedder=None if REAL_MODEL else FakeEmbedder()) as ws:
        ingest(ws.catalog, ws.embedder, DATASET, make_sources([HUMANLOOP], "humanloop"))
        registry = ModelRegistry(settings.models_dir)
        # Two versions that differ (strong vs weak regularisation), so the side-by-side view has a change to show.
        for c in (0.3, 10.0):
            train_version(ws, DATASET, model="logreg", learning_repeats=1, folds=3, registry=registry,
                          grids={"logreg": [{"C": c}]})
        enrich(ws, DATASET)
        analyze(ws, DATASET)


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The analysed Humanloop data behind the real API on a real uvicorn server."""
    if not HUMANLOOP.exists():
        pytest.fail(f"{HUMANLOOP} is missing: the dashboard tests need ../shared/data beside the repository")
    from service.api.app import create_app

    settings = Settings(home=tmp_path_factory.mktemp("dashboard") / "home", fake_embeddings=not REAL_MODEL,
                        store_backend="edge")
    started = time.perf_counter()
    prepare(settings)
    log.info("dashboard fixture: data prepared in %.1f s", time.perf_counter() - started)
    app = create_app(settings, embedder=None if REAL_MODEL else FakeEmbedder())
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield Service(url, app, http, settings)


@pytest.fixture(scope="session")
def big_dataset(service: Service) -> str:
    """BIG_POINTS synthetic points with map fields, written straight to the service's own store (same process)."""
    from scripts.synthetic import add_synthetic

    ws = service.app.state.api.workspace
    if not ws.catalog.exists(BIG):
        started = time.perf_counter()
        add_synthetic(ws, BIG, BIG_POINTS)
        log.info("%s written in %.1f s", BIG, time.perf_counter() - started)
    # The clusters' names, as an analysis report gives them (the map shows them; the clusters table lists them).
    from scripts.synthetic import N_LABELS
    from service.analyses.report import save_report

    save_report(service.settings, BIG, {"clusters": [{"id": c, "name": f"blob {c}"} for c in range(N_LABELS)]})
    # Written behind the service's back: do what its run manager does when a run has written a dataset.
    service.app.state.api.views.after_run(BIG, succeeded=True)
    return BIG


@pytest.fixture
def client(service: Service):
    from dashboard.client import ApiClient

    c = ApiClient(service.url)
    yield c
    c.close()


@pytest.fixture
def screenshots_dir() -> Path:
    path = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
