"""Retrain: a challenger trained on today's labels, judged against the champion by the gate, and on promotion
the data re-predicted and re-analysed (service.predictions.retrain). Who asked (a client, or the service's
own trigger after enough label changes) is the run's `trigger`, never a client option."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from service.runs.records import jsonable
from service.runs.steps.base import Step, StepContext, StepOptions
from service.runs.steps.train import ModelFamily


class RetrainOptions(StepOptions):
    """Train's model choice and folds, the gate's tolerances, a dry run (what-if) and whether to re-analyse."""

    model: ModelFamily | None = None
    folds: int | None = Field(None, ge=2)
    seed: int | None = Field(None, ge=0)
    dry_run: bool | None = None
    force: bool | None = None
    tolerance: float | None = Field(None, ge=0, le=1)
    min_cluster_size: int | None = Field(None, ge=1)
    max_cluster_regression: float | None = Field(None, ge=0, le=1)
    analyze: bool | None = None


def run(ctx: StepContext, options: RetrainOptions) -> dict[str, Any]:
    """Retrain; the result says what happened (promoted, refused, what-if or unchanged) and why."""
    from service.predictions import retrain
    from service.predictions.gate import GatePolicy

    s = ctx.ws.settings
    o = options
    policy = GatePolicy(tolerance=s.gate_tolerance if o.tolerance is None else o.tolerance,
                        min_cluster_size=o.min_cluster_size or s.gate_min_cluster_size,
                        max_cluster_regression=(s.gate_max_cluster_regression if o.max_cluster_regression is None
                                                else o.max_cluster_regression),
                        seed=o.seed or 0)
    chosen = retrain.RetrainOptions(policy=policy, dry_run=bool(o.dry_run), force=bool(o.force),
                                    model=o.model or "auto", folds=o.folds or 5, seed=o.seed or 0,
                                    analyze=True if o.analyze is None else o.analyze, trigger=ctx.trigger or "api")
    return jsonable(retrain.retrain(ctx.ws, ctx.dataset, chosen, report=ctx.progress))


STEP = Step("retrain", "service.predictions.retrain", RetrainOptions, run, takes_trigger=True)
