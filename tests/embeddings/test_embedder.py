"""Embedders and the cache: the fake is deterministic, the cache never embeds a text twice, the real model
loads offline from shipped, hash-verified weights."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings import embedder as embedder_module
from embeddings.cache import CachedEmbedder, EmbeddingCache
from embeddings.embedder import FakeEmbedder, SentenceTransformerEmbedder
from service.errors import IntegrityError, InvalidInput


class CountingEmbedder(FakeEmbedder):
    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def embed(self, texts, show_progress=False):
        self.seen.extend(texts)
        return super().embed(texts)


def test_fake_embedder_is_deterministic_and_normalised():
    a = FakeEmbedder().embed(["my card is lost", "my card is lost", "what is the weather"])
    assert a.shape == (3, 32) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a[0], a[1])
    close = FakeEmbedder().embed(["my card is stolen"])[0]
    assert close @ a[0] > close @ a[2]


def test_cache_embeds_each_text_once(tmp_path):
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, EmbeddingCache(tmp_path / "c.sqlite"))
    first = cached.embed(["a b", "c d", "a b"])
    assert inner.seen == ["a b", "c d"]
    again = CachedEmbedder(inner, EmbeddingCache(tmp_path / "c.sqlite")).embed(["c d", "a b", "e f"])
    assert inner.seen == ["a b", "c d", "e f"]
    np.testing.assert_array_equal(again[1], first[0])
    assert cached.cache.count("fake-32") == 3


def test_cache_is_keyed_by_model(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    CachedEmbedder(FakeEmbedder(dim=8), cache).embed(["x"])
    out = CachedEmbedder(FakeEmbedder(dim=16), cache).embed(["x"])
    assert out.shape == (1, 16) and cache.count() == 2


class UnloadableEmbedder(FakeEmbedder):
    """A model that must not be loaded: its dim, like a real model's, would need the weights."""

    @property
    def dim(self) -> int:
        raise AssertionError("the model was loaded for its dimension")


def test_the_dimension_comes_from_the_cache_without_loading_the_model(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    CachedEmbedder(FakeEmbedder(dim=24), cache).embed(["x"])
    assert CachedEmbedder(UnloadableEmbedder(dim=24), cache).dim == 24
    assert CachedEmbedder(FakeEmbedder(dim=40), cache).dim == 40  # nothing cached for this model: asks it


def test_unknown_model_path_is_a_clear_error():
    with pytest.raises(InvalidInput, match="neither 'all-MiniLM-L6-v2' nor an existing local path"):
        SentenceTransformerEmbedder("/no/such/model").embed(["x"])


def test_tampered_weights_are_refused(monkeypatch):
    monkeypatch.setattr(embedder_module, "MINILM_SHA256", "0" * 64)
    with pytest.raises(IntegrityError, match="does not match the pinned all-MiniLM-L6-v2 hash"):
        embedder_module.shipped_minilm_path()


@pytest.mark.slow
def test_real_minilm_loads_offline_and_bf16_matches_fp32():
    texts = ["what is my new credit limit", "my card got stolen", "change the language of the chat"]
    fp32 = SentenceTransformerEmbedder(precision="fp32").embed(texts)
    assert fp32.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(fp32, axis=1), 1.0, atol=1e-4)
    # upstream all-MiniLM-L6-v2 places these two far apart and each text closest to itself
    sims = fp32 @ fp32.T
    assert sims[0, 1] < 0.5 and np.all(np.argmax(sims, axis=1) == np.arange(3))
    if embedder_module.cpu_supports_bf16():
        bf16 = SentenceTransformerEmbedder(precision="bf16").embed(texts)
        np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)
        cosines = np.sum(bf16 * fp32, axis=1)
        # measured over 20k real utterances: mean 0.99995; short texts vary a little more
        assert cosines.min() > 0.998 and cosines.mean() > 0.999


def test_onnx_backend_refuses_bf16():
    with pytest.raises(InvalidInput, match="runs fp32 only"):
        SentenceTransformerEmbedder(precision="bf16", backend="onnx")


@pytest.mark.slow
def test_onnx_backend_gives_torch_vectors_and_exports_once(tmp_path):
    texts = ["what is my new credit limit", "my card got stolen", "hi", "", "wire money abroad " * 100,
             "¿Dónde está mi tarjeta?"] + [f"transfer {i} euros to my savings" for i in range(70)]
    torch_vectors = SentenceTransformerEmbedder(precision="fp32", backend="torch").embed(texts)
    onnx = SentenceTransformerEmbedder(precision="fp32", backend="onnx", onnx_dir=tmp_path)
    vectors = onnx.embed(texts)  # more texts than one ONNX batch, in an order that is not by length
    assert onnx.backend == "onnx" and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.sum(vectors * torch_vectors, axis=1).min() > 0.99999
    [exported] = tmp_path.glob("*.onnx")
    assert exported.name.startswith("all-MiniLM-L6-v2-" + embedder_module.MINILM_SHA256[:16])
    stamp = exported.stat().st_mtime_ns
    again = SentenceTransformerEmbedder(precision="fp32", backend="onnx", onnx_dir=tmp_path)
    np.testing.assert_array_equal(again.embed(texts[:3]), vectors[:3])
    assert exported.stat().st_mtime_ns == stamp  # reused, not exported again
    # The service's setting (every core, idle threads asleep) opens a new session with the same vectors.
    again.share_cores()
    np.testing.assert_allclose(again.embed(texts[:3]), vectors[:3], atol=1e-6)


@pytest.mark.slow
def test_a_broken_onnx_file_is_replaced_and_a_bad_export_falls_back_to_torch(tmp_path, monkeypatch, caplog):
    first = SentenceTransformerEmbedder(precision="fp32", backend="onnx", onnx_dir=tmp_path)
    expected = first.embed(["my card got stolen"])
    [exported] = tmp_path.glob("*.onnx")
    exported.write_bytes(b"not a model")  # a truncated copy, a disk error
    repaired = SentenceTransformerEmbedder(precision="fp32", backend="onnx", onnx_dir=tmp_path)
    np.testing.assert_allclose(repaired.embed(["my card got stolen"]), expected, atol=1e-6)
    assert repaired.backend == "onnx" and exported.stat().st_size > 1_000_000
    # An export whose vectors are not torch's is never used: the file goes, torch embeds.
    from embeddings import onnx_backend

    monkeypatch.setattr(onnx_backend, "MIN_COSINE", 1.5)
    fallback = SentenceTransformerEmbedder(precision="fp32", backend="onnx", onnx_dir=tmp_path)
    np.testing.assert_allclose(fallback.embed(["my card got stolen"]), expected, atol=1e-5)
    assert fallback.backend == "torch" and not list(tmp_path.glob("*.onnx"))
    assert "embedding with torch instead of ONNX Runtime" in caplog.text


@pytest.mark.slow
def test_queries_beside_a_bf16_model_take_onnx_fp32_unless_torch_is_chosen(tmp_path):
    texts = ["what is my new credit limit", "my card got stolen", "hi", "wire money abroad please"]
    fp32 = SentenceTransformerEmbedder(precision="fp32", backend="torch").embed(texts)
    bf16 = SentenceTransformerEmbedder(precision="bf16", onnx_dir=tmp_path)
    queries = bf16.embed_queries(texts)
    # fp32 vectors (ONNX Runtime's, torch's to 1e-5), not the bf16 model's, under the bf16 model's name
    assert np.sum(queries * fp32, axis=1).min() > 0.99999 and bf16.name.endswith("@bf16")
    assert list(tmp_path.glob("*.onnx"))
    assert np.sum(queries * bf16.embed(texts), axis=1).min() > 0.998
    bf16.share_cores()  # the service's thread setting reopens the query session: same vectors
    np.testing.assert_allclose(bf16.embed_queries(texts), queries, atol=1e-6)
    chosen = SentenceTransformerEmbedder(precision="bf16", backend="torch", onnx_dir=tmp_path / "unused")
    np.testing.assert_array_equal(chosen.embed_queries(texts), chosen.embed(texts))
    assert not (tmp_path / "unused").exists()
