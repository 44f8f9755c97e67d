"""The improvement loop through the real service: relabels through the API reach the trigger, a retrain is
queued by itself, the gate promotes a better challenger whose predictions the points then carry, a planted
worse challenger is refused with its reasons, and the loop's history lists both."""

from __future__ import annotations

import pytest

from embeddings.store import load_all
from service.datasets.ingest import ingest, make_sources
from service.predictions.registry import ModelRegistry
from service.predictions.training import train_version
from tests.api.conftest import running, settings_in
from tests.api.test_uploads_runs import wait_for as wait_for_run
from tests.predictions.conftest import TEST_GRIDS, write_planted

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
DATASET = "loop"


async def wait_for(client, run_id: str) -> dict:
    """A retrain trains, predicts and analyses: give it longer than an upload's run."""
    return await wait_for_run(client, run_id, timeout=600)


def _ids(app) -> dict[int, object]:
    ids, payloads, _ = load_all(app.state.api.workspace.collection(DATASET), with_vectors=False)
    return {p["record_id"]: pid for pid, p in zip(ids, payloads, strict=True)}


def _with_champion(app, settings, csv) -> tuple[ModelRegistry, str]:
    """The planted data ingested and a first version trained and promoted: the loop's starting point."""
    ws = app.state.api.workspace
    ingest(ws.catalog, ws.embedder, DATASET, make_sources([csv]))
    registry = ModelRegistry(settings.models_dir)
    champion = train_version(ws, DATASET, grids=TEST_GRIDS, learning_repeats=1, registry=registry).version
    registry.promote(DATASET, champion)
    return registry, champion


async def test_relabels_trigger_a_retrain_that_is_promoted_then_a_worse_one_is_refused(tmp_path):
    planted = write_planted(tmp_path / "planted.csv")
    settings = settings_in(tmp_path, retrain_after=3, gate_min_cluster_size=5)
    async with running(settings) as (app, client):
        registry, champion = _with_champion(app, settings, planted.csv)
        loop = (await client.get(f"/api/datasets/{DATASET}/loop")).json()
        assert loop["champion"] == champion and loop["changes_since"] == 0 and loop["retrain_after"] == 3

        # Three reviewers' fixes of planted label errors: the third reaches the threshold.
        for rid in planted.flipped[:3]:
            answer = await client.post(f"/api/datasets/{DATASET}/points/{rid}/label",
                                       json={"action": "relabel", "label": planted.truth[rid], "user": "ana"})
            assert answer.status_code == 200, answer.text
        runs = (await client.get("/api/runs", params={"dataset": DATASET})).json()["data"]
        queued = [r for r in runs if r["step"] == "retrain"]
        assert len(queued) == 1 and queued[0]["params"]["trigger"] == "changes"  # queued by itself, once
        # A fourth change while it runs does not queue a second retrain of the same dataset.
        rid = planted.flipped[3]
        await client.post(f"/api/datasets/{DATASET}/points/{rid}/label",
                          json={"action": "relabel", "label": planted.truth[rid], "user": "ana"})
        runs = (await client.get("/api/runs", params={"dataset": DATASET})).json()["data"]
        assert sum(r["step"] == "retrain" and r["status"] in ("queued", "running") for r in runs) <= 1
        done = await wait_for(client, queued[0]["id"])
        assert done["status"] == "succeeded", done
        result = done["result"]
        assert result["status"] == "promoted", result["summary"]
        challenger = result["challenger"]
        assert result["verdict"]["comparison"]["headline"]["macro_f1"]["ci"]  # the paired interval was computed
        assert registry.production(DATASET) == challenger
        point = (await client.get(f"/api/datasets/{DATASET}/points/{planted.flipped[0]}")).json()
        assert point["model_version"] == challenger  # re-enriched by the new champion

        # A planted worse challenger: most training labels damaged, then a retrain asked for by a client.
        intents = sorted(set(planted.truth.values()))
        ids = _ids(app)
        damaged = {ids[rid]: {"label": intents[(intents.index(planted.truth[rid]) + 1) % 4]}
                   for rid, label in planted.labels.items()
                   if label is not None and (rid - 1) % 46 < 30 and rid % 5 != 0}
        app.state.api.workspace.collection(DATASET).set_payloads(damaged)
        started = await client.post(f"/api/datasets/{DATASET}/runs", json={"step": "retrain",
                                                                           "options": {"analyze": False}})
        assert started.status_code == 202, started.text
        refused = (await wait_for(client, started.json()["id"]))["result"]
        assert refused["status"] == "refused" and registry.production(DATASET) == challenger
        assert any("worse" in reason for reason in refused["verdict"]["reasons"])

        history = (await client.get(f"/api/datasets/{DATASET}/loop")).json()["history"]
        by_version = {row["version"]: row for row in history}
        assert by_version[challenger]["retrain"]["trigger"] == "changes"
        assert by_version[challenger]["retrain"]["promoted"] and by_version[challenger]["production"]
        # The challenger was the first to learn the three fixes that triggered it (the fourth came during it
        # or after, and counts toward the next version).
        assert by_version[challenger]["reviewed_added"] >= 3 and by_version[champion]["reviewed_added"] == 0
        worse = by_version[refused["challenger"]]["retrain"]
        assert worse["trigger"] == "api" and worse["promoted"] is False and worse["reasons"]

        evaluation = (await client.get(f"/api/datasets/{DATASET}/models/{challenger}/evaluation")).json()
        assert evaluation["version"] == challenger and evaluation["splits"]["testing"]["n"] == 32
        missing = await client.get(f"/api/datasets/{DATASET}/models/v99/evaluation")
        assert missing.status_code == 404


async def test_a_newly_labelled_point_joins_training_and_the_log_says_so(tmp_path):
    planted = write_planted(tmp_path / "planted.csv")
    async with running(settings_in(tmp_path, retrain_after=0)) as (app, client):
        ws = app.state.api.workspace
        ingest(ws.catalog, ws.embedder, DATASET, make_sources([planted.csv]))
        rid = planted.unlabelled[0]
        answer = await client.post(f"/api/datasets/{DATASET}/points/{rid}/label",
                                   json={"action": "relabel", "label": planted.truth[rid], "user": "ana",
                                         "allow_new_label": False})
        assert answer.status_code == 200, answer.text
        assert answer.json()["split"] == "training"
        change = (await client.get(f"/api/datasets/{DATASET}/changes")).json()["data"][0]
        assert change["new"]["split"] == "training" and change["new"]["label"] == planted.truth[rid]
        bad = await client.post(f"/api/datasets/{DATASET}/runs", json={"step": "retrain",
                                                                       "options": {"tolerance": 2}})
        assert bad.status_code == 422 and bad.json()["field"] == "options.tolerance"
        internal = await client.post(f"/api/datasets/{DATASET}/runs", json={"step": "retrain",
                                                                            "options": {"trigger": "changes"}})
        assert internal.status_code == 422 and internal.json()["field"] == "options.trigger"


async def test_a_labelled_batch_the_champion_gets_wrong_queues_a_retrain(tmp_path):
    planted = write_planted(tmp_path / "planted.csv")
    settings = settings_in(tmp_path, retrain_after=0, retrain_accuracy_drop=0.2)
    async with running(settings) as (app, client):
        registry, _ = _with_champion(app, settings, planted.csv)
        # New labelled texts whose labels the world now uses differently: every intent moved to the next one.
        fresh = write_planted(tmp_path / "fresh.csv", seed=99)
        intents = sorted(set(fresh.truth.values()))
        lines = ["id,text,label,split"]
        for row in fresh.csv.read_text().splitlines()[1:60]:
            rid, text, label, split = row.split(",")
            if label:
                lines.append(f"batch-{rid},{text},{intents[(intents.index(label) + 1) % 4]},training")
        batch = tmp_path / "batch.csv"
        batch.write_text("\n".join(lines) + "\n")
        files = {"file": ("batch.csv", batch.read_bytes(), "text/csv")}
        answer = await client.post("/api/datasets", files=files, data={"name": DATASET, "format": "csv"})
        assert answer.status_code == 200, answer.text
        check = answer.json()["run"]["result"]["champion_check"]
        assert check["retrain_due"] and check["accuracy"] < check["test_accuracy"] - 0.2
        runs = (await client.get("/api/runs", params={"dataset": DATASET})).json()["data"]
        queued = [r for r in runs if r["step"] == "retrain"]
        assert len(queued) == 1 and queued[0]["params"]["trigger"] == "batch"
        done = await wait_for(client, queued[0]["id"])
        assert done["status"] == "succeeded" and done["result"]["status"] in ("promoted", "refused")
