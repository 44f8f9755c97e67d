"""Two versions compared cluster by cluster, on planted out-of-fold answers."""

from __future__ import annotations

import numpy as np
import pytest

from service.predictions.compare import VersionPredictions, compare_by_cluster


def planted():
    """Cluster 0: 10 points labelled x; cluster 1: 10 labelled y; cluster 2: 3 labelled x; one unlabelled."""
    ids = list(range(24))
    labels = ["x"] * 10 + ["y"] * 10 + ["x"] * 3 + [None]
    clusters = [0] * 10 + [1] * 10 + [2] * 3 + [0]
    return ids, labels, clusters


def answers(version: str, wrong: set[int], ids: list[int], labels: list) -> VersionPredictions:
    other = {"x": "y", "y": "x", None: "x"}
    return VersionPredictions(version, ids, [other[labels[i]] if i in wrong else (labels[i] or "x") for i in ids])


def test_largest_change_first_over_the_same_points():
    ids, labels, clusters = planted()
    a = answers("v1", {0, 1, 2, 3, 4, 20}, ids, labels)  # cluster 0: 5/10 wrong; cluster 2: 1/3
    b = answers("v2", {0, 10, 11, 12, 20, 21, 22}, ids, labels)  # cluster 0: 1/10; cluster 1: 3/10; cluster 2: 3/3
    out = compare_by_cluster(ids, labels, clusters, a, b, names={0: "zero", 1: "one"}, min_size=5)
    assert [c["cluster"] for c in out["clusters"]] == [0, 1]  # cluster 2 has 3 points: under min_size
    first, second = out["clusters"]
    assert first == {"cluster": 0, "name": "zero", "size": 10, "error_rate_a": 0.5, "error_rate_b": 0.1,
                     "change": pytest.approx(0.4)}
    assert (second["error_rate_a"], second["error_rate_b"], second["change"]) == (0.0, 0.3, pytest.approx(-0.3))
    assert out["points"] == 23  # the unlabelled point does not count
    assert out["error_rate_a"] == pytest.approx(6 / 23) and out["error_rate_b"] == pytest.approx(7 / 23)
    small = compare_by_cluster(ids, labels, clusters, a, b, min_size=1)
    assert small["clusters"][0]["cluster"] == 2 and small["clusters"][0]["change"] == pytest.approx(-2 / 3)


def test_only_points_both_versions_predicted_count():
    ids, labels, clusters = planted()
    a = answers("v1", {0}, ids, labels)
    b = answers("v2", set(), ids[5:], labels)  # v2 never predicted points 0-4 (e.g. added later)
    out = compare_by_cluster(ids, labels, clusters, a, b, min_size=1)
    zero = next(c for c in out["clusters"] if c["cluster"] == 0)
    assert zero["size"] == 5 and zero["error_rate_a"] == 0.0  # point 0, v1's one error, is not compared


def test_from_oof_takes_the_most_probable_label_and_unknown_labels_are_errors():
    proba = np.array([[0.2, 0.8], [0.9, 0.1], [0.6, 0.4]])
    version = VersionPredictions.from_oof("v1", [1, 2, 3], proba, ["x", "y"])
    assert version.predicted == ["y", "x", "x"]
    out = compare_by_cluster([1, 2, 3], ["y", "x", "z"], [0, 0, 0], version, version, min_size=1)
    assert out["clusters"][0]["error_rate_a"] == pytest.approx(1 / 3)  # "z" was never learned
    noise = compare_by_cluster([1, 2, 3], ["y", "x", "x"], [None, -1, -1], version, version, min_size=1)
    assert [(c["cluster"], c["name"], c["size"]) for c in noise["clusters"]] == [(-1, "noise (in no cluster)", 3)]


def test_no_common_points_gives_an_empty_comparison():
    out = compare_by_cluster([1], ["x"], [0], VersionPredictions("v1", [], []), VersionPredictions("v2", [1], ["x"]))
    assert out["points"] == 0 and out["clusters"] == [] and out["error_rate_a"] is None
