"""The search box's query embedder: concurrent queries share model calls, a lone query is not held back."""

from __future__ import annotations

import threading
import time

import numpy as np

from embeddings.cache import CachedEmbedder, EmbeddingCache
from embeddings.embedder import FakeEmbedder
from service.api.query_embedder import QueryEmbedder


class RecordingEmbedder(FakeEmbedder):
    """The fake embedder, slowed down like a model, noting the texts of every call."""

    def __init__(self, seconds: float = 0.05):
        super().__init__()
        self.seconds = seconds
        self.calls: list[list[str]] = []

    def embed(self, texts, show_progress=False):
        self.calls.append(list(texts))
        time.sleep(self.seconds)
        return super().embed(texts)


def make(tmp_path, **kwargs) -> tuple[QueryEmbedder, RecordingEmbedder]:
    base = RecordingEmbedder()
    cached = CachedEmbedder(base, EmbeddingCache(tmp_path / "cache.sqlite"))
    return QueryEmbedder(lambda: cached, **kwargs), base


def test_under_load_queries_arriving_a_moment_apart_share_one_model_call(tmp_path):
    queries, base = make(tmp_path, gather_seconds=0.3, busy_seconds=1.0)
    opening = queries.submit("opening query")
    burst = [queries.submit(f"burst query {n}") for n in range(3)]  # queued while the opening one embeds
    [f.result(timeout=5) for f in (opening, *burst)]
    # Three clients answered together come back a moment apart: one model call, as the last one had three.
    later = [queries.submit("second query")]
    time.sleep(0.05)
    later += [queries.submit("third query"), queries.submit("fourth query")]
    vectors = [f.result(timeout=5) for f in later]
    assert base.calls[-1] == ["second query", "third query", "fourth query"]
    assert len(base.calls[-2]) >= 3  # the burst shared a call (with or without the opening query)
    assert np.allclose(vectors[0], FakeEmbedder().embed(["second query"])[0])
    queries.close()


def test_spread_out_queries_are_not_held_for_company(tmp_path):
    queries, base = make(tmp_path, gather_seconds=0.5, busy_seconds=10.0)
    queries.embed("one query")  # the last batch held one query: nothing to wait for
    lone = queries.submit("the next query")
    threading.Event().wait(0.1)
    other = queries.submit("a later query")
    lone.result(timeout=5), other.result(timeout=5)
    assert base.calls == [["one query"], ["the next query"], ["a later query"]]
    queries.close()


def test_an_idle_embedder_does_not_hold_a_lone_query(tmp_path):
    queries, base = make(tmp_path, gather_seconds=0.5, busy_seconds=0.01)
    queries.embed("an earlier query")
    threading.Event().wait(0.05)  # longer than busy_seconds: the embedder is idle again
    lone = queries.submit("a lone query")
    threading.Event().wait(0.1)  # within the gather window, were the lone query held for it
    other = queries.submit("another query")
    lone.result(timeout=5), other.result(timeout=5)
    assert base.calls == [["an earlier query"], ["a lone query"], ["another query"]]
    queries.close()


class QueryPathEmbedder(FakeEmbedder):
    """An embedder with a separate path for queries whose vectors differ from the bulk path's."""

    def __init__(self):
        super().__init__()
        self.bulk_calls = 0

    def embed(self, texts, show_progress=False):
        self.bulk_calls += 1
        return super().embed(texts)

    def embed_queries(self, texts):
        return -super().embed(texts)


def test_queries_take_the_embedders_query_path_when_it_has_one(tmp_path):
    base = QueryPathEmbedder()
    queries = QueryEmbedder(lambda: CachedEmbedder(base, EmbeddingCache(tmp_path / "cache.sqlite")))
    vector = queries.embed("how do I reset my pin")
    np.testing.assert_allclose(vector, -FakeEmbedder().embed(["how do I reset my pin"])[0])
    assert base.bulk_calls == 0
    queries.close()
