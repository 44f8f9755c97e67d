"""The write-back rebuilds the vector index of a large dataset: rewriting every payload moves the points out
of the embedded store's indexed segment, and search would otherwise scan every vector."""

from __future__ import annotations

import numpy as np

from embeddings.embedder import FakeEmbedder
from service.analyses.runner import write_payloads
from service.settings import Settings
from service.workspace import Workspace


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
        write_payloads(collection, batches, reindex_above=51)
        assert collection.optimized == 0
        write_payloads(collection, batches, reindex_above=50)
        assert collection.optimized == 1
        assert [h.id for h in collection.search(vectors[7], k=1)] == [7]
        assert collection.retrieve([7])[0].payload["cluster"] == 1
