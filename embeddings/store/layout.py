"""How a new collection spreads over a Qdrant cluster (the server backend's create arguments)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from embeddings.errors import InvalidInput


class CreateArgs(TypedDict, total=False):
    """The create_collection keyword arguments a layout sets (typed, so a misspelt one is caught)."""

    shard_number: int
    replication_factor: int
    write_consistency_factor: int


@dataclass(frozen=True)
class ClusterLayout:
    """How a new collection spreads over a Qdrant cluster: `shards` split the points between nodes (more
    nodes share the searches and the memory), `replicas` copies of each shard keep a dataset readable when a
    node is down, and a write waits for `write_consistency` of them. None leaves the server's default (one
    shard, one copy), which is right for a single server."""

    shards: int | None = None
    replicas: int | None = None
    write_consistency: int | None = None

    def __post_init__(self) -> None:
        for name in ("shards", "replicas", "write_consistency"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InvalidInput(f"qdrant_{name} must be 1 or more, not {value}")
        if self.write_consistency and self.write_consistency > (self.replicas or 1):
            raise InvalidInput(
                f"qdrant_write_consistency ({self.write_consistency}) exceeds qdrant_replicas ({self.replicas or 1}):"
                " a write could never be acknowledged; lower it or add replicas"
            )

    def create_kwargs(self) -> CreateArgs:
        """The create_collection arguments this layout sets (None: left to the server)."""
        out = CreateArgs()
        if self.shards is not None:
            out["shard_number"] = self.shards
        if self.replicas is not None:
            out["replication_factor"] = self.replicas
        if self.write_consistency is not None:
            out["write_consistency_factor"] = self.write_consistency
        return out
