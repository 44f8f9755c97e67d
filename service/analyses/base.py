"""The analysis plug-in contract and its registry.

An analysis is a pydantic model: its parameters are validated fields, its identity (`name`) and what it
reads (`needs`: "model" for probabilities, and the names of analyses whose results it uses) are class
variables. `run(ctx)` returns one AnalysisResult: per-point payload fields, per-point flags (boolean masks
written as the `flags` keyword list), internal arrays later analyses may read, and its part of the report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from service.analyses.context import AnalysisContext
from service.errors import InvalidInput
from service.fields import FLAG_VALUES

log = logging.getLogger(__name__)


@dataclass
class AnalysisResult:
    """One analysis' output. `fields` arrays are aligned with the context rows; None or NaN = not set."""

    fields: dict[str, np.ndarray] = field(default_factory=dict)
    flags: dict[str, np.ndarray] = field(default_factory=dict)
    arrays: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    summary: float | None = None  # share of the points it checked that raised no issue, in [0, 1]

    def check(self, name: str, n: int) -> AnalysisResult:
        """Raise if the result breaks the contract (wrong lengths, unknown flags)."""
        for key, values in self.fields.items():
            if len(values) != n:
                raise InvalidInput(f"analysis {name!r}: field {key!r} has {len(values)} values for {n} points")
        for flag, mask in self.flags.items():
            if flag not in FLAG_VALUES:
                raise InvalidInput(f"analysis {name!r}: flag {flag!r} is not one of service.fields.FLAG_VALUES")
            if mask.shape != (n,) or mask.dtype != bool:
                raise InvalidInput(f"analysis {name!r}: flag {flag!r} must be a boolean mask of {n} points")
        return self


class Analysis(BaseModel):
    """Base of every analysis: subclasses declare `name`, `needs`, their parameters, and `run`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()  # "model", and/or names of analyses that must run first
    optional: ClassVar[tuple[str, ...]] = ()  # analyses whose results it uses when they ran
    description: ClassVar[str] = ""
    # The payload fields and flags it writes: a partial run (`analyze --only`) replaces these and keeps
    # every other analysis' results.
    writes: ClassVar[tuple[str, ...]] = ()
    raises: ClassVar[tuple[str, ...]] = ()

    def run(self, ctx: AnalysisContext) -> AnalysisResult:  # pragma: no cover - abstract
        """The analysis over one context: per-point fields, flags, arrays and its report part."""
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


REGISTRY: dict[str, type[Analysis]] = {}


def register(cls: type[Analysis]) -> type[Analysis]:
    """Class decorator: make an analysis available by its name."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"two analyses are named {cls.name!r}")
    REGISTRY[cls.name] = cls
    return cls


def analysis_schemas() -> dict[str, dict[str, Any]]:
    """Each registered analysis' description, inputs and parameter JSON schema (for the API and UI)."""
    from service.analyses import registry  # noqa: F401 - imports every built-in analysis

    return {
        name: {"description": cls.description, "needs": list(cls.needs), "optional": list(cls.optional),
               "parameters": cls.model_json_schema()}
        for name, cls in REGISTRY.items()
    }


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
