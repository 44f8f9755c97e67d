"""The planted-answer test end to end: ingest, train (model registry), analyze (store, UMAP, HDBSCAN), then
read the payloads and the report back; re-runs replace stale fields; the `analyze` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embeddings.store import PointFilter, load_all, point_id
from service.analyses.registry import flag_values
from service.analyses.report import load_report, report_path
from service.analyses.runner import analyze
from service.errors import NotFound
from service.fields import TRIAGE_VALUES
from tests.analyses.conftest import DATASET

REPORT_KEYS = {
    "run_id", "created_at", "model_version", "n_points", "stages", "clusters", "duplicates", "leakage",
    "per_class", "confusion", "confused_pairs", "advice", "knn", "summary",
}


def payloads_by_record(ws) -> dict:
    _, payloads, _ = load_all(ws.collection(DATASET), with_vectors=False)
    return {p["record_id"]: p for p in payloads}


def test_every_planted_answer_is_found(analysed):
    planted, report = analysed.planted, analysed.report
    with analysed.workspace() as ws:
        points = payloads_by_record(ws)
    for rid in planted.mislabelled:
        p = points[rid]
        assert p["triage"] == "label_error", (rid, p["text"])
        assert p["suggested_label"] == planted.truth[rid]
        assert p["mislabel_score"] > 0.5
        assert any("neighbours" in reason for reason in p["reasons"])
    # The ranking is exact: the mislabelled points are the most suspect ones.
    scored = sorted((p["mislabel_score"], rid) for rid, p in points.items() if p["label"] is not None)
    assert {rid for _, rid in scored[-len(planted.mislabelled):]} == set(planted.mislabelled)
    # The flag is sized by cleanlab's estimate of how many labels are wrong (6 or 7 of these 7, by fold).
    missed = [rid for rid in planted.mislabelled if "label_issue" not in points[rid]["flags"]]
    assert len(missed) <= 1
    clean = [p for rid, p in points.items() if p["label"] is not None and rid not in planted.mislabelled]
    assert np.mean(["label_issue" in p["flags"] for p in clean]) < 0.03
    assert "outlier" in points[planted.outlier]["flags"]
    assert sum("outlier" in p["flags"] for p in points.values()) <= 3
    for test_id, train_id in planted.leaked:
        assert "leak" in points[test_id]["flags"] and "leak" in points[train_id]["flags"]
        assert points[test_id]["duplicate_group"] == points[train_id]["duplicate_group"]
    for rid in planted.conflicting:
        assert "conflicting_duplicate" in points[rid]["flags"]
    # The unlabelled new intent is one cluster, flagged as a candidate.
    new = [c for c in report["clusters"] if c["candidate_new_intent"]]
    assert len(new) == 1
    members = [rid for rid, p in points.items() if p["cluster"] == new[0]["id"]]
    assert len(set(members) & set(planted.new_intent)) >= 0.8 * len(planted.new_intent)
    # Each labelled intent is mostly one cluster of its own.
    for intent in {planted.truth[r] for r in planted.truth if planted.truth[r]}:
        ids = [rid for rid, t in planted.truth.items() if t == intent and points[rid]["label"] == intent]
        clusters = [points[rid]["cluster"] for rid in ids]
        assert np.bincount(np.array(clusters) + 1).max() >= 0.7 * len(ids), intent


def test_payload_fields_follow_the_contract(analysed):
    with analysed.workspace() as ws:
        points = payloads_by_record(ws)
    run_id = analysed.report["run_id"]
    for p in points.values():
        assert p["analysis_run"] == run_id
        assert p["triage"] in TRIAGE_VALUES
        assert set(p["flags"]) <= set(flag_values())
        assert isinstance(p["cluster"], int) and isinstance(p["x"], float) and isinstance(p["y"], float)
        assert isinstance(p["outlier_score"], float)
        if p["label"] is None:
            assert p["triage"] == "unlabelled"
            assert p["suggested_label"] and 0 < p["suggestion_confidence"] <= 1
            assert p["suggestion_agreement"] in ("agree", "conflict", "model_only")
            assert "mislabel_score" not in p and "knn_agreement" not in p
        else:
            assert 0 <= p["mislabel_score"] <= 1 and 0 <= p["label_quality"] <= 1
            assert "suggestion_confidence" not in p
    # Flags are filterable in the store (keyword list), as the API will ask.
    with analysed.workspace() as ws:
        n = ws.collection(DATASET).count(PointFilter(match={"flags": "label_issue"}))
    assert n == analysed.report["summary"]["flags"]["label_issue"]


def test_report_is_complete_and_on_disk(analysed):
    report = load_report(analysed.settings, DATASET)
    assert report == json.loads(report_path(analysed.settings, DATASET).read_text())
    assert REPORT_KEYS <= set(report)
    assert report["model_version"] == "v1" and report["n_points"] == len(analysed.planted.records)
    assert report["knn"]["kind"] == "exact" and report["knn"]["k"] == 15
    assert not report["skipped"]
    for stage in ("load", "model", "knn", "label_issues", "clusters", "write", "total"):
        assert report["stages"][stage] >= 0
    testing = report["per_class"]["testing"]
    assert set(testing["labels"]) == {"bill", "card", "rates", "rewards", "travel"}
    assert report["leakage"]["pairs"] >= 3 and "testing" in report["leakage"]["effect"]
    assert report["duplicates"]["conflicting_groups"] >= 1
    errors = [c["error_rate"] for c in report["clusters"] if c["error_rate"] is not None]
    assert errors == sorted(errors, reverse=True)
    for c in report["clusters"]:
        assert {"id", "name", "size", "purity", "dominant_label", "label_distribution", "error_rate", "issue_rate",
                "unlabelled_share", "mean_entropy", "keywords", "representatives", "candidate_new_intent"} <= set(c)


def test_never_analysed_is_not_found(settings):
    with pytest.raises(NotFound, match="data-debugger analyze --dataset nope"):
        load_report(settings, "nope")


def test_rerun_removes_what_no_longer_holds_and_keeps_review_flags(analysed):
    planted = analysed.planted
    fixed = planted.flipped[0]
    reviewed = planted.flipped[1]
    with analysed.workspace() as ws:
        collection = ws.collection(DATASET)
        # A reviewer fixes one label and marks another point reviewed; a stale field is left behind.
        collection.set_payloads({point_id(fixed): {"label": planted.truth[fixed]}})
        old = collection.retrieve([point_id(reviewed)])[0].payload
        collection.set_payloads({point_id(reviewed): {"flags": [*old["flags"], "reviewed"]}})
        collection.set_payloads({point_id(planted.outlier): {"duplicate_group": 999}})
        ambiguous = planted.unlabelled[0]
        collection.set_payloads({point_id(ambiguous): {"review_status": "ambiguous", "flags": ["ambiguous"]}})
        report = analyze(ws, DATASET)
        points = payloads_by_record(ws)
    assert report["run_id"] != analysed.report["run_id"]
    assert "label_issue" not in points[fixed]["flags"] and points[fixed]["triage"] == "agree"
    assert "reviewed" in points[reviewed]["flags"] and "label_issue" in points[reviewed]["flags"]
    assert "duplicate_group" not in points[planted.outlier]
    assert "ambiguous" in points[ambiguous]["flags"]
    assert load_report(analysed.settings, DATASET)["run_id"] == report["run_id"]


def test_without_a_registered_model_stored_predictions_then_neighbours_serve(analysed):
    import shutil

    shutil.rmtree(analysed.settings.models_dir)
    with analysed.workspace() as ws:
        # An external prediction API left its predictions in the payloads: they stand in for the model.
        report = analyze(ws, DATASET, analyses=["label_issues", "outliers"])
        assert report["model_version"] == "v1" and not report["skipped"]
        assert report["label_issues"]["probabilities"] == "served model"
        collection = ws.collection(DATASET)
        ids, _, _ = load_all(collection, with_vectors=False)
        collection.delete_payload_keys(ids, ["n_best"])
        report = analyze(ws, DATASET, analyses=["knn_consistency", "label_issues", "outliers", "duplicates"])
        points = payloads_by_record(ws)
    assert report["model_version"] is None
    assert "trained model" in report["skipped"]["label_issues"]
    assert all("mislabel_score" not in p for p in points.values())  # removed: no model judged them this run
    assert "outlier" in points[analysed.planted.outlier]["flags"]


def test_analyze_cli(analysed, monkeypatch, capsys):
    from service.cli import main

    monkeypatch.setenv("DATA_DEBUGGER_HOME", str(analysed.settings.home))
    monkeypatch.setenv("DATA_DEBUGGER_FAKE_EMBEDDINGS", "1")
    code = main(["analyze", "--dataset", DATASET, "--only", "label_issues", "duplicates",
                 "--param", "label_issues.flag_by=threshold", "--param", "label_issues.flag_threshold=0.5"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"{DATASET}: analysis" in out and "label_issue" in out
    assert main(["analyze", "--dataset", DATASET, "--param", "clusters.min_cluster_size=1"]) == 2
    assert "min_cluster_size" in capsys.readouterr().err
    assert main(["analyze", "--dataset", "missing"]) == 2


def test_a_partial_run_replaces_its_analyses_results_and_keeps_the_others(analysed):
    with analysed.workspace() as ws:
        before = payloads_by_record(ws)
        full = load_report(analysed.settings, DATASET)
        report = analyze(ws, DATASET, analyses=["duplicates"])
        after = payloads_by_record(ws)
    flipped = analysed.planted.flipped[0]
    for field in ("mislabel_score", "triage", "cluster", "x", "suggested_label"):
        assert after[flipped].get(field) == before[flipped].get(field), field
    assert "label_issue" in after[flipped]["flags"]  # another analysis' flag, kept
    assert report["clusters"] == full["clusters"] and report["label_issues"] == full["label_issues"]
    assert report["partial"] == {"analyses": ["duplicates"], "previous_run": full["run_id"]}
    assert report["summary"]["triage"] == full["summary"]["triage"]
    assert load_report(analysed.settings, DATASET)["run_id"] == report["run_id"]
