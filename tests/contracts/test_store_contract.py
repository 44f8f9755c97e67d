"""Every store operation, against every backend: qdrant-edge, qdrant-client ':memory:', and a real server
when QDRANT_URL is set."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

from embeddings.errors import Conflict, InvalidInput, NotFound, Unavailable
from embeddings.store import ClientStore, EdgeStore, PointFilter, iter_points, load_all, point_id

BACKENDS = ["edge", "memory"] + (["server"] if os.environ.get("QDRANT_URL") else [])


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    if request.param == "edge":
        s = EdgeStore(tmp_path / "qdrant")
    elif request.param == "memory":
        s = ClientStore(":memory:")
    else:
        s = ClientStore(os.environ["QDRANT_URL"], api_key=os.environ.get("QDRANT_API_KEY"),
                        prefix=f"ddtest_{uuid.uuid4().hex[:8]}_")
    yield s
    for name in s.list_collections():
        s.drop(name)
    s.close()


def _points(n: int, dim: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = ["a", "b", "c"]
    payloads = [
        {"text": f"point number {i} about {labels[i % 3]}", "label": labels[i % 3] if i % 5 else None,
         "split": "training" if i % 2 else "testing", "score": i / n, "cluster": i % 4,
         "flags": ["outlier"] if i % 7 == 0 else []}
        for i in range(n)
    ]
    return list(range(n)), vectors, payloads


def test_create_get_list_drop(store):
    assert store.list_collections() == []
    store.create("ds1", 8)
    assert store.exists("ds1") and store.list_collections() == ["ds1"]
    with pytest.raises(Conflict):
        store.create("ds1", 8)
    assert store.get("ds1").dim == 8
    store.drop("ds1")
    assert not store.exists("ds1")
    with pytest.raises(NotFound):
        store.get("ds1")
    with pytest.raises(NotFound):
        store.drop("ds1")


def test_bad_names_are_refused(store):
    with pytest.raises(InvalidInput, match="not allowed"):
        store.create("../escape", 8)


def test_upsert_retrieve_and_replace(store):
    c = store.create("ds", 8)
    ids, vectors, payloads = _points(50)
    c.upsert(ids, vectors, payloads)
    assert c.count() == 50
    got = c.retrieve([3, 999, 1], with_vectors=True)
    assert [p.id for p in got] == [3, 1]
    assert got[0].payload["text"] == payloads[3]["text"]
    np.testing.assert_allclose(got[0].vector, vectors[3], atol=1e-5)
    c.upsert([3], vectors[:1], [{"text": "replaced"}])
    assert c.count() == 50
    assert c.retrieve([3])[0].payload == {"text": "replaced"}


def test_uuid_point_ids(store):
    c = store.create("ds", 8)
    pid = point_id("train-17")
    assert pid == point_id("train-17") and isinstance(pid, str)
    _, vectors, _ = _points(1)
    c.upsert([pid], vectors, [{"record_id": "train-17"}])
    assert c.retrieve([pid])[0].payload["record_id"] == "train-17"


def test_set_payloads_merges_and_delete_keys(store):
    c = store.create("ds", 8)
    ids, vectors, payloads = _points(10)
    c.upsert(ids, vectors, payloads)
    c.set_payloads({1: {"prediction": "a"}, 2: {"prediction": "b", "label": "z"}})
    p1, p2 = c.retrieve([1, 2])
    assert p1.payload["prediction"] == "a" and p1.payload["text"] == payloads[1]["text"]
    assert p2.payload["label"] == "z"
    c.delete_payload_keys([1], ["prediction"])
    assert "prediction" not in c.retrieve([1])[0].payload


def test_filters(store):
    c = store.create("ds", 8)
    ids, vectors, payloads = _points(60)
    c.upsert(ids, vectors, payloads)

    def expected(pred):
        return sorted(i for i, p in zip(ids, payloads, strict=True) if pred(p))

    def got(f):
        return sorted(p.id for page in iter_points(c, f, batch=7) for p in page)

    assert got(PointFilter(match={"label": "a"})) == expected(lambda p: p["label"] == "a")
    assert got(PointFilter(match={"label": ["a", "b"]})) == expected(lambda p: p["label"] in ("a", "b"))
    assert got(PointFilter(exclude={"split": "testing"})) == expected(lambda p: p["split"] != "testing")
    assert got(PointFilter(ranges={"score": (0.25, 0.5)})) == expected(lambda p: 0.25 <= p["score"] <= 0.5)
    assert got(PointFilter(empty={"label": True})) == expected(lambda p: p["label"] is None)
    assert got(PointFilter(empty={"label": False})) == expected(lambda p: p["label"] is not None)
    assert got(PointFilter(match={"flags": "outlier"})) == expected(lambda p: "outlier" in p["flags"])
    assert got(PointFilter(match={"cluster": 2})) == expected(lambda p: p["cluster"] == 2)
    assert got(PointFilter(text={"text": "About B"})) == expected(lambda p: p["text"].endswith(" b"))
    assert got(PointFilter(ids=[1, 2, 3], match={"split": "training"})) == [1, 3]
    assert c.count(PointFilter(match={"label": "a"})) == len(expected(lambda p: p["label"] == "a"))
    with pytest.raises(InvalidInput, match="boolean"):
        c.count(PointFilter(match={"x": True}))


def test_scroll_pages_cover_everything_once(store):
    c = store.create("ds", 8)
    ids, vectors, payloads = _points(123)
    c.upsert(ids, vectors, payloads)
    seen = [p.id for page in iter_points(c, batch=10) for p in page]
    assert sorted(seen) == ids and len(seen) == len(set(seen))
    all_ids, all_payloads, matrix = load_all(c)
    assert matrix.shape == (123, 8)
    np.testing.assert_allclose(matrix[all_ids.index(5)], vectors[5], atol=1e-5)


def test_a_scroll_may_name_the_payload_fields_it_reads(store):
    c = store.create("ds", 8)
    ids, vectors, payloads = _points(30)
    c.upsert(ids, vectors, payloads)
    got_ids, got, matrix = load_all(c, PointFilter(match={"split": ["testing"]}), fields=("label", "cluster", "nope"))
    assert sorted(got_ids) == [i for i in ids if i % 2 == 0] and matrix.shape == (15, 8)
    by_id = dict(zip(got_ids, got, strict=True))
    # Only the named keys (a missing one is simply absent); a None value is still a value.
    assert all(by_id[i] == {"label": payloads[i]["label"], "cluster": payloads[i]["cluster"]} for i in got_ids)
    assert load_all(c, with_vectors=False)[1][0].keys() == payloads[0].keys()  # no fields: the whole payload


def test_search_finds_nearest_and_respects_filter(store):
    c = store.create("ds", 8)
    ids, vectors, payloads = _points(200)
    c.upsert(ids, vectors, payloads)
    hits = c.search(vectors[42], k=5)
    assert hits[0].id == 42 and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    exact = np.argsort(-(vectors @ vectors[42]))[:5].tolist()
    assert [h.id for h in hits] == exact
    filtered = c.search(vectors[42], k=5, filter=PointFilter(match={"label": "b"}))
    assert filtered and all(h.payload["label"] == "b" for h in filtered)


def test_indexed_search_scores_are_exact_and_recall_holds(store):
    # Vectors are searched through int8 copies and rescored on the floats: the scores a caller sees must be
    # the true cosines, and the neighbours the true ones for nearly every query. Enough points that the engine
    # builds the index (below ~10 MB of vectors it scans the floats).
    n, dim = 7500, 384
    c = store.create("ds", dim)
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((40, dim))
    vectors = (centres[rng.integers(0, 40, n)] + 1.0 * rng.standard_normal((n, dim))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = list(range(len(vectors)))
    c.upsert(ids, vectors, [{"label": "x"}] * len(ids))
    c.flush()
    c.optimize()
    found = total = 0
    for q in rng.choice(len(vectors), 60, replace=False):
        hits = c.search(vectors[q], k=10)
        for h in hits:
            assert h.score == pytest.approx(float(vectors[h.id] @ vectors[q]), abs=2e-5)
        exact = set(np.argsort(-(vectors @ vectors[q]))[:10].tolist())
        found += len(exact & {h.id for h in hits})
        total += 10
    assert found / total >= 0.95


def test_facet_counts(store):
    c = store.create("ds", 8, indexed={"split": "keyword", "label": "keyword"})  # faceting needs an index
    ids, vectors, payloads = _points(30)
    c.upsert(ids, vectors, payloads)
    counts = c.facet("split")
    assert counts == {"training": 15, "testing": 15}
    assert c.facet("label", PointFilter(match={"split": "training"})) == {
        lab: sum(1 for p in payloads if p["split"] == "training" and p["label"] == lab) for lab in "abc"
        if any(p["split"] == "training" and p["label"] == lab for p in payloads)
    }


def test_delete(store):
    c = store.create("ds", 8)
    ids, vectors, payloads = _points(10)
    c.upsert(ids, vectors, payloads)
    c.delete([0, 1])
    assert c.count() == 8 and c.retrieve([0]) == []


def test_json_fields_read_back_as_written_by_every_read(store):
    """Declared JSON fields (nested values nothing filters on) come back from retrieve, scroll and search as
    written, after a partial update too; other fields are untouched."""
    c = store.create("ds", 8, indexed={"label": "keyword"}, json_fields=["n_best", "source"])
    ids, vectors, payloads = _points(12)
    n_best = [{"label": "a", "probability": 0.75}, {"label": "b", "probability": 0.25}]
    for i, p in enumerate(payloads):
        p["source"] = {"id": f"r{i}", "score": i / 3, "tags": ["x", "[y]"], "nested": {"deep": None}}
        p["n_best"] = None if i == 0 else n_best
    c.upsert(ids, vectors, payloads)
    c.set_payloads({1: {"n_best": [{"label": "c", "probability": 0.5}]}})
    got = {p.id: p.payload for p in c.retrieve(ids)}
    assert got[0]["n_best"] is None and got[2]["n_best"] == n_best
    assert got[1]["n_best"] == [{"label": "c", "probability": 0.5}] and got[1]["label"] == payloads[1]["label"]
    assert got[5]["source"] == payloads[5]["source"] and got[5]["flags"] == payloads[5]["flags"]
    page, _ = c.scroll_page(limit=100, fields=["n_best"])
    assert {p.id: p.payload["n_best"] for p in page}[3] == n_best
    hits = c.search(vectors[4], k=1, filter=PointFilter(match={"label": payloads[4]["label"]}))
    assert hits[0].id == 4 and hits[0].payload["source"] == payloads[4]["source"]


def test_edge_holds_json_fields_as_text_and_remembers_them_after_reopening(tmp_path):
    """What makes them cheap (EdgeCollection): the shard holds JSON text; a reopened store still decodes it."""
    s = EdgeStore(tmp_path / "q")
    c = s.create("ds", 8, json_fields=["n_best"])
    ids, vectors, payloads = _points(3)
    c.upsert(ids, vectors, [{**p, "n_best": [{"label": "a", "probability": 1.0}]} for p in payloads])
    raw = c._shard.retrieve([0], True, False)[0].payload
    assert isinstance(raw["n_best"], str) and isinstance(raw["flags"], list)
    s.close()
    s2 = EdgeStore(tmp_path / "q")
    assert s2.get("ds").retrieve([0])[0].payload["n_best"] == [{"label": "a", "probability": 1.0}]
    s2.close()


def test_edge_store_survives_reopen_and_admits_one_process(tmp_path):
    s = EdgeStore(tmp_path / "q")
    c = s.create("ds", 8)
    ids, vectors, payloads = _points(20)
    c.upsert(ids, vectors, payloads)
    s.close()
    s2 = EdgeStore(tmp_path / "q")
    assert s2.get("ds").count() == 20
    import subprocess
    import sys

    code = ("import sys; from embeddings.errors import Unavailable; from embeddings.store import EdgeStore\n"
            "try:\n  EdgeStore(sys.argv[1])\nexcept Unavailable as e:\n  print(type(e).__name__, e); sys.exit(3)")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "q")], capture_output=True, text=True)
    # StoreLocked, the Unavailable a CLI command answers by asking the running service (service.delegate)
    assert result.returncode == 3 and "StoreLocked" in result.stdout and "one process" in result.stdout
    s2.close()
    assert Unavailable  # imported for the message check above


def test_point_id_mapping():
    assert point_id(17) == 17 and point_id("17") == 17
    assert isinstance(point_id("007"), str)  # leading zeros are not the number 7
    assert isinstance(point_id(-3), str)
    assert point_id("abc") != point_id("abd")


def test_a_search_filtered_by_a_range_words_or_a_selective_keyword_is_exact(tmp_path):
    # The filter selects 8 of 40 far-apart clusters (8,000 points: too many for the engine to scan them on its
    # own). Walking the graph through the selected points alone cannot cross from one cluster to the next, so
    # the engine's index must not be trusted for these conditions (no payload index has graph links): the
    # answers must be the exact nearest points among those the filter selects.
    n, dim, clusters = 40_000, 384, 40
    rng = np.random.default_rng(5)
    centres = 6.0 * rng.standard_normal((clusters, dim))
    home = rng.integers(0, clusters, n)
    vectors = (centres[home] + rng.standard_normal((n, dim))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chosen = home % 5 == 0
    payloads = [{"score": float(0.9 if pick else 0.1), "text": "alpha beta" if pick else "gamma",
                 "group": "picked" if pick else "other"} for pick in chosen.tolist()]
    # The embedded store's own index (local ':memory:' mode always scans, and takes ~30 s to load this much).
    store = EdgeStore(tmp_path / "qdrant")
    c = store.create("ds", dim, indexed={"score": "float", "text": "text", "group": "keyword"})
    for start in range(0, n, 5000):
        c.upsert(list(range(start, min(n, start + 5000))), vectors[start:start + 5000], payloads[start:start + 5000])
    c.flush()
    c.optimize()
    selected = np.flatnonzero(chosen)
    for f in (PointFilter(ranges={"score": (0.5, None)}), PointFilter(text={"text": "beta"}),
              PointFilter(match={"group": "picked"})):
        for q in rng.choice(np.flatnonzero(~chosen), 20, replace=False):
            hits = c.search(vectors[q], k=10, filter=f)
            exact = selected[np.argsort(-(vectors[selected] @ vectors[q]))[:10]]
            assert [h.id for h in hits] == exact.tolist()
    store.close()
