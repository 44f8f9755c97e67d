"""Honest evaluation: a version's validation and test figures on the labels as ingested and as reviewed.

Label errors sit in the evaluation splits too, and a wrong test label counts a right prediction as an
error. So each version is scored twice on the same points: against `original_label` (what ingest stored,
kept on the first relabel) and against today's label. The evaluation points the analyses consider likely
label errors and that nobody has reviewed yet are listed first: until they are reviewed, every comparison
between versions carries their doubt, and the report says so instead of hiding it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from embeddings.store import PointFilter, load_all
from service.predictions.metrics import macro_f1
from service.predictions.registry import ModelVersion

if TYPE_CHECKING:
    from service.workspace import Workspace

EVALUATION_SPLITS = ("validation", "testing")
SUSPECT_TRIAGE = ("label_error",)
SUSPECT_FLAGS = ("label_issue", "confident_disagreement")


def _scores(truth: list[str], predicted: list[str]) -> dict[str, float]:
    labels = sorted(set(truth) | set(predicted))
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[t] for t in truth])
    p = np.array([index[t] for t in predicted])
    return {"accuracy": float((y == p).mean()), "macro_f1": macro_f1(y, p, len(labels))}


def _suspect(payload: dict[str, Any]) -> bool:
    flags = payload.get("flags") or []
    return payload.get("triage") in SUSPECT_TRIAGE or any(f in flags for f in SUSPECT_FLAGS)


def honest_evaluation(ws: Workspace, dataset: str, version: ModelVersion, suspects_limit: int = 50) -> dict[str, Any]:
    """Per evaluation split: n, how many labels reviewers corrected, accuracy and macro-F1 on the labels as
    ingested and as reviewed, and the unreviewed likely label errors among its points (highest score first)."""
    collection = ws.collection(dataset)
    ids, payloads, vectors = load_all(collection, PointFilter(match={"split": list(EVALUATION_SPLITS)}),
                                      with_vectors=version.needs_vectors)
    out: dict[str, Any] = {"version": version.version, "splits": {}}
    for split in EVALUATION_SPLITS:
        rows = [i for i, p in enumerate(payloads) if p.get("split") == split and p.get("label") is not None]
        if not rows:
            continue
        texts = [payloads[i]["text"] for i in rows]
        proba = version.predict_proba(texts, vectors[rows] if vectors is not None else None)
        predicted = list(np.asarray(version.labels, dtype=object)[proba.argmax(axis=1)])
        reviewed_labels = [payloads[i]["label"] for i in rows]
        ingested_labels = [payloads[i].get("original_label") or payloads[i]["label"] for i in rows]
        corrected = sum(a != b for a, b in zip(ingested_labels, reviewed_labels, strict=True))
        suspects = []
        for i, guess in zip(rows, predicted, strict=True):
            p = payloads[i]
            if _suspect(p) and not p.get("review_status"):
                suspects.append({"id": ids[i], "record_id": p.get("record_id"), "text": p["text"],
                                 "label": p["label"], "prediction": guess, "mislabel_score": p.get("mislabel_score"),
                                 "suggested_label": p.get("suggested_label")})
        suspects.sort(key=lambda s: -(s["mislabel_score"] or 0))
        reviewed = sum(1 for i in rows if payloads[i].get("review_status"))
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
