"""The steps a run can take, by name. A new step is one module here defining `STEP`, named once below."""

from __future__ import annotations

from service.runs.steps import analyze, ingest, label_studio, predict, retrain, train
from service.runs.steps.base import FollowUp, Step, StepContext, StepOptions, UploadedFile

STEPS: dict[str, Step] = {m.STEP.name: m.STEP for m in (ingest, train, predict, analyze, retrain)}
STEPS.update({s.name: s for s in label_studio.STEPS})  # one module, two steps (push, pull)

__all__ = ["STEPS", "FollowUp", "Step", "StepContext", "StepOptions", "UploadedFile"]
