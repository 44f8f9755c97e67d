"""Label Studio tasks from export rows, and the labelling config they match.

A task's `data` carries `point_id`, `revision` and `dataset`, so an import finds its point and applies a choice
only to the point as it was when the task was made; the suggestion becomes a pre-annotation (`predictions`).
The point's current label is `data.current_label`, not `data.label`: JSON_MIN flattens the annotation's choice
into `data` under the control's name (`label`), and the two must not collide.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

if TYPE_CHECKING:
    from service.workspace import Workspace

FROM_NAME = "label"
TO_NAME = "text"
# Row fields copied into `data` for the annotator's context (the point's current label is renamed, see above).
CONTEXT = {"label": "current_label", "split": "split", "cluster": "cluster", "rank": "rank",
           "mislabel_score": "mislabel_score"}


def object_field(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """`parent[key]` where it is a JSON object, else an empty one: tasks from Label Studio are loosely shaped."""
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def label_studio_task(row: dict[str, Any], dataset: str | None = None, from_name: str = FROM_NAME,
                      to_name: str = TO_NAME) -> dict[str, Any]:
    """One Label Studio task; the suggestion becomes a pre-annotation (prediction) when there is one."""
    pid = row.get("point_id", row.get("id"))
    data: dict[str, Any] = {"text": row.get("text"), "id": row.get("id"), "point_id": pid,
                            "revision": int(row.get("revision") or 0)}
    if dataset is not None:
        data["dataset"] = dataset
    for key, name in CONTEXT.items():
        if row.get(key) is not None:
            data[name] = row[key]
    task: dict[str, Any] = {"data": data}
    label = row.get("suggested_label")
    if label:
        prediction: dict[str, Any] = {
            "model_version": str(row.get("model_version") or "data-debugger"),
            "result": [{"from_name": from_name, "to_name": to_name, "type": "choices",
                        "value": {"choices": [label]}}],
        }
        # Label Studio's score is the confidence in the choice. An issue row knows only how likely the current
        # label is wrong (mislabel_score, kept in `data`), which is another number: then no score.
        score = row.get("suggestion_confidence", row.get("confidence"))
        if score is not None:
            prediction["score"] = float(score)
        task["predictions"] = [prediction]
    return task


def label_studio_chunks(rows: Iterable[dict[str, Any]], dataset: str | None = None, batch: int = 500) -> Iterator[str]:
    """A JSON array of tasks, streamed."""
    yield "["
    first = True
    parts: list[str] = []
    for row in rows:
        task = label_studio_task(row, dataset)
        parts.append(("\n" if first else ",\n") + json.dumps(task, ensure_ascii=False, default=str))
        first = False
        if len(parts) >= batch:
            yield "".join(parts)
            parts = []
    yield "".join(parts) + "\n]\n"


def label_studio_config(labels: Iterable[str], from_name: str = FROM_NAME, to_name: str = TO_NAME) -> str:
    """The labelling config (XML) of a single-choice text classification project matching the tasks."""
    choices = "\n".join(f"    <Choice value={quoteattr(label)}/>" for label in labels)
    return (f'<View>\n  <Text name="{to_name}" value="$text"/>\n'
            f'  <Choices name="{from_name}" toName="{to_name}" choice="single" showInline="false">\n'
            f"{choices}\n  </Choices>\n</View>\n")


def config_labels(ws: Workspace, dataset: str) -> list[str]:
    """The labels a project of the dataset offers: every label its points carry or are suggested."""
    collection = ws.collection(dataset)
    labels = set(collection.facet("label")) | set(collection.facet("suggested_label"))
    return sorted(str(label) for label in labels if label)
