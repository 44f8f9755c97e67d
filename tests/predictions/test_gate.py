"""The retrain gate: paired bootstrap of the difference, per-class F1, and the promote/refuse verdict with
its reasons, on planted predictions whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from service.predictions.gate import GatePolicy, judge, paired_bootstrap, per_class_f1

LABELS = ["a", "b", "c"]


def planted(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truth, a champion right on 70 % and a challenger right on 85 % of the points (its errors a subset
    of the champion's, so the difference is real, not resampling noise)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    champion, challenger = y.copy(), y.copy()
    wrong = rng.permutation(n)
    champion[wrong[: int(0.30 * n)]] = (y[wrong[: int(0.30 * n)]] + 1) % 3
    challenger[wrong[: int(0.15 * n)]] = (y[wrong[: int(0.15 * n)]] + 1) % 3
    return y, champion, challenger


def test_paired_bootstrap_of_equal_versions_is_zero():
    y, champion, _ = planted()
    out = paired_bootstrap(y, champion, champion, 3, rounds=200)
    assert out["accuracy"]["difference"] == 0 and out["accuracy"]["ci"] == [0.0, 0.0]
    assert out["macro_f1"]["ci"] == [0.0, 0.0]


def test_paired_bootstrap_interval_holds_the_difference_and_excludes_zero():
    y, champion, challenger = planted()
    out = paired_bootstrap(y, champion, challenger, 3, rounds=500)
    acc = out["accuracy"]
    assert acc["champion"] == pytest.approx(0.70, abs=0.01) and acc["challenger"] == pytest.approx(0.85, abs=0.01)
    assert acc["ci"][0] < acc["difference"] < acc["ci"][1]
    assert acc["ci"][0] > 0  # a 15-point gain on 300 points is not noise
    # Paired: far narrower than the width of the two separate 95 % intervals (~±5 points each).
    assert acc["ci"][1] - acc["ci"][0] < 0.10


def test_paired_bootstrap_refuses_unaligned_points():
    with pytest.raises(ValueError):
        paired_bootstrap(np.array([0, 1]), np.array([0]), np.array([0, 1]), 2)


def test_per_class_f1_matches_a_hand_count():
    y = np.array([0, 0, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0])
    f1 = per_class_f1(y, pred, LABELS)
    assert f1["a"] == pytest.approx(0.5) and f1["b"] == pytest.approx(0.8) and f1["c"] == 0.0


def test_a_better_challenger_is_promoted():
    y, champion, challenger = planted()
    verdict = judge(y, champion, challenger, LABELS, policy=GatePolicy(rounds=200))
    assert verdict.promote, verdict.summary()
    assert any("macro-F1" in line for line in verdict.improved)
    assert verdict.comparison["headline"]["macro_f1"]["difference"] > 0.1


def test_a_worse_challenger_is_refused_with_its_reasons_and_classes():
    y, champion, challenger = planted()
    verdict = judge(y, challenger, champion, LABELS, policy=GatePolicy(rounds=200))  # swapped: worse
    assert not verdict.promote
    assert any("macro-F1 is worse" in r for r in verdict.reasons)
    assert any(line.startswith("class ") for line in verdict.worse)  # the classes that lost F1 are named
    assert "refused" in verdict.summary()


def test_within_the_tolerance_is_not_worse():
    y, champion, _ = planted()
    slightly = champion.copy()
    right = np.flatnonzero(champion == y)[:2]  # two more errors in 300: -0.7 points
    slightly[right] = (y[right] + 1) % 3
    assert judge(y, champion, slightly, LABELS, policy=GatePolicy(tolerance=0.01, rounds=100)).promote
    assert not judge(y, champion, slightly, LABELS, policy=GatePolicy(tolerance=0.001, rounds=100)).promote


def test_a_regressed_cluster_refuses_an_otherwise_better_challenger():
    y, champion, challenger = planted()
    clusters = {"a": "v2", "b": "v1", "clusters": [
        {"cluster": 4, "name": "card declined", "size": 40, "error_rate_a": 0.40, "error_rate_b": 0.10,
         "change": 0.30},
        {"cluster": 7, "name": "tiny", "size": 5, "error_rate_a": 1.0, "error_rate_b": 0.0, "change": 1.0},
    ]}
    verdict = judge(y, champion, challenger, LABELS, clusters, GatePolicy(min_cluster_size=20, rounds=100))
    assert not verdict.promote
    assert any("card declined" in line for line in verdict.worse)
    assert not any("tiny" in line for line in verdict.worse)  # below the minimum size: noise, not a verdict
    relaxed = judge(y, champion, challenger, LABELS, clusters,
                    GatePolicy(min_cluster_size=20, max_cluster_regression=0.5, rounds=100))
    assert relaxed.promote


@pytest.mark.parametrize("bad", [{"tolerance": -0.1}, {"max_cluster_regression": 2}, {"min_cluster_size": 0}])
def test_policy_bounds(bad):
    with pytest.raises(ValueError):
        GatePolicy(**bad)
