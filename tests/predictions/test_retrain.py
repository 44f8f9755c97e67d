"""Retrain on the planted dataset: nothing to do when no label changed, a challenger on fixed labels is
promoted and the points carry its predictions, a challenger on damaged labels is refused with its reasons,
bad label states are refused naming the classes, and the history lists every verdict."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.store import load_all
from service.errors import InvalidInput
from service.predictions.gate import GatePolicy
from service.predictions.retrain import RetrainOptions, champion_of, history, retrain
from tests.predictions.conftest import DATASET, TEST_GRIDS

FAST = dict(grids=TEST_GRIDS, folds=3, analyze=False, policy=GatePolicy(rounds=200, min_cluster_size=5))


def _set_labels(ws, labels: dict[int, str]) -> None:
    """What relabels do to the stored points (the review layer's own tests cover its audit trail)."""
    collection = ws.collection(DATASET)
    ids, payloads, _ = load_all(collection, with_vectors=False)
    by_record = {p["record_id"]: pid for pid, p in zip(ids, payloads, strict=True)}
    collection.set_payloads({by_record[rid]: {"label": label} for rid, label in labels.items()})
    collection.flush()


def test_unchanged_labels_train_nothing_unless_forced(ws, registry):
    before = [v.version for v in registry.versions(DATASET)]
    champion = champion_of(registry, DATASET)
    # The champion was trained on exactly today's labels: nothing to do.
    assert champion is not None and registry.production(DATASET) == champion.version
    # Never predicted: the champion's predictions are written first, then there is nothing left to do.
    first = retrain(ws, DATASET, RetrainOptions(**FAST), registry=registry)
    assert first["status"] == "resumed" and first["predicted"] > 0
    out = retrain(ws, DATASET, RetrainOptions(**FAST), registry=registry)
    assert out["status"] == "unchanged" and champion.version in out["message"]
    assert [v.version for v in registry.versions(DATASET)] == before
    forced = retrain(ws, DATASET, RetrainOptions(force=True, **FAST), registry=registry)
    assert forced["status"] in ("promoted", "refused") and len(registry.versions(DATASET)) == len(before) + 1


def test_fixed_labels_promote_and_repredict_then_damaged_labels_are_refused(ws, registry, planted):
    champion = champion_of(registry, DATASET).version
    _set_labels(ws, {rid: planted.truth[rid] for rid in planted.flipped})
    seen = []
    out = retrain(ws, DATASET, RetrainOptions(trigger="test", **FAST), registry=registry,
                  report=lambda **kw: seen.append(kw["stage"]))
    assert out["status"] == "promoted", out["summary"]
    new = out["challenger"]
    assert registry.production(DATASET) == new and out["champion"] == champion
    assert seen[:3] == ["check labels", "train challenger", "compare with champion"] and "predict" in seen
    ids, payloads, _ = load_all(ws.collection(DATASET), with_vectors=False)
    assert {p.get("model_version") for p in payloads} == {new}  # every point re-predicted by the new champion

    # A promotion cut short while re-predicting (the process died): some points still carry the old version.
    # The next retrain finds the labels unchanged, finishes the re-prediction and trains nothing.
    count = len(registry.versions(DATASET))
    ws.collection(DATASET).set_payloads({pid: {"model_version": champion} for pid in ids[:40]})
    resumed = retrain(ws, DATASET, RetrainOptions(**FAST), registry=registry)
    assert resumed["status"] == "resumed" and len(registry.versions(DATASET)) == count
    _, payloads, _ = load_all(ws.collection(DATASET), with_vectors=False)
    assert {p.get("model_version") for p in payloads} == {new}

    # Damage half of the training labels: the challenger must lose on the clean test points.
    rng = np.random.default_rng(0)
    intents = sorted(set(planted.truth.values()))
    training = [rid for rid, label in planted.labels.items() if label is not None and rid <= 4 * 46 and
                (rid - 1) % 46 < 30]
    damaged = {rid: intents[(intents.index(planted.truth[rid]) + 1) % 4]
               for rid in rng.choice(training, size=len(training) * 3 // 5, replace=False)}
    _set_labels(ws, damaged)
    refused = retrain(ws, DATASET, RetrainOptions(trigger="test", **FAST), registry=registry)
    assert refused["status"] == "refused" and not refused["promoted"]
    assert registry.production(DATASET) == new  # the champion keeps serving
    assert any("worse" in reason for reason in refused["verdict"]["reasons"])
    assert refused["verdict"]["worse"]  # names what got worse

    rows = history(registry, DATASET)
    by_version = {r["version"]: r for r in rows}
    assert by_version[new]["production"] and by_version[new]["retrain"]["promoted"]
    assert by_version[refused["challenger"]]["retrain"]["promoted"] is False
    assert by_version[refused["challenger"]]["retrain"]["reasons"] == refused["verdict"]["reasons"]


def test_dry_run_writes_only_the_candidate(ws, registry, planted):
    champion = champion_of(registry, DATASET).version
    _set_labels(ws, {rid: planted.truth[rid] for rid in planted.flipped})
    _, before, _ = load_all(ws.collection(DATASET), with_vectors=False)
    out = retrain(ws, DATASET, RetrainOptions(dry_run=True, **FAST), registry=registry)
    assert out["status"] == "what-if" and not out["promoted"] and registry.production(DATASET) == champion
    _, after, _ = load_all(ws.collection(DATASET), with_vectors=False)
    assert after == before
    assert history(registry, DATASET)[0]["retrain"]["dry_run"] is True


def test_a_class_left_with_too_few_examples_is_named(ws, registry, planted):
    champion_of(registry, DATASET)
    card = [rid for rid, label in planted.labels.items() if label == "card"]
    _set_labels(ws, {rid: "bill" for rid in card[1:]})  # one "card" example left in training at most
    with pytest.raises(InvalidInput, match="card"):
        retrain(ws, DATASET, RetrainOptions(**FAST), registry=registry)


def test_a_new_label_missing_from_evaluation_is_named(ws, registry, planted):
    champion_of(registry, DATASET)
    training = [rid for rid, label in planted.labels.items() if label == "rates"][:5]
    _set_labels(ws, {rid: "mortgage_rates" for rid in training})
    with pytest.raises(InvalidInput, match="mortgage_rates"):
        retrain(ws, DATASET, RetrainOptions(**FAST), registry=registry)


def test_points_marked_ambiguous_train_nothing(ws, planted):
    from service.predictions.data import from_store

    before = from_store(ws, DATASET)
    doubtful = [rid for rid, label in planted.labels.items() if label is not None][:3]
    collection = ws.collection(DATASET)
    ids, payloads, _ = load_all(collection, with_vectors=False)
    by_record = {p["record_id"]: pid for pid, p in zip(ids, payloads, strict=True)}
    collection.set_payloads({by_record[rid]: {"review_status": "ambiguous"} for rid in doubtful})
    collection.flush()
    after = from_store(ws, DATASET)
    assert len(after.ids) == len(before.ids) - 3
    assert not {by_record[rid] for rid in doubtful} & set(after.ids)
    assert after.vectors.shape[0] == len(after.ids)
