"""CLI: ingest, datasets, show."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from embeddings.store import point_id
from service.datasets.ingest import ingest, make_sources
from service.datasets.readers import FORMATS, ColumnMap
from service.errors import NotFound
from service.settings import Settings
from service.workspace import Workspace, dataset_counts


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="read files into a dataset: validate, embed, store")
    p.add_argument("paths", nargs="+", type=Path, help="Humanloop JSON, CSV/TSV, JSONL or Parquet files")
    p.add_argument("--dataset", required=True, help="dataset name (created if new)")
    p.add_argument("--format", choices=FORMATS, help="default: from the file name")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label", help="e.g. 'category' for Banking77")
    p.add_argument("--split-column", default="split")
    p.add_argument("--id-column", default="id", help="default ids: '<file stem>:<row number>'")
    p.add_argument("--split", help="one split for every record of these files (training, validation, testing)")
    p.add_argument("--skip-invalid", action="store_true", help="ingest the good records, write the rejects")
    p.add_argument("--rejects", type=Path, help="where --skip-invalid writes rejects (JSONL)")
    p.add_argument("--defer-index", action="store_true",
                   help="leave the vector index to analyze (when predict and analyze follow: they rewrite every "
                        "point, and analyze rebuilds the index; at 1M this skips a 10-minute build)")
    p.set_defaults(handler=cmd_ingest, writes=True)

    p = sub.add_parser("datasets", help="list datasets with counts by split and label")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_datasets)

    p = sub.add_parser("show", help="show one point")
    p.add_argument("dataset")
    p.add_argument("id", help="record id")
    p.set_defaults(handler=cmd_show)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    columns = ColumnMap(text=args.text_column, label=args.label_column, split=args.split_column,
                        id=args.id_column, fixed_split=args.split)
    sources = make_sources(args.paths, args.format, columns)
    with Workspace(settings) as ws:
        report = ingest(ws.catalog, ws.embedder, args.dataset, sources, skip_invalid=args.skip_invalid,
                        rejects_path=args.rejects, batch_size=settings.ingest_batch_size, show_progress=True,
                        defer_index=args.defer_index,
                        guard=lambda: ws.ensure_space(f"ingest into {args.dataset}"))
    print(report.summary())
    if report.rejects_path:
        print(f"{report.rejected} rejected record(s) written to {report.rejects_path}")
    return 0


def format_counts(name: str, counts: dict) -> str:
    lines = [
        f"{name}: {counts['points']} points, {counts['labelled']} labelled, {counts['unlabelled']} unlabelled, "
        f"{counts['labels']} labels",
        "  splits: " + ", ".join(f"{k} {v}" for k, v in counts["by_split"].items()),
        "  labels: " + ", ".join(f"{k} {v}" for k, v in counts["by_label"].items()),
    ]
    if counts.get("analysis_warning"):
        lines.append("  " + counts["analysis_warning"])
    return "\n".join(lines)


def cmd_datasets(args: argparse.Namespace, settings: Settings) -> int:
    from service.analyses.report import incomplete_message, interrupted_writeback

    with Workspace(settings) as ws:
        result = {name: dataset_counts(ws.collection(name)) for name in ws.catalog.names()}
    for name, counts in result.items():
        marker = interrupted_writeback(settings, name)
        if marker is not None:  # said only when wrong, so the listing of a sound home reads as before
            counts["analysis_warning"] = incomplete_message(name, marker)
    if args.json:
        print(json.dumps(result, indent=2))
    elif not result:
        print("no datasets yet; ingest one with `data-debugger ingest PATH --dataset NAME`")
    else:
        print("\n".join(format_counts(name, counts) for name, counts in result.items()))
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    with Workspace(settings) as ws:
        found = ws.collection(args.dataset).retrieve([point_id(args.id)])
    if not found:
        raise NotFound(f"no point with id {args.id!r} in dataset {args.dataset!r}")
    print(json.dumps({"id": found[0].id, **found[0].payload}, indent=2, default=str))
    return 0
