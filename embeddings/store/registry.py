"""Backend name -> how to open that store from the settings; a new backend adds one line to BACKENDS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from embeddings.errors import InvalidInput
from embeddings.store.base import Store


def _edge(settings: Any) -> Store:
    from embeddings.store.edge import EdgeStore

    return EdgeStore(settings.store_dir)


def _memory(settings: Any) -> Store:
    from embeddings.store.client import ClientStore

    return ClientStore(":memory:")


def _server(settings: Any) -> Store:
    from embeddings.store.client import ClientStore
    from embeddings.store.layout import ClusterLayout

    if not settings.qdrant_url:
        raise InvalidInput("store_backend is 'server' but QDRANT_URL is not set")
    key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    layout = ClusterLayout(settings.qdrant_shards, settings.qdrant_replicas, settings.qdrant_write_consistency)
    return ClientStore(settings.qdrant_url, api_key=key, layout=layout)


# The settings' `store_backend` names one of these (its Literal lists the same names).
BACKENDS: dict[str, Callable[[Any], Store]] = {
    "edge": _edge,
    "memory": _memory,
    "server": _server,
}


def open_store(settings: Any) -> Store:
    """The store the settings ask for: edge (default), a Qdrant server (QDRANT_URL), or memory."""
    backend = settings.resolved_backend
    if backend not in BACKENDS:
        raise InvalidInput(f"store_backend {backend!r} is not one of {', '.join(BACKENDS)}")
    return BACKENDS[backend](settings)
