"""The gate between a challenger model version and the champion (the production version).

Both are judged on the same evaluation points against the labels the data holds today, so a fixed test
label counts the same for both. The headline differences (challenger − champion) come with a paired
bootstrap interval: each round resamples the points once and scores both versions on that sample, which
is what makes the interval of a difference much narrower than the two separate intervals suggest.

The verdict: promote when neither accuracy nor macro-F1 is worse by more than `tolerance`, and no cluster
of at least `min_cluster_size` compared points has an error rate higher by more than
`max_cluster_regression` (cluster rates from `compare.compare_by_cluster`, challenger as `a`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from service.predictions.metrics import label_scores, macro_f1

BOOTSTRAP_ROUNDS = 1000


@dataclass(frozen=True)
class GatePolicy:
    """What a challenger must show to be promoted (each a setting and a CLI flag)."""

    tolerance: float = 0.01
    min_cluster_size: int = 20
    max_cluster_regression: float = 0.10
    rounds: int = BOOTSTRAP_ROUNDS
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.tolerance <= 1:
            raise ValueError(f"tolerance must be in [0, 1], got {self.tolerance}")
        if not 0 <= self.max_cluster_regression <= 1:
            raise ValueError(f"max_cluster_regression must be in [0, 1], got {self.max_cluster_regression}")
        if self.min_cluster_size < 1 or self.rounds < 1:
            raise ValueError("min_cluster_size and rounds must be 1 or more")


@dataclass
class Verdict:
    """The gate's decision and the evidence behind it, in words and in figures."""

    promote: bool
    reasons: list[str]
    improved: list[str] = field(default_factory=list)
    worse: list[str] = field(default_factory=list)
    comparison: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines a reviewer reads: promoted or not, why, what got better and worse."""
        head = "promoted" if self.promote else "refused"
        lines = [f"{head}: {'; '.join(self.reasons)}"]
        if self.improved:
            lines.append("better: " + "; ".join(self.improved))
        if self.worse:
            lines.append("worse: " + "; ".join(self.worse))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_bootstrap(y: np.ndarray, champion: np.ndarray, challenger: np.ndarray, n_labels: int,
                     rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Accuracy and macro-F1 of both versions on the same points and the percentile interval of the
    difference (challenger − champion), resampling the points once per round for both."""
    y, champion, challenger = (np.asarray(a, dtype=np.int64) for a in (y, champion, challenger))
    if not (len(y) == len(champion) == len(challenger)) or len(y) == 0:
        raise ValueError("paired_bootstrap needs the same non-empty set of points for both versions")
    rng = np.random.default_rng(seed)
    n = len(y)
    acc_diff, f1_diff = np.empty(rounds), np.empty(rounds)
    for r in range(rounds):
        idx = rng.integers(0, n, n)
        acc_diff[r] = (challenger[idx] == y[idx]).mean() - (champion[idx] == y[idx]).mean()
        f1_diff[r] = macro_f1(y[idx], challenger[idx], n_labels) - macro_f1(y[idx], champion[idx], n_labels)
    tail = (1 - level) / 2 * 100

    def row(a: float, b: float, diffs: np.ndarray) -> dict[str, Any]:
        return {"champion": a, "challenger": b, "difference": b - a,
                "ci": [float(np.percentile(diffs, tail)), float(np.percentile(diffs, 100 - tail))]}

    return {
        "n": n, "level": level, "rounds": rounds,
        "accuracy": row(float((champion == y).mean()), float((challenger == y).mean()), acc_diff),
        "macro_f1": row(macro_f1(y, champion, n_labels), macro_f1(y, challenger, n_labels), f1_diff),
    }


def per_class_f1(y: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    """F1 of each label present in the truth (scikit-learn's definition)."""
    _, _, f1, support, _ = label_scores(y, predicted, len(labels))
    return {labels[i]: float(f1[i]) for i in range(len(labels)) if support[i] > 0}


def judge(y: np.ndarray, champion: np.ndarray, challenger: np.ndarray, labels: Sequence[str],
          clusters: dict[str, Any] | None = None, policy: GatePolicy | None = None,
          names: tuple[str, str] = ("champion", "challenger")) -> Verdict:
    """The verdict on `challenger` against `champion`: both are label indices into `labels` for the same
    evaluation points `y` (today's labels). `clusters` is `compare_by_cluster(..., a=challenger,
    b=champion)`: its `change` is the challenger's error rate minus the champion's."""
    policy = policy or GatePolicy()
    headline = paired_bootstrap(y, champion, challenger, len(labels), policy.rounds, policy.seed)
    f1_a, f1_b = per_class_f1(y, champion, labels), per_class_f1(y, challenger, labels)
    classes: list[dict[str, Any]] = [{"label": label, "champion": f1_a[label], "challenger": f1_b[label],
                "change": f1_b[label] - f1_a[label]} for label in f1_a]
    classes.sort(key=lambda row: row["change"])
    reasons, improved, worse = [], [], []
    failed = False
    for metric, title in (("macro_f1", "macro-F1"), ("accuracy", "accuracy")):
        m = headline[metric]
        text = (f"{title} {m['champion']:.3f} → {m['challenger']:.3f} ({m['difference']:+.3f}, 95% CI "
                f"{m['ci'][0]:+.3f} to {m['ci'][1]:+.3f})")
        if m["difference"] < -policy.tolerance:
            failed = True
            reasons.append(f"{title} is worse by more than the tolerance {policy.tolerance:.3f}")
            worse.append(text)
        elif m["difference"] > 0:
            improved.append(text)
        elif m["difference"] < 0:
            worse.append(text)
    regressed = []
    for row in (clusters or {}).get("clusters", []):
        if row["size"] < policy.min_cluster_size:
            continue
        name = row.get("name") or f"cluster {row['cluster']}"
        text = (f"cluster {row['cluster']} “{name}” ({row['size']} points) error rate "
                f"{row['error_rate_b']:.2f} → {row['error_rate_a']:.2f}")
        if row["change"] > policy.max_cluster_regression:
            regressed.append(text)
        elif row["change"] < -policy.max_cluster_regression:
            improved.append(text)
    if regressed:
        failed = True
        reasons.append(f"{len(regressed)} cluster(s) of {policy.min_cluster_size}+ points regressed by more than "
                       f"{policy.max_cluster_regression:.2f}")
        worse.extend(regressed)
    # The classes that lost most F1, named even when the gate passes: they are where to look next.
    worse.extend(f"class {c['label']} F1 {c['champion']:.2f} → {c['challenger']:.2f}"
                 for c in classes if c["change"] < -0.05)
    improved.extend(f"class {c['label']} F1 {c['champion']:.2f} → {c['challenger']:.2f}"
                    for c in reversed(classes) if c["change"] > 0.05)
    if not failed:
        reasons.append(f"not worse than the {names[0]} beyond {policy.tolerance:.3f} and no cluster regressed "
                       f"beyond {policy.max_cluster_regression:.2f}")
    comparison = {"headline": headline, "per_class": classes, "clusters": clusters or {},
                  "policy": asdict(policy), "champion": names[0], "challenger": names[1]}
    return Verdict(promote=not failed, reasons=reasons, improved=improved, worse=worse, comparison=comparison)
