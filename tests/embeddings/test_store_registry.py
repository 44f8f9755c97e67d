"""A store backend is registered by one line: a name in BACKENDS naming the module function that opens it; the
settings accept the name, open_store calls that function, and an unknown name is refused naming the choices."""

from __future__ import annotations

from typing import Any

import pytest

from embeddings.store import BACKENDS, open_store
from embeddings.store.client import ClientStore
from service.settings import Settings

OPENED: list[Any] = []


def open_throwaway(settings: Any) -> ClientStore:
    """A backend of this test's own: the in-memory store, remembering who asked for it."""
    OPENED.append(settings)
    return ClientStore(":memory:")


def test_a_backend_registered_by_one_line_is_opened_from_the_settings(monkeypatch, tmp_path):
    monkeypatch.setitem(BACKENDS, "throwaway", f"{__name__}:open_throwaway")
    settings = Settings(home=tmp_path, store_backend="throwaway")
    store = open_store(settings)
    assert isinstance(store, ClientStore) and OPENED == [settings]
    store.create("x", 4)
    assert store.exists("x") and store.list_collections() == ["x"]
    store.close()


def test_an_unknown_backend_is_refused_naming_the_choices(tmp_path):
    with pytest.raises(ValueError, match="store_backend 'nope' is not one of auto, edge, memory, server"):
        Settings(home=tmp_path, store_backend="nope")
