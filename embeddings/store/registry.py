"""Backend name -> the function that opens that store from the settings; a new backend is one module defining
that function plus one line in BACKENDS."""

from __future__ import annotations

import importlib
from typing import Any

from embeddings.errors import InvalidInput
from embeddings.store.base import Store

# name -> "module:function(settings) -> Store"; imported only when chosen, so an unused backend's client
# library is never loaded. The settings' `store_backend` accepts these names.
BACKENDS: dict[str, str] = {
    "edge": "embeddings.store.edge:open_edge",
    "memory": "embeddings.store.client:open_memory",
    "server": "embeddings.store.client:open_server",
}


def open_store(settings: Any) -> Store:
    """The store the settings ask for: edge (default), a Qdrant server (QDRANT_URL), or memory."""
    backend = settings.resolved_backend
    if backend not in BACKENDS:
        raise InvalidInput(f"store_backend {backend!r} is not one of {', '.join(BACKENDS)}")
    module, function = BACKENDS[backend].split(":")
    opened: Store = getattr(importlib.import_module(module), function)(settings)
    return opened
