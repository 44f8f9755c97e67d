"""The improvement loop in the dashboard, against the real service: the Models tab says how many label
changes the data has since the newest version, Retrain runs the loop with its progress, and the gate's
verdict and the versions' history appear (the state without a browser, then a click in headless Chromium)."""

from __future__ import annotations

import time

import pytest

from dashboard.state.loop import LoopState
from dashboard.state.map import MapState
from tests.dashboard.conftest import Service
from tests.dashboard.test_browser import chrome, click, click_tab, dashboard, page_text, wait_for  # noqa: F401
from tests.predictions.conftest import TEST_GRIDS, write_planted

pytestmark = pytest.mark.slow
LOOP = "loopdemo"


@pytest.fixture(scope="module")
def loop_dataset(service: Service, tmp_path_factory) -> dict:
    """A small planted dataset of its own in the session's service, trained (v1, production) and analysed,
    so retraining it never changes what the other dashboard tests see."""
    from service.analyses.runner import analyze
    from service.datasets.ingest import ingest, make_sources
    from service.predictions.client import enrich
    from service.predictions.registry import ModelRegistry
    from service.predictions.training import train_version

    planted = write_planted(tmp_path_factory.mktemp("loop") / "planted.csv")
    state = service.app.state.api
    ws = state.workspace
    if not ws.catalog.exists(LOOP):
        ingest(ws.catalog, ws.embedder, LOOP, make_sources([planted.csv]))
        registry = ModelRegistry(state.settings.models_dir)
        registry.promote(LOOP, train_version(ws, LOOP, grids=TEST_GRIDS, learning_repeats=1, registry=registry).version)
        enrich(ws, LOOP)
        analyze(ws, LOOP)
        state.views.after_run(LOOP, succeeded=True)  # written behind the service's back: as after a run
    return {"planted": planted}


def test_loop_state_counts_changes_runs_a_retrain_and_tells_the_verdict(service, client, loop_dataset):
    planted = loop_dataset["planted"]
    map_state = MapState(client)
    map_state.dataset = LOOP
    state = LoopState(client, map_state).load()
    before = len(state.history)
    assert state.champion is not None and state.headline().startswith(f"{state.changes} label change")
    assert "as ingested" in state.evaluation and "as reviewed" in state.evaluation
    for rid in planted.flipped[:2]:
        client.label(LOOP, rid, "relabel", planted.truth[rid], user="ana")
    state.load()
    assert state.changes >= 2 and f"since {state.newest}" in state.headline()
    state.retrain()
    assert state.running and state.run["step"] == "retrain"
    deadline = time.monotonic() + 600
    while state.running:
        assert time.monotonic() < deadline, "the retrain did not finish"
        time.sleep(0.5)
        state.poll()
    assert state.verdict.split(":")[0] in ("Promoted", "Refused"), state.verdict
    assert len(state.history) == before + 1 and state.history.iloc[0]["verdict"] in ("promoted", "refused")
    assert state.history.iloc[0]["trigger"] == "api" and state.history.iloc[0]["reviews_added"] >= 2


@pytest.mark.browser
def test_retrain_button_shows_the_verdict(chrome, dashboard, service, loop_dataset):  # noqa: F811
    planted = loop_dataset["planted"]
    import httpx

    rid = planted.flipped[2]
    httpx.post(f"{service.url}/api/datasets/{LOOP}/points/{rid}/label",
               json={"action": "relabel", "label": planted.truth[rid], "user": "ana"}, timeout=30)
    chrome.get(f"{dashboard.url}?dataset={LOOP}")
    click_tab(chrome, "Models")
    wait_for(lambda: "label change" in page_text(chrome), what="the loop's headline")
    click(chrome, "button", "Retrain")
    verdict = wait_for(lambda: next((w for w in ("Promoted:", "Refused:") if w in page_text(chrome)), None),
                       timeout=600, what="the gate's verdict")
    assert verdict in ("Promoted:", "Refused:")
    assert "promoted" in page_text(chrome) or "refused" in page_text(chrome)  # the history table's verdict column
