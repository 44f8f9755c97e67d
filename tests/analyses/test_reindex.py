"""The write-back rebuilds the vector index of a large dataset: rewriting every payload moves the points out
of the embedded store's indexed segment, and search would otherwise scan every vector."""

from __future__ import annotations

import numpy as np

from embeddings.embedder import FakeEmbedder
from service.analyses.runner import reindex, write_payloads
from service.settings import Settings
from service.workspace import Workspace
from tests.analyses.conftest import DATASET


class Counting:
    """The real collection, counting optimize calls."""

    def __init__(self, inner):
        self.inner, self.optimized = inner, 0

    def optimize(self):
        self.optimized += 1
        self.inner.optimize()

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_write_back_reindexes_above_the_threshold_only(tmp_path):
    with Workspace(Settings(home=tmp_path, store_backend="edge"), embedder=FakeEmbedder(8)) as ws:
        collection = Counting(ws.catalog.create("d", 8, "fake-8", "synthetic"))
        vectors = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
        collection.upsert(list(range(50)), vectors, [{"text": str(i)} for i in range(50)])
        batches = [({i: {"cluster": i % 3} for i in range(50)}, {})]
        write_payloads(collection, batches)
        assert not reindex(collection, reindex_above=51) and collection.optimized == 0
        assert reindex(collection, reindex_above=50) and collection.optimized == 1
        assert [h.id for h in collection.search(vectors[7], k=1)] == [7]
        assert collection.retrieve([7])[0].payload["cluster"] == 1


def test_analyze_rebuilds_the_index_once_its_report_is_saved(analysed, monkeypatch):
    """The rebuild runs after the analysis (its arrays freed): the points and the new report already agree, so a
    run killed during the rebuild leaves no half-written state behind."""
    from embeddings.store.edge import EdgeCollection
    from service.analyses import runner
    from service.analyses.report import interrupted_writeback, load_report

    seen = []
    real = EdgeCollection.optimize

    def observed(self):
        seen.append((load_report(analysed.settings, DATASET)["run_id"], interrupted_writeback(analysed.settings,
                                                                                              DATASET)))
        real(self)

    monkeypatch.setattr(EdgeCollection, "optimize", observed)
    monkeypatch.setattr(runner, "REINDEX_ABOVE", 1)
    heard = []
    with analysed.workspace() as ws:
        report = runner.analyze(ws, DATASET, params={"clusters": {"projection": "pca"}},
                                progress=lambda **kw: heard.append(kw.get("stage")))
    assert seen == [(report["run_id"], None)]  # the new report saved, nothing left half-written
    assert report["run_id"] != analysed.report["run_id"] and "index" in report["stages"]
    assert [s for s in heard if s][-1] == "index"
