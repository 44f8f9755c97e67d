"""GET /api/datasets/{d}/exports/{kind}: the files `data-debugger export KIND` writes, byte for byte, so the CLI
beside a running service (service.delegate) downloads what it would have written itself."""

from __future__ import annotations

import io

import pytest

from service.exports import KINDS, write_export
from tests.api.conftest import DATASET

pytestmark = pytest.mark.anyio

# The queue's default strategy (margin) needs prediction margins, which the planted analysis does not write.
CASES = [(kind, "csv", {} if kind != "queue" else {"strategy": "entropy"}) for kind in KINDS] + [
    ("points", "jsonl", {}),
    ("issues", "jsonl", {"only_flagged": True}),
    ("issues", "csv", {"limit": 2}),
    ("suggestions", "label-studio", {"limit": 3}),
    ("queue", "jsonl", {"strategy": "entropy", "limit": 7}),
    ("queue", "label-studio", {"strategy": "random", "limit": 5, "seed": 3}),
]


@pytest.mark.parametrize(("kind", "fmt", "options"), CASES)
async def test_the_route_answers_what_the_cli_writes(shared, kind, fmt, options):
    app, client = shared
    expected = io.StringIO(newline="")
    rows = write_export(kind, app.state.api.workspace, DATASET, expected, fmt, **options)
    assert rows > 0, "a case that exports nothing would compare two empty files"
    r = await client.get(f"/api/datasets/{DATASET}/exports/{kind}", params={"format": fmt, **options})
    assert r.status_code == 200, r.text
    assert r.text == expected.getvalue()
    assert f'filename="{DATASET}-{kind}.' in r.headers["content-disposition"]


async def test_bad_requests_are_error_answers_not_files(shared):
    _, client = shared
    r = await client.get(f"/api/datasets/{DATASET}/exports/points", params={"format": "label-studio"})
    assert r.status_code == 422 and "use csv or jsonl for points" in r.json()["message"]
    r = await client.get("/api/datasets/nope/exports/points")
    assert r.status_code == 404 and "nope" in r.json()["message"]
    r = await client.get(f"/api/datasets/{DATASET}/exports/everything")
    assert r.status_code == 422
    r = await client.get(f"/api/datasets/{DATASET}/exports/queue", params={"limit": 0})
    assert r.status_code == 422 and r.json()["field"] == "query.limit"
