"""Load-test similarity search over HTTP on loopback: p50/p99 latency and requests/s of
POST /api/datasets/{d}/search by point id and by free text, at 2.3k and 100k points.

Data: the Humanloop export (2,327 points) embedded with the real all-MiniLM-L6-v2 model; the 100k
dataset is synthetic: every Humanloop vector repeated with Gaussian noise (sigma 0.02 per dimension, then
re-normalised), its text suffixed with "#n", labels and splits copied, and the HNSW index built
(collection.optimize()). The service runs as its own process (`data-debugger serve --no-dashboard`);
the load generator runs here: N concurrent clients, each sending its next request as soon as the last
answer arrived (closed loop), for a fixed time. By-id queries pick random points; by-text queries are new
texts (random 3-7 word mixes of the data's vocabulary), so every one is embedded by the model.

    .venv/bin/python scripts/bench_search.py [--seconds 30] [--clients 16] [--sizes 2327,100000]
        [--client raw|httpx] [--home DIR] [--rate 100 ...]

The closed loop measures saturation: with 16 requests always in flight, latency = 16 / throughput (Little's
law). `--rate R` adds an open-loop run at R requests/s (Poisson arrivals, latency from the scheduled
arrival), which shows the latency a client sees below saturation.

`--client raw` (default) is a minimal asyncio HTTP/1.1 keep-alive client, so that on a 2-core machine
the load generator takes as little CPU from the server as possible; `--client httpx` uses one
httpx.AsyncClient per simulated client.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from embeddings.store import load_all  # noqa: E402
from service.datasets.ingest import ingest, make_sources  # noqa: E402
from service.settings import DEFAULT_HUMANLOOP_PATH, Settings  # noqa: E402
from service.workspace import Workspace  # noqa: E402

BASE = "humanloop"


def build_data(home: Path, sizes: list[int]) -> dict[int, str]:
    """Datasets of the asked sizes (names by size); reused when the home already has them."""
    settings = Settings(home=home, store_backend="edge")
    names = {}
    with Workspace(settings) as ws:
        if not ws.catalog.exists(BASE):
            started = time.perf_counter()
            ingest(ws.catalog, ws.embedder, BASE, make_sources([DEFAULT_HUMANLOOP_PATH], "humanloop"))
            print(f"ingested {BASE} with the real model in {time.perf_counter() - started:.1f} s", flush=True)
        base = ws.collection(BASE)
        ids, payloads, vectors = load_all(base, with_vectors=True)
        for size in sizes:
            if size <= len(ids):
                names[size] = BASE
                continue
            name = f"synthetic-{size}"
            names[size] = name
            if ws.catalog.exists(name):
                continue
            started = time.perf_counter()
            collection = ws.catalog.create(name, ws.embedder.dim, ws.embedder.name, "synthetic")
            rng = np.random.default_rng(0)
            batch = 2000
            for start in range(0, size, batch):
                rows = np.arange(start, min(start + batch, size))
                src = rows % len(ids)
                noisy = vectors[src] + rng.normal(0, 0.02, size=(len(rows), vectors.shape[1])).astype(np.float32)
                noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
                out = []
                for r, s in zip(rows, src, strict=True):
                    p = payloads[s]
                    out.append({"record_id": int(r), "text": f"{p['text']} #{r}", "label": p.get("label"),
                                "split": p.get("split"), "prediction": p.get("prediction")})
                collection.upsert([int(r) for r in rows], noisy, out)
            collection.flush()
            built = time.perf_counter()
            collection.optimize()
            print(f"built {name}: {size} points in {built - started:.1f} s, HNSW index in "
                  f"{time.perf_counter() - built:.1f} s", flush=True)
        vocabulary = sorted({w for p in payloads for w in (p.get("text") or "").split() if w.isalpha()})
    (home / "bench-vocabulary.json").write_text(json.dumps(vocabulary))
    return names


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "DATA_DEBUGGER_HOME": str(home)}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "data-debugger"), "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--no-dashboard"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    import httpx

    deadline = time.time() + 300
    while time.time() < deadline:  # up, and the query model loaded (it loads in the background)
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).json().get("embedder_ready"):
                return proc
        except (httpx.HTTPError, ValueError):
            pass
        if proc.poll() is not None:
            raise SystemExit(f"server died: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.5)
    raise SystemExit("server did not start")


class RawClient:
    """HTTP/1.1 POST over one keep-alive connection; just enough protocol for this server."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class HttpxClient:
    def __init__(self, port: int):
        import httpx

        self._client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        response = await self._client.post(path, content=body, headers={"Content-Type": "application/json"})
        return response.status_code, response.content

    async def close(self) -> None:
        await self._client.aclose()


def latency_summary(latencies: list[float], seconds: float) -> dict:
    """Requests, requests/s and the latency percentiles (ms; None when nothing was measured)."""
    latencies = sorted(latencies)
    n = len(latencies)
    return {"requests": n, "rps": n / seconds,
            "p50_ms": 1000 * latencies[n // 2] if n else None,
            "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))] if n else None,
            "p999_ms": 1000 * latencies[min(n - 1, int(n * 0.999))] if n else None,
            "max_ms": 1000 * latencies[-1] if n else None,
            "mean_ms": 1000 * statistics.fmean(latencies) if n else None}


async def drive(port: int, dataset: str, kind: str, clients: int, seconds: float, make_body, client_cls,
                warmup: float = 2.0) -> dict:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + warmup + seconds
    measure_from = time.perf_counter() + warmup

    async def user(seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        client = client_cls(port)
        try:
            while True:
                body = json.dumps(make_body(rng)).encode()
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    return
                # A request started in the window counts however late it ends (no survivorship bias).
                status, _ = await client.post(f"/api/datasets/{dataset}/search", body)
                t1 = time.perf_counter()
                if status != 200:
                    errors += 1
                elif t0 >= measure_from:
                    latencies.append(t1 - t0)
        finally:
            await client.close()

    began = time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(clients)))
    elapsed = time.perf_counter() - max(began, measure_from)
    return {"kind": kind, "errors": errors, **latency_summary(latencies, elapsed)}


async def drive_open(port: int, dataset: str, kind: str, clients: int, seconds: float, rate: float, make_body,
                     client_cls, warmup: float = 2.0) -> dict:
    """Open loop: requests arrive at `rate`/s (Poisson) whether or not earlier ones finished, over at most
    `clients` connections; latency counts from the scheduled arrival, so queueing is not hidden."""
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(clients):
        pool.put_nowait(client_cls(port))
    rng = random.Random(0)
    latencies: list[float] = []
    errors = 0
    begin = time.perf_counter()
    measure_from, stop_at = begin + warmup, begin + warmup + seconds

    async def one(scheduled: float, body: bytes) -> None:
        nonlocal errors
        client = await pool.get()
        try:
            status, _ = await client.post(f"/api/datasets/{dataset}/search", body)
        finally:
            pool.put_nowait(client)
        if status != 200:
            errors += 1
        elif scheduled >= measure_from:
            latencies.append(time.perf_counter() - scheduled)

    tasks = []
    at = begin
    while True:
        at += rng.expovariate(rate)
        if at >= stop_at:
            break
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(at, json.dumps(make_body(rng)).encode())))
    await asyncio.gather(*tasks)
    while not pool.empty():
        await pool.get_nowait().close()
    return {"kind": kind, "mode": f"open {rate:g}/s", "errors": errors, **latency_summary(latencies, seconds)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--sizes", default="2327,100000")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--home", type=Path, help="reuse a data directory (default: a fresh temp dir)")
    parser.add_argument("--kinds", default="id,text")
    parser.add_argument("--rate", type=float, action="append", default=[],
                        help="also run open loop at this many requests/s (repeatable), e.g. --rate 100")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    home = args.home or Path(tempfile.mkdtemp(prefix="dd-bench-search-"))
    names = build_data(home, sizes)
    vocabulary = json.loads((home / "bench-vocabulary.json").read_text())
    port = free_port()
    server = start_server(home, port)
    client_cls = RawClient if args.client == "raw" else HttpxClient
    results = []
    try:
        for size in sizes:
            dataset = names[size]

            ids_of_base = _base_ids(port) if dataset == BASE else []

            def by_id(rng: random.Random, size=size, dataset=dataset, base_ids=ids_of_base) -> dict:
                pid = rng.randrange(size) if dataset != BASE else rng.choice(base_ids)
                return {"id": pid, "k": args.k}

            def by_text(rng: random.Random) -> dict:
                return {"text": " ".join(rng.choice(vocabulary) for _ in range(rng.randint(3, 7))), "k": args.k}

            for kind in args.kinds.split(","):
                make = by_id if kind == "id" else by_text
                modes: list[float | None] = [None, *args.rate]
                for rate in modes:
                    if rate is None:
                        mode = "closed"
                        job = drive(port, dataset, kind, args.clients, args.seconds, make, client_cls)
                    else:
                        mode = f"open {rate:g}/s"
                        job = drive_open(port, dataset, kind, args.clients, args.seconds, rate, make, client_cls)
                    # The load generator's own collector pauses (up to 9 ms seen) would count as server latency.
                    gc.collect()
                    gc.disable()
                    try:
                        result = asyncio.run(job)
                    finally:
                        gc.enable()
                    result.update(points=size, mode=mode)
                    results.append(result)
                    print(f"{size:>7} points  by {kind:<4}  {mode:<12} {result['rps']:7.0f} req/s  "
                          f"p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms  "
                          f"p99.9 {result['p999_ms']:6.1f} ms  "
                          f"({result['requests']} requests, {result['errors']} errors)", flush=True)
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(30)
    print(json.dumps({"clients": args.clients, "seconds": args.seconds, "client": args.client,
                      "cpus": os.cpu_count(), "results": results}, indent=1))
    return 0


def _base_ids(port: int) -> list[int]:
    import httpx

    ids = httpx.get(f"http://127.0.0.1:{port}/api/datasets/{BASE}/map", timeout=60).json()["ids"]
    return ids


if __name__ == "__main__":
    sys.exit(main())
