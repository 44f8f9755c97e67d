"""The analyses: registered by importing their modules (one line each below), and everything derived from
their declarations: the default run, which fields and flags a run owns, the store's indexes, the API's
snapshot columns. Running a list of them over one context lives here too."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from service.analyses.base import REGISTRY, RUN_FIELDS, Analysis, AnalysisResult, PayloadField, run_order
from service.analyses.context import AnalysisContext
from service.errors import InvalidInput
from service.fields import BASE_INDEXED, BASE_JSON_FIELDS, FLAG_ORDER, REVIEW_FLAGS

log = logging.getLogger(__name__)

# One line per analysis module; this order is the default run order (what an analysis needs runs first).
MODULES = (
    "knn_consistency",
    "label_issues",
    "outliers",
    "triage",
    "confident_disagreement",
    "duplicates",
    "clusters",
    "suggestions",
    "per_class",
)
for _module in MODULES:
    importlib.import_module(f"service.analyses.{_module}")


def registered() -> list[type[Analysis]]:
    """Every registered analysis in MODULES order, then any other in registration order: the order does not
    depend on which module some caller happened to import first."""
    rank = {f"service.analyses.{module}": i for i, module in enumerate(MODULES)}
    return [cls for _, cls in sorted(enumerate(REGISTRY.values()),
                                     key=lambda ic: (rank.get(ic[1].__module__, len(rank)), ic[0]))]


def default_analyses() -> list[str]:
    """Every registered analysis, in order: what a full run runs."""
    return [cls.name for cls in registered()]


def declared_fields() -> dict[str, PayloadField]:
    """Every payload field some analysis declares, by name (two analyses may fill one field)."""
    return {f.name: f for cls in registered() for f in cls.payload_fields}


def analysis_fields() -> tuple[str, ...]:
    """Every payload field analyze owns, the runner's own included: a full re-run removes the ones a point
    no longer has."""
    return (*declared_fields(), *RUN_FIELDS)


def flag_values() -> tuple[str, ...]:
    """Every flag a point can carry: each analysis' declared flags and the reviewers', in FLAG_ORDER first."""
    flags = [flag for cls in registered() for flag in cls.sets_flags] + list(REVIEW_FLAGS)
    return tuple(sorted(dict.fromkeys(flags), key=lambda f: FLAG_ORDER.index(f) if f in FLAG_ORDER
                        else len(FLAG_ORDER) + flags.index(f)))


def indexed_fields() -> dict[str, str]:
    """Payload field -> store index type, for a dataset's collection: ingest's and predict's fields, the
    flags, and every field an analysis declares filterable."""
    declared = {f.name: f.index for f in declared_fields().values() if f.index is not None}
    return {**BASE_INDEXED, "flags": "keyword", **declared}


def json_fields() -> tuple[str, ...]:
    """Payload fields whose values are nested and never filtered on (ingest's source, predict's n_best, and
    what analyses declare as unindexed lists or objects): Store.create's json_fields."""
    declared = [f.name for f in declared_fields().values() if f.kind in ("keywords", "object") and f.index is None]
    return (*BASE_JSON_FIELDS, *declared)


def snapshot_columns() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(columns, float columns) that analyses add to the API's snapshot, the runner's own included."""
    fields = [f for f in declared_fields().values() if f.column]
    return (*(f.name for f in fields), *RUN_FIELDS), tuple(f.name for f in fields if f.kind == "float")


def owned_by(names: list[str]) -> tuple[set[str], set[str]]:
    """The payload fields and flags that the analyses `names` (and what they need) write."""
    order = run_order(list(names))
    return ({f.name for n in order for f in REGISTRY[n].payload_fields},
            {f for n in order for f in REGISTRY[n].sets_flags})


def is_partial(names: list[str] | None) -> bool:
    """Whether a run of `names` leaves out some of the registered analyses (`analyze --only`)."""
    return names is not None and not set(default_analyses()) <= set(run_order(list(names)))


def analysis_schemas() -> dict[str, dict[str, Any]]:
    """Each registered analysis' declaration: inputs, fields, flags, report parts, output, parameters."""
    return {cls.name: cls.declaration() for cls in registered()}


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
    order = run_order(list(names or default_analyses()))
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
        result = analysis.run(ctx).check(type(analysis), ctx.n)
        seconds[analysis.name] = round(time.perf_counter() - started, 3)
        ctx.results[analysis.name] = result
        log.info("%s: %.2f s", analysis.name, seconds[analysis.name])
    return ctx.results, seconds, skipped
