"""CLI: `analyze` (run the analyses on a dataset) and `export` (points, issues, suggestions, clusters, queue)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from service.choices import DEFAULT_STRATEGY, FORMATS, STRATEGIES
from service.cli import count
from service.diskspace import ensure_space
from service.errors import InvalidInput
from service.exports import KINDS, label_studio_config, write_export
from service.settings import Settings
from service.workspace import Workspace

log = logging.getLogger(__name__)


def _params(values: list[str]) -> dict[str, dict[str, Any]]:
    """--param analysis.name=value (value parsed as JSON when it parses, else a string)."""
    out: dict[str, dict[str, Any]] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        analysis, dot, name = key.partition(".")
        if not (sep and dot and analysis and name):
            raise InvalidInput(f"--param {item!r}: write ANALYSIS.PARAMETER=VALUE, e.g. clusters.min_cluster_size=20")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(analysis, {})[name] = value
    return out


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `analyze` and `export` sub-commands."""
    p = sub.add_parser("analyze", help="find label issues, clusters, duplicates, outliers; write them back")
    p.add_argument("--dataset", help="dataset name (default: settings.default_dataset)")
    p.add_argument("--only", nargs="+", metavar="ANALYSIS",
                   help="run these analyses (and what they need); the others keep their last results")
    p.add_argument("--param", action="append", default=[], metavar="ANALYSIS.NAME=VALUE",
                   help="an analysis parameter, e.g. clusters.min_cluster_size=20 (repeatable)")
    p.add_argument("-k", type=count(1), default=15, help="neighbours per point in the shared kNN graph")
    p.add_argument("--knn", default="auto", choices=["auto", "exact", "ivf", "hnsw"],
                   help="auto = exact up to --exact-threshold points, IVF above")
    p.add_argument("--exact-threshold", type=int, default=20_000)
    p.add_argument("--seed", type=count(0), default=0)
    p.add_argument("--version", help="model version (default: production, else the latest)")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.add_argument("--list", action="store_true",
                   help="list the analyses and what each declares (inputs, fields, flags, report parts, output, "
                   "parameters), and exit; with --json as JSON")
    p.set_defaults(handler=cmd_analyze)

    p = sub.add_parser("export", help="write points, issues, suggestions, clusters or the labelling queue")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--dataset", help="dataset name (default: settings.default_dataset)")
    p.add_argument("-o", "--output", default="-", help="file to write ('-' = stdout)")
    p.add_argument("--format", choices=FORMATS, help="default: from the file name, else csv")
    p.add_argument("--strategy", choices=STRATEGIES, default=DEFAULT_STRATEGY, help="queue: how to rank")
    p.add_argument("--limit", type=count(1), help="queue: how many (default 50); issues, suggestions: at most")
    p.add_argument("--seed", type=count(0), default=0, help="queue: seed of the random strategy")
    p.add_argument("--only-flagged", action="store_true", help="issues: only points flagged label_issue")
    p.add_argument("--label-config", type=Path,
                   help="label-studio: also write the matching labelling config (XML) to this file")
    p.set_defaults(handler=cmd_export)


def format_summary(report: dict[str, Any], top: int = 10) -> str:
    """A short text view of a report: counts, stages, and the clusters with the highest error rates."""
    s = report["summary"]
    flags = s.get("flags", {})
    lines = [
        f"{report['dataset']}: analysis {report['run_id']} (model {report['model_version'] or 'none'}), "
        f"{s['points']} points, {s['labelled']} labelled, {s['unlabelled']} unlabelled",
        f"  kNN: {report['knn']['kind']} k={report['knn']['k']}"
        + (f", recall {report['knn']['recall']:.3f}" if report["knn"].get("recall") is not None else ""),
        "  flags: " + ", ".join(f"{k} {v}" for k, v in flags.items()),
        "  triage: " + ", ".join(f"{k} {v}" for k, v in s.get("triage", {}).items()),
        f"  duplicates: {s['duplicate_groups']} groups, {s['conflicting_groups']} conflicting, "
        f"{s['leaked_pairs']} leaked evaluation points",
        f"  clusters: {s['clusters']} (+ {s['noise_points']} noise points), "
        f"{s['candidate_new_intents']} candidate new intents",
    ]
    if report.get("skipped"):
        lines.append("  skipped: " + "; ".join(f"{k} ({v})" for k, v in report["skipped"].items()))
    lines.append("  stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in report["stages"].items()))
    if report["clusters"]:
        lines.append(f"  clusters by error rate (top {top}):")
        for c in report["clusters"][:top]:
            err = f"{c['error_rate']:.2f}" if c["error_rate"] is not None else "n/a"
            new = "  [candidate new intent]" if c["candidate_new_intent"] else ""
            lines.append(f"    #{c['id']:<4} error {err}  size {c['size']:<5} {c['dominant_label'] or '-':<22} "
                         f"{c['name']}{new}")
    return "\n".join(lines)


def format_declarations(schemas: dict[str, dict[str, Any]]) -> str:
    """What each analysis declares, one block per analysis, in run order."""

    def names(values: list[Any]) -> str:
        return ", ".join(map(str, values)) or "-"

    blocks = []
    for name, d in schemas.items():
        fields = [f"{f['name']} ({f['kind']}" + (f", index {f['index']}" if f["index"] else "")
                  + (", column" if f["column"] else "") + ")" for f in d["payload_fields"]]
        params = [f"{p}={spec.get('default')!r}" for p, spec in d["parameters"].get("properties", {}).items()]
        output = d["output"]
        blocks.append("\n".join([
            f"{name}: {d['description']}",
            f"  inputs: needs {names(d['needs'])}; uses if run {names(d['optional'])}",
            f"  payload fields: {names(fields)}",
            f"  flags: {names(d['flags'])}",
            f"  report parts: {names(d['report_parts'])}; summary parts: {names(d['summary_parts'])}",
            "  output: " + (f"{output['type']}({', '.join(output['fields'])})" if output else "-"),
            f"  parameters: {names(params)}",
        ]))
    return "\n".join(blocks)


def cmd_analyze(args: argparse.Namespace, settings: Settings) -> int:
    """`analyze`: run the analyses and print a summary (or the report as JSON)."""
    from service.analyses.registry import analysis_schemas
    from service.analyses.runner import analyze

    if args.list:
        schemas = analysis_schemas()
        print(json.dumps(schemas, indent=1) if args.json else format_declarations(schemas))
        return 0
    dataset = args.dataset or settings.default_dataset
    ensure_space(settings, "data-debugger analyze")
    with Workspace(settings) as ws:
        report = analyze(ws, dataset, analyses=args.only, params=_params(args.param), k=args.k, knn_kind=args.knn,
                         exact_threshold=args.exact_threshold, seed=args.seed, model_version=args.version)
    print(json.dumps(report, indent=1) if args.json else format_summary(report))
    return 0


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    suffix = Path(args.output).suffix.lower()
    if args.output != "-" and suffix == ".json":
        return "label-studio"
    return "jsonl" if suffix in (".jsonl", ".ndjson") else "csv"


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """`export`: write one kind of export to a file or stdout."""
    dataset = args.dataset or settings.default_dataset
    fmt = _format(args)
    options: dict[str, Any] = {"only_flagged": args.only_flagged, "seed": args.seed, "strategy": args.strategy}
    if args.limit is not None:
        options["limit"] = args.limit
    with Workspace(settings) as ws:
        count = write_export(args.kind, ws, dataset, args.output, fmt, **options)
        if args.label_config:
            labels = sorted(ws.collection(dataset).facet("label"))
            args.label_config.write_text(label_studio_config(labels))
    if args.output != "-":
        print(f"{count} {args.kind} row(s) written to {args.output} ({fmt})", file=sys.stderr)
    return 0
