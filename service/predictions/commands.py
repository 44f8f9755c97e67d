"""CLI: train, predict, models, model-server."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from service.cli import count
from service.datasets.readers import FORMATS, ColumnMap
from service.predictions.metrics import format_confusion, format_report
from service.predictions.models import FAMILIES
from service.predictions.registry import ModelRegistry, ModelVersion
from service.predictions.retry import RetryPolicy
from service.settings import Settings
from service.workspace import Workspace

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a new model version of a dataset's classifier and print its metrics")
    p.add_argument("--dataset", help="dataset name (default: settings.default_dataset)")
    p.add_argument("--from", dest="from_file", type=Path,
                   help="train on this file (Parquet, CSV, JSON/JSONL, Humanloop) instead of the stored dataset")
    p.add_argument("--format", choices=FORMATS, help="format of --from (default: from the file name)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--split-column", default="split")
    p.add_argument("--id-column", default="id")
    p.add_argument("--model", default="auto", choices=["auto", *FAMILIES],
                   help="auto = compare every family on validation and keep the best")
    p.add_argument("--folds", type=count(2), default=5, help="folds of the out-of-fold probabilities")
    p.add_argument("--seed", type=count(0), default=0)
    p.add_argument("--fit-cap", type=count(0), default=None,
                   help="training points per fit of model selection, the curves and the out-of-fold fits "
                   "(a stratified sample above it; the served model always learns from every training point; "
                   "0 = no cap; default 50,000)")
    p.add_argument("--promote", action="store_true", help="mark the new version as production")
    p.add_argument("--json", action="store_true", help="print the version's metrics as JSON")
    p.add_argument("--ingest-if-missing", action="store_true",
                   help="when the dataset is not in the store, ingest the Humanloop export into it first "
                   "(DATA_DEBUGGER_HUMANLOOP_PATH, else downloaded), as `run` does")
    p.add_argument("--if-changed", action="store_true",
                   help="keep the latest version instead of training when it was trained on the same data, "
                   "embeddings and options")
    p.add_argument("--confusion", action="store_true",
                   help="also print the validation and test confusion matrices and write them as PNG images")
    p.set_defaults(handler=cmd_train, writes=True)

    p = sub.add_parser("predict", help="enrich a dataset with predictions from a prediction API")
    p.add_argument("--dataset", help="dataset name (default: settings.default_dataset)")
    p.add_argument("--api-url", help="a server speaking the Humanloop predict contract (default: built-in, "
                   "in-process). The key comes from PREDICTION_API_KEY only")
    p.add_argument("--project", help="project id on that server (default: the dataset name)")
    p.add_argument("--version", help="model version to ask for (default: the server's)")
    p.add_argument("--batch-size", type=int, default=20, help="texts per request, at most 20")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    p.add_argument("--retries", type=int, default=6, help="retries per batch on 429, 5xx and timeouts")
    p.add_argument("--force", action="store_true", help="re-predict points already predicted by that version")
    p.set_defaults(handler=cmd_predict, writes=True)

    p = sub.add_parser("models", help="list model versions with their metrics; promote one")
    p.add_argument("--dataset", help="only this dataset")
    p.add_argument("--promote", metavar="VERSION", help="mark VERSION of --dataset as production")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_models)

    p = sub.add_parser("model-server", help="serve the prediction API alone (no store needed)")
    p.add_argument("--host", help="default: settings.host")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--dataset", help="project of /predict and /intent without one (default: settings)")
    p.add_argument("--no-warm-up", action="store_true", help="load models on first request instead of at start")
    p.add_argument("--require-model", action="store_true",
                   help="exit with an error instead of serving when the default project has no model version")
    p.set_defaults(handler=cmd_model_server)


def _describe(v: ModelVersion) -> str:
    lines = [f"{v.dataset} {v.version}: {v.params.get('model')} {json.dumps(v.params)}",
             f"  trained on {v.meta.get('source')}: {v.sizes}; data sha256 {v.data_hash[:12]}"]
    candidates = v.metrics.get("selection", {}).get("candidates", [])
    if candidates:
        lines.append("  candidates (validation macro-F1 / log loss):")
        for c in candidates:
            lines.append(f"    {c['model']:<10} C={c['C']:<7g} {c['validation_macro_f1']:.3f} / "
                         f"{c['validation_log_loss']:.3f}")
    for split in ("validation", "test"):
        if split in v.metrics:
            lines.append(format_report(split, v.metrics[split]))
    oof = v.metrics.get("oof")
    if oof:
        lines.append(f"out-of-fold ({oof['folds']} folds, n={oof['n']}): accuracy {oof['accuracy']:.3f}, "
                     f"macro-F1 {oof['macro_f1']:.3f}, ECE {oof['ece']:.3f}")
    lines.append(f"saved in {v.path}")
    return "\n".join(lines)


def _ingest_humanloop(ws: Workspace, dataset: str) -> None:
    """The main job's first step: the Humanloop export into `dataset` (found locally, else downloaded)."""
    from service.datasets.ingest import ingest, make_sources
    from service.fetch import humanloop_export

    path = humanloop_export(ws.settings)
    print(f"{dataset} is not in the store yet: ingesting {path}")
    report = ingest(ws.catalog, ws.embedder, dataset, make_sources([path], "humanloop"),
                    batch_size=ws.settings.ingest_batch_size, show_progress=True)
    print(report.summary())


def _confusion(version: ModelVersion, reports_dir: Path) -> str:
    """The validation and test confusion matrices as text, each with the path of its image (PNG)."""
    from service.predictions.plots import confusion_png

    blocks = []
    for split in ("validation", "test"):
        confusion = version.metrics.get(split, {}).get("confusion")
        if confusion:
            image = confusion_png(confusion["matrix"], confusion["labels"],
                                  reports_dir / version.dataset / f"confusion_{version.version}_{split}.png",
                                  f"{version.dataset} {version.version}: {split}")
            blocks.append(f"{format_confusion(split, confusion)}\n  image: {image}")
    return "\n".join(blocks)


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from service.predictions.tracking import promote
    from service.predictions.training import train_version

    dataset = args.dataset or settings.default_dataset
    columns = ColumnMap(text=args.text_column, label=args.label_column, split=args.split_column, id=args.id_column)
    registry = ModelRegistry(settings.models_dir)
    before = registry.latest(dataset)
    with Workspace(settings) as ws:
        if args.ingest_if_missing and args.from_file is None and not ws.catalog.exists(dataset):
            _ingest_humanloop(ws, dataset)
        caps = {} if args.fit_cap is None else {"fit_cap": args.fit_cap}
        version = train_version(ws, dataset, from_file=args.from_file, model=args.model, folds=args.folds,
                                seed=args.seed, fmt=args.format, columns=columns, registry=registry,
                                if_changed=args.if_changed, **caps)
    kept = before is not None and version.version == before.version
    if args.promote:
        promote(settings, registry, dataset, version.version)
    print_trained(args, settings, version, kept)
    return 0


def print_trained(args: argparse.Namespace, settings: Settings, version: ModelVersion, kept: bool) -> None:
    """What `train` prints about the version it trained (or kept), also when it trained through the service."""
    dataset = version.dataset
    if args.json:
        print(json.dumps({**version.summary(), "metrics": version.metrics, "retrained": not kept}, indent=1))
    else:
        if kept:
            print(f"{dataset} {version.version} was trained on the same data and options: not retrained")
        print(_describe(version))
        if args.confusion:
            print(_confusion(version, settings.reports_dir))
        if args.promote:
            print(f"{version.version} is now production")


def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    from service.predictions.client import enrich

    dataset = args.dataset or settings.default_dataset
    with Workspace(settings) as ws:
        report = enrich(ws, dataset, api_url=args.api_url, project=args.project, version=args.version,
                        batch_size=args.batch_size, concurrency=args.concurrency, timeout=args.timeout,
                        policy=RetryPolicy(max_retries=args.retries), force=args.force, show_progress=True)
    print(report.summary())
    return 0


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from service.errors import InvalidInput
    from service.predictions.tracking import promote

    registry = ModelRegistry(settings.models_dir)
    if args.promote:
        if not args.dataset:
            raise InvalidInput("--promote needs --dataset NAME")
        promote(settings, registry, args.dataset, args.promote)
        print(f"{args.dataset} {args.promote} is now production")
    rows = []
    for name in [args.dataset] if args.dataset else registry.datasets():
        default = registry.default_version(name)
        production = registry.production(name)
        for v in registry.versions(name):
            rows.append({**v.summary(), "default": v.version == default, "production": v.version == production})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("no model versions yet; train one with `data-debugger train --dataset NAME`")
    for r in rows:
        val, test = r["metrics"]["validation"], r["metrics"]["test"]
        ci = test.get("macro_f1_ci")
        mark = " [production]" if r["production"] else (" [default]" if r["default"] else "")
        print(f"{r['dataset']} {r['version']}{mark}: {r['model']} C={r['params'].get('C')} "
              f"{r['created_at']}  val macro-F1 {val.get('macro_f1', float('nan')):.3f}  test macro-F1 "
              f"{test.get('macro_f1', float('nan')):.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
    return 0


def cmd_model_server(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from embeddings.cache import CachedEmbedder, EmbeddingCache
    from embeddings.embedder import build_embedder
    from service.errors import NotFound
    from service.predictions.server import create_model_app, warm_up

    # No Workspace: the model server needs no store, so it can run beside a process that holds the store.
    registry = ModelRegistry(settings.models_dir)
    project = args.dataset or settings.default_dataset
    if args.require_model and registry.default_version(project) is None:
        raise NotFound(f"no trained model version of {project!r} in {settings.models_dir}; run make train first "
                       f"(or `data-debugger train --dataset {project}`)")
    embedder = CachedEmbedder(build_embedder(settings), EmbeddingCache(settings.cache_path))
    key = settings.prediction_api_key.get_secret_value() if settings.prediction_api_key else None
    app = create_model_app(registry, embedder, api_key=key, default_project=project)
    if not args.no_warm_up:
        warm_up(registry, embedder)
    host = args.host or settings.host
    url = f"http://{'localhost' if host in ('0.0.0.0', '::') else host}:{args.port}"
    print(f"model server on {url} (docs at /docs)" + ("; X-API-Key required" if key else ""))
    header = ' -H "X-API-Key: $PREDICTION_API_KEY"' if key else ""
    # flush: under `make api` stdout is often a pipe, and the user needs the line before the first request.
    print(f'try: curl -G "{url}/intent"{header} --data-urlencode "query=what is my new credit limit"', flush=True)
    uvicorn.run(app, host=host, port=args.port, log_level="warning")
    return 0
