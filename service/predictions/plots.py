"""A version's figures as PNG files: the confusion matrix and the reliability diagram (for MLflow and for
people who want a file). matplotlib is imported here only, on the Agg backend: no display is needed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def _png(path: Path, size: tuple[float, float]) -> Iterator[Any]:
    """Axes to draw on; on leaving, the figure is laid out, written to `path` and freed (also on error)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=size)
    try:
        yield ax
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


def confusion_png(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str) -> Path:
    """Rows are the true labels, columns the predicted ones; each cell shows its count."""
    n = len(labels)
    size = max(4.0, 0.45 * n + 2)
    with _png(path, (size, size)) as ax:
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        if n <= 30:  # beyond that the numbers overlap; the colours still read
            peak = max((max(row) for row in matrix), default=0) or 1
            for i, row in enumerate(matrix):
                for j, count in enumerate(row):
                    if count:
                        ax.text(j, i, str(count), ha="center", va="center", fontsize=6,
                                color="white" if count > peak / 2 else "black")
    return path


def reliability_png(diagram: Sequence[dict[str, Any]], path: Path, title: str) -> Path:
    """Accuracy against confidence per bin, with the diagonal of perfect calibration."""
    with _png(path, (4.5, 4.5)) as ax:
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
        if diagram:
            ax.plot([b["confidence"] for b in diagram], [b["accuracy"] for b in diagram], marker="o")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.set_title(title)
    return path
