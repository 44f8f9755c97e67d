"""The audit entry and the point change are one recoverable pair: an entry is pending until the point holds
the change, a failure between them is settled at once or at the next start, a pending or not-applied entry
never counts as a change, and undo refuses it. Crashes are injected between the two writes: an exception
raised by the store in-process, and a kill -9 of a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from embeddings.embedder import FakeEmbedder
from embeddings.store import load_all
from service.datasets.catalog import data_collection_name
from service.errors import Conflict
from service.review.actions import ReviewAction, apply_action, open_audit, undo
from service.review.audit import AuditLog
from service.workspace import Workspace
from tests.api.conftest import DATASET, HUMANLOOP_SMALL, ingest_fixture, point_ids_of, running, settings_in
from tests.conftest import REPO

pytestmark = pytest.mark.anyio


class InjectedCrash(OSError):
    """Raised by the store where the test says the process stops."""


def fail_writes(monkeypatch, collection, method: str, times: int = 1, after: int = 0) -> list[int]:
    """Make `times` calls of `method` on `collection`, after the next `after`, raise (other collections go
    through)."""
    calls: list[int] = []
    seen: list[int] = []
    name = collection.name
    real = getattr(type(collection), method)

    def failing(self, *args, **kwargs):
        if self.name == name:
            seen.append(1)
        if self.name == name and len(seen) > after and len(calls) < times:
            calls.append(1)
            raise InjectedCrash(f"injected: {method} on {name}")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(collection), method, failing)
    return calls


async def test_a_failed_point_write_logs_not_applied_and_undo_refuses_it(tmp_path, monkeypatch):
    async with running(settings_in(tmp_path)) as (app, client):
        ingest_fixture(app)
        pid = point_ids_of(app)[700002]
        url = f"/api/datasets/{DATASET}/points/{pid}"
        before = (await client.get(url, params={"k": 0})).json()
        calls = fail_writes(monkeypatch, app.state.api.workspace.collection(DATASET), "set_payloads")
        answer = await client.post(f"{url}/label", json={"action": "relabel", "label": "lost_card"})
        assert answer.status_code == 500 and calls, answer.text
        monkeypatch.undo()
        after = (await client.get(url, params={"k": 0})).json()
        assert after == before  # the point never changed
        log = (await client.get(f"/api/datasets/{DATASET}/changes")).json()
        assert log["count"] == 1 and log["data"][0]["status"] == "not_applied"
        refused = await client.post(f"/api/datasets/{DATASET}/changes/1/undo", json={})
        assert refused.status_code == 409 and "not applied" in refused.json()["message"]
        # The next change goes through and is the only applied one.
        done = await client.post(f"{url}/label", json={"action": "relabel", "label": "lost_card"})
        assert done.status_code == 200 and done.json()["change"]["status"] == "applied"
        assert done.json()["revision"] == before["revision"] + 1


async def test_a_point_write_that_landed_before_the_failure_is_applied_and_finished(tmp_path, monkeypatch):
    async with running(settings_in(tmp_path)) as (app, client):
        ingest_fixture(app)
        pid = point_ids_of(app)[700003]
        url = f"/api/datasets/{DATASET}/points/{pid}"
        relabel = (await client.post(f"{url}/label", json={"action": "relabel", "label": "lost_card"})).json()
        assert "original_label" in relabel
        # Undo removes `original_label` in a second call after the fields and revision: fail that one.
        fail_writes(monkeypatch, app.state.api.workspace.collection(DATASET), "delete_payload_keys")
        undone = await client.post(f"/api/datasets/{DATASET}/changes/{relabel['change']['change_id']}/undo")
        monkeypatch.undo()
        assert undone.status_code == 200, undone.text  # the check found the point at the change: finished
        point = (await client.get(url, params={"k": 0})).json()
        assert "original_label" not in point and point["revision"] == 2
        log = (await client.get(f"/api/datasets/{DATASET}/changes")).json()["data"]
        assert [e["status"] for e in log] == ["applied", "applied"] and log[1]["undone_by"] == 2


async def test_an_unconfirmed_entry_is_pending_until_the_next_start_confirms_it(tmp_path, monkeypatch):
    settings = settings_in(tmp_path)
    async with running(settings) as (app, client):
        ingest_fixture(app)
        pid = point_ids_of(app)[700004]
        url = f"/api/datasets/{DATASET}/points/{pid}"

        def stop(self, entry):
            raise InjectedCrash("injected: stopped before the entry was confirmed")

        monkeypatch.setattr(AuditLog, "confirm", stop)
        answer = await client.post(f"{url}/label", json={"action": "relabel", "label": "lost_card"})
        assert answer.status_code == 500
        monkeypatch.undo()
        log = (await client.get(f"/api/datasets/{DATASET}/changes")).json()["data"]
        assert log[0]["status"] == "pending"  # never shown as applied
        refused = await client.post(f"/api/datasets/{DATASET}/changes/1/undo")
        assert refused.status_code == 409 and "pending" in refused.json()["message"]
    async with running(settings) as (app, client):  # a restart settles it by the point, which took the change
        log = (await client.get(f"/api/datasets/{DATASET}/changes")).json()["data"]
        assert log[0]["status"] == "applied"
        assert (await client.get(url, params={"k": 0})).json()["label"] == "lost_card"
        assert (await client.post(f"/api/datasets/{DATASET}/changes/1/undo")).status_code == 200


async def test_an_entry_that_cannot_be_checked_stays_pending_and_a_restart_settles_it(tmp_path, monkeypatch):
    """The point write fails and so does the read that would decide it (the store is going down): the entry
    stays pending, listed in the log's head, so a restart settles it even when it is no longer the newest."""
    settings = settings_in(tmp_path)
    async with running(settings) as (app, client):
        ingest_fixture(app)
        ids = point_ids_of(app)
        collection = app.state.api.workspace.collection(DATASET)
        fail_writes(monkeypatch, collection, "set_payloads")
        fail_writes(monkeypatch, collection, "retrieve", after=1)  # the point is read; the check after is not
        first = await client.post(f"/api/datasets/{DATASET}/points/{ids[700007]}/label",
                                  json={"action": "relabel", "label": "lost_card"})
        monkeypatch.undo()
        assert first.status_code == 500, first.text
        later = await client.post(f"/api/datasets/{DATASET}/points/{ids[700008]}/label", json={"action": "reviewed"})
        assert later.status_code == 200
        log = (await client.get(f"/api/datasets/{DATASET}/changes")).json()["data"]
        assert [e["status"] for e in log] == ["applied", "pending"]
    async with running(settings) as (app, client):
        log = (await client.get(f"/api/datasets/{DATASET}/changes")).json()["data"]
        assert [e["status"] for e in log] == ["applied", "not_applied"]
        point = (await client.get(f"/api/datasets/{DATASET}/points/{ids[700007]}", params={"k": 0})).json()
        assert point["label"] != "lost_card" and point["revision"] == 0


def test_the_review_core_needs_only_a_workspace_and_a_lock(tmp_path):
    """What the CLI or a retrain trigger calls: no app, no request schema."""
    settings = settings_in(tmp_path)
    with Workspace(settings, embedder=FakeEmbedder()) as ws:
        from service.datasets.ingest import ingest, make_sources

        ingest(ws.catalog, ws.embedder, DATASET, make_sources([HUMANLOOP_SMALL], "humanloop"))
        lock = threading.RLock()
        audit = open_audit(ws, DATASET)
        done = apply_action(ws, lock, DATASET, 700005, ReviewAction("relabel", label="lost_card", user="cli"),
                            audit=audit)
        assert done.payload["label"] == "lost_card" and done.change["status"] == "applied"
        with pytest.raises(Conflict):
            apply_action(ws, lock, DATASET, 700005, ReviewAction("reviewed", revision=0), audit=audit)
        back = undo(ws, lock, DATASET, done.change["change_id"], "cli", "oops", audit=audit)
        assert back.payload["label"] != "lost_card" and len(audit) == 2


# A subprocess reviews one point and is killed (-9) at the named store call: the dataset's set_payloads (the
# entry is written, the point not yet) or the audit's set_payloads (the point is written, the entry not yet
# confirmed).
KILLED_REVIEW = textwrap.dedent("""
    import os, signal, sys, threading
    from embeddings.embedder import FakeEmbedder
    from service.review.actions import ReviewAction, apply_action, open_audit
    from service.settings import Settings
    from service.workspace import Workspace

    home, dataset, point, kill_on = sys.argv[1:5]
    ws = Workspace(Settings(home=home, fake_embeddings=True, store_backend="edge"), embedder=FakeEmbedder())
    collection = ws.collection(dataset)
    real = type(collection).set_payloads

    def set_payloads(self, updates):
        if self.name == kill_on:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, updates)

    type(collection).set_payloads = set_payloads
    apply_action(ws, threading.RLock(), dataset, int(point), ReviewAction("relabel", label="lost_card"),
                 audit=open_audit(ws, dataset))
    print("not killed")
""")


@pytest.mark.slow
@pytest.mark.parametrize(("kill_on", "status", "label_after"), [
    (data_collection_name(DATASET), "not_applied", None),  # after the entry, before the point: never happened
    ("audit", "applied", "lost_card"),  # after the point, before the confirmation: it did
])
def test_kill_9_between_the_entry_and_the_point(tmp_path, kill_on, status, label_after):
    settings = settings_in(tmp_path)
    with Workspace(settings, embedder=FakeEmbedder()) as ws:
        from service.datasets.ingest import ingest, make_sources

        ingest(ws.catalog, ws.embedder, DATASET, make_sources([HUMANLOOP_SMALL], "humanloop"))
        ids, payloads, _ = load_all(ws.collection(DATASET), with_vectors=False)
        before = next(p for p in payloads if p["record_id"] == 700006)
        ws.collection(DATASET).flush()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", KILLED_REVIEW, str(settings.home), DATASET, "700006", kill_on],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr
    with Workspace(settings, embedder=FakeEmbedder()) as ws:  # the restart
        raw = AuditLog(ws.store, DATASET)  # unsettled view: the kill left the entry pending
        assert len(raw) == 1 and raw.get(1)["status"] == "pending"
        audit = open_audit(ws, DATASET)  # what every opening does: settle it by the point
        assert audit.get(1)["status"] == status
        _, payloads, _ = load_all(ws.collection(DATASET), with_vectors=False)
        after = next(p for p in payloads if p["record_id"] == 700006)
        assert after["label"] == (label_after or before["label"])
        assert after.get("revision", 0) == (1 if status == "applied" else 0)
        if status == "not_applied":
            with pytest.raises(Conflict, match="not applied"):
                undo(ws, threading.RLock(), DATASET, 1, "t", "", audit=audit)
        # Settled for good: opening again changes nothing.
        assert open_audit(ws, DATASET).get(1)["status"] == status


