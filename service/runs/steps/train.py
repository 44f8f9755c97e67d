"""Train: fit, evaluate and register a new classifier version of the dataset."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import AfterValidator, Field

from service.runs.records import jsonable
from service.runs.steps.base import Step, StepContext, StepOptions, UploadedFile
from service.server_files import allowed_server_file
from service.workspace import Workspace


def _known_model(value: str) -> str:
    """A model family the trainer does not know is a 422 now, not a failed run later."""
    from service.predictions.models import FAMILIES

    if value != "auto" and value not in FAMILIES:
        raise ValueError(f"{value!r} is not 'auto' or one of {', '.join(FAMILIES)}")
    return value


ModelFamily = Annotated[str, AfterValidator(_known_model)]


class TrainOptions(StepOptions):
    """The model family ("auto" compares them all), cross-validation, the learning curve's draws, a file to train
    on instead of the stored dataset, and whether to skip training when nothing changed."""

    model: ModelFamily | None = None
    folds: int | None = Field(None, ge=2)
    seed: int | None = Field(None, ge=0)
    learning_repeats: int | None = Field(None, ge=1)
    fit_cap: int | None = Field(None, ge=0, le=10_000_000)  # points per diagnostic fit; 0 = no cap
    from_file: str | None = None
    if_changed: bool | None = None  # keep the latest version when the data, embeddings and options are the same

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
