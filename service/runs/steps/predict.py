"""Predict: send the dataset's texts to the prediction API and write the answers to the points."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from service.predictions.schemas import MAX_TEXTS
from service.runs.records import jsonable
from service.runs.steps.base import Step, StepContext, StepOptions


class PredictOptions(StepOptions):
    """Which version answers, how many labels each answer keeps, and how the batches are sent."""

    version: str | None = None
    n_best: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1, le=MAX_TEXTS)
    concurrency: int | None = Field(None, ge=1)
    timeout: float | None = Field(None, gt=0)
    force: bool | None = None


def run(ctx: StepContext, options: PredictOptions) -> dict[str, Any]:
    """Predict the points not yet predicted by the version; the result is the enrich report."""
    from service.predictions.client import enrich

    return jsonable(enrich(ctx.ws, ctx.dataset, progress=ctx.progress, **options.given()))


STEP = Step("predict", "service.predictions.client", PredictOptions, run)
