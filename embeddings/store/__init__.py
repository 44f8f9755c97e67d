"""Where vectors live: one store interface over Qdrant, embedded (qdrant-edge) or a server (qdrant-client).

    base.py      the interface (Store, Collection, PointFilter, StoredPoint, Hit) and the read helpers
    ids.py       point ids from record ids; the collection-name rule
    filters.py   the one PointFilter -> Qdrant filter translation; backends name their classes
    edge.py      qdrant-edge shards in a folder (the default, embedded)
    client.py    qdrant-client: a server or cluster, or ':memory:' (tests)
    layout.py    how a new collection spreads over a cluster
    metadata.py  the project's own records (catalog, audit log, runs) in a collection
    registry.py  backend name -> how to open it from the settings

A new backend is one module here (with its open function) plus one line in `registry.BACKENDS`.
"""

from __future__ import annotations

from embeddings.store.base import (
    FILTERED_SEARCH_EF,
    OVERSAMPLING,
    QUANTILE,
    SEARCH_EF,
    Collection,
    Hit,
    PointFilter,
    Store,
    StoredPoint,
    iter_points,
    load_all,
    load_vectors,
)
from embeddings.store.client import ClientCollection, ClientStore
from embeddings.store.edge import EDGE_SEARCH_THREADS, EdgeCollection, EdgeStore
from embeddings.store.ids import NAME_PATTERN, PointId, check_name, point_id
from embeddings.store.layout import ClusterLayout
from embeddings.store.metadata import MetadataStore
from embeddings.store.registry import BACKENDS, open_store

__all__ = [
    "BACKENDS", "EDGE_SEARCH_THREADS", "FILTERED_SEARCH_EF", "NAME_PATTERN", "OVERSAMPLING", "QUANTILE", "SEARCH_EF",
    "ClientCollection", "ClientStore", "ClusterLayout", "Collection", "EdgeCollection", "EdgeStore", "Hit",
    "MetadataStore", "PointFilter", "PointId", "Store", "StoredPoint", "check_name", "iter_points", "load_all",
    "load_vectors", "open_store", "point_id",
]
