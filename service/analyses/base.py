"""The analysis plug-in contract and its registry.

An analysis is a pydantic model: its parameters are validated fields; its identity and its contract are
class variables. What it reads: `needs` ("model" for probabilities, and analyses that must run first) and
`optional` (analyses whose results it uses when they ran). What it writes: `payload_fields` (each a
PayloadField: its kind, the store index it needs, whether the API's snapshot keeps it), `sets_flags` (the
flags it may put in a point's `flags` list), `report_parts` and `summary_parts` (the keys it adds to the
report and to its summary, each with its value when the analysis did not run), and `output` (the type of
the value it hands to later analyses). `run(ctx)` returns one AnalysisResult, checked against that
declaration on every run; the runner, a partial run's merge, the store's indexes and the API's columns
are all derived from the declarations (service.analyses.registry).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from service.analyses.context import AnalysisContext
from service.errors import InvalidInput

log = logging.getLogger(__name__)

INDEX_KINDS = ("keyword", "integer", "float", "text")
# Written by the runner for every analysis; no analysis declares them.
RUN_FIELDS = ("flags", "analysis_run")


@dataclass(frozen=True)
class PayloadField:
    """One per-point payload field an analysis writes.

    kind: "keyword", "integer", "float", "keywords" (a list of strings), or "object"; index: the store
    index the API filters it with (None = not filterable); column: kept in the API's snapshot, which the
    ranked views and the map read (costs memory per point, so only what those views need).
    """

    name: str
    kind: str
    index: str | None = None
    column: bool = False


@dataclass(frozen=True)
class Part:
    """A key an analysis adds to the report (or its summary), and its value there when the analysis did not
    run (copied, never shared)."""

    name: str
    empty: Any = None

    def empty_value(self) -> Any:
        """A fresh copy of the value it takes when its analysis did not run."""
        return copy.deepcopy(self.empty)


@dataclass
class AnalysisResult:
    """One analysis' output. `fields` arrays are aligned with the context rows; None or NaN = not set.

    report / summary_parts: part name -> value, for the parts the analysis declares; output: its typed
    value for later analyses (an instance of the analysis' `output` type); score: the share of the points it
    checked that raised no issue, in [0, 1] (the summary's "scores").
    """

    fields: dict[str, np.ndarray] = field(default_factory=dict)
    flags: dict[str, np.ndarray] = field(default_factory=dict)
    output: Any = None
    report: dict[str, Any] = field(default_factory=dict)
    summary_parts: dict[str, Any] = field(default_factory=dict)
    score: float | None = None

    def check(self, analysis: type[Analysis], n: int) -> AnalysisResult:
        """Raise if the result breaks its analysis' declaration (undeclared fields, flags or parts, wrong
        lengths, an output of another type)."""
        name = analysis.name
        for key, values in self.fields.items():
            if len(values) != n:
                raise InvalidInput(f"analysis {name!r}: field {key!r} has {len(values)} values for {n} points")
        for flag, mask in self.flags.items():
            if mask.shape != (n,) or mask.dtype != bool:
                raise InvalidInput(f"analysis {name!r}: flag {flag!r} must be a boolean mask of {n} points")
        declared = {
            "payload_fields": (set(self.fields), {f.name for f in analysis.payload_fields}),
            "sets_flags": (set(self.flags), set(analysis.sets_flags)),
            "report_parts": (set(self.report), {p.name for p in analysis.report_parts}),
            "summary_parts": (set(self.summary_parts), {p.name for p in analysis.summary_parts}),
        }
        for what, (given, allowed) in declared.items():
            extra = sorted(given - allowed)
            if extra:  # partial runs and the report rely on the declarations: keep them true
                raise InvalidInput(f"analysis {name!r} produced {extra}, which its `{what}` do not declare; "
                                   f"declare them in {analysis.__module__}.{analysis.__qualname__}")
        expected = analysis.output
        if (self.output is None) != (expected is None) or (expected is not None
                                                           and not isinstance(self.output, expected)):
            raise InvalidInput(f"analysis {name!r}: output is {type(self.output).__name__}, its `output` declares "
                               f"{getattr(expected, '__name__', None)}")
        return self


class Analysis(BaseModel):
    """Base of every analysis: subclasses declare `name`, their contract, their parameters, and `run`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()  # "model", and/or names of analyses that must run first
    optional: ClassVar[tuple[str, ...]] = ()  # analyses whose results it uses when they ran
    description: ClassVar[str] = ""
    payload_fields: ClassVar[tuple[PayloadField, ...]] = ()
    sets_flags: ClassVar[tuple[str, ...]] = ()
    report_parts: ClassVar[tuple[Part, ...]] = ()
    summary_parts: ClassVar[tuple[Part, ...]] = ()
    output: ClassVar[type | None] = None

    def run(self, ctx: AnalysisContext) -> AnalysisResult:  # pragma: no cover - abstract
        """The analysis over one context: per-point fields, flags, its output and its report parts."""
        raise NotImplementedError

    def missing_inputs(self, ctx: AnalysisContext) -> list[str]:
        """What this analysis needs that the context lacks (empty when it can run)."""
        missing = []
        for need in self.needs:
            if need == "model":
                if not ctx.has_model:
                    missing.append("a trained model (data-debugger train)")
            elif need not in ctx.results:
                missing.append(f"the {need!r} analysis")
        return missing

    @classmethod
    def declaration(cls) -> dict[str, Any]:
        """What the analysis declares, as plain JSON (for `analyze --list`)."""
        output = cls.output
        return {
            "description": cls.description,
            "needs": list(cls.needs),
            "optional": list(cls.optional),
            "payload_fields": [{"name": f.name, "kind": f.kind, "index": f.index, "column": f.column}
                               for f in cls.payload_fields],
            "flags": list(cls.sets_flags),
            "report_parts": [p.name for p in cls.report_parts],
            "summary_parts": [p.name for p in cls.summary_parts],
            "output": None if output is None else {
                "type": output.__name__, "fields": list(getattr(output, "__dataclass_fields__", {}))},
            "parameters": cls.model_json_schema(),
        }


REGISTRY: dict[str, type[Analysis]] = {}
# Report and summary keys the runner writes itself: no analysis may declare them as its parts.
RUN_REPORT_KEYS = frozenset({"run_id", "dataset", "created_at", "model_version", "n_points", "label_names",
                             "analyses", "skipped", "knn", "summary", "stages", "partial"})
RUN_SUMMARY_KEYS = frozenset({"points", "labelled", "unlabelled", "labels", "flags", "scores"})


def register(cls: type[Analysis]) -> type[Analysis]:
    """Class decorator: make an analysis available by its name, once its declaration is consistent with
    every other analysis' (a field declared twice means the same thing; flags and parts have one owner)."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"two analyses are named {cls.name!r}")
    _check_declaration(cls, [other for name, other in REGISTRY.items() if name != cls.name])
    REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove an analysis from the registry (for tests that add a throw-away one)."""
    REGISTRY.pop(name, None)


def _check_declaration(cls: type[Analysis], others: list[type[Analysis]]) -> None:
    where = f"analysis {cls.name!r} ({cls.__module__})"
    names = [f.name for f in cls.payload_fields]
    if len(set(names)) != len(names) or set(names) & set(RUN_FIELDS):
        raise ValueError(f"{where}: payload_fields {names} repeat a name or use one the runner writes "
                         f"({', '.join(RUN_FIELDS)})")
    for f in cls.payload_fields:
        if f.index is not None and f.index not in INDEX_KINDS:
            raise ValueError(f"{where}: field {f.name!r} has index {f.index!r}; use one of {INDEX_KINDS}")
    taken_parts = RUN_REPORT_KEYS | {p.name for o in others for p in o.report_parts}
    taken_summary = RUN_SUMMARY_KEYS | {p.name for o in others for p in o.summary_parts}
    for what, mine, taken in (("report_parts", cls.report_parts, taken_parts),
                              ("summary_parts", cls.summary_parts, taken_summary)):
        clash = sorted({p.name for p in mine} & taken)
        if clash:
            raise ValueError(f"{where}: {what} {clash} are written by the runner or another analysis")
    for other in others:
        shared = set(other.sets_flags) & set(cls.sets_flags)
        if shared:
            raise ValueError(f"{where}: flags {sorted(shared)} are already set by {other.name!r}")
        theirs = {f.name: f for f in other.payload_fields}
        for f in cls.payload_fields:  # two analyses may fill one field (suggested_label), declared alike
            if f.name in theirs and theirs[f.name] != f:
                raise ValueError(f"{where}: field {f.name!r} is declared differently by {other.name!r}")


def run_order(names: list[str]) -> list[str]:
    """`names` plus the analyses they need, dependencies first (stable: registry order otherwise)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name not in REGISTRY:
            known = ", ".join(REGISTRY)
            raise InvalidInput(f"analysis {name!r} is unknown; known analyses: {known}")
        if name in visiting:
            raise InvalidInput(f"analysis {name!r} depends on itself")
        visiting.add(name)
        cls = REGISTRY[name]
        for need in cls.needs:
            if need != "model":
                visit(need)
        for opt in cls.optional:
            if opt in names:
                visit(opt)
        visiting.discard(name)
        order.append(name)

    for name in names:
        visit(name)
    return order
