"""CLI of the improvement loop: retrain (challenger, gate, promote, re-enrich, re-analyse) and evaluate
(a version's figures on the labels as ingested and as reviewed)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from service.cli import count
from service.predictions.models import FAMILIES
from service.settings import Settings
from service.workspace import Workspace


def fraction(raw: str) -> float:
    """An argparse type: a number in [0, 1]."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retrain", help="train a challenger on today's labels; promote it if the gate agrees, then "
                       "re-predict and re-analyse")
    p.add_argument("--dataset", help="dataset name (default: settings.default_dataset)")
    p.add_argument("--dry-run", action="store_true", help="what-if: train and compare, print the verdict, write "
                   "nothing but the candidate version (not promoted)")
    p.add_argument("--force", action="store_true", help="train even when no label changed since the champion")
    p.add_argument("--tolerance", type=fraction, help="how much worse accuracy or macro-F1 may be and still promote "
                   "(default: DATA_DEBUGGER_GATE_TOLERANCE, 0.01)")
    p.add_argument("--min-cluster-size", type=count(1), help="clusters with fewer compared points are not judged "
                   "(default: DATA_DEBUGGER_GATE_MIN_CLUSTER_SIZE, 20)")
    p.add_argument("--max-cluster-regression", type=fraction, help="largest rise of a cluster's error rate "
                   "allowed (default: DATA_DEBUGGER_GATE_MAX_CLUSTER_REGRESSION, 0.10)")
    p.add_argument("--model", default="auto", choices=["auto", *FAMILIES])
    p.add_argument("--folds", type=count(2), default=5)
    p.add_argument("--seed", type=count(0), default=0)
    p.add_argument("--no-analyze", action="store_true", help="after a promotion, re-predict but do not re-analyse")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    p.set_defaults(handler=cmd_retrain, writes=True)

    p = sub.add_parser("evaluate", help="a version's validation and test figures on the labels as ingested and as "
                       "reviewed, and the evaluation points to review first")
    p.add_argument("--dataset", help="dataset name (default: settings.default_dataset)")
    p.add_argument("--version", help="default: production, else the latest")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_evaluate)


def options_from(args: argparse.Namespace, settings: Settings):
    """RetrainOptions from the flags, defaults from the settings."""
    from service.predictions.gate import GatePolicy
    from service.predictions.retrain import RetrainOptions

    def pick(flag: Any, default: Any) -> Any:
        return default if flag is None else flag

    policy = GatePolicy(tolerance=pick(args.tolerance, settings.gate_tolerance),
                        min_cluster_size=pick(args.min_cluster_size, settings.gate_min_cluster_size),
                        max_cluster_regression=pick(args.max_cluster_regression, settings.gate_max_cluster_regression),
                        seed=args.seed)
    return RetrainOptions(policy=policy, dry_run=args.dry_run, force=args.force, model=args.model, folds=args.folds,
                          seed=args.seed, analyze=not args.no_analyze, trigger="cli")


def _progress(**kw: Any) -> None:
    print(f"retrain: {kw.get('stage')}", file=sys.stderr, flush=True)


def cmd_retrain(args: argparse.Namespace, settings: Settings) -> int:
    from service.predictions.retrain import retrain

    dataset = args.dataset or settings.default_dataset
    with Workspace(settings) as ws:
        result = retrain(ws, dataset, options_from(args, settings), report=_progress)
    if args.json:
        print(json.dumps(result, indent=1, default=str))
        return 0
    if result["status"] in ("unchanged", "resumed"):
        print(result["message"])
        return 0
    print(f"{dataset}: challenger {result['challenger']} vs champion {result['champion'] or '(none)'}: "
          f"{result['status']}")
    print(result["summary"])
    for who, report in (result.get("evaluation") or {}).items():
        print(describe_evaluation(report, f"{who} {report['version']}"))
    return 0


def describe_evaluation(report: dict[str, Any], title: str) -> str:
    lines = []
    for split, s in report["splits"].items():
        ing, rev = s["as_ingested"], s["as_reviewed"]
        lines.append(f"{title} {split} (n={s['n']}, {s['corrected']} label(s) corrected): accuracy "
                     f"{ing['accuracy']:.3f} as ingested, {rev['accuracy']:.3f} as reviewed; macro-F1 "
                     f"{ing['macro_f1']:.3f} / {rev['macro_f1']:.3f}. {s['note']}")
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from service.predictions.evaluation import honest_evaluation
    from service.predictions.registry import ModelRegistry

    dataset = args.dataset or settings.default_dataset
    registry = ModelRegistry(settings.models_dir)
    with Workspace(settings) as ws:
        version = registry.get(dataset, args.version)
        report = honest_evaluation(ws, dataset, version)
    if args.json:
        print(json.dumps(report, indent=1, default=str))
        return 0
    print(describe_evaluation(report, f"{dataset} {version.version}"))
    for split, s in report["splits"].items():
        for suspect in s["suspects"][:10]:
            print(f"  review first ({split}): {suspect['record_id']} {suspect['text'][:60]!r} labelled "
                  f"{suspect['label']}, model says {suspect['prediction']}")
    return 0
