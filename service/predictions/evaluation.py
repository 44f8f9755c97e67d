"""Honest evaluation: a version's validation and test figures on the labels as ingested and as reviewed.

Label errors sit in the evaluation splits too, and a wrong test label counts a right prediction as an
error. So each version is scored twice on the same points: against `original_label` (what ingest stored,
kept on the first relabel) and against today's label. The evaluation points the analyses consider likely
label errors and that nobody has reviewed yet are listed first: until they are reviewed, every comparison
between versions carries their doubt, and the report says so instead of hiding it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from embeddings.store import PointFilter, load_all, load_vectors
from service.predictions.metrics import macro_f1
from service.predictions.registry import ModelVersion

if TYPE_CHECKING:
    from embeddings.store import PointId
    from service.workspace import Workspace

EVALUATION_SPLITS = ("validation", "testing")
SUSPECT_TRIAGE = ("label_error",)
SUSPECT_FLAGS = ("label_issue", "confident_disagreement")
# What the evaluation reads of each point: the service's columnar snapshot holds all of them.
EVALUATION_FIELDS = ("split", "label", "original_label", "review_status", "triage", "flags", "mislabel_score",
                     "suggested_label", "record_id", "text", "prediction", "model_version")

VectorsOf = Callable[[list["PointId"]], np.ndarray]


def _scores(truth: list[str], predicted: list[str]) -> dict[str, float]:
    labels = sorted(set(truth) | set(predicted))
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[t] for t in truth])
    p = np.array([index[t] for t in predicted])
    return {"accuracy": float((y == p).mean()), "macro_f1": macro_f1(y, p, len(labels))}


def _suspect(flags: Any, triage: Any) -> bool:
    return triage in SUSPECT_TRIAGE or any(f in (flags or []) for f in SUSPECT_FLAGS)


def honest_evaluation(ws: Workspace, dataset: str, version: ModelVersion, suspects_limit: int = 50) -> dict[str, Any]:
    """Per evaluation split: n, how many labels reviewers corrected, accuracy and macro-F1 on the labels as
    ingested and as reviewed, and the unreviewed likely label errors among its points (highest score first).
    Read from the store; the service evaluates its cached columns with `evaluate_columns` instead."""
    collection = ws.collection(dataset)
    ids, payloads, _ = load_all(collection, PointFilter(match={"split": list(EVALUATION_SPLITS)}), with_vectors=False,
                                fields=EVALUATION_FIELDS)
    columns = {name: [p.get(name) for p in payloads] for name in EVALUATION_FIELDS}
    return evaluate_columns(ids, columns, version, lambda wanted: load_vectors(collection, wanted), suspects_limit)


def version_predictions(ids: Sequence[PointId], columns: Mapping[str, Sequence[Any]], rows: list[int],
                        version: ModelVersion, vectors_of: VectorsOf) -> list[str]:
    """The version's predicted label of each row. Where `predict` stored this version's prediction on the
    point, that is it (the same model on the same text and vector: model_version names the model, as the
    prediction client's skip-if-done also trusts); the rest (points added or predicted by another version
    since) are predicted now. At a million points this is the difference between reading two columns and
    reading 300k vectors back from the store (25 s)."""
    stored, made_by = columns["prediction"], columns["model_version"]
    predicted: list[str | None] = [stored[i] if made_by[i] == version.version and stored[i] is not None else None
                                   for i in rows]
    missing = [j for j, label in enumerate(predicted) if label is None]
    if missing:
        texts = [columns["text"][rows[j]] or "" for j in missing]
        vectors = vectors_of([ids[rows[j]] for j in missing]) if version.needs_vectors else None
        proba = version.predict_proba(texts, vectors)
        for j, label in zip(missing, np.asarray(version.labels, dtype=object)[proba.argmax(axis=1)], strict=True):
            predicted[j] = str(label)
    return [str(label) for label in predicted]


def evaluate_columns(ids: Sequence[PointId], columns: Mapping[str, Sequence[Any]], version: ModelVersion,
                     vectors_of: VectorsOf, suspects_limit: int = 50) -> dict[str, Any]:
    """`honest_evaluation` over points given column-wise (EVALUATION_FIELDS; rows of other splits are skipped)."""
    out: dict[str, Any] = {"version": version.version, "splits": {}}
    split_of, label_of = columns["split"], columns["label"]
    for split in EVALUATION_SPLITS:
        rows = [i for i, (s, label) in enumerate(zip(split_of, label_of, strict=True))
                if s == split and label is not None]
        if not rows:
            continue
        predicted = version_predictions(ids, columns, rows, version, vectors_of)
        reviewed_labels = [label_of[i] for i in rows]
        ingested_labels = [columns["original_label"][i] or label_of[i] for i in rows]
        corrected = sum(a != b for a, b in zip(ingested_labels, reviewed_labels, strict=True))
        status, flags, triage = columns["review_status"], columns["flags"], columns["triage"]
        suspects = [{"id": ids[i], "record_id": columns["record_id"][i], "text": columns["text"][i],
                     "label": label_of[i], "prediction": guess, "mislabel_score": columns["mislabel_score"][i],
                     "suggested_label": columns["suggested_label"][i]}
                    for i, guess in zip(rows, predicted, strict=True)
                    if not status[i] and _suspect(flags[i], triage[i])]
        suspects.sort(key=lambda s: -(s["mislabel_score"] or 0))
        reviewed = sum(1 for i in rows if status[i])
        as_ingested, as_reviewed = _scores(ingested_labels, predicted), _scores(reviewed_labels, predicted)
        note = (f"{len(suspects)} {split} point(s) look mislabelled and are not reviewed yet: review them first, "
                "they change what every comparison says" if suspects else
                f"no unreviewed likely label error among the {split} points")
        out["splits"][split] = {
            "n": len(rows), "corrected": corrected, "reviewed": reviewed,
            "as_ingested": as_ingested, "as_reviewed": as_reviewed,
            "unreviewed_suspects": len(suspects), "suspects": suspects[:suspects_limit], "note": note,
        }
    return out
