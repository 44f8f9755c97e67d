"""The main job: ingest the default dataset, embed, then (as they exist) train, predict, analyse and serve."""

from __future__ import annotations

import argparse
import logging

from service.datasets.commands import format_counts
from service.datasets.ingest import ingest, make_sources
from service.fetch import humanloop_export
from service.settings import Settings
from service.workspace import Workspace, dataset_counts

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the main job on the Humanloop export: ingest, embed, predict, analyse, serve")
    p.add_argument("--dataset", help="dataset name (default: settings.default_dataset)")
    p.add_argument("--no-serve", action="store_true", help="stop after the analysis instead of serving")
    from service.api.commands import add_serve_arguments

    add_serve_arguments(p)
    p.set_defaults(handler=cmd_run, writes=True)


def run_pipeline(ws: Workspace, dataset: str) -> dict:
    """Each step is idempotent: a second run re-embeds, re-predicts and re-trains nothing unchanged."""
    path = humanloop_export(ws.settings)
    report = ingest(ws.catalog, ws.embedder, dataset, make_sources([path], "humanloop"),
                    batch_size=ws.settings.ingest_batch_size, show_progress=True,
                    guard=lambda: ws.ensure_space(f"ingest into {dataset}"))
    print(report.summary())
    reports: dict = {"ingest": report}

    from service.predictions.client import enrich
    from service.predictions.registry import ModelRegistry
    from service.predictions.training import train_version

    registry = ModelRegistry(ws.settings.models_dir)
    if registry.latest(dataset) is None:
        reports["train"] = train_version(ws, dataset, registry=registry)
        metrics = reports["train"].metrics
        scores = {k: round(metrics[k]["macro_f1"], 3) for k in ("validation", "test") if k in metrics}
        print(f"trained {dataset} {reports['train'].version}: macro-F1 {scores}")
    reports["predict"] = enrich(ws, dataset, show_progress=True)
    print(reports["predict"].summary())

    from service.analyses.commands import format_summary
    from service.analyses.runner import analyze

    reports["analyze"] = analyze(ws, dataset)
    print(format_summary(reports["analyze"]))
    return reports


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    dataset = args.dataset or settings.default_dataset
    with Workspace(settings) as ws:
        run_pipeline(ws, dataset)
        print(format_counts(dataset, dataset_counts(ws.collection(dataset))))
        if not args.no_serve:
            from service.api.commands import serve

            serve(settings, ws, host=args.host, port=args.port, args=args)  # the same workspace: one process
    return 0
