"""Relabelling with an audit trail: actions, revision conflicts (also under concurrency), undo, the change
log, and the relabel -> undo -> export round trip."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.api.conftest import DATASET, ingest_fixture, original_records, plant_analysis

pytestmark = pytest.mark.anyio

BASE = f"/api/datasets/{DATASET}"


async def point(client, pid, dataset=DATASET) -> dict:
    response = await client.get(f"/api/datasets/{dataset}/points/{pid}", params={"k": 0})
    assert response.status_code == 200
    body = response.json()
    body.pop("neighbours")
    return body


async def label(client, pid, dataset=DATASET, **body):
    return await client.post(f"/api/datasets/{dataset}/points/{pid}/label", json=body)


def without(payload: dict, *keys: str) -> dict:
    return {k: v for k, v in payload.items() if k not in keys}


async def test_relabel_updates_the_point_logs_the_change_and_updates_views(shared):
    _, client = shared
    before = await point(client, 700002)
    response = await label(client, 700002, action="relabel", label="transfer_money", reason="wrong_label",
                           user="ana", revision=before["revision"], evidence={"shown": "issues view"})
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["label"] == "transfer_money" and after["original_label"] == "check_balance"
    assert after["review_status"] == "relabelled" and after["prediction_status"] == "correct"
    assert after["revision"] == before["revision"] + 1 and "reviewed" in after["flags"]
    change = after["change"]
    assert change["old"]["label"] == "check_balance" and change["new"]["label"] == "transfer_money"
    assert change["user"] == "ana" and change["reason"] == "wrong_label" and change["action"] == "relabel"
    assert change["evidence"]["prediction"] == "transfer_money" and change["evidence"]["mislabel_score"] == 0.92
    assert change["evidence"]["shown"] == {"shown": "issues view"}
    assert await point(client, 700002) == without(after, "change")

    log = (await client.get(f"{BASE}/changes", params={"point": 700002})).json()
    assert log["data"][0]["change_id"] == change["change_id"]
    mapped = (await client.get(f"{BASE}/map")).json()
    row = mapped["ids"].index(700002)
    assert mapped["label"][row] == "transfer_money" and mapped["correct"][row] is True
    issues = (await client.get(f"{BASE}/issues")).json()
    assert 700002 not in [p["id"] for p in issues["data"]]
    reviewed = (await client.get(f"{BASE}/issues", params={"include_reviewed": True})).json()
    assert 700002 in [p["id"] for p in reviewed["data"]]


async def test_stale_revision_is_409_and_changes_nothing(shared):
    _, client = shared
    before = await point(client, 700003)
    changes_before = (await client.get(f"{BASE}/changes")).json()["count"]
    first = await label(client, 700003, action="reviewed", revision=before["revision"])
    assert first.status_code == 200
    stale = await label(client, 700003, action="relabel", label="lost_card", revision=before["revision"])
    assert stale.status_code == 409 and "revision" in stale.json()["message"]
    assert (await point(client, 700003))["label"] == before["label"]
    assert (await client.get(f"{BASE}/changes")).json()["count"] == changes_before + 1


async def test_concurrent_edits_never_lose_an_update(shared):
    _, client = shared
    before = await point(client, 700004)
    targets = ["lost_card", "transfer_money"] * 4
    responses = await asyncio.gather(*[
        label(client, 700004, action="relabel", label=t, revision=before["revision"], user=f"u{i}")
        for i, t in enumerate(targets)])
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 7, codes
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert (await point(client, 700004))["label"] == winner["label"]
    assert (await point(client, 700004))["revision"] == before["revision"] + 1


@pytest.mark.parametrize(("pid", "body", "status", "field_or_text"), [
    (700005, {"action": "relabel"}, 422, "body.label"),
    (700005, {"action": "relabel", "label": "   "}, 422, "body.label"),
    (700005, {"action": "relabel", "label": "no_such_intent"}, 422, "allow_new_label"),
    (700005, {"action": "relabel", "label": "check_balance"}, 422, "already has label"),
    (700005, {"action": "delete"}, 422, "body.action"),
    (700005, {"action": "reviewed", "colour": "red"}, 422, "body.colour"),
    (700005, {"action": "reviewed", "revision": -1}, 422, "body.revision"),
    (700005, {"action": "accept", "label": "lost_card"}, 422, "differs from the suggestion"),
    (999999, {"action": "reviewed"}, 404, "999999"),
])
async def test_label_bad_input(shared, pid, body, status, field_or_text):
    _, client = shared
    response = await label(client, pid, **body)
    assert response.status_code == status, response.text
    error = response.json()
    assert field_or_text in (error["field"] or "") or field_or_text in error["message"], error


async def test_new_label_needs_allow_new_label(shared):
    _, client = shared
    response = await label(client, 700006, action="relabel", label="close_account", allow_new_label=True)
    assert response.status_code == 200 and response.json()["label"] == "close_account"


async def test_accept_reviewed_and_ambiguous(shared):
    _, client = shared
    accepted = (await label(client, 700013, action="accept", reason="model_right")).json()
    assert accepted["label"] == "lost_card" and accepted["review_status"] == "accepted"
    unlabelled = await point(client, 700033)
    taken = (await label(client, 700033, action="accept", label=unlabelled["suggested_label"])).json()
    assert taken["label"] == unlabelled["suggested_label"] and taken["original_label"] is None
    assert taken["prediction_status"] in ("correct", "incorrect")
    marked = (await label(client, 700007, action="ambiguous", reason="two_intents")).json()
    assert marked["label"] == "check_balance" and marked["review_status"] == "ambiguous"
    assert "ambiguous" in marked["flags"] and "original_label" not in marked


async def test_undo_restores_exactly_and_refuses_twice(shared):
    _, client = shared
    before = await point(client, 700025)
    changed = (await label(client, 700025, action="relabel", label="check_balance", revision=before["revision"]))
    change_id = changed.json()["change"]["change_id"]
    undone = await client.post(f"{BASE}/changes/{change_id}/undo", json={"user": "bo", "reason": "misclick"})
    assert undone.status_code == 200, undone.text
    restored = undone.json()
    assert without(restored, "change", "revision") == without(before, "revision")
    assert restored["revision"] == before["revision"] + 2
    assert restored["change"]["undoes"] == change_id and restored["change"]["action"] == "undo"
    assert set(restored["change"]["removed"]) == {"review_status", "original_label"}
    again = await client.post(f"{BASE}/changes/{change_id}/undo")
    assert again.status_code == 409 and "already undone" in again.json()["message"]
    entry = next(c for c in (await client.get(f"{BASE}/changes", params={"limit": 1000})).json()["data"]
                 if c["change_id"] == change_id)
    assert entry["undone_by"] == restored["change"]["change_id"]
    # Undoing the undo redoes the change.
    redo = await client.post(f"{BASE}/changes/{restored['change']['change_id']}/undo")
    assert redo.status_code == 200 and redo.json()["label"] == "check_balance"


async def test_undo_after_a_later_change_is_409(shared):
    _, client = shared
    first = (await label(client, 700008, action="relabel", label="lost_card")).json()
    await label(client, 700008, action="relabel", label="transfer_money", revision=first["revision"])
    response = await client.post(f"{BASE}/changes/{first['change']['change_id']}/undo")
    assert response.status_code == 409 and "later" in response.json()["message"]
    assert (await client.post(f"{BASE}/changes/99999/undo")).status_code == 404
    assert (await client.post(f"{BASE}/changes/0/undo")).status_code == 422


async def test_change_log_pages_newest_first_to_the_end(shared):
    _, client = shared
    for target in ("lost_card", "transfer_money", "lost_card"):
        current = await point(client, 700009)
        await label(client, 700009, action="relabel", label=target, revision=current["revision"])
    seen, cursor, total = [], None, None
    for _ in range(100):
        page = (await client.get(f"{BASE}/changes", params={"limit": 2, **({"cursor": cursor} if cursor else {})}))
        body = page.json()
        total = body["count"]
        seen.extend(c["change_id"] for c in body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(total, 0, -1))
    mine = (await client.get(f"{BASE}/changes", params={"point": "700009"})).json()
    assert [c["new"]["label"] for c in mine["data"]] == ["lost_card", "transfer_money", "lost_card"]


async def test_queue_download_formats_and_errors(shared):
    _, client = shared
    as_csv = await client.get(f"{BASE}/queue", params={"strategy": "random", "limit": 3})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    lines = as_csv.text.strip().splitlines()
    assert lines[0].startswith("rank,id,text") and 1 <= len(lines) - 1 <= 3
    as_jsonl = await client.get(f"{BASE}/queue", params={"strategy": "random", "limit": 3, "format": "jsonl"})
    assert all("rank" in json.loads(line) for line in as_jsonl.text.splitlines())
    bad = await client.get(f"{BASE}/queue", params={"strategy": "vibes"})
    assert bad.status_code == 422 and bad.json()["field"] == "query.strategy"


async def test_relabel_undo_export_round_trip_gives_back_the_original_records(shared):
    app, client = shared
    ingest_fixture(app, "trip")
    base = "/api/datasets/trip"
    original = sorted(original_records(), key=lambda r: r["id"])
    actions = [(700002, {"action": "relabel", "label": "transfer_money", "reason": "wrong_label"}),
               (700015, {"action": "relabel", "label": "lost_card", "reason": "wrong_label"}),
               (700015, {"action": "relabel", "label": "check_balance", "reason": "changed_mind"}),
               (700034, {"action": "relabel", "label": "lost_card", "reason": "labelled"}),
               (700020, {"action": "ambiguous", "reason": "two_intents"}),
               (700003, {"action": "reviewed", "reason": "ok"})]
    change_ids = []
    for pid, body in actions:
        response = await label(client, pid, dataset="trip", **body)
        assert response.status_code == 200, response.text
        change_ids.append(response.json()["change"]["change_id"])
    edited = sorted((await client.get(f"{base}/export")).json(), key=lambda r: r["id"])
    by_id = {r["id"]: json.loads(r["data"]) for r in edited}
    assert by_id[700002]["intent"] == "transfer_money" and by_id[700015]["intent"] == "check_balance"
    assert by_id[700034]["intent"] == "lost_card" and by_id[700003] == json.loads(original[2]["data"])
    assert sum(a != b for a, b in zip(edited, original, strict=True)) == 3
    for change_id in reversed(change_ids):
        response = await client.post(f"{base}/changes/{change_id}/undo")
        assert response.status_code == 200, response.text
    restored = await client.get(f"{base}/export")
    assert sorted(restored.json(), key=lambda r: r["id"]) == original  # same ids, fields and values


async def test_reviewing_while_paging_through_issues_skips_none(shared):
    app, client = shared
    ingest_fixture(app, "walk")
    plant_analysis(app, "walk")
    url = "/api/datasets/walk/issues"
    ranked = [p["id"] for p in (await client.get(url, params={"limit": 1000})).json()["data"]]
    first = (await client.get(url, params={"limit": 5})).json()
    assert [p["id"] for p in first["data"]] == ranked[:5]
    for item in first["data"][:3]:  # an annotator reviews what the page showed, so it leaves the list
        response = await label(client, item["id"], dataset="walk", action="reviewed", revision=item["revision"])
        assert response.status_code == 200, response.text
    second = (await client.get(url, params={"limit": 5, "cursor": first["next_cursor"]})).json()
    assert [p["id"] for p in second["data"]] == ranked[5:10]  # an offset would have skipped ranked[5:8]
    seen, cursor = [], second["next_cursor"]
    while cursor:
        page = (await client.get(url, params={"limit": 5, "cursor": cursor})).json()
        seen += [p["id"] for p in page["data"]]
        cursor = page["next_cursor"]
    assert seen == ranked[10:]


async def test_errors_raised_below_the_api_still_name_their_field(shared):
    _, client = shared
    unknown = (await label(client, 700005, action="relabel", label="no_such_intent")).json()
    assert unknown["field"] == "body.label", unknown
    export = (await client.get(f"{BASE}/export", params={"format": "xml"})).json()
    assert export["field"] == "query.format", export
    search = await client.post("/api/search", json={"text": "card", "datasets": ["bad name!"]})
    assert search.status_code == 422 and search.json()["field"] == "body.datasets", search.text
