"""The API fixtures' event-loop backend (asyncio) for the run tests that go through the app."""

from __future__ import annotations

from tests.api.conftest import anyio_backend  # noqa: F401 - a fixture, used by name
