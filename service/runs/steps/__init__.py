"""The steps a run can take, by name. A new step is one module here defining `STEP`, named once below."""

from __future__ import annotations

from service.runs.steps import analyze, ingest, predict, retrain, train
from service.runs.steps.base import FollowUp, Step, StepContext, StepOptions, UploadedFile

STEPS: dict[str, Step] = {m.STEP.name: m.STEP for m in (ingest, train, predict, analyze, retrain)}

__all__ = ["STEPS", "FollowUp", "Step", "StepContext", "StepOptions", "UploadedFile"]
