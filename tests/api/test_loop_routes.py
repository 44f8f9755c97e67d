"""The loop's read routes on a dataset with no model yet: nothing to retrain from, said plainly (fast; the
whole loop through the service is tests/api/test_loop.py)."""

from __future__ import annotations

import pytest

from tests.api.conftest import DATASET

pytestmark = pytest.mark.anyio


async def test_loop_without_a_model(shared):
    _, client = shared
    loop = (await client.get(f"/api/datasets/{DATASET}/loop")).json()
    assert loop["champion"] is None and loop["history"] == [] and loop["active_run"] is None
    missing = await client.get(f"/api/datasets/{DATASET}/models/v1/evaluation")
    assert missing.status_code == 404 and "versions: none" in missing.json()["message"]
    bad = await client.get(f"/api/datasets/{DATASET}/models/latest/evaluation")
    assert bad.status_code == 422 and bad.json()["field"] == "path.version"
    unknown = await client.get("/api/datasets/nope/loop")
    assert unknown.status_code == 404
