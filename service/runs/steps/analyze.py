"""Analyze: run the analyses on the dataset, write per-point fields and the report."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from service.runs.records import jsonable
from service.runs.steps.base import Step, StepContext, StepOptions

REPORT_KEYS = ("run_id", "created_at", "model_version", "n_points", "stages", "summary")


class AnalyzeOptions(StepOptions):
    """Which analyses (default: all) with which parameters, the kNN graph's size and kind, the seed and the model
    version."""

    analyses: list[str] | None = None
    # {analysis: {parameter: value}}, checked by each analysis's own parameters model (the CLI's --param).
    params: dict[str, dict[str, Any]] | None = None
    k: int | None = Field(None, ge=1)
    knn_kind: str | None = None
    exact_threshold: int | None = Field(None, ge=0)
    seed: int | None = Field(None, ge=0)
    model_version: str | None = None


def run(ctx: StepContext, options: AnalyzeOptions) -> dict[str, Any]:
    """Analyze; the result is the report's head (run id, stages, summary)."""
    from service.analyses.runner import analyze

    report = analyze(ctx.ws, ctx.dataset, progress=ctx.progress, **options.given())
    return jsonable({k: report.get(k) for k in REPORT_KEYS if k in report})


STEP = Step("analyze", "service.analyses.runner", AnalyzeOptions, run)
