"""Soak the service with mixed reads and print the server's RSS curve: memory under load must level off.

Starts the real service (`data-debugger serve --no-dashboard`, its own process, embedded Qdrant in a temp
home, fake embeddings so search texts cost no model) on loopback with a generated dataset: N points in 40
intents with predictions, scores, triage, flags, clusters and map coordinates in their payloads and an
analysis report, as predict and analyze would leave them. Then C clients (closed loop: each sends its next
request when the last answer arrived) send a random mix of reads for the given time: point lists with
filters and cursors, issues, disagreements, suggestions, clusters and cluster pages, point details with
neighbours, searches by text and by id, the map (plain and gzipped), per-class metrics, the report. The
server's RSS (VmRSS from /proc) is sampled every `--every` seconds and printed as a curve with the request
count, followed by the growth per quarter of the run: a bounded process grows in its first quarter and then
stays flat.

    .venv/bin/python scripts/soak.py [--points 20000] [--clients 16] [--seconds 180] [--every 10]
        [--mix map=3,clusters=3,...] [--keep-home DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from service.settings import Settings  # noqa: E402
from service.workspace import Workspace  # noqa: E402

DATASET = "soak"
N_LABELS = 40
N_CLUSTERS = 60
WORDS = ("card balance transfer money lost stolen account open close limit pin refund fee payment cash atm "
         "exchange rate currency top up verify identity address change phone app login password").split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_home(home: Path, n: int, seed: int = 0) -> None:
    """The generated dataset in `home`: embedded (fake embedder), with analysis fields and a report."""
    from embeddings.embedder import FakeEmbedder

    settings = Settings(home=home, fake_embeddings=True, store_backend="edge")
    rng = np.random.default_rng(seed)
    labels = [f"intent_{i:02d}" for i in range(N_LABELS)]
    centres = rng.normal(0, 8, (N_CLUSTERS, 2))
    splits = ("training", "validation", "testing")
    with Workspace(settings, embedder=FakeEmbedder()) as ws:
        collection = ws.catalog.create(DATASET, ws.embedder.dim, ws.embedder.name, "synthetic")
        for start in range(0, n, 5000):
            ids = list(range(start, min(n, start + 5000)))
            texts = [" ".join(rng.choice(WORDS, 6)) + f" #{pid}" for pid in ids]
            which = rng.integers(0, N_LABELS, len(ids))
            predicted = np.where(rng.random(len(ids)) < 0.1, rng.integers(0, N_LABELS, len(ids)), which)
            cluster = rng.integers(-1, N_CLUSTERS, len(ids))
            xy = centres[np.maximum(cluster, 0)] + rng.normal(0, 1.2, (len(ids), 2))
            payloads = []
            for j, pid in enumerate(ids):
                label = None if pid % 13 == 0 else labels[which[j]]
                wrong = label is not None and predicted[j] != which[j]
                score = float(rng.uniform(0.5, 1)) if wrong else float(rng.uniform(0, 0.3))
                payloads.append({
                    "record_id": pid, "text": texts[j], "split": splits[pid % 3], "label": label,
                    "prediction": labels[predicted[j]], "confidence": float(rng.uniform(0.3, 1)),
                    "entropy": float(rng.uniform(0, 2)), "mislabel_score": score,
                    "prediction_status": "unlabelled" if label is None else ("incorrect" if wrong else "correct"),
                    "triage": "unlabelled" if label is None else ("label_error" if wrong else "agree"),
                    "flags": ["label_issue"] if wrong else [], "suggested_label": labels[predicted[j]],
                    "suggestion_confidence": float(rng.uniform(0.3, 1)), "knn_agreement": float(rng.random()),
                    "cluster": int(cluster[j]), "x": float(xy[j, 0]), "y": float(xy[j, 1]),
                    "analysis_run": "soak-run", "model_version": "v1", "revision": 0,
                })
            collection.upsert(ids, ws.embedder.embed(texts), payloads)
        collection.flush()
    clusters = [{"id": c, "name": f"cluster {c}", "size": int(n / N_CLUSTERS), "error_rate": float(rng.random()),
                 "issue_rate": float(rng.random() / 2), "purity": float(rng.uniform(0.5, 1)),
                 "dominant_label": labels[c % N_LABELS], "candidate_new_intent": False} for c in range(N_CLUSTERS)]
    report = {"run_id": "soak-run", "created_at": "2026-01-01T00:00:00+00:00", "model_version": "v1",
              "n_points": n, "stages": {}, "clusters": clusters, "summary": {"points": n},
              "per_class": {"testing": {lab: {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 10}
                                        for lab in labels}},
              "confusion": {"testing": {"labels": labels, "matrix": np.eye(N_LABELS, dtype=int).tolist()}},
              "duplicates": {"groups": []}, "leakage": {"pairs": []}, "advice": {"merge": [], "split": []}}
    folder = settings.reports_dir / DATASET
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "analysis.json").write_text(json.dumps(report))


def memory_mb(pid: int) -> dict[str, float]:
    """Resident memory of a process in MB: all (VmRSS), anonymous (heap: where a leak shows) and file-backed
    (the store's memory-mapped segments, which the kernel may drop and read again)."""
    fields = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file"}
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(maxsplit=1)[0] if line else ""
        if key in fields:
            out[fields[key]] = int(line.split()[1]) / 1024
    return out


def rss_mb(pid: int) -> float:
    return memory_mb(pid)["rss"]


def requests_of(n: int, rng: random.Random) -> dict[str, Callable[[], tuple]]:
    """Request makers by kind: each returns (method, path, query params, JSON body, extra headers)."""
    base = f"/api/datasets/{DATASET}"
    labels = [f"intent_{i:02d}" for i in range(N_LABELS)]

    def points():
        params = rng.choice([
            {"label": rng.choice(labels)}, {"triage": "label_error"}, {"split": rng.choice(["training", "testing"])},
            {"cluster": rng.randrange(N_CLUSTERS)}, {"min_score": round(rng.random(), 2)},
            {"status": "incorrect", "label": rng.choice(labels)}, {"text": rng.choice(WORDS)}])
        return "GET", f"{base}/points", {**params, "limit": rng.choice([20, 50, 200])}, None, {}

    return {
        "points": points,
        "point": lambda: ("GET", f"{base}/points/{rng.randrange(n)}", {"k": 10}, None, {}),
        "issues": lambda: ("GET", f"{base}/issues", {"limit": 50}, None, {}),
        "disagreements": lambda: ("GET", f"{base}/disagreements", {"limit": 50}, None, {}),
        "suggestions": lambda: ("GET", f"{base}/suggestions", {"limit": 50}, None, {}),
        "clusters": lambda: ("GET", f"{base}/clusters", {"sort": rng.choice(["error_rate", "size", "id"])}, None, {}),
        "cluster": lambda: ("GET", f"{base}/clusters/{rng.randrange(N_CLUSTERS)}", {"limit": 100}, None, {}),
        "search_text": lambda: ("POST", f"{base}/search", {}, {"text": " ".join(rng.sample(WORDS, 4)), "k": 20}, {}),
        "search_id": lambda: ("POST", f"{base}/search", {}, {"id": rng.randrange(n), "k": 20}, {}),
        "map": lambda: ("GET", f"{base}/map", {}, None, rng.choice([{}, {"Accept-Encoding": "gzip"}])),
        "classes": lambda: ("GET", f"{base}/classes", {}, None, {}),
        "report": lambda: ("GET", f"{base}/report", {}, None, {}),
    }


DEFAULT_MIX = ("points=6,point=3,issues=2,disagreements=1,suggestions=1,clusters=2,cluster=2,search_text=2,"
               "search_id=2,map=2,classes=1,report=1")


async def drive(url: str, n: int, clients: int, seconds: float, every: float, pid: int, mix: dict[str, int],
                seed: int) -> list[tuple[float, int, float]]:
    """Run the clients for `seconds`; return (elapsed s, requests done, RSS MB) every `every` s."""
    import httpx

    rng = random.Random(seed)
    makers = requests_of(n, rng)
    kinds = [k for k, w in mix.items() for _ in range(w)]
    done = {"n": 0, "errors": 0}
    stop = time.monotonic() + seconds

    async def client_loop(http: httpx.AsyncClient) -> None:
        while time.monotonic() < stop:
            method, path, params, body, headers = makers[rng.choice(kinds)]()
            response = await http.request(method, path, params=params, json=body, headers=headers)
            await response.aread()
            done["n"] += 1
            if response.status_code >= 500:
                done["errors"] += 1
                print(f"  {response.status_code} {method} {path}: {response.text[:200]}", flush=True)

    curve: list[tuple[float, int, float]] = []
    began = time.monotonic()

    async def sampler() -> None:
        while time.monotonic() < stop:
            memory = memory_mb(pid)
            point = (time.monotonic() - began, done["n"], memory["rss"])
            curve.append(point)
            print(f"  t={point[0]:6.0f} s  requests {point[1]:>7}  RSS {point[2]:7.1f} MB  (anonymous "
                  f"{memory['anon']:7.1f}, file-backed {memory['file']:6.1f})", flush=True)
            await asyncio.sleep(every)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        await asyncio.gather(sampler(), *(client_loop(http) for _ in range(clients)))
    curve.append((time.monotonic() - began, done["n"], rss_mb(pid)))
    if done["errors"]:
        print(f"  {done['errors']} answers were 5xx", flush=True)
    return curve


def wait_up(url: str, process: subprocess.Popen, limit: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError("the service did not answer /api/health")


def summarise(curve: list[tuple[float, int, float]]) -> None:
    """RSS at each quarter of the run and the growth within each."""
    total = curve[-1][0]
    marks = []
    for q in (0, 0.25, 0.5, 0.75, 1.0):
        marks.append(min(curve, key=lambda p: abs(p[0] - q * total)))
    print("quarter   t (s)   requests   RSS (MB)   growth in quarter (MB)")
    for i, (t, req, rss) in enumerate(marks):
        growth = f"{rss - marks[i - 1][2]:+.1f}" if i else ""
        print(f"{i * 25:>6}%  {t:6.0f}  {req:>9}  {rss:9.1f}   {growth}")
    requests = curve[-1][1]
    print(f"{requests} requests in {total:.0f} s ({requests / total:.0f} req/s); RSS {curve[0][2]:.0f} -> "
          f"{curve[-1][2]:.0f} MB, max {max(p[2] for p in curve):.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--every", type=float, default=10, help="seconds between RSS samples")
    parser.add_argument("--mix", default=DEFAULT_MIX, help="kind=weight,... of " + DEFAULT_MIX)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-home", type=Path, help="build (or reuse) the data home here instead of a temp dir")
    args = parser.parse_args()
    mix = {k: int(w) for k, w in (item.split("=") for item in args.mix.split(","))}

    temp = None
    home = args.keep_home
    if home is None:
        temp = tempfile.TemporaryDirectory(prefix="dd-soak-")
        home = Path(temp.name) / "home"
    if not (home / "reports" / DATASET / "analysis.json").exists():
        started = time.perf_counter()
        build_home(home, args.points, args.seed)
        print(f"generated {args.points} points in {time.perf_counter() - started:.1f} s", flush=True)

    port = free_port()
    env = {**os.environ, "DATA_DEBUGGER_HOME": str(home), "DATA_DEBUGGER_FAKE_EMBEDDINGS": "1",
           "DATA_DEBUGGER_STORE_BACKEND": "edge", "PYTHONPATH": str(REPO)}
    log_path = home.parent / "serve.log"
    log_file = log_path.open("w")
    server = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--no-dashboard", "--host",
                               "127.0.0.1", "--port", str(port)], env=env, cwd=REPO,
                              stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_up(url, server)
        except (RuntimeError, TimeoutError):
            print(log_path.read_text()[-3000:], file=sys.stderr)
            raise
        print(f"service up (pid {server.pid}), RSS {rss_mb(server.pid):.0f} MB; {args.clients} clients for "
              f"{args.seconds:.0f} s, mix {args.mix}", flush=True)
        curve = asyncio.run(drive(url, args.points, args.clients, args.seconds, args.every, server.pid, mix,
                                  args.seed))
        summarise(curve)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log_file.close()
        if temp is not None:
            temp.cleanup()


if __name__ == "__main__":
    main()
