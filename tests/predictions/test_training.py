"""Training: model selection on validation, honest metrics, curves, out-of-fold probabilities, --from files."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from embeddings.store import PointFilter, load_all
from service.errors import InvalidInput, InvalidRecords
from service.predictions import models, training
from service.predictions.training import train_version
from tests.predictions.conftest import DATASET, TEST_GRIDS, VOCAB


def test_selection_keeps_the_best_candidate_on_validation(shared_registry):
    v1 = shared_registry.get(DATASET, "v1")
    candidates = v1.metrics["selection"]["candidates"]
    assert {c["model"] for c in candidates} == set(models.FAMILIES)
    assert len(candidates) == sum(len(g) for g in TEST_GRIDS.values())
    best = max(candidates, key=lambda c: (c["validation_macro_f1"], -c["validation_log_loss"]))
    assert (v1.params["model"], v1.params["C"]) == (best["model"], best["C"])
    # The validation figures of the kept model are the ones it was selected on.
    assert v1.metrics["validation"]["macro_f1"] == pytest.approx(best["validation_macro_f1"])


def test_metrics_are_complete_and_consistent(shared_registry):
    v = shared_registry.get(DATASET, "v1")
    assert v.labels == sorted(VOCAB)
    assert v.sizes == {"training": 120, "validation": 32, "testing": 32, "labelled": 184}
    for split in ("validation", "test"):
        m = v.metrics[split]
        assert m["n"] == 32
        matrix = np.array(m["confusion"]["matrix"])
        assert matrix.shape == (4, 4) and matrix.sum() == 32
        assert m["accuracy"] == pytest.approx(np.trace(matrix) / 32)
        assert set(m["per_class"]) == set(v.labels)
        assert sum(row["support"] for row in m["per_class"].values()) == 32
        lo, hi = m["macro_f1_ci"]
        assert 0 <= lo <= m["macro_f1"] <= hi <= 1
        assert 0 <= m["ece"] <= 1
    # The planted intents are separable: a working classifier is far above chance (0.25).
    assert v.metrics["test"]["accuracy"] > 0.8


def test_learning_curve_and_iteration_curve(shared_registry):
    v2 = shared_registry.get(DATASET, "v2")
    assert v2.params["model"] == "logreg"
    lc = v2.curves["learning_curve"]
    assert lc["train_sizes"] == sorted(lc["train_sizes"]) and lc["train_sizes"][-1] == 120
    assert len(lc["validation_macro_f1"]) == len(lc["train_sizes"]) == len(training.LEARNING_FRACTIONS)
    it = v2.curves["iterations"]
    assert it["iteration"] == sorted(it["iteration"]) and len(it["iteration"]) >= 3
    # lbfgs minimises the training loss: later iterations never end above the first.
    assert it["training_loss"][-1] < it["training_loss"][0]


def test_each_iteration_curve_point_is_the_fit_stopped_at_that_iteration():
    # The curve comes from one fit (a callback keeps the scheduled iterates); each point must be what a fit
    # stopped there gives, and the curve must end where the full fit converged.
    import warnings

    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(600, 12))
    y = vectors[:, :4].argmax(axis=1)
    splits = ["training"] * 400 + ["validation"] * 200
    d = training.training_data.TrainingData(list(range(600)), [""] * 600, [str(v) for v in y], splits, vectors,
                                            "test-model", "test")
    curve = training.iteration_curve(d, y, 4, C=10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converged = LogisticRegression(C=10.0, max_iter=1000).fit(vectors[:400], y[:400])
    assert curve["iteration"][-1] == int(converged.n_iter_.max()) > 8
    for t in (1, 5, 8):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stopped = LogisticRegression(C=10.0, max_iter=t).fit(vectors[:400], y[:400])
        proba = stopped.predict_proba(vectors[400:])
        loss = float(-np.log(np.clip(proba[np.arange(200), y[400:]], 1e-12, 1)).mean())
        at = curve["iteration"].index(t)
        assert curve["validation_loss"][at] == pytest.approx(loss, rel=1e-9)


@pytest.mark.parametrize("family", ["logreg", "tfidf-svm"])
def test_the_learning_curves_last_point_is_the_selections_fit_not_a_second_one(family):
    # The winner of model selection was fitted on all of the sample's training rows; the curve's whole-sample
    # point reuses it. It must be exactly what fitting that point again gives, on a capped sample too.
    rng = np.random.default_rng(0)
    n = 240
    y = rng.integers(0, 4, n)
    topics = list(VOCAB.values())
    texts = [" ".join([*rng.choice(topics[label], size=2), *rng.choice(sum(topics, []), size=4)]) for label in y]
    vectors = rng.normal(size=(n, 8)) + np.eye(8)[y] * 2
    splits = ["training"] * 180 + ["validation"] * 60
    d = training.training_data.TrainingData(list(range(n)), texts, [str(v) for v in y], splits, vectors,
                                            "test-model", "test")
    sample = training.Sample.whole(d).capped(y, 120, seed=0)
    winner, _ = training.select_model(d, y, 4, [family], {family: [models.GRIDS[family][1]]}, sample=sample)
    reused = training.learning_curve(d, y, 4, winner, repeats=2, sample=sample, fitted_on_all=winner)
    refitted = training.learning_curve(d, y, 4, winner, repeats=2, sample=sample)
    assert reused == refitted
    assert reused["train_sizes"][-1] == len(sample.train) < 180


def test_oof_covers_every_labelled_point_once(ws, shared_registry, planted):
    ids, proba = shared_registry.get(DATASET, "v1").oof()
    labelled, _, _ = load_all(ws.collection(DATASET), PointFilter(empty={"label": False}), with_vectors=False)
    assert sorted(ids) == sorted(labelled) and len(ids) == len(set(ids))
    assert proba.shape == (184, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    # Out-of-fold rows of the flipped points favour their true intent, not the wrong stored label.
    labels = shared_registry.get(DATASET, "v1").labels
    row = {pid: i for i, pid in enumerate(ids)}
    recovered = sum(labels[proba[row[pid]].argmax()] == planted.truth[pid] for pid in planted.flipped)
    assert recovered >= len(planted.flipped) - 1


class _Recorder:
    """A classifier that remembers what it was fitted on, to check no held-out point was seen."""

    kind = "recorder"
    needs_vectors = False
    fitted: list[set[str]] = []
    predicted: list[tuple[int, list[str]]] = []

    def __init__(self, C: float = 1.0):
        self.C = C

    def params(self):
        return {"model": self.kind, "C": self.C}

    def fit(self, texts, vectors, y, n_labels):
        self.n_labels_ = n_labels
        self.seen_ = set(texts)
        _Recorder.fitted.append(self.seen_)
        return self

    def predict_proba(self, texts, vectors):
        _Recorder.predicted.append((len(_Recorder.fitted) - 1, list(texts)))
        return np.full((len(texts), self.n_labels_), 1.0 / self.n_labels_)


def _recorded_out_of_fold(ws, monkeypatch, **options) -> None:
    """Run out_of_fold with the recorder over the planted data and check that no model predicted a point it
    was fitted on and that every labelled point was predicted exactly once."""
    from service.predictions.data import from_store

    monkeypatch.setitem(models.FAMILIES, "recorder", _Recorder)
    monkeypatch.setitem(models.GRIDS, "recorder", [{"C": 1.0}])
    _Recorder.fitted, _Recorder.predicted = [], []
    d = from_store(ws, DATASET)
    labels = d.label_set
    training.out_of_fold(d, d.y(labels), len(labels), _Recorder(), **options)
    predicted_texts = []
    for model_index, texts in _Recorder.predicted:
        assert not set(texts) & _Recorder.fitted[model_index]
        predicted_texts.extend(texts)
    assert sorted(predicted_texts) == sorted(d.texts)


def test_out_of_fold_never_predicts_a_point_its_model_saw(ws, monkeypatch):
    _recorded_out_of_fold(ws, monkeypatch, folds=5)
    assert len(_Recorder.fitted) == 5


def _write(path, rows, fields=("id", "text", "label", "split")):
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_train_from_file_makes_a_new_version_and_old_ones_stay(ws, registry, planted, tmp_path):
    # Corrected labels, no validation split in the file: a stable share of training is held out.
    rows = []
    with planted.csv.open() as fh:
        for row in csv.DictReader(fh):
            if row["label"]:
                rows.append({"id": row["id"], "text": row["text"], "label": planted.truth[int(row["id"])],
                             "split": "training" if row["split"] != "testing" else "testing"})
    corrected = _write(tmp_path / "corrected.csv", rows)
    v3 = train_version(ws, DATASET, from_file=corrected, model="logreg", registry=registry, grids=TEST_GRIDS,
                       learning_repeats=1)
    assert v3.version == "v3" and v3.meta["source"] == str(corrected)
    assert v3.sizes["validation"] > 0 and v3.sizes["training"] + v3.sizes["validation"] == 152
    assert v3.data_hash != registry.get(DATASET, "v1").data_hash
    ids, proba = v3.oof()
    assert sorted(ids) == sorted(int(r["id"]) for r in rows)
    assert [v.version for v in registry.versions(DATASET)] == ["v1", "v2", "v3"]
    # The older versions still load and answer.
    texts = ["card blocked pin", "invoice due amount"]
    assert registry.get(DATASET, "v1").predict_proba(texts, ws.embedder.embed(texts)).shape == (2, 4)


def test_bad_from_file_names_the_record(ws, tmp_path):
    bad = _write(tmp_path / "bad.csv", [
        {"id": 1, "text": "card lost", "label": "card", "split": "training"},
        {"id": 2, "text": "   ", "label": "bill", "split": "training"},
    ])
    with pytest.raises(InvalidRecords, match=r"record 2 .*\"text\" is empty"):
        train_version(ws, DATASET, from_file=bad)
    one_label = _write(tmp_path / "one.csv", [
        {"id": i, "text": f"card lost {i}", "label": "card", "split": "training"} for i in range(10)])
    with pytest.raises(InvalidInput, match="needs 2"):
        train_version(ws, DATASET, from_file=one_label)
    with pytest.raises(InvalidInput, match="no such file"):
        train_version(ws, DATASET, from_file=tmp_path / "missing.csv")
    with pytest.raises(InvalidInput, match="unknown model"):
        train_version(ws, DATASET, model="forest")


def test_label_only_outside_training_is_refused(ws, tmp_path):
    rows = [{"id": i, "text": f"card lost {i}", "label": "card", "split": "training"} for i in range(6)]
    rows += [{"id": 10 + i, "text": f"bill due {i}", "label": "bill", "split": "training"} for i in range(6)]
    rows.append({"id": 99, "text": "trip abroad", "label": "travel", "split": "testing"})
    with pytest.raises(InvalidInput, match=r"\['travel'\] occur only outside the training split"):
        train_version(ws, DATASET, from_file=_write(tmp_path / "x.csv", rows))


def test_a_fit_cap_samples_the_diagnostics_but_the_served_model_learns_from_every_training_point(ws, registry):
    """Above the cap, selection, curves and out-of-fold fits use a stratified sample (that is what keeps
    `train` to minutes at a million points); the version that serves is fitted on all training points."""
    from sklearn.linear_model import LogisticRegression

    from service.predictions.data import from_store

    version = train_version(ws, DATASET, model="logreg", grids=TEST_GRIDS, learning_repeats=1, fit_cap=40,
                            registry=registry)
    sample = version.meta["diagnostics_sample"]
    assert sample["training_of"] == 120 and 36 <= sample["training"] <= 44  # stratified: ~10 per intent
    assert version.meta["request"]["fit_cap"] == 40
    assert version.curves["learning_curve"]["train_sizes"][-1] == sample["training"]
    # The served model is the chosen C fitted on every training point (started from the sample's optimum, so
    # equal to a fit from zero up to lbfgs' tolerance): the same probabilities as such a fit.
    d = from_store(ws, DATASET)
    y = d.y(version.labels)
    train = np.flatnonzero(d.mask("training"))
    direct = LogisticRegression(C=version.params["C"], max_iter=2000).fit(d.vectors[train], y[train])
    served = version.model().model_
    assert served.n_features_in_ == direct.n_features_in_

    def objective(model) -> float:  # what lbfgs minimises, per training point
        p = model.predict_proba(d.vectors[train])[np.arange(len(train)), y[train]]
        return float(-np.log(p).mean() + (model.coef_ ** 2).sum() / (2 * version.params["C"] * len(train)))

    assert objective(served) == pytest.approx(objective(direct), rel=1e-3)
    agree = (served.predict(d.vectors) == direct.predict(d.vectors)).mean()
    assert agree >= 0.99
    # The validation and test figures are the served model's, on every validation and test point.
    assert version.metrics["validation"]["n"] == 32 and version.metrics["test"]["n"] == 32
    ids, proba = version.oof()
    assert len(ids) == 184 and len(set(ids)) == 184


def test_out_of_fold_with_a_fit_cap_fits_on_samples_and_still_predicts_every_point(ws, monkeypatch):
    _recorded_out_of_fold(ws, monkeypatch, folds=4, fit_cap=50)
    assert len(_Recorder.fitted) == 4
    assert all(46 <= len(seen) <= 54 for seen in _Recorder.fitted)  # 138 other-fold points, sampled to ~50
