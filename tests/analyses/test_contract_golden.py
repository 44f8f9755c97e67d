"""The report, the payloads and the API keep the shape they had before the analysis contract was derived from
the analyses' declarations: the same keys in the same order (tests/fixtures/analysis_contract_golden.json,
recorded with the earlier code on the planted dataset). Values are compared elsewhere (test_runner.py); the
byte-for-byte comparison of whole outputs is in the commit that made the change."""

from __future__ import annotations

import asyncio
import json

from embeddings.store import load_all
from service.analyses.registry import analysis_fields
from service.analyses.report import load_report
from service.analyses.runner import analyze
from service.exports import POINT_COLUMNS
from tests.analyses.conftest import DATASET
from tests.api.conftest import running
from tests.conftest import FIXTURES

GOLDEN = json.loads((FIXTURES / "analysis_contract_golden.json").read_text())


def _part_keys(report: dict) -> dict:
    return {k: list(report[k]) if isinstance(report[k], dict) else type(report[k]).__name__
            for k in GOLDEN["part_keys"]}


def test_full_report_and_payloads_keep_their_keys_and_order(analysed):
    report = analysed.report
    assert [k for k in report if k != "stages"] == GOLDEN["report_keys"]
    assert list(report["summary"]) == GOLDEN["summary_keys"]
    assert _part_keys(report) == GOLDEN["part_keys"]
    order = GOLDEN["payload_key_order"]
    assert set(order) == set(analysis_fields())
    with analysed.workspace() as ws:
        _, payloads, _ = load_all(ws.collection(DATASET))
    for p in payloads:  # each point's analysis fields, in the order they were always written
        assert [k for k in p if k in order] == [k for k in order if k in p]
    assert POINT_COLUMNS == GOLDEN["points_export_columns"]


def test_partial_report_keeps_its_keys_and_order(analysed):
    with analysed.workspace() as ws:
        analyze(ws, DATASET, analyses=["outliers", "duplicates"])
    report = load_report(analysed.settings, DATASET)
    assert [k for k in report if k != "stages"] == GOLDEN["partial_report_keys"]
    assert list(report["summary"]) == GOLDEN["partial_summary_keys"]
    assert _part_keys(report) == GOLDEN["part_keys"]


def test_api_report_and_flag_filter_keep_their_shape(analysed):
    async def ask():
        async with running(analysed.settings) as (_, client):
            return await client.get(f"/api/datasets/{DATASET}/report"), (await client.get("/openapi.json")).json()

    answer, openapi = asyncio.run(ask())
    assert answer.status_code == 200
    assert [k for k in answer.json() if k != "stages"] == GOLDEN["report_keys"]
    params = openapi["paths"]["/api/datasets/{dataset}/points"]["get"]["parameters"]
    flag = next(p for p in params if p["name"] == "flag")
    assert flag["schema"]["anyOf"][0]["items"]["enum"] == GOLDEN["flag_filter_enum"]
