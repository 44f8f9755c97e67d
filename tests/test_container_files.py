"""The container files, checked without Docker (no engine runs where this project is built): the Dockerfiles
parse into stages on one shared base, every command they and the compose file run is a valid `data-debugger`
command line, what they copy is in the build context, and the Makefile's docker targets build and run what
the files describe."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from service.cli import build_parser
from tests.conftest import REPO

BASE_TAG = "data-debugger-base"


def parse_dockerfile(path: Path) -> tuple[list[tuple[str, str]], list[dict]]:
    """(instructions before the first FROM, stages); a stage is {"from", "name", "steps": [(INSTR, args)]}."""
    steps: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        instruction, _, args = line.partition(" ")
        steps.append((instruction.upper(), args.strip()))
    assert not pending, f"{path.name}: a continued line never ends"
    header: list[tuple[str, str]] = []
    stages: list[dict] = []
    for instruction, args in steps:
        if instruction == "FROM":
            image, _, name = args.partition(" AS ") if " AS " in args else args.partition(" as ")
            stages.append({"from": image.strip(), "name": name.strip() or None, "steps": []})
        elif stages:
            stages[-1]["steps"].append((instruction, args))
        else:
            header.append((instruction, args))
    return header, stages


def values(stage: dict, instruction: str) -> list[str]:
    return [args for instr, args in stage["steps"] if instr == instruction]


def exec_form(args: str) -> list[str]:
    """A CMD/HEALTHCHECK CMD in exec (JSON) form: the shell form would swallow signals."""
    command = json.loads(args)
    assert isinstance(command, list) and all(isinstance(part, str) for part in command), args
    return command


def cli_args(command: list[str]):
    """The parsed arguments of a `data-debugger ...` command line (argparse exits on anything invalid)."""
    assert command[0] == "data-debugger", command
    return build_parser().parse_args(command[1:])


@pytest.fixture(scope="module")
def service_stages() -> list[dict]:
    return parse_dockerfile(REPO / "Dockerfile")[1]


def base_of(stages: list[dict]) -> dict:
    return next(stage for stage in stages if stage["name"] == "base")


def test_the_service_dockerfile_has_a_slim_base_stage_and_serves_from_it(service_stages):
    base = base_of(service_stages)
    assert base["from"].startswith("python:3.11-slim")
    assert "/data" in values(base, "VOLUME") and "DATA_DEBUGGER_HOME=/data" in " ".join(values(base, "ENV"))
    assert values(base, "USER") == ["debugger"]
    final = service_stages[-1]  # what `docker build .` (and compose) builds
    assert final["from"] == "base"
    args = cli_args(exec_form(values(final, "CMD")[-1]))
    assert args.command == "serve" and args.host == "0.0.0.0"


def test_what_the_base_copies_is_in_the_build_context(service_stages):
    ignored = [line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip()]
    for copy in values(base_of(service_stages), "COPY"):
        for source in shlex.split(copy)[:-1]:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
            assert source not in ignored, f"COPY {source}: excluded by .dockerignore"


@pytest.mark.parametrize("name", ["trainer.Dockerfile", "api.Dockerfile"])
def test_trainer_and_api_images_build_on_the_shared_base(name):
    header, stages = parse_dockerfile(REPO / name)
    assert ("ARG", f"BASE={BASE_TAG}") in header and [stage["from"] for stage in stages] == ["${BASE}"]
    assert not values(stages[0], "RUN")  # nothing installed on top: the base holds it all


def test_the_trainer_trains_humanloop_into_the_volume():
    _, (stage,) = parse_dockerfile(REPO / "trainer.Dockerfile")
    args = cli_args(exec_form(values(stage, "CMD")[-1]))
    assert args.command == "train" and args.dataset == "humanloop"
    assert args.ingest_if_missing and args.if_changed and args.confusion
    env = " ".join(values(stage, "ENV"))
    assert "DATA_DEBUGGER_HUMANLOOP_PATH=/data-in/chatbot_intent_classifier_data.json" in env


def test_the_api_serves_the_prediction_api_on_4002():
    _, (stage,) = parse_dockerfile(REPO / "api.Dockerfile")
    args = cli_args(exec_form(values(stage, "CMD")[-1]))
    assert args.command == "model-server" and args.port == 4002 and args.host == "0.0.0.0"
    assert args.require_model and args.dataset == "humanloop"
    assert values(stage, "EXPOSE") == ["4002"]
    check = values(stage, "HEALTHCHECK")[0]
    assert "http://127.0.0.1:4002/health" in " ".join(exec_form(check.split(" CMD ", 1)[1]))


def _planned(target: str, *variables: str) -> list[list[str]]:
    """The commands `make -n TARGET` would run, split like a shell would. Run from `make test` (as CI does), the
    outer make's MAKEFLAGS/MAKELEVEL would make this one print "Entering directory" lines: start it clean."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")}
    done = subprocess.run(["make", "--no-print-directory", "-n", target, *variables], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True)
    return [shlex.split(line) for line in done.stdout.splitlines() if line.strip()]


def _option(command: list[str], flag: str) -> list[str]:
    return [command[i + 1] for i, part in enumerate(command) if part == flag]


def test_make_train_docker_builds_base_then_trainer_and_mounts_the_volume():
    base, build, run = _planned("train-docker", "IMAGE=dd", "MODELS_VOLUME=models", "HUMANLOOP_DIR=/in")
    assert base[:2] == ["docker", "build"] and _option(base, "--target") == ["base"] and base[-1] == "."
    assert _option(base, "-t") == ["dd-base"]
    assert _option(build, "-f") == ["trainer.Dockerfile"] and _option(build, "--build-arg") == ["BASE=dd-base"]
    assert run[:2] == ["docker", "run"] and run[-1] == _option(build, "-t")[0]
    assert set(_option(run, "-v")) == {"models:/data", "/in:/data-in:ro"}


def test_make_api_docker_publishes_api_port_to_4002_on_loopback():
    _, build, run = _planned("api-docker", "IMAGE=dd", "MODELS_VOLUME=models", "API_PORT=4555")
    assert _option(build, "-f") == ["api.Dockerfile"] and _option(build, "--build-arg") == ["BASE=dd-base"]
    assert run[-1] == _option(build, "-t")[0] == "dd-api"
    assert _option(run, "-p") == ["127.0.0.1:4555:4002"] and _option(run, "-v") == ["models:/data"]


def test_make_train_and_api_run_valid_commands(tmp_path):
    stamp = tmp_path / "installed"
    stamp.touch()  # newer than pyproject.toml: `make -n` plans no install
    for target, command in (("train", "train"), ("api", "model-server")):
        (line,) = _planned(target, f"STAMP={stamp}", "API_PORT=4555", "DATASET=banking77")
        assert line[0].endswith("bin/data-debugger")
        args = cli_args(["data-debugger", *line[1:]])
        assert args.command == command and args.dataset == "banking77"
    assert args.port == 4555 and args.require_model


def test_the_compose_service_builds_the_dockerfile_and_runs_a_valid_command():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    debugger = compose["services"]["debugger"]
    assert debugger["build"] == "."
    args = cli_args(debugger["command"])
    assert args.command == "run" and args.host == "0.0.0.0"
    assert debugger["environment"]["DATA_DEBUGGER_HOME"] == "/data" and "debugger_data:/data" in debugger["volumes"]
