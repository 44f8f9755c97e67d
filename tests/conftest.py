"""Shared fixtures: real parts, small: an embedded Qdrant store in a temp dir and the fake embedder."""

from __future__ import annotations

from pathlib import Path

import pytest

from embeddings.embedder import FakeEmbedder
from service.settings import Settings
from service.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
HUMANLOOP = SHARED_DATA / "humanloop" / "chatbot_intent_classifier_data.json"
BANKING77 = SHARED_DATA / "banking77"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings pointing a whole run at a temp dir, with the fake embedder."""
    return Settings(home=tmp_path / "home", fake_embeddings=True, store_backend="edge")


@pytest.fixture
def workspace(settings: Settings):
    ws = Workspace(settings, embedder=FakeEmbedder())
    yield ws
    ws.close()


requires_shared = pytest.mark.skipif(not HUMANLOOP.exists(), reason="../shared/data is not beside the repo")
