"""A Qdrant cluster layout (shards, replicas, write consistency) from the settings to create_collection."""

from __future__ import annotations

import pytest

from embeddings.store import ClientStore, ClusterLayout
from service.errors import InvalidInput
from service.settings import Settings


def test_settings_read_the_layout_from_the_environment(monkeypatch):
    monkeypatch.setenv("DATA_DEBUGGER_QDRANT_SHARDS", "3")
    monkeypatch.setenv("DATA_DEBUGGER_QDRANT_REPLICAS", "2")
    settings = Settings()
    assert (settings.qdrant_shards, settings.qdrant_replicas, settings.qdrant_write_consistency) == (3, 2, None)


def test_the_layout_names_qdrants_arguments_and_leaves_defaults_to_the_server():
    assert ClusterLayout().create_kwargs() == {}
    assert ClusterLayout(shards=3, replicas=2, write_consistency=2).create_kwargs() == {
        "shard_number": 3, "replication_factor": 2, "write_consistency_factor": 2}


@pytest.mark.parametrize(("layout", "field"), [
    (dict(shards=0), "qdrant_shards"),
    (dict(replicas=-1), "qdrant_replicas"),
    (dict(replicas=2, write_consistency=3), "qdrant_write_consistency"),
])
def test_impossible_layouts_are_refused_with_the_setting_to_fix(layout, field):
    with pytest.raises(InvalidInput, match=field):
        ClusterLayout(**layout)


def test_a_new_collection_is_created_with_the_layout():
    store = ClientStore(":memory:", layout=ClusterLayout(shards=4, replicas=2))
    seen: list[dict] = []
    create = store._client.create_collection

    def recording(*args, **kwargs):
        seen.append(kwargs)
        return create(*args, **kwargs)

    # qdrant-client's local mode accepts the layout and ignores it, so look at what the store asked for.
    store._client.create_collection = recording
    store.create("spread", 8)
    assert seen and seen[0]["shard_number"] == 4 and seen[0]["replication_factor"] == 2
    assert store.get("spread").dim == 8
    store.close()

