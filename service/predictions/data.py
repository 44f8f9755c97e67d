"""The labelled data a model version is trained on: from a dataset in the store, or from a file (--from)."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embeddings.store import PointFilter, PointId, load_all, point_id
from service.datasets.readers import ColumnMap, read_records
from service.datasets.records import SPLITS, validate
from service.errors import InvalidInput, InvalidRecords, RecordProblem

if TYPE_CHECKING:
    from service.workspace import Workspace

log = logging.getLogger(__name__)

# Share of the training split held out for hyper-parameters when a file has no validation split.
HOLDOUT_SHARE = 0.15


@dataclass
class TrainingData:
    """Labelled points, aligned: ids[i], texts[i], labels[i], splits[i], vectors[i]."""

    ids: list[PointId]
    texts: list[str]
    labels: list[str]
    splits: list[str]
    vectors: np.ndarray
    embedding_model: str
    source: str

    @property
    def label_set(self) -> list[str]:
        """Sorted distinct labels: the column order of every probability matrix of the version."""
        return sorted(set(self.labels))

    def y(self, label_set: list[str]) -> np.ndarray:
        index = {label: i for i, label in enumerate(label_set)}
        return np.array([index[label] for label in self.labels], dtype=np.int64)

    def mask(self, split: str) -> np.ndarray:
        return np.array([s == split for s in self.splits], dtype=bool)

    def sizes(self) -> dict[str, int]:
        out = {split: int(self.mask(split).sum()) for split in SPLITS}
        out["labelled"] = len(self.ids)
        return out

    def content_hash(self) -> str:
        """sha256 of every (id, text, label, split), order-independent: equal data, equal hash."""
        rows = sorted(json.dumps([str(i), t, y, s]) for i, t, y, s in
                      zip(self.ids, self.texts, self.labels, self.splits, strict=True))
        return hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest()


def _check(data: TrainingData) -> TrainingData:
    if not data.mask("training").any():
        raise InvalidInput(
            f"{data.source}: no labelled point is in the training split; give records split 'training' "
            "(records without a split count as training)"
        )
    labels = sorted(set(np.asarray(data.labels)[data.mask("training")]))
    if len(labels) < 2:
        raise InvalidInput(f"{data.source}: the training split has {len(labels)} label(s); a classifier needs 2+")
    unseen = sorted(set(data.labels) - set(labels))
    if unseen:
        raise InvalidInput(
            f"{data.source}: label(s) {unseen} occur only outside the training split; the model could never "
            "predict them. Add training examples or relabel those points"
        )
    if not data.mask("validation").any():
        _hold_out_validation(data)
    return data


def _hold_out_validation(data: TrainingData) -> None:
    """No validation split: move a stable, stratified share of training points to validation."""
    train = np.flatnonzero(data.mask("training"))
    moved = 0
    for label in sorted(set(data.labels)):
        members = [i for i in train if data.labels[i] == label]
        if len(members) < 4:  # too few to spare any
            continue
        # Stable across runs: order by a hash of the id, not by a random draw.
        members.sort(key=lambda i: hashlib.sha256(str(data.ids[i]).encode()).digest())
        for i in members[: max(1, round(len(members) * HOLDOUT_SHARE))]:
            data.splits[i] = "validation"
            moved += 1
    if moved == 0:
        raise InvalidInput(f"{data.source}: no validation split and too little data to hold one out")
    log.info("%s: no validation split; held out %d training points for validation", data.source, moved)


def from_store(ws: Workspace, dataset: str) -> TrainingData:
    """The labelled points of a dataset with their stored vectors; points without a split count as training."""
    entry = ws.catalog.get(dataset)
    collection = ws.collection(dataset)
    ids, payloads, vectors = load_all(collection, PointFilter(empty={"label": False}), with_vectors=True,
                                      fields=("text", "label", "split", "review_status"))
    # A point a reviewer marked ambiguous trains no model until someone resolves it (relabel, accept or
    # confirm): its label is in doubt, and a version must not learn the doubt.
    keep = [i for i, p in enumerate(payloads) if p.get("review_status") != "ambiguous"]
    if len(keep) < len(ids):
        log.info("%s: %d point(s) marked ambiguous are left out of training", dataset, len(ids) - len(keep))
        ids, payloads = [ids[i] for i in keep], [payloads[i] for i in keep]
        vectors = vectors[keep] if vectors is not None else None
    if not ids:
        raise InvalidInput(f"dataset {dataset!r} has no labelled points; ingest labelled data first")
    data = TrainingData(
        ids=list(ids),
        texts=[p["text"] for p in payloads],
        labels=[p["label"] for p in payloads],
        splits=[p.get("split") or "training" for p in payloads],
        vectors=vectors,
        embedding_model=entry["embedding_model"],
        source=f"dataset {dataset!r}",
    )
    return _check(data)


def from_file(ws: Workspace, path: Path, fmt: str | None = None, columns: ColumnMap | None = None) -> TrainingData:
    """The labelled records of a file (Humanloop JSON, CSV, JSONL, Parquet), embedded through the cache."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"{path}: no such file; --from takes a Parquet, CSV or JSON file")
    problems: list[RecordProblem] = []
    ids, texts, labels, splits = [], [], [], []
    seen: dict[PointId, int] = {}
    for raw in read_records(path, fmt, columns):
        record, found = validate(raw)
        if record is None:
            problems.extend(found)
            continue
        if record.label is None:
            continue  # unlabelled records cannot train
        pid = point_id(record.id)
        if pid in seen:
            problems.append(RecordProblem(raw.position, f"duplicate id {record.id!r} (first at record "
                                          f"{seen[pid]}); ids must be unique", raw.line, "id"))
            continue
        seen[pid] = raw.position
        ids.append(pid)
        texts.append(record.text)
        labels.append(record.label)
        splits.append(record.split or "training")
    if problems:
        raise InvalidRecords(str(path), problems, hint="fix these records and train again; nothing was trained")
    if not ids:
        raise InvalidInput(f"{path}: holds no labelled records; a model needs labelled text")
    embedder = ws.embedder
    vectors = embedder.embed(texts, show_progress=len(texts) > 1000)
    data = TrainingData(ids, texts, labels, splits, np.asarray(vectors, np.float32), embedder.name, str(path))
    return _check(data)
