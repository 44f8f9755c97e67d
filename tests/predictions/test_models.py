"""The classifiers: full label columns, and the compiled calibrated SVM equal to scikit-learn's own answer."""

from __future__ import annotations

import numpy as np
import pytest

from service.predictions.models import EmbeddingLogReg, TfidfSVM

WORDS = {0: "card lost blocked pin", 1: "bill invoice due amount", 2: "trip abroad currency travel",
         3: "rate interest savings apr"}


def _texts(labels: list[int], seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS[y].split(), size=3)) + f" {rng.choice(['my', 'the', 'a'])}" for y in labels]


@pytest.mark.parametrize("labels", [
    [0, 1] * 15,  # binary: one decision column
    [0, 1, 2] * 10 + [3],  # label 3 has one example: a calibration fold lacks it
    [0, 1, 2, 3] * 8,
], ids=["binary", "a-fold-lacks-a-label", "four-labels"])
def test_compiled_svm_matches_scikit_learn(labels):
    y = np.array(labels)
    texts = _texts(labels)
    model = TfidfSVM(C=0.5).fit(texts, None, y, n_labels=5)  # 5: one label never seen at all
    queries = _texts([0, 1, 2, 3, 0, 2], seed=1) + ["nothing known here"]
    ours = model.predict_proba(queries, None)
    calibrated = model.model_.steps[-1][1]
    reference = calibrated.predict_proba(model.model_.steps[0][1].transform(queries))
    np.testing.assert_allclose(ours[:, calibrated.classes_], reference, rtol=0, atol=1e-12)
    assert ours.shape == (len(queries), 5) and np.all(ours[:, 4] == 0)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0)


def test_a_large_training_set_fits_one_svm_and_calibrates_it_on_a_held_out_slice(monkeypatch):
    from service.predictions import models

    monkeypatch.setattr(models, "HELD_OUT_CALIBRATION_ABOVE", 100)
    monkeypatch.setattr(models, "CALIBRATION_POINTS", 39)
    labels = [0, 1, 2] * 50 + [3]  # label 3 has one example: it cannot be spared for calibration
    y = np.array(labels)
    model = TfidfSVM(C=0.5).fit(_texts(labels), None, y, n_labels=4)
    calibrated = model.model_.steps[-1][1]
    assert len(calibrated.calibrated_classifiers_) == 1  # one SVM, not one per calibration fold
    fit_rows, held = models._held_out_calibration(y)
    assert len(held) == 39 and np.bincount(y[held], minlength=4).tolist() == [13, 13, 13, 0]  # stratified
    assert 150 in fit_rows and not set(fit_rows) & set(held) and len(fit_rows) + len(held) == len(y)
    queries = _texts([0, 1, 2, 3], seed=1)
    ours = model.predict_proba(queries, None)
    reference = calibrated.predict_proba(model.model_.steps[0][1].transform(queries))
    np.testing.assert_allclose(ours[:, calibrated.classes_], reference, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0)
    assert (ours[:3].argmax(axis=1) == [0, 1, 2]).all()


def test_compiled_tfidf_matches_scikit_learn():
    from service.predictions.models import CompiledTfidf

    labels = [0, 1, 2, 3] * 10
    model = TfidfSVM().fit(_texts(labels), None, np.array(labels), n_labels=4)
    union = model.model_.steps[0][1]
    queries = _texts([0, 1, 2, 3] * 3, seed=3) + ["", "zzz qqq", "Card CARD card!! lost-lost", "é card ünïcode"]
    ours = CompiledTfidf(union).transform(queries)
    reference = union.transform(queries)
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours.toarray(), reference.toarray(), rtol=0, atol=1e-12)


def test_pickling_drops_the_compiled_form_and_rebuilds_it():
    import pickle

    y = np.array([0, 1, 2] * 6)
    model = TfidfSVM().fit(_texts(list(y)), None, y, n_labels=3)
    before = model.predict_proba(["card lost"], None)
    restored = pickle.loads(pickle.dumps(model))
    assert "compiled_" not in restored.__dict__
    np.testing.assert_array_equal(restored.predict_proba(["card lost"], None), before)


def test_logreg_fills_labels_it_never_saw_with_zero():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 8))
    y = np.array([0, 2] * 15)
    proba = EmbeddingLogReg().fit([], x, y, n_labels=3).predict_proba([], x[:4])
    assert proba.shape == (4, 3) and np.all(proba[:, 1] == 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_svm_fits_when_every_label_has_a_single_example():
    # A tiny dataset, or a small learning-curve draw: no calibration fold can be held out.
    labels = [0, 1, 2, 3]
    texts = _texts(labels)
    model = TfidfSVM().fit(texts, np.zeros((4, 2), np.float32), np.array(labels), n_labels=4)
    proba = model.predict_proba(texts, np.zeros((4, 2), np.float32))
    assert proba.shape == (4, 4) and np.all(proba.argmax(axis=1) == labels)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


def test_logreg_started_from_a_sample_fit_reaches_the_same_model_in_fewer_iterations():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(4000, 16))
    y = (vectors[:, :5] + rng.normal(scale=0.8, size=(4000, 5))).argmax(axis=1)
    sample = rng.choice(4000, size=600, replace=False)
    on_sample = EmbeddingLogReg(C=3.0).fit([], vectors[sample], y[sample], 5)
    cold = EmbeddingLogReg(C=3.0).fit([], vectors, y, 5)
    warm = EmbeddingLogReg(C=3.0).start_from(on_sample).fit([], vectors, y, 5)
    assert warm.model_.n_iter_.max() < cold.model_.n_iter_.max()
    np.testing.assert_allclose(warm.predict_proba([], vectors), cold.predict_proba([], vectors), atol=2e-3)
    # The starting point is used once and not kept in the saved model.
    assert "start_" not in warm.__dict__ and not warm.model_.warm_start


@pytest.mark.parametrize("classes", [[0, 1], [0, 2, 3, 5, 8, 9, 11], [3, 4, 7, 10, 12]],
                         ids=["binary", "seven-labels-from-zero", "five-labels-sparse-ids"])
def test_class_split_svm_fits_the_model_of_one_linear_svc(classes):
    from scipy import sparse
    from sklearn.svm import LinearSVC

    from service.predictions.class_split_svm import ClassSplitLinearSVC

    rng = np.random.default_rng(0)
    y = rng.choice(classes, size=400)
    # Sparse features with a few columns per class, as TF-IDF gives: separable but not trivially.
    dense = rng.random((400, 60)) * (rng.random((400, 60)) < 0.1)
    for j, c in enumerate(classes):
        dense[y == c, j * 5 : j * 5 + 5] += rng.random(((y == c).sum(), 5))
    X = sparse.csr_matrix(dense)
    ours = ClassSplitLinearSVC(C=0.5, workers=2, min_parallel_nonzeros=0).fit(X, y)
    theirs = LinearSVC(C=0.5, random_state=0).fit(X, y)
    assert list(ours.classes_) == list(theirs.classes_)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-4)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=1e-4)
    queries = sparse.csr_matrix(rng.random((50, 60)) * (rng.random((50, 60)) < 0.3))
    np.testing.assert_allclose(ours.decision_function(queries), theirs.decision_function(queries), atol=1e-4)
    assert list(ours.predict(queries)) == list(theirs.predict(queries))


def test_class_split_svm_fits_the_same_model_every_run():
    # liblinear draws its coordinate order from one random generator global to the library: workers in threads
    # raced on it, and on these real texts two fits differed (by ~2e-5). Each worker process seeds its own.
    import json

    from sklearn.feature_extraction.text import TfidfVectorizer

    from service.predictions.class_split_svm import ClassSplitLinearSVC
    from tests.conftest import HUMANLOOP

    records = [json.loads(row["data"]) for row in json.loads(HUMANLOOP.read_text())]
    records = [r for r in records if r.get("intent")]
    labels = sorted({r["intent"] for r in records})
    y = np.array([labels.index(r["intent"]) for r in records])
    X = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)).fit_transform([r["text"] for r in records])
    first, second = (ClassSplitLinearSVC(C=1.0, workers=2, min_parallel_nonzeros=0).fit(X, y) for _ in range(2))
    assert np.array_equal(first.coef_, second.coef_) and np.array_equal(first.intercept_, second.intercept_)
