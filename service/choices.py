"""Choices the CLI, the API and the dashboard all offer, declared once: the labelling-queue strategies and
the formats an analysis export (points, issues, suggestions, clusters, the queue) is written in."""

from __future__ import annotations

from typing import Literal, get_args

# How the labelling queue ranks unlabelled points (service/queue.py implements each).
QueueStrategy = Literal["entropy", "margin", "least_confidence", "random", "knn_disagreement", "hybrid"]
STRATEGIES: tuple[str, ...] = get_args(QueueStrategy)
# margin: the strongest of the six over scripts/simulate_loop.py's labelling rounds on both datasets, and
# every part the hybrid adds to it costs area there (scripts/ablate_queue.py; README, The improvement loop).
DEFAULT_STRATEGY: QueueStrategy = "margin"

# What an analysis export holds (service/exports.py builds the rows of each).
ExportKind = Literal["points", "issues", "suggestions", "clusters", "queue"]
EXPORT_KINDS: tuple[str, ...] = get_args(ExportKind)

# Analysis export formats (service/exports.py writes each): name -> (media type, file extension).
ExportFormat = Literal["csv", "jsonl", "label-studio"]
FORMATS: tuple[str, ...] = get_args(ExportFormat)
MEDIA_TYPES: dict[str, str] = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson",
                               "label-studio": "application/json"}
EXTENSIONS: dict[str, str] = {"csv": "csv", "jsonl": "jsonl", "label-studio": "json"}
