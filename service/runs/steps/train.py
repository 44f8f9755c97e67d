"""Train: fit, evaluate and register a new classifier version of the dataset."""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, field_validator

from service.runs.records import jsonable
from service.runs.steps.base import Step, StepContext, StepOptions, UploadedFile
from service.server_files import allowed_server_file
from service.workspace import Workspace


class TrainOptions(StepOptions):
    """The model family ("auto" compares them all), cross-validation and the learning curve's draws."""

    model: str | None = None
    folds: int | None = Field(None, ge=2)
    seed: int | None = Field(None, ge=0)
    learning_repeats: int | None = Field(None, ge=1)
    from_file: str | None = None

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str | None) -> str | None:
        """A model family the trainer does not know is a 422 now, not a failed run later."""
        from service.predictions.models import FAMILIES

        if value is not None and value != "auto" and value not in FAMILIES:
            raise ValueError(f"{value!r} is not 'auto' or one of {', '.join(FAMILIES)}")
        return value

    def resolved(self, ws: Workspace, dataset: str, upload: UploadedFile | None) -> Self:
        if not self.from_file:
            return self
        path = allowed_server_file(ws.settings, self.from_file, "options.from_file")
        return self.model_copy(update={"from_file": str(path)})


def run(ctx: StepContext, options: TrainOptions) -> dict[str, Any]:
    """Train a version; the result names it, its labels and its metrics."""
    from service.predictions.training import train_version

    version = train_version(ctx.ws, ctx.dataset, progress=ctx.progress, **options.given())
    return {"version": version.version, "labels": list(version.labels), "metrics": jsonable(version.metrics)}


STEP = Step("train", "service.predictions.training", TrainOptions, run)
