"""Honest evaluation on the planted dataset: test labels corrected by reviewers change the figures in the
direction they should, and unreviewed likely label errors among the evaluation points are listed."""

from __future__ import annotations

from embeddings.store import load_all
from service.predictions.evaluation import honest_evaluation
from tests.predictions.conftest import DATASET


def test_scores_on_ingested_and_reviewed_labels(ws, registry, planted):
    version = registry.latest(DATASET)
    collection = ws.collection(DATASET)
    ids, payloads, _ = load_all(collection, with_vectors=False)
    test_points = [(pid, p) for pid, p in zip(ids, payloads, strict=True) if p.get("split") == "testing"]
    base = honest_evaluation(ws, DATASET, version)["splits"]["testing"]
    assert base["corrected"] == 0 and base["as_ingested"] == base["as_reviewed"]
    assert base["n"] == len(test_points)

    intents = sorted(set(planted.truth.values()))
    # Ingest had stored wrong labels on four test points, which reviewers have since corrected (the relabel
    # keeps the old one in original_label); two more look mislabelled to the analyses, unreviewed.
    fixed, flagged = test_points[:4], test_points[4:6]
    updates = {pid: {"original_label": intents[(intents.index(p["label"]) + 1) % 4], "review_status": "relabelled"}
               for pid, p in fixed}
    updates.update({pid: {"triage": "label_error", "mislabel_score": 0.9 - n / 10, "flags": ["label_issue"]}
                    for n, (pid, _) in enumerate(flagged)})
    collection.set_payloads(updates)
    collection.flush()
    out = honest_evaluation(ws, DATASET, version)["splits"]["testing"]
    assert out["corrected"] == 4 and out["reviewed"] == 4
    # The model predicts the true intents well, so the wrong ingested labels cost it accuracy.
    assert out["as_ingested"]["accuracy"] < out["as_reviewed"]["accuracy"]
    assert out["unreviewed_suspects"] == 2
    assert [s["id"] for s in out["suspects"]] == [pid for pid, _ in flagged]  # highest score first
    assert "not reviewed yet" in out["note"]
