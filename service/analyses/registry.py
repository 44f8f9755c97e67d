"""The built-in analyses, in their default order, and running a list of them over one context."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

# Importing the modules registers their analyses.
from service.analyses import (  # noqa: F401
    clusters,
    confident_disagreement,
    duplicates,
    knn_consistency,
    label_issues,
    outliers,
    per_class,
    suggestions,
    triage,
)
from service.analyses.base import REGISTRY, Analysis, AnalysisResult, run_order
from service.analyses.context import AnalysisContext
from service.errors import InvalidInput

log = logging.getLogger(__name__)

DEFAULT_ANALYSES = [
    "knn_consistency", "label_issues", "outliers", "triage", "confident_disagreement", "duplicates",
    "clusters", "suggestions", "per_class",
]


def owned_by(names: list[str]) -> tuple[set[str], set[str]]:
    """The payload fields and flags that the analyses `names` (and what they need) write."""
    order = run_order(list(names))
    return ({f for n in order for f in REGISTRY[n].writes}, {f for n in order for f in REGISTRY[n].raises})


def is_partial(names: list[str] | None) -> bool:
    """Whether a run of `names` leaves out some of the default analyses (`analyze --only`)."""
    return names is not None and not set(run_order(list(DEFAULT_ANALYSES))) <= set(run_order(list(names)))


def make_analysis(name: str, params: Mapping[str, Any] | None = None) -> Analysis:
    """An analysis by name with validated parameters; bad parameters raise InvalidInput naming them."""
    if name not in REGISTRY:
        raise InvalidInput(f"analysis {name!r} is unknown; known analyses: {', '.join(REGISTRY)}")
    try:
        return REGISTRY[name](**dict(params or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))!r}: {e['msg']}" for e in exc.errors())
        known = ", ".join(REGISTRY[name].model_fields) or "none"
        raise InvalidInput(f"parameters of analysis {name!r}: {problems} (its parameters: {known})") from None


def run_analyses(
    ctx: AnalysisContext,
    names: list[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[dict[str, AnalysisResult], dict[str, float], dict[str, str]]:
    """Run analyses (with what they need) over `ctx`: (results, seconds per analysis, skipped -> why).

    An analysis whose inputs are missing (no model yet) is skipped with its reason, not failed: the
    neighbourhood analyses still help on a dataset nobody has trained on.
    """
    params = dict(params or {})
    unknown = set(params) - set(REGISTRY)
    if unknown:
        raise InvalidInput(f"parameters given for unknown analyses {sorted(unknown)}; known: {', '.join(REGISTRY)}")
    order = run_order(list(names or DEFAULT_ANALYSES))
    analyses = [make_analysis(name, params.get(name)) for name in order]
    seconds: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for analysis in analyses:
        missing = analysis.missing_inputs(ctx)
        if missing:
            skipped[analysis.name] = "needs " + ", ".join(missing)
            log.info("skipped %s: %s", analysis.name, skipped[analysis.name])
            continue
        started = time.perf_counter()
        result = analysis.run(ctx).check(analysis.name, ctx.n)
        undeclared = (set(result.fields) - set(analysis.writes)) | (set(result.flags) - set(analysis.raises))
        if undeclared:  # partial runs rely on the declarations: keep them true
            raise InvalidInput(f"analysis {analysis.name!r} wrote {sorted(undeclared)}, which its `writes` / "
                               "`raises` do not declare")
        seconds[analysis.name] = round(time.perf_counter() - started, 3)
        ctx.results[analysis.name] = result
        log.info("%s: %.2f s", analysis.name, seconds[analysis.name])
    return ctx.results, seconds, skipped
