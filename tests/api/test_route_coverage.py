"""Every route of the service is called by some test of this folder: a new route without a test fails here.

It reads what the other tests' requests reached (conftest.EXERCISED), so it runs last (see pytest_collection_
modifyitems in conftest) and only means something after the whole folder ran: `pytest tests/api`."""

from __future__ import annotations

import pytest

from embeddings.embedder import FakeEmbedder
from service.api.app import api_routes, create_app
from tests.api.conftest import EXERCISED, settings_in

pytestmark = pytest.mark.route_coverage


def test_every_route_is_exercised_by_the_api_tests(tmp_path):
    app = create_app(settings_in(tmp_path), embedder=FakeEmbedder())
    routes = {route.operation_id: f"{sorted(route.methods)} {route.path}" for route in api_routes(app.routes)}
    missing = sorted(f"{op} ({where})" for op, where in routes.items() if op not in EXERCISED)
    assert not missing, f"no test in tests/api calls: {', '.join(missing)}"
