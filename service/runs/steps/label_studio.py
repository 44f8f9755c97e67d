"""Label Studio push and pull (service.labelstudio.sync): send the labelling queue as tasks, and apply the
annotations back through the service's review core (its locks, audit log and views)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field

from service.runs.steps.base import Step, StepContext, StepOptions


def _known_kind(value: str) -> str:
    from service.labelstudio.sync import KINDS

    if value not in KINDS:
        raise ValueError(f"{value!r} is not one of {', '.join(KINDS)}")
    return value


def _known_strategy(value: str) -> str:
    from service.queue import STRATEGIES

    if value not in STRATEGIES:
        raise ValueError(f"{value!r} is not one of {', '.join(STRATEGIES)}")
    return value


class PushOptions(StepOptions):
    """What to send (the queue, issues or suggestions), by which strategy, how many, and the seed."""

    kind: Annotated[str, AfterValidator(_known_kind)] | None = None
    strategy: Annotated[str, AfterValidator(_known_strategy)] | None = None
    limit: int | None = Field(None, ge=1)
    seed: int | None = Field(None, ge=0)


class PullOptions(StepOptions):
    """`force` applies annotations over changes made in Data Debugger since the task was sent."""

    force: bool | None = None


def push(ctx: StepContext, options: PushOptions) -> dict[str, Any]:
    from service.labelstudio.sync import push

    assert ctx.service is not None, "needs_service: the manager refuses the step without one"
    return push(ctx.service, ctx.dataset, progress=ctx.progress, **options.given())


def pull(ctx: StepContext, options: PullOptions) -> dict[str, Any]:
    from service.labelstudio.sync import pull

    assert ctx.service is not None, "needs_service: the manager refuses the step without one"
    return pull(ctx.service, ctx.dataset, progress=ctx.progress, **options.given())


STEPS = (Step("label-studio-push", "service.labelstudio.sync", PushOptions, push, needs_service=True),
         Step("label-studio-pull", "service.labelstudio.sync", PullOptions, pull, needs_service=True))
