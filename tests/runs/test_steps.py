"""Run steps as a service: one options model per step (unknown keys, wrong types and bounds refused, naming
`options.<field>`), progress heard from every step through stages and counts, the manager's on-finished
callback, and a throw-away step that takes one module and one registration line."""

from __future__ import annotations

import importlib
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any

import pytest

from embeddings.embedder import FakeEmbedder
from service.errors import InvalidInput
from service.runs.manager import RunManager
from service.runs.records import Run
from service.runs.steps import STEPS, StepContext
from service.workspace import Workspace
from tests.api.conftest import HUMANLOOP_SMALL, N_POINTS, settings_in


@dataclass
class Heard:
    """A progress listener that keeps every call."""

    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, stage: str | None = None, done: int | None = None, total: int | None = None,
                 advance: int = 0) -> None:
        self.calls.append({"stage": stage, "done": done, "total": total, "advance": advance})

    def stages(self) -> list[str]:
        out: list[str] = []
        for call in self.calls:
            if call["stage"] is not None and (not out or out[-1] != call["stage"]):
                out.append(call["stage"])
        return out

    def counted(self, stage: str) -> tuple[int | None, int]:
        """(total announced, sum of advances) within `stage`."""
        current, total, advanced = None, None, 0
        for call in self.calls:
            current = call["stage"] or current
            if current == stage:
                total = call["total"] if call["total"] is not None else total
                advanced += call["advance"]
        return total, advanced


@pytest.mark.parametrize(("step", "options", "field_name", "words"), [
    ("ingest", {"upload": True}, "options.upload", "takes no such option"),
    ("ingest", {"split": "train"}, "options.split", "'training'"),
    ("ingest", {"format": "xlsx"}, "options.format", "not one of"),
    ("ingest", {"skip_invalid": "yes"}, "options.skip_invalid", "boolean"),
    ("train", {"folds": 1}, "options.folds", "greater than or equal to 2"),
    ("train", {"folds": "5"}, "options.folds", "integer"),
    ("train", {"folds": True}, "options.folds", "integer"),
    ("train", {"model": "bogus"}, "options.model", "not 'auto'"),
    ("predict", {"batch_size": 21}, "options.batch_size", "less than or equal to 20"),
    ("predict", {"timeout": 0}, "options.timeout", "greater than 0"),
    ("predict", {"force": 1}, "options.force", "boolean"),
    ("analyze", {"k": 0}, "options.k", "greater than or equal to 1"),
    ("analyze", {"analyses": "clusters"}, "options.analyses", "list"),
    ("analyze", {"registry": "x"}, "options.registry", "it takes analyses, exact_threshold, k"),
    ("retrain", {"tolerance": 1.5}, "options.tolerance", "less than or equal to 1"),
    ("retrain", {"min_cluster_size": 0}, "options.min_cluster_size", "greater than or equal to 1"),
    ("retrain", {"model": "bogus"}, "options.model", "not 'auto'"),
    ("retrain", {"trigger": "changes"}, "options.trigger", "takes no such option"),  # the service's, not a client's
])
def test_each_step_has_one_options_model_that_names_the_bad_field(step, options, field_name, words):
    with pytest.raises(InvalidInput) as caught:
        STEPS[step].parse(options)
    assert caught.value.field == field_name and words in str(caught.value), str(caught.value)


def test_every_options_model_forbids_unknown_keys_and_accepts_its_defaults():
    for step in STEPS.values():
        assert step.options.model_config["extra"] == "forbid", step.name
        assert step.parse({}).given() == {}
        assert step.parse({name: None for name in step.options.model_fields}).given() == {}
    assert STEPS["predict"].parse({"timeout": 5}).given() == {"timeout": 5.0}  # an int is a number of seconds


@pytest.mark.slow
def test_every_step_reports_stages_and_counts(tmp_path):
    with Workspace(settings_in(tmp_path), embedder=FakeEmbedder()) as ws:
        heard: dict[str, Heard] = {}
        raw = {"ingest": {"path": str(HUMANLOOP_SMALL), "format": "humanloop"}, "train": {"folds": 3},
               "predict": {}, "analyze": {"seed": 1}}
        for name, options in raw.items():
            heard[name] = Heard()
            step = STEPS[name]
            step.run(StepContext(ws, "steps", f"run-{name}", heard[name]), step.parse(options))

    assert heard["ingest"].stages()[:2] == ["validate", "embed + upsert"]
    assert heard["ingest"].counted("embed + upsert")[1] == N_POINTS
    assert heard["train"].stages() == ["load", "select model", "evaluate", "learning curve", "out-of-fold",
                                       "register"]
    candidates, fitted = heard["train"].counted("select model")
    assert candidates == fitted and fitted >= 2
    assert heard["train"].counted("out-of-fold") == (3, 3)
    assert heard["predict"].stages() == ["predict"]
    assert heard["predict"].counted("predict") == (N_POINTS, N_POINTS)
    assert heard["analyze"].stages() == ["load", "model", "knn", "analyses", "write"]
    assert heard["analyze"].counted("write") == (N_POINTS, N_POINTS)


ECHO_STEP = textwrap.dedent('''
    """A throw-away step: echoes its options back after counting to `times`."""

    from pydantic import Field

    from service.runs.steps.base import Step, StepOptions


    class EchoOptions(StepOptions):
        times: int = Field(3, ge=1, le=10)
        word: str | None = None


    def run(ctx, options):
        for n in range(options.times):
            ctx.progress(stage="echo", done=n + 1, total=options.times)
        return {"dataset": ctx.dataset, "word": options.word, "times": options.times}


    STEP = Step("echo", "service.runs.steps.base", EchoOptions, run)
''')


def test_a_new_step_is_one_module_and_one_registration_line(tmp_path, monkeypatch):
    (tmp_path / "echo_step.py").write_text(ECHO_STEP)
    monkeypatch.syspath_prepend(str(tmp_path))
    echo = importlib.import_module("echo_step")
    monkeypatch.setitem(STEPS, echo.STEP.name, echo.STEP)  # the registration line
    finished: list[Run] = []
    with Workspace(settings_in(tmp_path), embedder=FakeEmbedder()) as ws:
        manager = RunManager(lambda: ws, on_finished=finished.append)
        manager.start()
        try:
            with pytest.raises(InvalidInput) as caught:
                manager.submit("any", "echo", {"times": 11})
            assert caught.value.field == "options.times"
            run, future = manager.submit("any", "echo", {"word": "hi"})
            done = future.result(timeout=60)
        finally:
            manager.shutdown()
        assert done is run and run.status == "succeeded", run.error
        assert run.result == {"dataset": "any", "word": "hi", "times": 3} and run.params == {"times": 3, "word": "hi"}
        assert run.progress == {"stage": "done", "done": 3, "total": 3}
        assert finished == [run]  # told once, after the run, with its outcome
        assert manager.records.get(run.id).status == "succeeded"  # and kept
    sys.modules.pop("echo_step", None)


def test_a_failed_run_keeps_its_error_and_still_tells_the_listener(tmp_path):
    finished: list[Run] = []
    with Workspace(settings_in(tmp_path), embedder=FakeEmbedder()) as ws:
        manager = RunManager(lambda: ws, on_finished=finished.append)
        manager.start()
        try:
            run, future = manager.submit("missing", "analyze", {})
            future.result(timeout=60)
        finally:
            manager.shutdown()
    assert run.status == "failed" and "missing" in run.error["message"] and finished == [run]
