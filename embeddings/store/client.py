"""The server backend: qdrant-client against a Qdrant server or cluster, or its in-process ':memory:' mode."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from functools import cache
from typing import Any

import numpy as np

from embeddings.errors import Conflict, InvalidInput, NotFound, Unavailable
from embeddings.store.base import (
    OVERSAMPLING,
    QUANTILE,
    Hit,
    PointFilter,
    StoredPoint,
    as_vector,
    search_ef,
)
from embeddings.store.filters import FilterVocabulary, translate
from embeddings.store.ids import check_name
from embeddings.store.layout import ClusterLayout


@cache
def _vocabulary() -> FilterVocabulary:
    from qdrant_client import models as m

    return FilterVocabulary(
        match_value=lambda key, value: m.FieldCondition(key=key, match=m.MatchValue(value=value)),
        match_any=lambda key, values: m.FieldCondition(key=key, match=m.MatchAny(any=values)),
        range=lambda key, lo, hi: m.FieldCondition(key=key, range=m.Range(gte=lo, lte=hi)),
        text=lambda key, words: m.FieldCondition(key=key, match=m.MatchText(text=words)),
        is_empty=lambda key: m.IsEmptyCondition(is_empty=m.PayloadField(key=key)),
        has_id=lambda ids: m.HasIdCondition(has_id=list(ids)),
        filter=lambda must, must_not: m.Filter(must=must, must_not=must_not),
    )


def _client_filter(f: PointFilter | None) -> Any:
    return translate(f, _vocabulary())


class _NullLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class ClientCollection:
    """One Qdrant collection reached through qdrant-client."""

    def __init__(self, name: str, client, qualified: str, dim: int, in_memory: bool):
        self.name = name
        self._client = client
        self._qualified = qualified
        self._dim = dim
        self._in_memory = in_memory
        # qdrant-client's local mode is not thread-safe; a server is, but the lock costs little there.
        self._lock = threading.RLock() if in_memory else _NullLock()

    @property
    def dim(self) -> int:
        return self._dim

    def ensure_indexes(self, indexed: Mapping[str, str]) -> None:
        from qdrant_client import models as m

        if self._in_memory:  # local mode ignores payload indexes
            return
        for key, kind in indexed.items():
            schema = (
                m.TextIndexParams(type=m.TextIndexType.TEXT, tokenizer=m.TokenizerType.WORD, lowercase=True)
                if kind == "text"
                else {"keyword": m.PayloadSchemaType.KEYWORD, "integer": m.PayloadSchemaType.INTEGER,
                      "float": m.PayloadSchemaType.FLOAT}[kind]
            )
            self._client.create_payload_index(self._qualified, key, field_schema=schema, wait=True)

    def upsert(self, ids, vectors, payloads) -> None:
        from qdrant_client import models as m

        vectors = np.asarray(vectors, dtype=np.float32)
        points = [
            m.PointStruct(id=pid, vector=vec.tolist(), payload=payload)
            for pid, vec, payload in zip(ids, vectors, payloads, strict=True)
        ]
        if points:
            with self._lock:
                self._client.upsert(self._qualified, points=points, wait=True)

    def set_payloads(self, updates) -> None:
        from qdrant_client import models as m

        ops = [
            m.SetPayloadOperation(set_payload=m.SetPayload(payload=payload, points=[pid]))
            for pid, payload in updates.items()
        ]
        with self._lock:
            for start in range(0, len(ops), 1000):
                self._client.batch_update_points(self._qualified, ops[start : start + 1000], wait=True)

    def delete_payload_keys(self, ids, keys) -> None:
        if ids and keys:
            with self._lock:
                self._client.delete_payload(self._qualified, keys=list(keys), points=list(ids), wait=True)

    def delete(self, ids) -> None:
        from qdrant_client import models as m

        if ids:
            with self._lock:
                self._client.delete(self._qualified, m.PointIdsList(points=list(ids)), wait=True)

    def retrieve(self, ids, with_vectors=False) -> list[StoredPoint]:
        if not ids:
            return []
        with self._lock:
            records = self._client.retrieve(self._qualified, list(ids), with_payload=True, with_vectors=with_vectors)
        by_id = {r.id: r for r in records}
        out = []
        for pid in ids:
            r = by_id.get(pid)
            if r is not None:
                out.append(StoredPoint(r.id, dict(r.payload or {}), as_vector(r.vector) if with_vectors else None))
        return out

    def scroll_page(self, filter=None, limit=100, offset=None, with_vectors=False, fields=None):
        with self._lock:
            records, next_offset = self._client.scroll(
                self._qualified, scroll_filter=_client_filter(filter), limit=limit, offset=offset,
                with_payload=True if fields is None else list(fields), with_vectors=with_vectors,
            )
        page = [
            StoredPoint(r.id, dict(r.payload or {}), as_vector(r.vector) if with_vectors else None) for r in records
        ]
        return page, next_offset

    def search(self, vector, k=10, filter=None, with_payload=True) -> list[Hit]:
        from qdrant_client import models as m

        with self._lock:
            response = self._client.query_points(
                self._qualified, query=np.asarray(vector, dtype=np.float32).tolist(), limit=k,
                query_filter=_client_filter(filter), with_payload=with_payload,
                search_params=m.SearchParams(
                    hnsw_ef=search_ef(filter, k),
                    quantization=m.QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING),
                ),
            )
        return [Hit(p.id, float(p.score), dict(p.payload or {})) for p in response.points]

    def count(self, filter=None) -> int:
        with self._lock:
            return int(self._client.count(self._qualified, count_filter=_client_filter(filter), exact=True).count)

    def facet(self, key, filter=None, limit=10_000) -> dict[Any, int]:
        with self._lock:
            response = self._client.facet(
                self._qualified, key=key, facet_filter=_client_filter(filter), limit=limit, exact=True
            )
        return {hit.value: int(hit.count) for hit in response.hits}

    def flush(self) -> None:
        """Writes use wait=True; nothing to flush."""

    def optimize(self) -> None:
        """The server builds its HNSW index in the background by itself."""

    def close(self) -> None:
        """The client is shared by the store; nothing per collection."""


class ClientStore:
    """Collections in a Qdrant server or cluster (or qdrant-client's ':memory:' mode, for tests)."""

    def __init__(self, url: str = ":memory:", api_key: str | None = None, prefix: str = "dd_",
                 layout: ClusterLayout | None = None):
        from qdrant_client import QdrantClient

        self.layout = layout or ClusterLayout()
        self.in_memory = url == ":memory:"
        self.backend = "memory" if self.in_memory else "server"
        self.prefix = prefix
        try:
            if self.in_memory:
                self._client = QdrantClient(location=":memory:")
            else:
                self._client = QdrantClient(url=url, api_key=api_key, timeout=30)
                self._client.get_collections()  # fail now, clearly, rather than on first use
        except Exception as exc:
            if self.in_memory:
                raise
            raise Unavailable(
                f"cannot reach the Qdrant server at {url}: {exc}. Is it running (docker compose up)?"
            ) from exc

    def _qualified(self, name: str) -> str:
        return self.prefix + check_name(name)

    def list_collections(self) -> list[str]:
        names = [c.name for c in self._client.get_collections().collections]
        return sorted(n[len(self.prefix):] for n in names if n.startswith(self.prefix))

    def exists(self, name: str) -> bool:
        return bool(self._client.collection_exists(self._qualified(name)))

    def create(self, name: str, dim: int, indexed: Mapping[str, str] | None = None,
               json_fields: Collection[str] = ()) -> ClientCollection:
        # json_fields are stored as they are: a server takes nested values as JSON anyway (Store.create).
        from qdrant_client import models as m

        if self.exists(name):
            raise Conflict(f"collection {name!r} already exists")
        self._client.create_collection(
            self._qualified(name),
            vectors_config=m.VectorParams(size=dim, distance=m.Distance.COSINE),
            quantization_config=m.ScalarQuantization(
                scalar=m.ScalarQuantizationConfig(type=m.ScalarType.INT8, quantile=QUANTILE, always_ram=True)
            ),
            **self.layout.create_kwargs(),
        )
        collection = ClientCollection(name, self._client, self._qualified(name), dim, self.in_memory)
        collection.ensure_indexes(indexed or {})
        return collection

    def get(self, name: str) -> ClientCollection:
        if not self.exists(name):
            raise NotFound(f"dataset {name!r} does not exist")
        info = self._client.get_collection(self._qualified(name))
        vectors = info.config.params.vectors
        params = next(iter(vectors.values())) if isinstance(vectors, dict) else vectors
        assert params is not None, f"{name!r} was made by create(), which always sets its vector size"
        return ClientCollection(name, self._client, self._qualified(name), int(params.size), self.in_memory)

    def drop(self, name: str) -> None:
        if not self.exists(name):
            raise NotFound(f"dataset {name!r} does not exist")
        self._client.delete_collection(self._qualified(name))

    def close(self) -> None:
        self._client.close()


def open_memory(settings: Any) -> ClientStore:
    """An in-memory store that lives as long as the process (store_backend "memory")."""
    return ClientStore(":memory:")


def open_server(settings: Any) -> ClientStore:
    """A Qdrant server at QDRANT_URL, with the settings' cluster layout (store_backend "server")."""
    if not settings.qdrant_url:
        raise InvalidInput("store_backend is 'server' but QDRANT_URL is not set")
    key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    layout = ClusterLayout(settings.qdrant_shards, settings.qdrant_replicas, settings.qdrant_write_consistency)
    return ClientStore(settings.qdrant_url, api_key=key, layout=layout)
