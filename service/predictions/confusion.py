"""A model version's confusion matrix for people: a terminal table and an SVG image (no plotting library)."""

from __future__ import annotations

import os
import uuid
from html import escape
from pathlib import Path
from typing import Any

CELL = 34  # pixels per cell of the image
FONT = "font-family='sans-serif' font-size='11'"


def format_matrix(split: str, confusion: dict[str, Any]) -> str:
    """The matrix as text: a row per true label, columns numbered like the rows (labels are too long for headers)."""
    labels, matrix = confusion["labels"], confusion["matrix"]
    width = max(len(label) for label in labels)
    cell = max(4, len(str(max((max(row) for row in matrix), default=0))) + 1)
    lines = [f"{split} confusion matrix (rows: true label; columns: predicted, numbered as the rows)",
             " " * (width + 6) + "".join(f"{j + 1:>{cell}}" for j in range(len(labels)))]
    for i, (label, row) in enumerate(zip(labels, matrix, strict=True)):
        lines.append(f"  {i + 1:>2}. {label:<{width}}" + "".join(f"{count:>{cell}}" for count in row))
    return "\n".join(lines)


def matrix_svg(title: str, confusion: dict[str, Any]) -> str:
    """An SVG heat map: cell colour = share of the true label's row, the count written in each cell."""
    labels, matrix = confusion["labels"], confusion["matrix"]
    n = len(labels)
    margin = 8 + 7 * max(len(label) for label in labels)  # room for the longest label at 11 px
    top = margin + 30
    size_w, size_h = margin + n * CELL + 20, top + n * CELL + 40
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{size_w}' height='{size_h}' "
             f"viewBox='0 0 {size_w} {size_h}'>",
             "<rect width='100%' height='100%' fill='white'/>",
             f"<text x='{margin}' y='18' font-family='sans-serif' font-size='14'>{escape(title)}</text>",
             f"<text x='{margin}' y='{size_h - 12}' {FONT}>rows: true label; columns: predicted label</text>"]
    for j, label in enumerate(labels):
        x, y = margin + j * CELL + CELL // 2, top - 6
        parts.append(f"<text x='{x}' y='{y}' {FONT} transform='rotate(-60 {x} {y})'>{escape(label)}</text>")
    for i, (label, row) in enumerate(zip(labels, matrix, strict=True)):
        y = top + i * CELL
        parts.append(f"<text x='{margin - 6}' y='{y + CELL // 2 + 4}' {FONT} text-anchor='end'>{escape(label)}</text>")
        total = sum(row) or 1
        for j, count in enumerate(row):
            share = count / total
            # Blue for the diagonal (right), red off it (wrong); white for none.
            rgb = (255 - int(200 * share), 255 - int(120 * share), 255) if i == j else (
                255, 255 - int(200 * share), 255 - int(200 * share))
            x = margin + j * CELL
            parts.append(f"<rect x='{x}' y='{y}' width='{CELL}' height='{CELL}' fill='rgb{rgb}' stroke='#ddd'/>")
            if count:
                parts.append(f"<text x='{x + CELL // 2}' y='{y + CELL // 2 + 4}' {FONT} "
                             f"text-anchor='middle'>{count}</text>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_svg(path: Path, title: str, confusion: dict[str, Any]) -> Path:
    """Write the image atomically: a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(matrix_svg(title, confusion), encoding="utf-8")
    os.replace(tmp, path)
    return path
