"""The metadata records (catalog, audit log, runs) against every backend, and a second service seeing them:
two services' own Catalog and AuditLog objects over one store (each sees the other's writes: nothing is
cached that hides them), the same folder reopened (edge admits one process at a time) and, with QDRANT_URL
set, a second client of the same server opened before the first one writes (a second service process)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from embeddings.store import ClientStore, EdgeStore, MetadataStore, Store
from service.datasets.catalog import CATALOG, Catalog
from service.review.audit import AUDIT_COLLECTION, AuditLog
from service.runs.records import RUNS_COLLECTION

BACKENDS = ["edge", "memory"] + (["server"] if os.environ.get("QDRANT_URL") else [])


def _server(prefix: str) -> ClientStore:
    return ClientStore(os.environ["QDRANT_URL"], api_key=os.environ.get("QDRANT_API_KEY"), prefix=prefix)


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path) -> Iterator[Store]:
    if request.param == "edge":
        s: Store = EdgeStore(tmp_path / "qdrant")
    elif request.param == "memory":
        s = ClientStore(":memory:")
    else:
        s = _server(f"ddtest_{uuid.uuid4().hex[:8]}_")
    yield s
    for name in s.list_collections():
        s.drop(name)
    s.close()


def test_records_put_get_scan_update_delete(store):
    records = MetadataStore(store, "things")
    assert records.get("a") is None and list(records.scan()) == [] and records.get_many(["a"]) == []
    records.delete(["a"])
    records.flush()
    assert not store.exists("things"), "reads, deletes and flushes must not create the collection"
    records.put("a", {"name": "a", "n": 1})
    records.put_many({"b": {"name": "b", "n": 2}, "c": {"name": "c", "n": 3}})
    assert store.exists("things") and store.get("things").dim == 1
    assert records.get("a") == {"name": "a", "n": 1}
    assert [r["name"] for r in records.get_many(["c", "missing", "a"])] == ["c", "a"]
    assert sorted(r["name"] for r in records.scan()) == ["a", "b", "c"]
    records.update("b", {"n": 20, "extra": True})
    assert records.get("b") == {"name": "b", "n": 20, "extra": True}
    records.put("b", {"name": "b"})  # a put replaces the whole record
    assert records.get("b") == {"name": "b"}
    records.delete(["a", "c", "never"])
    assert [r["name"] for r in records.scan()] == ["b"]


def test_records_scan_pages_past_one_batch(store):
    records = MetadataStore(store, "many")
    records.put_many({f"k{i}": {"i": i} for i in range(2345)})
    assert sorted(r["i"] for r in records.scan()) == list(range(2345))
    assert len(records.get_many(f"k{i}" for i in range(2345))) == 2345


def test_a_reader_opened_before_the_first_write_sees_it(store):
    reader = MetadataStore(store, "late")
    assert reader.get("x") is None
    MetadataStore(store, "late").put("x", {"v": 1})
    assert reader.get("x") == {"v": 1} and list(reader.scan()) == [{"v": 1}]


def test_two_services_objects_over_one_store_see_each_others_writes(store):
    # What two service processes on one Qdrant server each hold: their own Catalog and AuditLog objects,
    # opened before the other one writes; only the store is shared.
    catalog_a, catalog_b = Catalog(store), Catalog(store)
    audit_a, audit_b = AuditLog(store, "shared"), AuditLog(store, "shared")
    catalog_a.create("shared", 8, "fake-model", "csv")
    assert catalog_b.names() == ["shared"] and catalog_b.get("shared")["dim"] == 8
    assert audit_b.newest() == []
    audit_a.confirm(audit_a.append({"user": "ana", "point": 1}))
    audit_a.confirm(audit_a.append({"user": "ana", "point": 1, "undoes": 1}))
    assert [(e["change_id"], e["undone_by"]) for e in audit_b.newest()] == [(2, None), (1, 2)]
    assert len(audit_b) == 2
    third = audit_b.append({"user": "bo", "point": 2})
    assert third["change_id"] == 3, "an append numbers after the other process's entries, not over them"
    assert [e["user"] for e in audit_a.all()] == ["ana", "ana", "bo"] and audit_a.get(3)["user"] == "bo"
    audit_a.delete()
    assert audit_b.newest() == [] and len(audit_b) == 0
    catalog_b.drop("shared")
    assert not catalog_a.exists("shared")


def _write_everything(store: Store) -> None:
    catalog = Catalog(store)
    catalog.create("shared", 8, "fake-model", "csv")
    catalog.update("shared", rows=3)
    audit = AuditLog(store, "shared")
    audit.confirm(audit.append({"user": "ana", "point": 1, "new": {"label": "b"}}))
    audit.confirm(audit.append({"user": "ana", "point": 1, "undoes": 1}))
    MetadataStore(store, RUNS_COLLECTION).put("00000000000000ab", {"id": "00000000000000ab", "status": "done"})


def _assert_everything(store: Store) -> None:
    catalog = Catalog(store)
    assert catalog.names() == ["shared"] and catalog.get("shared")["rows"] == 3
    assert catalog.collection("shared").dim == 8
    entries = AuditLog(store, "shared").all()
    assert [(e["change_id"], e["undone_by"]) for e in entries] == [(1, 2), (2, None)]
    assert MetadataStore(store, RUNS_COLLECTION).get("00000000000000ab")["status"] == "done"


def test_a_reopened_edge_folder_holds_catalog_audit_and_runs(tmp_path):
    first = EdgeStore(tmp_path / "qdrant")
    _write_everything(first)
    first.close()  # an embedded store admits one process: the second one opens after the first is gone
    second = EdgeStore(tmp_path / "qdrant")
    try:
        assert {CATALOG, AUDIT_COLLECTION, RUNS_COLLECTION} <= set(second.list_collections())
        _assert_everything(second)
    finally:
        second.close()


@pytest.mark.skipif(not os.environ.get("QDRANT_URL"), reason="needs a Qdrant server (QDRANT_URL)")
def test_a_second_client_of_one_server_sees_catalog_audit_and_runs():
    prefix = f"ddtest_{uuid.uuid4().hex[:8]}_"
    first, second = _server(prefix), _server(prefix)
    runs_before = MetadataStore(second, RUNS_COLLECTION)  # opened before any run exists, as a running service's
    assert runs_before.get("00000000000000ab") is None
    try:
        _write_everything(first)
        _assert_everything(second)
        assert runs_before.get("00000000000000ab") is not None
    finally:
        for name in first.list_collections():
            first.drop(name)
        first.close()
        second.close()
