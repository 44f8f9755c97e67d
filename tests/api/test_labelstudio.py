"""Label Studio in-process: tasks carry point, revision and dataset; imports record accept / reviewed / relabel
with the annotator, report stale tasks (who and when) instead of overwriting; JSON_MIN and CSV import or are
refused by name; the webhook checks its secret; the ML-backend protocol answers from the production model.
(The same against a real Label Studio server: tests/labelstudio/.)"""

from __future__ import annotations

import asyncio
import csv
import io
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from service.errors import Unavailable
from service.labelstudio.webhook import check_secret
from service.settings import Settings
from tests.api.conftest import DATASET, LABELS, PLANTED, ingest_fixture, plant_analysis, running, settings_in

pytestmark = pytest.mark.anyio
BASE = f"/api/datasets/{DATASET}"
SECRET = "webhook-secret-1"


@pytest.fixture(scope="module")
async def ls(tmp_path_factory: pytest.TempPathFactory):
    settings = settings_in(tmp_path_factory.mktemp("ls"), label_studio_webhook_secret=SECRET)
    async with running(settings) as (app, client):
        ingest_fixture(app)
        plant_analysis(app)
        yield app, client


def annotation(choice: str | list[str] | None, who: Any = None, at: str = "2026-01-01T00:00:00Z", ann_id: int = 1,
               cancelled: bool = False) -> dict[str, Any]:
    choices = choice if isinstance(choice, list) else [choice] if choice else []
    result = [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": choices}}]
    return {"id": ann_id, "completed_by": who, "was_cancelled": cancelled, "created_at": at, "updated_at": at,
            "result": result if choices else []}


async def point(client, rid: Any) -> dict[str, Any]:
    response = await client.get(f"{BASE}/points/{rid}")
    assert response.status_code == 200, response.text
    return response.json()


async def tasks_of(client, kind: str, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(f"{BASE}/label-studio/tasks", params={"kind": kind, **params})
    assert response.status_code == 200, response.text
    return response.json()


async def test_tasks_carry_point_revision_and_dataset_and_the_config_is_served(ls):
    _, client = ls
    issues = await tasks_of(client, "issues", limit=3)
    assert [t["data"]["id"] for t in issues] == sorted(PLANTED, key=lambda r: -PLANTED[r][2])
    for task in issues:
        data = task["data"]
        assert data["point_id"] == data["id"] and data["revision"] == 0 and data["dataset"] == DATASET
        assert data["current_label"] in LABELS and "label" not in data  # JSON_MIN puts the choice under "label"
        assert task["predictions"][0]["result"][0]["value"]["choices"] == [PLANTED[data["id"]][4]]
    suggestions = await tasks_of(client, "suggestions")
    assert len(suggestions) == 6 and all("current_label" not in t["data"] for t in suggestions)
    config = await client.get(f"{BASE}/label-studio/config")
    assert config.status_code == 200 and config.headers["content-type"].startswith("application/xml")
    assert {c.get("value") for c in ET.fromstring(config.text).iter("Choice")} == set(LABELS)
    unknown = await client.get("/api/datasets/nope/label-studio/tasks")
    assert unknown.status_code == 404
    status = (await client.get(f"{BASE}/label-studio")).json()
    assert status["project_id"] is None and status["webhook"] is True and status["connected"] is False


async def test_a_choice_accepts_confirms_or_relabels_and_the_annotator_is_logged(ls):
    _, client = ls
    issues = {t["data"]["id"]: t for t in await tasks_of(client, "issues", limit=3)}
    accept, confirm, change = sorted(PLANTED)
    current = {rid: (await point(client, rid))["label"] for rid in PLANTED}
    other = next(label for label in LABELS if label not in (current[change], PLANTED[change][4]))
    issues[accept]["annotations"] = [annotation(PLANTED[accept][4], {"id": 3, "email": "ann@example.com"})]
    issues[confirm]["annotations"] = [annotation(current[confirm], {"id": 4, "email": "bo@example.com"})]
    issues[change]["annotations"] = [annotation(other, 7)]  # a numeric id, no server to ask
    body = list(issues.values())
    result = (await client.post(f"{BASE}/annotations/label-studio", json=body)).json()
    assert (result["accepted"], result["reviewed"], result["relabelled"], result["applied"]) == (1, 1, 1, 3)
    assert result["format"] == "JSON" and result["stale"] == [] and result["skipped"] == []
    expected = {accept: ("accepted", PLANTED[accept][4], "accept", "ann@example.com"),
                confirm: ("reviewed", current[confirm], "reviewed", "bo@example.com"),
                change: ("relabelled", other, "relabel", "label-studio user 7")}
    for rid, (status, label, action, user) in expected.items():
        now = await point(client, rid)
        assert (now["review_status"], now["label"], now["revision"]) == (status, label, 1)
        log = (await client.get(f"{BASE}/changes", params={"point": str(rid)})).json()["data"]
        assert (log[0]["action"], log[0]["user"], log[0]["source"]) == (action, user, "label-studio")
        assert log[0]["evidence"]["shown"]["label_studio_annotation"] == 1
        assert log[0]["evidence"]["shown"]["exported_revision"] == 0
    # Reviewed points leave the issue list and the issue export.
    listed = (await client.get(f"{BASE}/issues", params={"limit": 100})).json()["data"]
    assert not {p["id"] for p in listed} & set(PLANTED)
    assert not {t["data"]["id"] for t in await tasks_of(client, "issues", limit=100)} & set(PLANTED)
    again = (await client.post(f"{BASE}/annotations/label-studio", json=body)).json()
    assert again["applied"] == 0 and again["unchanged"] == 3 and again["stale"] == []


async def test_an_edit_after_the_export_is_not_overwritten(ls):
    _, client = ls
    exported = (await tasks_of(client, "suggestions"))[:2]
    first, second = (t["data"]["id"] for t in exported)
    edited = await client.post(f"{BASE}/points/{first}/label", json={
        "action": "relabel", "label": "lost_card", "user": "alice@example.com", "reason": "wrong_label"})
    assert edited.status_code == 200, edited.text
    for task in exported:
        task["annotations"] = [annotation("check_balance", {"id": 9, "email": "late@example.com"})]
    result = (await client.post(f"{BASE}/annotations/label-studio", json=exported)).json()
    assert result["applied"] == 1 and [s["point_id"] for s in result["stale"]] == [first]
    stale = result["stale"][0]
    assert stale["changed_by"] == "alice@example.com" and stale["action"] == "relabel" and stale["changed_at"]
    assert "alice@example.com" in stale["reason"] and "force" in stale["reason"]
    assert (await point(client, first))["label"] == "lost_card"
    assert (await point(client, second))["label"] == "check_balance"
    forced = (await client.post(f"{BASE}/annotations/label-studio", params={"force": "true"}, json=exported)).json()
    assert forced["applied"] == 1 and forced["unchanged"] == 1 and forced["stale"] == []
    now = await point(client, first)
    assert now["label"] == "check_balance" and now["revision"] == 2


def _flat(task: dict[str, Any], task_id: int, choice: Any, annotator: Any) -> dict[str, Any]:
    """A row as Label Studio's JSON_MIN writes it: data flattened, data.id replaced, the choice under `label`."""
    return {**task["data"], "id": task_id, "label": choice, "annotator": annotator, "annotation_id": task_id * 10,
            "created_at": "2026-01-02T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z", "lead_time": 2.5}


async def test_json_min_and_csv_import_through_point_id_or_are_refused_by_name(ls):
    _, client = ls
    queue = (await tasks_of(client, "queue", strategy="random", limit=6))[-2:]
    rows = [_flat(queue[0], 901, "transfer_money", 2), _flat(queue[1], 902, {"choices": ["lost_card", "x"]}, 2)]
    result = (await client.post(f"{BASE}/annotations/label-studio", json=rows)).json()
    assert result["format"] == "JSON_MIN" and result["applied"] == 1
    assert "chose 2 labels" in result["skipped"][0]["reason"]
    log = (await client.get(f"{BASE}/changes", params={"point": str(queue[0]["data"]["id"])})).json()["data"]
    assert log[0]["user"] == "label-studio user 2" and log[0]["evidence"]["shown"]["label_studio_task"] == 901
    # Exported at revision 0, since changed by another annotation: stale (a revision of 0 is read as one).
    later = {**rows[0], "label": "lost_card", "annotation_id": 9011, "annotator": 5}
    stale = (await client.post(f"{BASE}/annotations/label-studio", json=[later])).json()
    assert [s["point_id"] for s in stale["stale"]] == [queue[0]["data"]["id"]] and stale["applied"] == 0
    assert stale["stale"][0]["changed_by"] == "label-studio user 2"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=sorted(rows[1]))
    writer.writeheader()
    writer.writerow({**rows[1], "label": "lost_card", "annotator": "3"})
    as_csv = await client.post(f"{BASE}/annotations/label-studio", content=buffer.getvalue(),
                               headers={"content-type": "text/csv"})
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.json()["format"] == "CSV" and as_csv.json()["applied"] == 1
    assert (await point(client, queue[1]["data"]["id"]))["label"] == "lost_card"
    foreign = [{"id": 5, "text": "hi", "label": "lost_card", "annotator": 1, "annotation_id": 5}]
    refused = await client.post(f"{BASE}/annotations/label-studio", json=foreign)
    assert refused.status_code == 422 and "JSON_MIN" in refused.text and "as JSON instead" in refused.text
    refused_csv = await client.post(f"{BASE}/annotations/label-studio", content="id,text,label\n5,hi,lost_card\n",
                                    headers={"content-type": "text/csv"})
    assert refused_csv.status_code == 422 and "CSV export" in refused_csv.text
    assert (await client.post(f"{BASE}/annotations/label-studio", json={"not": "a list"})).status_code == 422


async def test_annotators_weighed_together_and_skips_explained(ls):
    _, client = ls
    a, b, c = (await tasks_of(client, "issues", limit=100))[-3:]  # labelled points nobody reviewed yet
    a["annotations"] = [annotation("lost_card", 1, ann_id=11), annotation("check_balance", 2, ann_id=12)]
    b["annotations"] = [annotation("transfer_money", 1, ann_id=13),
                        annotation(None, 2, ann_id=14, cancelled=True)]
    c["annotations"] = [annotation(None, 1, ann_id=15, cancelled=True), annotation(None, 2, ann_id=16)]
    result = (await client.post(f"{BASE}/annotations/label-studio", json=[a, b, c, "x", {"data": {}}])).json()
    assert result["applied"] == 1 and (await point(client, b["data"]["id"]))["label"] == "transfer_money"
    reasons = {s["task"]: s["reason"] for s in result["skipped"]}
    assert "annotators disagree" in reasons[0] and "label-studio user 2 chose 'check_balance'" in reasons[0]
    assert "no annotation with a choice" in reasons[2] and reasons[3] == "not a JSON object"
    assert "no data.point_id" in reasons[4]
    assert (await point(client, a["data"]["id"])).get("review_status") is None


async def test_webhook_checks_its_secret_and_applies_created_and_deleted(ls):
    _, client = ls
    task = (await tasks_of(client, "queue", strategy="random", limit=1))[0]
    rid = task["data"]["id"]
    made = annotation("lost_card", 1, ann_id=4242)
    # The payload Label Studio 1.x sends (send_payload on): action, annotation, task (with its data), project.
    payload = {"action": "ANNOTATION_CREATED", "annotation": {**made, "task": 77, "project": 1},
               "task": {"id": 77, "data": task["data"], "project": 1, "is_labeled": True},
               "project": {"id": 1, "title": "Data Debugger: hl"}}
    url = f"{BASE}/label-studio/webhook"
    assert (await client.post(url, json=payload)).status_code == 401
    assert (await client.post(url, json=payload, headers={"X-Data-Debugger-Secret": "wrong"})).status_code == 401
    done = await client.post(url, json=payload, headers={"X-Data-Debugger-Secret": SECRET})
    assert done.status_code == 200, done.text
    assert done.json()["outcome"] in ("accepted", "relabelled")
    assert (await point(client, rid))["label"] == "lost_card"
    other = await client.post(url, json={"action": "PROJECT_UPDATED", "project": {}},
                              headers={"X-Data-Debugger-Secret": SECRET})
    assert other.json() == {"action": "PROJECT_UPDATED", "ignored": True}
    deleted = await client.post(url, json={"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 4242}],
                                           "project": {"id": 1}}, headers={"X-Data-Debugger-Secret": SECRET})
    assert deleted.status_code == 200 and len(deleted.json()["undone"]) == 1
    now = await point(client, rid)
    assert now["label"] is None and now.get("review_status") is None
    junk = await client.post(url, content=b"[1]", headers={"X-Data-Debugger-Secret": SECRET})
    assert junk.status_code == 422
    with pytest.raises(Unavailable, match="WEBHOOK_SECRET"):
        check_secret(Settings(home="x"), SECRET)


async def test_ml_backend_protocol_predicts_with_the_production_model(ls):
    app, client = ls
    from service.predictions.training import train_version

    train_version(app.state.api.workspace, DATASET, folds=3)
    root = "/label-studio/ml/hl"
    health = (await client.get(f"{root}/health")).json()
    assert health["status"] == "UP"
    config = (await client.get(f"{BASE}/label-studio/config")).text.replace('name="label"', 'name="intent"')
    setup = await client.post(f"{root}/setup", json={"project": "1.1700000000", "schema": config})
    assert setup.status_code == 200 and setup.json() == {"model_version": "v1"}
    body = {"tasks": [{"id": 1, "data": {"text": "my card was stolen"}}, {"id": 2, "data": {"text": "balance?"}}],
            "project": "1.1700000000", "label_config": config, "params": {}}
    answer = (await client.post(f"{root}/predict", json=body)).json()
    assert answer["model_version"] == "v1" and len(answer["results"]) == 2
    for prediction in answer["results"]:
        result = prediction["result"][0]
        assert result["from_name"] == "intent" and result["to_name"] == "text" and result["type"] == "choices"
        assert result["value"]["choices"][0] in LABELS and 0 < prediction["score"] <= 1
    assert (await client.post("/label-studio/ml/nope/predict", json=body)).status_code == 404
    assert (await client.post(f"{root}/predict", json={"tasks": "x"})).status_code == 422


async def test_push_and_pull_runs_need_a_configured_server(ls):
    _, client = ls
    bad = await client.post(f"{BASE}/runs", json={"step": "label-studio-push", "options": {"limit": 0}})
    assert bad.status_code == 422 and "options.limit" in bad.text
    for option in ({"kind": "clusters"}, {"strategy": "vibes"}):
        refused = await client.post(f"{BASE}/runs", json={"step": "label-studio-push", "options": option})
        assert refused.status_code == 422 and f"options.{next(iter(option))}" in refused.text
    started = await client.post(f"{BASE}/runs", json={"step": "label-studio-pull", "options": {}})
    assert started.status_code == 202, started.text
    run = started.json()
    while run["status"] in ("queued", "running"):
        await asyncio.sleep(0.05)
        run = (await client.get(f"/api/runs/{run['id']}")).json()
    assert run["status"] == "failed" and "DATA_DEBUGGER_LABEL_STUDIO_URL" in run["error"]["message"]


async def test_malformed_exports_are_refused_or_skipped_never_a_500(ls):
    _, client = ls
    url = f"{BASE}/annotations/label-studio"
    odd = [{"data": {"point_id": 700001, "revision": 0}, "annotations": 5},
           {"data": {"point_id": 700001}, "annotations": [{"result": {"value": 1}}, {"result": [{"value": "x"}]}]},
           {"data": {"point_id": [1]}, "annotations": [{"result": [{"value": {"choices": "lost_card"}}]}]}]
    answer = await client.post(url, json=odd)
    assert answer.status_code == 200, answer.text
    assert answer.json()["applied"] == 0 and len(answer.json()["skipped"]) == 3
    long = b'point_id,label\n1,"' + b"x" * 140_000 + b'"\n'  # over the csv module's field limit
    too_long = await client.post(url, content=long, headers={"content-type": "text/csv"})
    assert too_long.status_code == 422 and "not a readable CSV export" in too_long.text
    not_json = await client.post(url, content=b"[1,", headers={"content-type": "application/json"})
    assert not_json.status_code == 422 and "is not JSON" in not_json.text
    for config in (7, "<not xml", None):
        predicted = await client.post("/label-studio/ml/hl/predict", json={"tasks": [], "label_config": config,
                                                                          "params": {"model_version": 3}})
        assert predicted.status_code in (200, 404), predicted.text  # 404 when no model is trained yet
