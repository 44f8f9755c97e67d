"""Against a real Label Studio server: push the queue and the issues, annotate through Label Studio's API as
annotators would (accept, change, confirm, skip, two annotators on one task), pull, and check every point,
review status and audit entry; stale exports and edits made in Data Debugger are never overwritten; Label
Studio's own webhooks and ML-backend calls reach the service."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.api.conftest import DATASET, LABELS, PLANTED
from tests.labelstudio.conftest import LabelStudio, Service

pytestmark = pytest.mark.labelstudio
BASE = f"/api/datasets/{DATASET}"


def run(service: Service, step: str, **options: Any) -> dict[str, Any]:
    started = service.http.post(f"{BASE}/runs", json={"step": step, "options": options})
    assert started.status_code == 202, started.text
    run = started.json()
    while run["status"] in ("queued", "running"):
        time.sleep(0.1)
        run = service.http.get(f"/api/runs/{run['id']}").json()
    assert run["status"] == "succeeded", run["error"]
    return run["result"]


def point(service: Service, rid: Any) -> dict[str, Any]:
    answer = service.http.get(f"{BASE}/points/{rid}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def last_change(service: Service, rid: Any) -> dict[str, Any]:
    return service.http.get(f"{BASE}/changes", params={"point": str(rid), "limit": 1}).json()["data"][0]


def tasks_by_point(ls: LabelStudio, project: int) -> dict[Any, dict[str, Any]]:
    answer = ls.http.get("/api/tasks", params={"project": project, "fields": "all", "page_size": 1000})
    assert answer.status_code == 200, answer.text
    return {t["data"]["point_id"]: t for t in answer.json()["tasks"]}


def annotate(ls: LabelStudio, task: dict[str, Any], choice: str | None, user: int, *, accept: bool = False,
             cancelled: bool = False) -> int:
    """An annotation as the annotator's submit (or skip) in Label Studio's editor posts it."""
    body: dict[str, Any] = {"completed_by": user, "was_cancelled": cancelled, "result": [] if choice is None else [
        {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [choice]}}]}
    if accept:
        body["parent_prediction"] = task["predictions"][0]["id"]
    made = ls.http.post(f"/api/tasks/{task['id']}/annotations/", json=body)
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def suggestion(task: dict[str, Any]) -> str:
    return task["predictions"][0]["result"][0]["value"]["choices"][0]


def relabel_in_dashboard(service: Service, rid: Any, label: str) -> None:
    done = service.http.post(f"{BASE}/points/{rid}/label", json={
        "action": "relabel", "label": label, "user": "alice@example.com", "reason": "wrong_label"})
    assert done.status_code == 200, done.text


def test_push_annotate_pull_round_trip(label_studio: LabelStudio, service: Service):
    ls = label_studio
    admin = int(ls.http.get("/api/current-user/whoami").json()["id"])
    bob = ls.user("bob@example.com")
    pushed = run(service, "label-studio-push", strategy="hybrid", limit=6)
    assert pushed["sent"] == 6 and pushed["already_there"] == 0
    assert run(service, "label-studio-push", kind="issues", limit=3)["sent"] == 3
    again = run(service, "label-studio-push", strategy="hybrid", limit=6)
    assert again["sent"] == 0 and again["already_there"] == 6 and again["project_id"] == pushed["project_id"]
    project = pushed["project_id"]
    config = ls.http.get(f"/api/projects/{project}").json()["label_config"]
    assert all(f'value="{label}"' in config for label in LABELS)
    tasks = tasks_by_point(ls, project)
    assert len(tasks) == 9 and all(t["data"]["dataset"] == DATASET and t["data"]["revision"] == 0
                                   for t in tasks.values())
    assert all(len(t["predictions"]) == 1 for t in tasks.values())  # the suggestion, as a pre-annotation
    queued = sorted(p for p in tasks if p not in PLANTED)
    q1, q2, q3, q4, q5, q6 = queued
    i1, i2, i3 = sorted(PLANTED)
    label_of = {rid: point(service, rid)["label"] for rid in tasks}
    assert all(label_of[q] is None for q in queued)

    def other(*taken: str | None) -> str:
        return next(label for label in LABELS if label not in taken)

    ids = {
        q1: annotate(ls, tasks[q1], suggestion(tasks[q1]), admin, accept=True),
        q2: annotate(ls, tasks[q2], other(suggestion(tasks[q2])), bob),
        q3: annotate(ls, tasks[q3], None, admin, cancelled=True),
        q5: annotate(ls, tasks[q5], other(suggestion(tasks[q5])), admin),
        i1: annotate(ls, tasks[i1], label_of[i1], admin),
        i2: annotate(ls, tasks[i2], suggestion(tasks[i2]), bob, accept=True),
    }
    annotate(ls, tasks[q4], suggestion(tasks[q4]), admin, accept=True)
    annotate(ls, tasks[q4], other(suggestion(tasks[q4])), bob)
    ids[q5 * -1] = annotate(ls, tasks[q5], other(suggestion(tasks[q5])), bob)  # agrees with admin
    alice_label = other(label_of[i3], suggestion(tasks[i3]))
    relabel_in_dashboard(service, i3, alice_label)  # an edit in Data Debugger after the push
    annotate(ls, tasks[i3], suggestion(tasks[i3]), admin, accept=True)

    pulled = run(service, "label-studio-pull")
    assert (pulled["accepted"], pulled["reviewed"], pulled["relabelled"], pulled["unchanged"]) == (2, 1, 2, 0)
    assert pulled["tasks_changed"] == 8 and pulled["changes"] and pulled["retracted"]["undone"] == []
    assert [s["point_id"] for s in pulled["stale"]] == [i3]
    assert pulled["stale"][0]["changed_by"] == "alice@example.com" and pulled["stale"][0]["action"] == "relabel"
    skipped = {s["point_id"]: s["reason"] for s in pulled["skipped"]}
    assert set(skipped) == {q3, q4}
    assert "no annotation with a choice" in skipped[q3]
    assert "annotators disagree" in skipped[q4] and "bob@example.com" in skipped[q4]
    expected = {
        q1: ("accepted", suggestion(tasks[q1]), "accept", "admin@example.com"),
        q2: ("relabelled", other(suggestion(tasks[q2])), "relabel", "bob@example.com"),
        q5: ("relabelled", other(suggestion(tasks[q5])), "relabel", None),
        i1: ("reviewed", label_of[i1], "reviewed", "admin@example.com"),
        i2: ("accepted", suggestion(tasks[i2]), "accept", "bob@example.com"),
        i3: ("relabelled", alice_label, "relabel", "alice@example.com"),
    }
    for rid, (status, label, action, user) in expected.items():
        now, change = point(service, rid), last_change(service, rid)
        assert (now["review_status"], now["label"]) == (status, label), rid
        assert change["action"] == action and (user is None or change["user"] == user), change
        if rid != i3:
            assert change["source"] == "label-studio" and change["reason"] == "label_studio_pull"
            assert change["evidence"]["shown"]["label_studio_task"] == tasks[rid]["id"]
    assert last_change(service, q1)["evidence"]["shown"]["label_studio_annotation"] == ids[q1]
    assert last_change(service, q5)["evidence"]["shown"]["annotators"] == ["admin@example.com", "bob@example.com"]
    for rid in (q3, q4, q6):
        assert point(service, rid).get("review_status") is None and point(service, rid)["label"] is None
    issues = {p["id"] for p in service.http.get(f"{BASE}/issues", params={"limit": 100}).json()["data"]}
    assert not issues & {i1, i2, i3}  # reviewed, accepted, relabelled: off the issue list

    assert run(service, "label-studio-pull")["tasks_changed"] == 0  # nothing new since the last pull
    third = other(label_of[q2], point(service, q2)["label"], suggestion(tasks[q2]))
    updated = ls.http.patch(f"/api/annotations/{ids[q2]}/", json={"result": [
        {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [third]}}]})
    assert updated.status_code == 200, updated.text
    repulled = run(service, "label-studio-pull")
    assert repulled["tasks_changed"] == 1 and repulled["relabelled"] == 1 and repulled["stale"] == []
    assert point(service, q2)["label"] == third and point(service, q2)["revision"] == 2

    # Label Studio's file exports import too, mapped through point_id; numeric annotator ids are resolved.
    for fmt in ("JSON_MIN", "CSV", "JSON"):
        export = ls.http.get(f"/api/projects/{project}/export", params={"exportType": fmt})
        assert export.status_code == 200, export.text
        headers = {"content-type": "text/csv"} if fmt == "CSV" else {"content-type": "application/json"}
        result = service.http.post(f"{BASE}/annotations/label-studio", content=export.content, headers=headers)
        assert result.status_code == 200, result.text
        body = result.json()
        assert body["format"] == fmt and body["applied"] == 0, body
        assert [s["point_id"] for s in body["stale"]] == [i3] and body["stale"][0]["changed_by"] == "alice@example.com"
        assert "annotators disagree" in {s.get("point_id"): s["reason"] for s in body["skipped"]}[q4]

    # A stale export: an edit in Data Debugger after the export is not overwritten by importing it.
    export = ls.http.get(f"/api/projects/{project}/export", params={"exportType": "JSON"}).content
    relabel_in_dashboard(service, q1, other(suggestion(tasks[q1])))
    stale = service.http.post(f"{BASE}/annotations/label-studio", content=export,
                              headers={"content-type": "application/json"}).json()
    assert {s["point_id"] for s in stale["stale"]} == {q1, i3} and stale["applied"] == 0
    assert point(service, q1)["label"] == other(suggestion(tasks[q1]))
    assert last_change(service, q1)["user"] == "alice@example.com"

    # Points changed in Data Debugger meanwhile: an unannotated task is removed, an annotated one marked.
    relabel_in_dashboard(service, q6, LABELS[0])
    repushed = run(service, "label-studio-push", strategy="hybrid", limit=6)
    assert repushed["removed"] == 1 and repushed["marked"] == 2 and repushed["sent"] == 0
    assert ls.http.get(f"/api/tasks/{tasks[q6]['id']}/").status_code == 404
    marked = tasks_by_point(ls, project)
    assert "alice@example.com" in marked[i3]["meta"]["data_debugger"]
    assert "alice@example.com" in marked[q1]["meta"]["data_debugger"] and "data_debugger" not in marked[q2]["meta"]
    assert run(service, "label-studio-push", strategy="hybrid", limit=6)["marked"] == 0  # marked once


def test_webhook_applies_annotations_as_they_are_made(label_studio: LabelStudio, service: Service):
    ls = label_studio
    admin = int(ls.http.get("/api/current-user/whoami").json()["id"])
    service.app.state.api.settings.label_studio_webhook_base = service.url  # push registers the webhook
    pushed = run(service, "label-studio-push", kind="issues", limit=4)
    assert pushed["webhook"] == f"{service.url}{BASE}/label-studio/webhook" and pushed["sent"] >= 1
    hooks = ls.http.get("/api/webhooks/", params={"project": pushed["project_id"]}).json()
    assert [h["url"] for h in hooks] == [pushed["webhook"]]
    tasks = tasks_by_point(ls, pushed["project_id"])
    rid, task = next((p, t) for p, t in tasks.items() if not t["annotations"] and p not in PLANTED)
    before = point(service, rid)
    first = next(label for label in LABELS if label not in (before["label"], suggestion(task)))
    made = annotate(ls, task, first, admin)  # Label Studio posts the webhook before it answers
    now, change = point(service, rid), last_change(service, rid)
    assert (now["label"], now["review_status"]) == (first, "relabelled")
    assert (change["user"], change["reason"], change["source"]) == (
        "admin@example.com", "label_studio_webhook", "label-studio")
    updated = ls.http.patch(f"/api/annotations/{made}/", json={"result": [
        {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [before["label"]]}}]})
    assert updated.status_code == 200
    # Back to the label the point had, which is also its suggestion: an accept of the suggestion.
    assert (point(service, rid)["label"], point(service, rid)["review_status"]) == (before["label"], "accepted")
    assert ls.http.delete(f"/api/annotations/{made}/").status_code == 204
    reverted = point(service, rid)
    assert reverted["label"] == before["label"] and reverted.get("review_status") is None
    assert last_change(service, rid)["action"] == "undo"
    forged = service.http.post(f"{BASE}/label-studio/webhook", json={"action": "ANNOTATIONS_DELETED",
                                                                      "annotations": [{"id": made}]},
                               headers={"X-Data-Debugger-Secret": "not-the-secret"})
    assert forged.status_code == 401


def test_ml_backend_serves_label_studio(label_studio: LabelStudio, service: Service):
    from service.predictions.training import train_version

    ls = label_studio
    train_version(service.app.state.api.workspace, DATASET, folds=3)
    project = ls.http.post("/api/projects/", json={
        "title": "pre-annotated by Data Debugger",
        "label_config": service.http.get(f"{BASE}/label-studio/config").text}).json()["id"]
    imported = ls.http.post(f"/api/projects/{project}/import", json=[
        {"data": {"text": "my card was stolen"}}, {"data": {"text": "how much money do I have"}}])
    assert imported.status_code == 201, imported.text
    connected = ls.http.post("/api/ml/", json={"url": f"{service.url}/label-studio/ml/{DATASET}",
                                               "project": project, "title": "Data Debugger"})
    assert connected.status_code == 201, connected.text  # Label Studio checked /health and /setup
    asked = ls.http.post("/api/dm/actions", params={"id": "retrieve_tasks_predictions", "project": project},
                         json={"selectedItems": {"all": True, "excluded": []}})
    assert asked.status_code == 200, asked.text
    tasks = ls.http.get("/api/tasks", params={"project": project, "fields": "all"}).json()["tasks"]
    predictions = [p for t in tasks for p in t["predictions"]]
    assert len(predictions) == 2 and {p["model_version"] for p in predictions} == {"v1"}
    assert all(p["result"][0]["value"]["choices"][0] in LABELS and 0 < p["score"] <= 1 for p in predictions)


def test_dashboard_queue_tab_runs_push_and_pull_with_progress(label_studio: LabelStudio, service: Service):
    from dashboard.client import ApiClient
    from dashboard.state.map import MapState
    from dashboard.state.queue import QueueState
    from dashboard.views.queue import QueueView

    client = ApiClient(service.url)
    queue = QueueState(client, MapState(client, dataset=DATASET), strategy="random", budget=6)
    view = QueueView(queue)
    for button, done in ((view.push, "task(s) sent"), (view.pull, "accepted")):
        button.clicks += 1  # what a click in the browser does
        assert queue.run_id and queue.sync.startswith("Label Studio ")
        while queue.run_active:
            time.sleep(0.1)
            queue.refresh_run()  # the view's periodic callback, which needs a served session to tick
        assert done in queue.sync and done in view.sync.object, queue.sync
        if view.poller.active:
            view.poller.tick()
        assert not view.poller.active  # polling stops once the run ended
    status = client.label_studio(DATASET)
    assert status["connected"] and status["project_id"] and status["last_push"] and status["last_pull"]
    assert status["url"] == label_studio.url and status["tasks"] >= 6
