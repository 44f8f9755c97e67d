"""Benchmark the prediction API: p50/p99 latency of POST /predict (1 text) and of a 20-text Humanloop batch,
measured by a load generator against the model server in its own process on loopback, and the throughput
of `predict` (the enrichment client) over a whole dataset.

    DATA_DEBUGGER_HOME=/tmp/me-home .venv/bin/python scripts/bench_predict.py --dataset humanloop

Needs a trained version (data-debugger run, or train). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from embeddings.store import iter_points  # noqa: E402
from service.predictions.client import enrich  # noqa: E402
from service.predictions.registry import ModelRegistry  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.workspace import Workspace  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(dataset: str, port: int) -> subprocess.Popen:
    """The model server as its own process, as it runs in production (`data-debugger model-server`)."""
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "model-server", "--port", str(port),
                             "--dataset", dataset], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"model server exited: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("model server did not start within 120 s")


async def load(url: str, make_request, n: int, concurrency: int, headers: dict) -> tuple[np.ndarray, float]:
    """Send n requests with `concurrency` in flight; client-side latency of each (ms) and the wall time (s)."""
    latencies: list[float] = []
    counter = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30, headers=headers) as client:
        async def worker():
            for i in counter:
                method, path, kwargs = make_request(i)
                started = time.perf_counter()
                response = await client.request(method, path, **kwargs)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"{path}: HTTP {response.status_code}: {response.text[:300]}")
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return np.array(latencies), elapsed


def describe(name: str, ms: np.ndarray, elapsed: float, texts_per_request: int) -> dict:
    row = {"name": name, "requests": len(ms), "p50_ms": float(np.percentile(ms, 50)),
           "p90_ms": float(np.percentile(ms, 90)), "p99_ms": float(np.percentile(ms, 99)),
           "max_ms": float(ms.max()), "requests_per_s": len(ms) / elapsed,
           "texts_per_s": len(ms) * texts_per_request / elapsed}
    print(f"{name:<44} n={row['requests']:<5} p50 {row['p50_ms']:6.2f} ms  p90 {row['p90_ms']:6.2f} ms  "
          f"p99 {row['p99_ms']:6.2f} ms  max {row['max_ms']:7.2f} ms  {row['requests_per_s']:7.1f} req/s  "
          f"{row['texts_per_s']:7.1f} texts/s")
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--requests", type=int, default=1000, help="requests per 1-text run")
    parser.add_argument("--batches", type=int, default=200, help="requests per 20-text run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    settings = Settings()
    dataset = args.dataset or settings.default_dataset
    key = settings.prediction_api_key.get_secret_value() if settings.prediction_api_key else None
    headers = {"X-API-Key": key} if key else {}

    with Workspace(settings) as ws:
        texts = [p.payload["text"] for page in iter_points(ws.collection(dataset)) for p in page]
    version = ModelRegistry(settings.models_dir).get(dataset)
    print(f"dataset {dataset}: {len(texts)} texts; serving {version.version} ({version.params['model']}, "
          f"needs embeddings: {version.needs_vectors}); {os.cpu_count()} CPUs")
    rng = random.Random(0)
    # Unseen texts too: the embedding cache would otherwise answer every dataset text without the model.
    fresh = [f"{rng.choice(texts)} {rng.choice(['please', 'now', 'today', 'thanks'])} {i}" for i in range(5000)]

    port = _free_port()
    proc = start_server(dataset, port)
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        asyncio.run(load(url, lambda i: ("POST", "/predict", {"json": {"id": i, "text": texts[i % len(texts)]}}),
                         100, 1, headers))  # warm-up: connections, code paths
        for c in args.concurrency:
            for label, pool in (("dataset texts", texts), ("unseen texts", fresh)):
                ms, elapsed = asyncio.run(load(url, lambda i, pool=pool: (
                    "POST", "/predict", {"json": {"id": i, "text": pool[i % len(pool)]}}), args.requests, c, headers))
                rows.append(describe(f"POST /predict 1 text, {label}, c={c}", ms, elapsed, 1))
            for label, pool in (("dataset texts", texts), ("unseen texts", fresh)):
                def batch(i, pool=pool):
                    start = (i * 20) % (len(pool) - 20)
                    return ("POST", f"/projects/{dataset}/predict",
                            {"json": {"data": [{"text": t} for t in pool[start:start + 20]], "n_best": 5}})
                ms, elapsed = asyncio.run(load(url, batch, args.batches, c, headers))
                rows.append(describe(f"POST /projects/../predict 20 texts, {label}, c={c}", ms, elapsed, 20))
        with Workspace(settings) as ws:
            report = enrich(ws, dataset, api_url=url, force=True)
            print(f"predict over loopback HTTP: {report.summary()}")
            rows.append({"name": "predict (HTTP, model server process)", "points": report.predicted,
                         "seconds": report.seconds, "points_per_s": report.predicted / report.seconds})
            report = enrich(ws, dataset, force=True)
            print(f"predict in-process (ASGI): {report.summary()}")
            rows.append({"name": "predict (in-process ASGI)", "points": report.predicted,
                         "seconds": report.seconds, "points_per_s": report.predicted / report.seconds})
    finally:
        proc.terminate()
        proc.wait(10)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
