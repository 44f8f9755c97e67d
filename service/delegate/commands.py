"""`ingest`, `train`, `predict`, `analyze` and `export` beside a running service: each maps its arguments onto
the options of the service's step of the same name (service.runs.steps), runs it there through the runs route
and prints what the command prints on its own; `export` downloads through the export route instead.

Every function takes (args, settings, client) and returns the exit code, like a command's handler."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from service.delegate.client import ServiceClient, refuse
from service.errors import InvalidInput, NotFound, TooLarge
from service.settings import Settings

# The CLI's defaults for options a step does not take: left at them, the work is the same either way.
COLUMN_DEFAULTS = {"text_column": "text", "label_column": "label", "split_column": "split", "id_column": "id"}
PREDICT_RETRIES = 6


def _given(options: dict[str, Any]) -> dict[str, Any]:
    """Options without the unset ones (a step's model reads a missing option as its own default)."""
    return {k: v for k, v in options.items() if v is not None and v is not False}


def _report(cls: type, result: dict[str, Any]) -> Any:
    """A report dataclass rebuilt from a run's result (its fields as the step recorded them)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in result.items() if k in names})


def ingest(args: argparse.Namespace, settings: Settings, client: ServiceClient) -> int:
    """One ingest run per file: read in place when the service may read it (its import roots), else uploaded."""
    from service.datasets.ingest import IngestReport

    columns = {name: getattr(args, name) for name in COLUMN_DEFAULTS}
    options = _given({"format": args.format, **columns, "split": args.split, "skip_invalid": args.skip_invalid,
                      "defer_index": args.defer_index})
    for path in args.paths:
        try:
            # The service checks the path against its own import roots, the only check that counts.
            run = client.start_run(args.dataset, "ingest", {**options, "path": str(path.resolve())})
        except InvalidInput as exc:
            if getattr(exc, "field", None) != "options.path":
                raise
            print(f"  {path} is outside the folders the service reads: uploading it", file=client.err)
            try:
                run = client.upload(path, args.dataset, options)
            except TooLarge as too_large:
                raise TooLarge(f"{too_large}; or put {path.name} under {settings.imports_dir} (or a folder of "
                               "DATA_DEBUGGER_IMPORT_DIRS) so the service reads it in place") from too_large
        try:
            report = _report(IngestReport, client.finished(client.follow(run)))
        except InvalidInput as exc:
            reworded = InvalidInput(_in_cli_terms(str(exc)))
            reworded.field = exc.field
            raise reworded from exc
        print(report.summary())
        if report.rejects_path and report.rejected:
            rejects = report.rejects_path
            if args.rejects:
                shutil.copyfile(rejects, args.rejects)
                rejects = str(args.rejects)
            print(f"{report.rejected} rejected record(s) written to {rejects}")
    return 0


# An uploaded file's errors name the upload's form fields; this command's user knows them as its flags.
_FORM_FIELDS = {"send the form field `skip_invalid=true`": "run again with --skip-invalid",
                **{f"the form field `{name}`": f"--{name.replace('_', '-')} NAME" for name in COLUMN_DEFAULTS}}


def _in_cli_terms(message: str) -> str:
    for form, flag in _FORM_FIELDS.items():
        message = message.replace(form, flag)
    return message


def train(args: argparse.Namespace, settings: Settings, client: ServiceClient) -> int:
    """A train run; the version is then read from the model registry on disk (the store is not needed)."""
    from service.predictions.commands import print_trained
    from service.predictions.registry import ModelRegistry

    dataset = args.dataset or settings.default_dataset
    changed = [f"--{n.replace('_', '-')}" for n, d in COLUMN_DEFAULTS.items() if getattr(args, n) != d]
    if args.format or changed:
        raise refuse(" and ".join([*(["--format"] if args.format else []), *changed]),
                     "its train step reads --from by the file name, with the default columns")
    if args.ingest_if_missing and args.from_file is None:
        try:
            client.get_json(f"/api/datasets/{dataset}")
        except NotFound:
            print(f"{dataset} is not in the store yet: ingesting the Humanloop export through the service",
                  file=client.err)
            # The default dataset's ingest finds (or downloads) the export itself; another name reads it by path.
            source = {} if dataset == settings.default_dataset else {"path": str(settings.humanloop_path),
                                                                     "format": "humanloop"}
            print(_report_ingest(client.run(dataset, "ingest", source)))
    registry = ModelRegistry(settings.models_dir)
    before = registry.latest(dataset)
    options = _given({"model": args.model, "folds": args.folds, "seed": args.seed,
                      "from_file": str(args.from_file.resolve()) if args.from_file else None,
                      "if_changed": args.if_changed})
    try:
        result = client.run(dataset, "train", options)
    except InvalidInput as exc:
        if getattr(exc, "field", None) != "options.from_file":
            raise
        raise InvalidInput(f"--from {args.from_file}: {exc}; copy the file under {settings.imports_dir} and run "
                           "again") from exc
    version = registry.get(dataset, result["version"])
    kept = before is not None and version.version == before.version
    if args.promote:
        client.post_json(f"/models/{dataset}/{version.version}/promote")
    print_trained(args, settings, version, kept)
    return 0


def _report_ingest(result: dict[str, Any]) -> str:
    from service.datasets.ingest import IngestReport

    return str(_report(IngestReport, result).summary())


def predict(args: argparse.Namespace, settings: Settings, client: ServiceClient) -> int:
    """A predict run with the service's own models."""
    from service.predictions.client import EnrichReport

    if args.api_url or args.project:
        raise refuse("--api-url / --project", "its predict step asks the service's own models")
    if args.retries != PREDICT_RETRIES:
        raise refuse("--retries", "its predict step retries as the service is configured to")
    dataset = args.dataset or settings.default_dataset
    options = _given({"version": args.version, "batch_size": args.batch_size, "concurrency": args.concurrency,
                      "timeout": float(args.timeout), "force": args.force})
    print(_report(EnrichReport, client.run(dataset, "predict", options)).summary())
    return 0


def analyze(args: argparse.Namespace, settings: Settings, client: ServiceClient) -> int:
    """An analyze run; the report printed is the one the service wrote (GET /report)."""
    from service.analyses.commands import _params, format_summary

    dataset = args.dataset or settings.default_dataset
    options = _given({"analyses": args.only, "params": _params(args.param) or None, "k": args.k,
                      "knn_kind": args.knn, "exact_threshold": args.exact_threshold, "seed": args.seed,
                      "model_version": args.version})
    client.run(dataset, "analyze", options)
    report = client.get_json(f"/api/datasets/{dataset}/report")
    print(json.dumps(report, indent=1) if args.json else format_summary(report))
    return 0


def export(args: argparse.Namespace, settings: Settings, client: ServiceClient) -> int:
    """The export route's download, written where the command writes (whole or not at all)."""
    from service.analyses.commands import _format

    dataset = args.dataset or settings.default_dataset
    fmt = _format(args)
    params: dict[str, Any] = {"format": fmt, "strategy": args.strategy, "seed": args.seed,
                              "only_flagged": args.only_flagged}
    if args.limit is not None:
        params["limit"] = args.limit
    route = f"/api/datasets/{dataset}/exports/{args.kind}"
    with client.download(route, params) as chunks:
        if args.output == "-":
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        else:
            _write_whole(Path(args.output), chunks)
    if args.label_config:
        args.label_config.write_text(client.get_text(f"/api/datasets/{dataset}/label-studio/config"))
    if args.output != "-":
        print(f"{_rows(Path(args.output), fmt)} {args.kind} row(s) written to {args.output} ({fmt})", file=sys.stderr)
    print(f"read through the service at {client.url}", file=client.err)
    return 0


def _write_whole(path: Path, chunks: Any) -> None:
    """Chunks to a temp file beside `path`, renamed over it once complete: a broken download leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _rows(path: Path, fmt: str) -> int:
    """Rows in a written export (the route streams, so the count is read back from the file)."""
    with path.open(encoding="utf-8", newline="") as fh:
        if fmt == "csv":
            return max(sum(1 for _ in csv.reader(fh)) - 1, 0)
        if fmt == "jsonl":
            return sum(1 for line in fh if line.strip())
        return len(json.load(fh))


DELEGATES = {"ingest": ingest, "train": train, "predict": predict, "analyze": analyze, "export": export}
