"""The steps a run can take, by name. A new step is one module here defining `STEP`, named once in MODULES."""

from __future__ import annotations

import importlib

from service.runs.steps.base import FollowUp, Step, StepContext, StepOptions, UploadedFile

# One line per step module; a module defines STEP, or STEPS when it holds several (label_studio: push, pull).
# This order is the order of the API's `step` enum.
MODULES = (
    "ingest",
    "train",
    "predict",
    "analyze",
    "retrain",
    "label_studio",
)


def _steps_of(module: str) -> tuple[Step, ...]:
    loaded = importlib.import_module(f"service.runs.steps.{module}")
    return tuple(getattr(loaded, "STEPS", None) or (loaded.STEP,))


STEPS: dict[str, Step] = {step.name: step for module in MODULES for step in _steps_of(module)}

__all__ = ["MODULES", "STEPS", "FollowUp", "Step", "StepContext", "StepOptions", "UploadedFile"]
