"""Request and response bodies of the prediction API (the Humanloop predict contract and the online routes)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_TEXTS = 20  # the Humanloop contract's batch limit


def _non_empty(text: str) -> str:
    if not text.strip():
        raise ValueError("text is empty; send a non-empty string")
    return text


class DataPoint(BaseModel):
    """One input of a Humanloop predict request; other input fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    text: str = Field(..., description="the text to classify", max_length=10_000)

    _check = field_validator("text")(_non_empty)


class ProjectPredictRequest(BaseModel):
    """`POST /projects/{project}/predict`: up to 20 texts and how many labels to return for each."""

    data: list[DataPoint] = Field(..., min_length=1, max_length=MAX_TEXTS,
                                  description=f"1 to {MAX_TEXTS} inputs, each with a non-empty text")
    n_best: int = Field(3, ge=1, le=1000, description="labels to return per input, best first")
    version: str | None = Field(None, description="model version; default: production, else the latest")


class LabelScore(BaseModel):
    """One of the n best labels of an input."""

    output: str = "intent"
    task_type: str = "classification"
    value: str
    confidence: float


class ProjectPrediction(BaseModel):
    """The answer for one input: n best labels with confidences, and the entropy of the full distribution."""

    id: str
    data: dict[str, Any]
    predictions: list[LabelScore]
    entropy: float
    model_version: str


class PredictRequest(BaseModel):
    """`POST /predict`: one text, for low-latency online use."""

    id: Any = None
    text: str = Field(..., max_length=10_000)
    project: str | None = None
    version: str | None = None

    _check = field_validator("text")(_non_empty)


class PredictResponse(BaseModel):
    id: Any = None
    label: str
    probability: float
    model_version: str


class IntentResponse(BaseModel):
    intent: str
    probability: float
    model_version: str


class ModelsPublic(BaseModel):
    """Every version (optionally of one dataset) with its headline metrics."""

    data: list[dict[str, Any]]
    count: int
