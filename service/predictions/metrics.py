"""Evaluation of a probability matrix against true labels: the figures every model version carries."""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np

ECE_BINS = 15
BOOTSTRAP_ROUNDS = 1000


def entropy(proba: np.ndarray) -> np.ndarray:
    """Entropy in nats of each row of a probability matrix."""
    p = np.clip(proba, 1e-12, 1.0)
    return -(proba * np.log(p)).sum(axis=1)


def label_scores(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> tuple[np.ndarray, ...]:
    """Per-label precision, recall, F1 and support (scikit-learn's), and how often each label was predicted:
    the one computation behind every per-class table (model versions and the per-class analysis)."""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(n_labels)), zero_division=0)
    predicted = np.bincount(np.asarray(y_pred, dtype=np.int64), minlength=n_labels)
    return precision, recall, f1, support, predicted


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> float:
    """Mean F1 over the labels present in truth or prediction (scikit-learn's macro F1). Computed from one
    bincount, not through scikit-learn: the bootstrap and the model search call it a thousand times, where
    scikit-learn's checks cost milliseconds a call (tests/predictions checks the two agree)."""
    confusion = np.bincount(y_true * n_labels + y_pred, minlength=n_labels * n_labels).reshape(n_labels, n_labels)
    tp = np.diag(confusion).astype(np.float64)
    predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
    present = (support > 0) | (predicted > 0)
    f1 = 2 * tp[present] / (predicted[present] + support[present])
    return float(f1.mean()) if present.any() else 0.0


def expected_calibration_error(proba: np.ndarray, y_true: np.ndarray, bins: int = ECE_BINS) -> tuple[float, list]:
    """ECE of the top-label confidence, and the reliability diagram (per bin: confidence, accuracy, count)."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    diagram = []
    for b in range(bins):
        in_bin = which == b
        count = int(in_bin.sum())
        if not count:
            continue
        conf, acc = float(confidence[in_bin].mean()), float(correct[in_bin].mean())
        ece += count / len(y_true) * abs(acc - conf)
        diagram.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "confidence": conf, "accuracy": acc,
                        "count": count})
    return float(ece), diagram


class BootstrapCI(TypedDict):
    """Percentile intervals ([low, high]) of accuracy and macro-F1, and macro-F1's spread over the rounds."""

    accuracy_ci: list[float]
    macro_f1_ci: list[float]
    macro_f1_std: float


def bootstrap_ci(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int, rounds: int = BOOTSTRAP_ROUNDS,
                 seed: int = 0, level: float = 0.95) -> BootstrapCI:
    """Percentile bootstrap intervals of accuracy and macro-F1 over resampled points."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    accs, f1s = np.empty(rounds), np.empty(rounds)
    for r in range(rounds):
        idx = rng.integers(0, n, n)
        accs[r] = (y_true[idx] == y_pred[idx]).mean()
        f1s[r] = macro_f1(y_true[idx], y_pred[idx], n_labels)
    tail = (1 - level) / 2 * 100
    return {
        "accuracy_ci": [float(np.percentile(accs, tail)), float(np.percentile(accs, 100 - tail))],
        "macro_f1_ci": [float(np.percentile(f1s, tail)), float(np.percentile(f1s, 100 - tail))],
        "macro_f1_std": float(f1s.std()),
    }


def evaluate(proba: np.ndarray, y_true: np.ndarray, labels: list[str], bootstrap: bool = True) -> dict[str, Any]:
    """Accuracy, micro/macro/weighted P/R/F1, per-label report, confusion matrix, log loss, ECE, bootstrap CIs."""
    n_labels = len(labels)
    y_pred = proba.argmax(axis=1)
    precision, recall, f1, support, predicted = label_scores(y_true, y_pred, n_labels)
    present = (support > 0) | (predicted > 0)
    accuracy = float((y_true == y_pred).mean())
    weights = support / max(support.sum(), 1)
    confusion = np.bincount(y_true * n_labels + y_pred, minlength=n_labels * n_labels).reshape(n_labels, n_labels)
    ece, diagram = expected_calibration_error(proba, y_true)
    p_true = np.clip(proba[np.arange(len(y_true)), y_true], 1e-12, 1.0)
    out: dict[str, Any] = {
        "n": int(len(y_true)),
        "accuracy": accuracy,
        # Single-label classification: micro P = micro R = micro F1 = accuracy.
        "micro_precision": accuracy,
        "micro_recall": accuracy,
        "micro_f1": accuracy,
        "macro_precision": float(precision[present].mean()),
        "macro_recall": float(recall[present].mean()),
        "macro_f1": float(f1[present].mean()),
        "weighted_f1": float((f1 * weights).sum()),
        "log_loss": float(-np.log(p_true).mean()),
        "ece": ece,
        "reliability": diagram,
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                    "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "confusion": {"labels": list(labels), "matrix": confusion.tolist()},
    }
    if bootstrap:
        out.update(bootstrap_ci(y_true, y_pred, n_labels))
    return out


def format_report(name: str, m: dict[str, Any]) -> str:
    """A few lines for the terminal: headline figures with intervals, then the per-label table."""
    ci = m.get("macro_f1_ci")
    ci_text = f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else ""
    acc_ci = m.get("accuracy_ci")
    acc_text = f" (95% CI {acc_ci[0]:.3f}-{acc_ci[1]:.3f})" if acc_ci else ""
    lines = [
        f"{name} (n={m['n']}): accuracy {m['accuracy']:.3f}{acc_text}, macro-F1 {m['macro_f1']:.3f}{ci_text}",
        f"  micro P {m['micro_precision']:.3f} R {m['micro_recall']:.3f} F1 {m['micro_f1']:.3f}; "
        f"macro P {m['macro_precision']:.3f} R {m['macro_recall']:.3f} F1 {m['macro_f1']:.3f}",
        f"  weighted F1 {m['weighted_f1']:.3f}; log loss {m['log_loss']:.3f}; ECE {m['ece']:.3f}",
    ]
    width = max(len(label) for label in m["per_class"])
    lines.append(f"  {'label':<{width}}  prec   rec    f1     n")
    for label, row in m["per_class"].items():
        lines.append(f"  {label:<{width}}  {row['precision']:.3f}  {row['recall']:.3f}  {row['f1']:.3f}  "
                     f"{row['support']:>4}")
    return "\n".join(lines)


def format_confusion(name: str, confusion: dict[str, Any]) -> str:
    """The confusion matrix as text: a row per true label, columns numbered like the rows (labels are too long
    for column headers)."""
    labels, matrix = confusion["labels"], confusion["matrix"]
    width = max(len(label) for label in labels)
    cell = max(4, len(str(max((max(row) for row in matrix), default=0))) + 1)
    lines = [f"{name} confusion matrix (rows: true label; columns: predicted, numbered as the rows)",
             " " * (width + 6) + "".join(f"{j + 1:>{cell}}" for j in range(len(labels)))]
    for i, (label, row) in enumerate(zip(labels, matrix, strict=True)):
        lines.append(f"  {i + 1:>2}. {label:<{width}}" + "".join(f"{count:>{cell}}" for count in row))
    return "\n".join(lines)
