"""Adding an analysis is one file: a throw-away analysis declared and registered here alone reaches the
payloads, the store's indexes, the report and its summary, a partial run's merge, `analyze --list`, and the
API (the real app); a part it produces without declaring it is refused, not dropped."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
from pydantic import Field

from embeddings.embedder import FakeEmbedder
from embeddings.store import PointFilter, load_all
from service.analyses.base import REGISTRY, Analysis, AnalysisResult, Part, PayloadField, register, unregister
from service.analyses.context import AnalysisContext
from service.analyses.knn_consistency import KnnVote
from service.analyses.registry import analysis_fields, flag_values, indexed_fields, run_analyses
from service.analyses.report import load_report
from service.analyses.runner import analyze
from service.api.snapshots import columns
from service.cli import main
from service.errors import InvalidInput
from tests.analyses.conftest import DATASET, planted_context
from tests.api.conftest import running

CRYPTO = {"bitcoin", "crypto", "wallet", "ethereum", "blockchain", "token", "coin", "mining"}


@dataclass(frozen=True)
class CryptoWords:
    """How many crypto words each text holds."""

    count: np.ndarray


class CryptoTalk(Analysis):
    """Texts that talk about crypto currencies: the first such word, and a flag."""

    name = "crypto_talk"
    needs = ("knn_consistency",)
    description = "Texts with crypto words (a throw-away analysis of the contract test)."
    payload_fields = (PayloadField("crypto_word", "keyword", index="keyword", column=True),)
    sets_flags = ("crypto",)
    report_parts = (Part("crypto_talk", {}),)
    summary_parts = (Part("crypto_points", 0),)
    output = CryptoWords

    min_words: int = Field(1, ge=1, description="crypto words that make a text crypto talk")

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        """The first crypto word of each text; flag texts with at least min_words of them."""
        ctx.output("knn_consistency", KnnVote)  # reads a typed output of the analysis it needs
        words = [[w for w in text.split() if w in CRYPTO] for text in ctx.texts]
        count = np.array([len(w) for w in words])
        flag = count >= self.min_words
        first = np.array([w[0] if w else None for w in words], dtype=object)
        return AnalysisResult(
            fields={"crypto_word": first}, flags={"crypto": flag}, output=CryptoWords(count),
            report={"crypto_talk": {"points": int(flag.sum()), "words": dict(Counter(w for ws in words for w in ws))}},
            summary_parts={"crypto_points": int(flag.sum())}, score=1.0 - float(flag.mean()))


class Sloppy(Analysis):
    """Produces a report part it does not declare."""

    name = "sloppy"
    report_parts = (Part("sloppy", {}),)

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        """A declared part and an undeclared one."""
        return AnalysisResult(report={"sloppy": {}, "forgotten": {"n": 1}})


@pytest.fixture
def crypto_talk(analysed):
    """The analysed planted home, then the throw-away analysis registered (and removed after the test)."""
    register(CryptoTalk)
    yield analysed
    unregister(CryptoTalk.name)


def _expected(planted) -> dict:
    return {r["id"]: next((w for w in r["text"].split() if w in CRYPTO), None) for r in planted.records}


def test_a_new_analysis_reaches_payloads_indexes_report_and_api(crypto_talk):
    home, planted = crypto_talk, crypto_talk.planted
    expected = _expected(planted)
    flagged = {rid for rid, word in expected.items() if word}
    assert "crypto_word" in analysis_fields() and "crypto" in flag_values()
    assert indexed_fields()["crypto_word"] == "keyword" and "crypto_word" in columns()[0]
    with home.workspace() as ws:
        report = analyze(ws, DATASET)  # a full run: every registered analysis, this one included
        _, payloads, _ = load_all(ws.collection(DATASET))
        # A dataset created now gets the declared index: faceting on the new field needs it.
        fresh = ws.catalog.create("fresh", 4, "fake", "jsonl")
        fresh.upsert([1, 2], np.eye(2, 4, dtype=np.float32), [{"crypto_word": "coin"}, {"crypto_word": None}])
        assert fresh.facet("crypto_word") == {"coin": 1}
        assert ws.collection(DATASET).count(PointFilter(match={"flags": "crypto"})) == len(flagged)
    by_record = {p["record_id"]: p for p in payloads}
    assert {rid: p.get("crypto_word") for rid, p in by_record.items()} == expected
    assert {rid for rid, p in by_record.items() if "crypto" in p["flags"]} == flagged
    assert report["analyses"][-1] == "crypto_talk" and report["crypto_talk"]["points"] == len(flagged)
    assert list(report)[-3:] == ["crypto_talk", "summary", "stages"]  # after the built-in parts
    assert report["summary"]["crypto_points"] == len(flagged) == report["summary"]["flags"]["crypto"]
    assert report["summary"]["scores"]["crypto_talk"] == pytest.approx(1 - len(flagged) / len(planted.records))
    assert flagged and set(planted.new_intent) <= flagged

    async def ask():
        async with running(home.settings, embedder=FakeEmbedder(128)) as (_, client):
            got = await client.get(f"/api/datasets/{DATASET}/report")
            some = min(flagged)
            points = (await client.get(f"/api/datasets/{DATASET}/points", params={"limit": 1000})).json()
            pid = next(p["id"] for p in points["data"] if p["record_id"] == some)
            detail = await client.get(f"/api/datasets/{DATASET}/points/{pid}")
            return got.json(), points, detail.json(), some

    api_report, points, detail, some = asyncio.run(ask())
    assert api_report["crypto_talk"] == report["crypto_talk"]
    assert api_report["summary"]["crypto_points"] == len(flagged)
    listed = {p["record_id"]: p for p in points["data"]}
    assert {rid for rid, p in listed.items() if "crypto" in p["flags"]} == flagged
    assert listed[some]["crypto_word"] == expected[some]
    assert detail["crypto_word"] == expected[some] and "crypto" in detail["flags"]


def test_a_partial_run_of_the_new_analysis_replaces_only_its_own_results(crypto_talk):
    home = crypto_talk
    with home.workspace() as ws:
        full = analyze(ws, DATASET)
        analyze(ws, DATASET, analyses=["crypto_talk"], params={"crypto_talk": {"min_words": 5}})
        _, payloads, _ = load_all(ws.collection(DATASET))
    merged = load_report(home.settings, DATASET)
    twice = {p["record_id"] for p in payloads if "crypto" in p["flags"]}
    assert merged["crypto_talk"]["points"] == len(twice) == merged["summary"]["crypto_points"]
    assert not twice and full["crypto_talk"]["points"] == 30  # each planted crypto text holds 4 such words
    assert merged["clusters"] == full["clusters"] and merged["summary"]["flags"]["label_issue"] == \
        full["summary"]["flags"]["label_issue"]
    assert sum("label_issue" in p["flags"] for p in payloads) == full["summary"]["flags"]["label_issue"]
    assert merged["partial"]["analyses"] == ["knn_consistency", "crypto_talk"]


def test_analyze_list_shows_the_declaration(crypto_talk, capsys, monkeypatch):
    monkeypatch.setenv("DATA_DEBUGGER_HOME", str(crypto_talk.settings.home))
    assert main(["analyze", "--list"]) == 0
    text = capsys.readouterr().out
    block = text[text.index("crypto_talk:"):]
    assert "needs knn_consistency" in block and "crypto_word (keyword, index keyword, column)" in block
    assert "flags: crypto" in block and "report parts: crypto_talk; summary parts: crypto_points" in block
    assert "output: CryptoWords(count)" in block and "min_words=1" in block
    assert main(["analyze", "--list", "--json"]) == 0
    declared = json.loads(capsys.readouterr().out)["crypto_talk"]
    assert declared["payload_fields"] == [{"name": "crypto_word", "kind": "keyword", "index": "keyword",
                                           "column": True}]
    assert declared["parameters"]["properties"]["min_words"]["default"] == 1


def test_an_undeclared_report_part_is_an_error_not_dropped(planted):
    register(Sloppy)
    try:
        with pytest.raises(InvalidInput, match=r"'sloppy' produced \['forgotten'\], which its `report_parts` do not"):
            run_analyses(planted_context(planted), ["sloppy"])
    finally:
        unregister(Sloppy.name)


def test_conflicting_declarations_are_refused_at_registration():
    class Thief(Analysis):
        name = "thief"
        sets_flags = ("outlier",)

    class Clash(Analysis):
        name = "clash"
        payload_fields = (PayloadField("cluster", "float"),)

    class Squatter(Analysis):
        name = "squatter"
        report_parts = (Part("summary"),)

    with pytest.raises(ValueError, match="flags \\['outlier'\\] are already set by 'outliers'"):
        register(Thief)
    with pytest.raises(ValueError, match="field 'cluster' is declared differently by 'clusters'"):
        register(Clash)
    with pytest.raises(ValueError, match="report_parts \\['summary'\\] are written by the runner"):
        register(Squatter)
    assert not {"thief", "clash", "squatter"} & set(REGISTRY)
