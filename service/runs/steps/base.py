"""What a run step is: a name, the module it needs installed, one pydantic options model, and a function
`run(ctx, options) -> result`. The options model is the whole check of what a client may send."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from service.errors import invalid
from service.progress import ProgressFn, no_progress
from service.review.core import ReviewCore
from service.workspace import Workspace


@dataclass(frozen=True)
class UploadedFile:
    """A file the service itself received (POST /api/datasets) and placed under its uploads folder. It is
    handed to the ingest step beside the options, never as one: no client option can mark a path as
    uploaded and so skip the import-roots check."""

    path: Path
    original_name: str


class StepOptions(BaseModel):
    """Base of every step's options: unknown keys and wrong types are refused (strict: "5" is not 5)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    def resolved(self, ws: Workspace, dataset: str, upload: UploadedFile | None) -> Self:
        """The options checked against the server (paths resolved inside the import roots); override
        where an option names something on the server."""
        return self

    def given(self) -> dict[str, Any]:
        """The options the client set, as keyword arguments for the step's function."""
        return self.model_dump(exclude_none=True)


OptionsT = TypeVar("OptionsT", bound=StepOptions)


@dataclass(frozen=True)
class StepContext:
    """What a step runs against: the workspace, the dataset, the run's id and progress, and what the service
    itself hands it, never a client: its uploaded file, and who asked (a retrain's trigger)."""

    ws: Workspace
    dataset: str
    run_id: str
    progress: ProgressFn = no_progress
    upload: UploadedFile | None = None
    trigger: str | None = None
    # The running service's review core for a step that writes through it (needs_service), so its changes
    # take the dataset's lock, land in its audit log and patch its cached views.
    service: ReviewCore | None = None


@dataclass(frozen=True)
class FollowUp:
    """A run a finished step asks the manager to queue (unless one of that step is already queued for the
    dataset), e.g. the retrain an ingest's labelled batch calls for."""

    step: str
    trigger: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step(Generic[OptionsT]):
    """A step clients can run."""

    name: str
    requires: str  # the module the step needs; absent means this installation lacks the step
    options: type[OptionsT]
    run: Callable[[StepContext, OptionsT], dict[str, Any]]
    takes_upload: bool = False
    takes_trigger: bool = False
    needs_service: bool = False
    # Given the step's result, the run to queue next (or None).
    follow_up: Callable[[dict[str, Any]], FollowUp | None] | None = None

    def available(self) -> bool:
        try:
            return importlib.util.find_spec(self.requires) is not None
        except ModuleNotFoundError:
            return False

    def parse(self, raw: dict[str, Any]) -> OptionsT:
        """The client's options as the step's model, or InvalidInput naming `options.<name>`."""
        try:
            return self.options.model_validate(raw)
        except ValidationError as exc:
            raise _invalid_option(self, exc) from None


def _invalid_option(step: Step, exc: ValidationError) -> Exception:
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else "options"  # a union adds its member: keep the field
    if error["type"] == "extra_forbidden":
        takes = ", ".join(sorted(step.options.model_fields)) or "none"
        return invalid(f"options.{name}", f"{step.name} takes no such option; it takes {takes}")
    message = str(error["msg"]).removeprefix("Value error, ")
    return invalid(f"options.{name}", f"{message[:1].lower()}{message[1:]}, got {error.get('input')!r:.60}")
