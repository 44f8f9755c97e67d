"""The analysis report and model registry as the API reads them: loaded lazily (those packages may be
absent), memoised per report file (in the state's cached views), a clear 409 "not analysed yet" until
analyze has run, and a 409 "analysis incomplete" while an interrupted write-back left points that no report
describes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.analyses.report import incomplete_message, interrupted_writeback
from service.api.snapshots import report_stamp
from service.api.state import ApiState
from service.errors import Conflict, NotFound

if TYPE_CHECKING:
    from service.predictions.registry import ModelRegistry


def no_scores(dataset: str, predictions: list[Any], analysed: bool) -> Conflict:
    """Why a view of analysis scores is empty: the analysis never ran, or it ran without the predictions
    those scores need (then running analyze again would not help)."""
    if not any(p is not None for p in predictions):
        state = "was analysed without predictions" if analysed else "is not analysed yet and has no predictions"
        return Conflict(
            f"dataset {dataset!r} {state}; label issues and suggestions need them: run train, predict and analyze"
            f' (POST /api/datasets/{dataset}/runs {{"step": "train"}}, then "predict", then "analyze"; or '
            "`data-debugger run`)"
        )
    return not_analysed(dataset)


def not_analysed(dataset: str) -> Conflict:
    return Conflict(
        f"dataset {dataset!r} is not analysed yet: run analyze (POST /api/datasets/{dataset}/runs "
        '{"step": "analyze"}, or `data-debugger analyze`)'
    )


def report_of(state: ApiState, dataset: str) -> dict[str, Any]:
    """The dataset's analysis report; 404 for an unknown dataset, 409 when never analysed or when the last
    write-back was interrupted (the report would not match the points)."""
    state.workspace.catalog.get(dataset)
    marker = interrupted_writeback(state.settings, dataset)
    if marker is not None:
        raise Conflict(incomplete_message(dataset, marker))
    stamp = report_stamp(state.settings, dataset)
    if stamp is None:
        raise not_analysed(dataset)
    hit = state.views.reports.get(dataset, stamp)
    if hit is not None:
        return hit
    from service.analyses.report import load_report

    try:
        report = load_report(state.settings, dataset)
    except NotFound as exc:
        raise not_analysed(dataset) from exc
    state.views.reports.put(dataset, stamp, report)
    return report


def maybe_report(state: ApiState, dataset: str) -> dict[str, Any] | None:
    try:
        return report_of(state, dataset)
    except Conflict:
        return None


def registry(state: ApiState) -> ModelRegistry:
    """The model registry of the service's models folder."""
    from service.predictions.registry import ModelRegistry  # on use: it imports scikit-learn

    return ModelRegistry(state.settings.models_dir)


def model_versions(state: ApiState, dataset: str) -> list[dict[str, Any]]:
    """Every trained version of a dataset with headline metrics, oldest first."""
    reg = registry(state)
    production = reg.production(dataset)
    out = []
    for v in reg.versions(dataset):
        summary = v.summary()
        out.append({"version": v.version, "created_at": v.created_at, "production": v.version == production,
                    "metrics": summary.get("metrics", {})})
    return out

