"""CLI: `data-debugger label-studio push | pull | import | config`.

    push    send the labelling queue to the dataset's project on the configured server (made if needed)
    pull    apply the annotations made or updated there since the last pull
    import  apply a Label Studio export file (JSON, JSON_MIN, CSV or TSV)
    config  print the labelling config of the dataset's tasks
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from service.choices import DEFAULT_STRATEGY, STRATEGIES
from service.cli import count
from service.settings import Settings

log = logging.getLogger(__name__)


class _LogProgress:
    """Run progress as log lines (a stage once, counts at most every 10%)."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.done = 0
        self.total: int | None = None

    def update(self, stage: str | None = None, done: int | None = None, total: int | None = None, **_: Any) -> None:
        if total is not None:
            self.total = total
        if stage is not None and stage != self.stage:
            self.stage = stage
            log.info("%s ...", stage)
        if done is not None and self.total and (done == self.total or done - self.done >= self.total / 10):
            self.done = done
            log.info("%s: %d/%d", self.stage, done, self.total)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `label-studio` command and its sub-commands."""
    p = sub.add_parser("label-studio", help="push the queue to Label Studio, pull annotations back, import exports")
    ls = p.add_subparsers(dest="label_studio_command", required=True, metavar="ACTION")
    push = ls.add_parser("push", help="send the labelling queue to the dataset's Label Studio project")
    push.add_argument("--dataset", help="dataset name (default: settings.default_dataset)")
    push.add_argument("--queue", choices=STRATEGIES, default=DEFAULT_STRATEGY,
                      help=f"queue strategy (default {DEFAULT_STRATEGY})")
    push.add_argument("--kind", choices=("queue", "issues", "suggestions"), default="queue",
                      help="what to send: the labelling queue (default), the issues not yet reviewed, suggestions")
    push.add_argument("--limit", type=count(1), default=50, help="queue size (default 50)")
    push.add_argument("--seed", type=count(0), default=0, help="seed of the random strategy")
    push.set_defaults(handler=cmd_push)
    pull = ls.add_parser("pull", help="apply the annotations made or updated since the last pull")
    pull.add_argument("--dataset", help="dataset name (default: settings.default_dataset)")
    pull.add_argument("--force", action="store_true",
                      help="re-apply every annotation, also to points changed in Data Debugger since their task")
    pull.set_defaults(handler=cmd_pull)
    imp = ls.add_parser("import", help="apply a Label Studio export file (JSON, JSON_MIN, CSV, TSV)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--dataset", help="dataset name (default: settings.default_dataset)")
    imp.add_argument("--force", action="store_true", help="apply choices also to points changed since the export")
    imp.add_argument("--allow-new-label", action="store_true", help="accept labels no point carries yet")
    imp.add_argument("--user", default="label-studio", help="annotator when a task names none")
    imp.set_defaults(handler=cmd_import)
    config = ls.add_parser("config", help="print the labelling config (XML) of the dataset's tasks")
    config.add_argument("--dataset", help="dataset name (default: settings.default_dataset)")
    config.set_defaults(handler=cmd_config)


def _run(settings: Settings, fn) -> Any:
    """`fn(state)` over an opened workspace, with the review core's state (locks, audit log)."""
    from service.api.state import ApiState
    from service.workspace import Workspace

    with Workspace(settings) as ws:
        return fn(ApiState.build(settings, ws))


def _print(result: dict[str, Any]) -> None:
    print(json.dumps(result, indent=1, default=str))


def cmd_push(args: argparse.Namespace, settings: Settings) -> int:
    from service.labelstudio.sync import push

    dataset = args.dataset or settings.default_dataset
    result = _run(settings, lambda state: push(state, dataset, args.queue, args.limit, seed=args.seed,
                                                kind=args.kind, progress=_LogProgress()))
    _print(result)
    print(f"{result['sent']} task(s) sent, {result['already_there']} already there: {result['project_url']}",
          file=sys.stderr)
    return 0


def _summary(result: dict[str, Any]) -> str:
    return (f"{result['accepted']} accepted, {result['reviewed']} reviewed, {result['relabelled']} relabelled, "
            f"{result['unchanged']} unchanged, {len(result['stale'])} stale, {len(result['skipped'])} skipped")


def cmd_pull(args: argparse.Namespace, settings: Settings) -> int:
    from service.labelstudio.sync import pull

    dataset = args.dataset or settings.default_dataset
    result = _run(settings, lambda state: pull(state, dataset, force=args.force, progress=_LogProgress()))
    _print(result)
    print(_summary(result), file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from service.labelstudio.formats import parse_body
    from service.labelstudio.importer import import_tasks
    from service.labelstudio.webhook import user_lookup

    dataset = args.dataset or settings.default_dataset
    content_type = "text/csv" if args.file.suffix.lower() in (".csv", ".tsv") else None
    fmt, tasks = parse_body(args.file.read_bytes(), content_type)
    result = _run(settings, lambda state: import_tasks(
        state, dataset, tasks, fmt=fmt, user=args.user, allow_new_label=args.allow_new_label, force=args.force,
        users=user_lookup(settings)))
    _print(result)
    print(f"{args.file} ({fmt}): {_summary(result)}", file=sys.stderr)
    return 0


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    from service.labelstudio.tasks import config_labels, label_studio_config
    from service.workspace import Workspace

    dataset = args.dataset or settings.default_dataset
    with Workspace(settings) as ws:
        print(label_studio_config(config_labels(ws, dataset)), end="")
    return 0
