"""The whole pipeline at N points, stage by stage as a user runs it: seconds and peak memory of each.

Data: N unique, realistic texts with labels and splits, made from the real Banking77 and Humanloop texts by
scripts/synthetic_texts.py (amounts, card types, dates, openings, closings, typos; see its docstring), written
as one Parquet file. Every stage runs the `data-debugger` command a user would, with DATA_DEBUGGER_HOME a
fresh folder under /tmp, as its own process; its peak memory is that process's max RSS (wait4). The service
(`data-debugger serve`, API + dashboard in one process) is started once, after analyze; its peak memory is
its VmHWM after each stage that uses it.

Stages:
  embed model      the embedding model alone on a sample of unseen texts (texts/s; model-bound, reported apart)
  fill cache       untimed, at nice 5 (19 starved it on the shared machine): the embedding cache filled so
                   that ingest finds every text in it.
                   --fill real embeds every text with the model; --fill derived (default: the model would take
                   hours at 1M on 2 cores) embeds the ~15k real base texts with the model and gives each
                   variant its base's vector plus noise (sigma 0.3 / sqrt(d), re-normalised), as
                   scripts/bench_analyses.py does, so the vectors keep the real data's intent structure.
  ingest           data-debugger ingest --defer-index (validate, cache look-ups, upsert), cache warm: predict and
                   analyze follow, and analyze builds the HNSW index once after its write-back (--index-at-ingest:
                   ingest builds it too, as a user who searches before predicting would)
  train            data-debugger train --promote (the default: every family compared, 5-fold OOF; selection,
                   curves and OOF fits on a stratified sample of at most 50,000 training points, the served model
                   on all of them)
  predict          data-debugger predict, in-process; then over HTTP against `data-debugger model-server`
                   (--force); `predict (in-process, before)` repeats it the old way (20-text requests through
                   the ASGI app) for the before/after figure
  analyze          data-debugger analyze, including the write-back of every point's payload
  service start    data-debugger serve until /api/health answers with the query model ready
  map              first render of the dashboard's map in headless Chromium, all N points represented
                   (scripts/bench_map.py's measurement)
  search           POST /search by id and by text, 16 concurrent clients, closed loop (scripts/bench_search.py)
  pages            GET /issues and /points with filters (label, split, triage / status), p99 over --page-clients

Figures go to --json after every stage (a run cut short keeps what it measured); the Markdown table is
printed at the end. `uptime`'s load averages are recorded at each stage: the machine may be shared.

    .venv/bin/python scripts/bench_scale.py --n 100000 --json /tmp/scale-100k.json
    nohup .venv/bin/python scripts/bench_scale.py --n 1000000 --json /tmp/scale-1m.json > /tmp/scale-1m.log 2>&1 &
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DATASET = "scale"
TARGETS = {"after embedding": "< 30 min", "peak memory": "< 12 GB", "search by id p99": "< 20 ms",
           "search by text p99": "< 50 ms", "page p99": "< 200 ms"}


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def cpu_flags() -> str:
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    return "AVX-512 BF16" if "avx512_bf16" in flags else ("AVX2" if "avx2" in flags else "neither AVX2 nor AVX-512")


def vm_hwm_mb(pid: int) -> float | None:
    """Peak resident memory of a running process, in MB (VmHWM)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Bench:
    """Runs the stages, records each one's figures and writes them out as it goes."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.home = args.home
        self.env = {**os.environ, "DATA_DEBUGGER_HOME": str(self.home), "PYTHONPATH": str(REPO),
                    "TOKENIZERS_PARALLELISM": "false"}
        self.cli = str(Path(sys.executable).parent / "data-debugger")
        self.results: dict[str, Any] = {"n": args.n, "cpu": cpu_model(), "simd": cpu_flags(), "cores": os.cpu_count(),
                                        "home": str(self.home), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                                                          time.gmtime()),
                                        "stages": {}}
        self.service: subprocess.Popen | None = None
        if args.resume and args.json and args.json.exists():
            self.results["stages"] = json.loads(args.json.read_text())["stages"]

    def record(self, stage: str, **figures: Any) -> None:
        figures["load"] = load_average()
        self.results["stages"][stage] = figures
        shown = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
        print(f"[{time.strftime('%H:%M:%S')}] {stage}: {shown}", flush=True)
        if self.args.json:
            self.args.json.write_text(json.dumps(self.results, indent=1))

    def run(self, stage: str, argv: list[str], nice: int = 0, **extra: Any) -> dict[str, Any]:
        """Run a command to its end; record its seconds and peak RSS."""
        print(f"[{time.strftime('%H:%M:%S')}] {stage}: {' '.join(argv)}", flush=True)
        log = (self.home / f"{stage.replace(' ', '_').replace('(', '').replace(')', '').replace(',', '')}.log")
        started = time.perf_counter()
        with log.open("w") as fh:
            proc = subprocess.Popen(argv, env=self.env, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO,
                                    preexec_fn=(lambda: os.nice(nice)) if nice else None)
            _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        tail = log.read_text()[-1500:]
        if proc.returncode != 0:
            self.record(stage, seconds=seconds, failed=proc.returncode, tail=tail[-600:])
            raise SystemExit(f"{stage} failed ({proc.returncode}):\n{tail}")
        # CPU seconds beside the wall: on a shared machine the wall time is mostly waiting for a core.
        figures = {"seconds": seconds, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024,
                   **extra}
        if stage.startswith("predict"):
            figures["points_per_s"] = self.args.n / seconds
        self.record(stage, **figures)
        return figures

    def data(self) -> Path:
        path = self.home / f"{DATASET}.parquet"
        started = time.perf_counter()
        from scripts.synthetic_texts import write_parquet

        base_of = write_parquet(path, self.args.n, self.args.seed)
        (self.home / "base_of.json").write_text(json.dumps(base_of))
        self.record("make texts", seconds=time.perf_counter() - started, mb=path.stat().st_size / 1e6)
        return path

    def child(self, stage: str, task: str, *extra: str, nice: int = 0) -> dict[str, Any]:
        return self.run(stage, [sys.executable, __file__, "--child", task, "--n", str(self.args.n),
                                "--home", str(self.home), "--seed", str(self.args.seed), *extra], nice=nice)

    def embed_model(self) -> None:
        self.child("embed model", "embed-sample", "--embed-sample", str(self.args.embed_sample))
        stage = self.results["stages"]["embed model"]
        figures = json.loads((self.home / "embed-sample.json").read_text())
        stage.update(figures)
        self.record("embed model", **stage)

    def cli_stage(self, stage: str, *argv: str, nice: int = 0) -> dict[str, Any]:
        return self.run(stage, [self.cli, *argv], nice=nice)

    # -- the service ----------------------------------------------------------------------------------------
    def start_service(self) -> None:
        import httpx

        from scripts.bench_map import free_port

        self.api_port, self.dash_port = free_port(), free_port()
        started = time.perf_counter()
        self.service = subprocess.Popen(
            [self.cli, "serve", "--port", str(self.api_port), "--dashboard-port", str(self.dash_port)],
            env=self.env, stdout=(self.home / "serve.log").open("w"), stderr=subprocess.STDOUT, cwd=REPO,
            start_new_session=True)
        up = ready = None
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and ready is None:
            try:
                health = httpx.get(f"{self.api}/api/health", timeout=10)
                if health.status_code == 200:
                    up = up or time.perf_counter() - started
                    if health.json().get("embedder_ready"):
                        ready = time.perf_counter() - started
            except httpx.HTTPError:
                pass
            if self.service.poll() is not None:
                raise SystemExit(f"serve exited: {(self.home / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.2)
        _wait_http(f"http://127.0.0.1:{self.dash_port}/", self.service, 900)  # the dashboard starts after the API
        self.record("service start", seconds=ready, api_up_s=up, dashboard_up_s=time.perf_counter() - started,
                    peak_mb=vm_hwm_mb(self.service.pid))

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def stop_service(self) -> None:
        if self.service is not None and self.service.poll() is None:
            os.killpg(self.service.pid, signal.SIGINT)
            try:
                self.service.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.service.pid, signal.SIGKILL)
                self.service.wait()

    def service_peak(self) -> float | None:
        return vm_hwm_mb(self.service.pid) if self.service is not None else None

    def map_render(self) -> None:
        from scripts.bench_map import first_render, headless_chromium

        browser, profile = headless_chromium()
        try:
            url = f"http://127.0.0.1:{self.dash_port}/?dataset={DATASET}"
            browser.get(f"http://127.0.0.1:{self.dash_port}/")
            assert self.service is not None
            pid = self.service.pid
            first = first_render(browser, url, self.args.n, "webgl", pid)
            again = first_render(browser, url, self.args.n, "webgl", pid)
            canvas = first_render(browser, url, self.args.n, "canvas", pid)
        finally:
            browser.quit()
            shutil.rmtree(profile, ignore_errors=True)
        self.record("map first render", seconds=first, again_s=again, canvas_s=canvas,
                    service_peak_mb=self.service_peak())

    def search(self) -> None:
        from scripts.bench_search import RawClient, drive

        vocabulary = sorted({w for t in _texts(self.home, 20_000) for w in t.split() if w.isalpha()})
        n, k = self.args.n, 10

        def by_id(rng: random.Random) -> dict:
            return {"id": rng.randrange(n), "k": k}

        def by_text(rng: random.Random) -> dict:
            return {"text": " ".join(rng.choice(vocabulary) for _ in range(rng.randint(3, 7))), "k": k}

        # The first text query loads the service's query encoder (ONNX Runtime beside the torch model): timed on
        # its own, so that the closed loop below measures searches and not that one-time load.
        import httpx

        started = time.perf_counter()
        httpx.post(f"{self.api}/api/datasets/{DATASET}/search", json={"text": "card payment declined", "k": k},
                   timeout=600).raise_for_status()
        self.results["first text search s"] = time.perf_counter() - started
        for kind, make in (("id", by_id), ("text", by_text)):
            gc.collect()
            gc.disable()  # the load generator's own collector pauses would count as server latency
            try:
                out = asyncio.run(drive(self.api_port, DATASET, kind, self.args.clients, self.args.seconds, make,
                                        RawClient))
            finally:
                gc.enable()
            self.record(f"search by {kind}", p50_ms=out["p50_ms"], p99_ms=out["p99_ms"], rps=out["rps"],
                        requests=out["requests"], errors=out["errors"], clients=self.args.clients,
                        service_peak_mb=self.service_peak())

    def pages(self) -> None:
        import httpx

        labels = sorted({r for r in _labels(self.home) if r})
        triages = httpx.get(f"{self.api}/api/datasets/{DATASET}/report", timeout=120).json()
        triages = sorted((triages.get("triage") or {}).get("counts", {}) or ["confident", "ambiguous"])

        def issues(rng: random.Random) -> tuple[str, dict]:
            params: dict[str, Any] = {"label": rng.choice(labels), "limit": 50}
            if rng.random() < 0.5:
                params["split"] = rng.choice(["training", "validation", "testing"])
            return f"/api/datasets/{DATASET}/issues", params

        def points(rng: random.Random) -> tuple[str, dict]:
            params: dict[str, Any] = {"label": rng.choice(labels), "split": rng.choice(["training", "testing"]),
                                      "limit": 50}
            if rng.random() < 0.5:
                params["status"] = rng.choice(["correct", "incorrect"])
            else:
                params["min_score"] = 0.5
            return f"/api/datasets/{DATASET}/points", params

        for name, make in (("issues page", issues), ("points page", points)):
            out = asyncio.run(drive_get(self.api, make, self.args.page_clients, self.args.page_seconds))
            self.record(name, **out, clients=self.args.page_clients, service_peak_mb=self.service_peak())

    def table(self) -> str:
        """The stages as a Markdown table."""
        rows = ["| stage | time | peak memory | load (1/5/15 min) |", "|---|---|---|---|"]
        for stage, f in self.results["stages"].items():
            if f.get("p99_ms") is not None:
                time_s = f"p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms ({f.get('rps', 0):.0f} req/s, " \
                         f"{f.get('clients')} clients)"
            elif "texts_per_s" in f:
                time_s = f"{f['texts_per_s']:.0f} texts/s ({f['sample']} texts)"
            elif f.get("seconds") is not None:
                time_s = f"{f['seconds']:.1f} s" + "".join(
                    f", {k.removesuffix('_s').replace('_', ' ')} {v:.1f} s" for k, v in f.items()
                    if k.endswith("_s") and k != "points_per_s" and v)
                if f.get("points_per_s"):
                    time_s += f" ({f['points_per_s']:.0f} points/s)"
            else:
                time_s = "-"
            mb = f.get("peak_mb") or f.get("service_peak_mb")
            memory = f"{mb / 1024:.2f} GB" + (" (service)" if "service_peak_mb" in f else "") if mb else "-"
            rows.append(f"| {stage} | {time_s} | {memory} | {f.get('load', '')} |")
        total = self.results.get("after_embedding_s")
        if total is not None:
            rows.append(f"| **after embedding, total** | **{total / 60:.1f} min** | | |")
        return "\n".join(rows)

    def done(self, stage: str) -> bool:
        """Whether a resumed run (--resume) already measured `stage`."""
        figures = self.results["stages"].get(stage)
        if figures is not None and "failed" not in figures:
            print(f"{stage}: measured before, kept", flush=True)
            return True
        return False

    def main(self) -> None:
        a = self.args
        stages = self.results["stages"]
        path = self.home / f"{DATASET}.parquet"
        if not self.done("make texts"):
            self.data()
        if not self.done("embed model"):
            self.embed_model()
        if not self.done("fill cache"):
            seed = ["--base-cache", str(a.base_cache)] if a.base_cache else []
            self.child("fill cache", "fill-cache", "--fill", a.fill, *seed, nice=5)
            stages["fill cache"]["untimed"] = "nice 5, not counted"
        if a.stop_after == "fill cache":
            return
        if not self.done("ingest"):
            defer = () if a.index_at_ingest else ("--defer-index",)
            self.cli_stage("ingest", "ingest", "--dataset", DATASET, str(path), *defer)
        if a.stop_after == "ingest":
            return
        if not self.done("train"):
            source = []
            if a.train_sample:  # a subset of the same points, as a user would when the whole is too slow
                import pyarrow.parquet as pq

                sample = self.home / "train-sample.parquet"
                pq.write_table(pq.read_table(path).slice(0, a.train_sample), sample)
                source = ["--from", str(sample)]
            self.cli_stage("train", "train", "--dataset", DATASET, "--promote", *source, *a.train_args.split())
            if a.train_sample:
                stages["train"]["trained_on"] = a.train_sample
                self.record("train", **stages["train"])
        self.predict_stages()
        if not self.done("analyze"):
            self.cli_stage("analyze", "analyze", "--dataset", DATASET)
        # A user predicts once, in-process or through their own prediction API: the total counts the in-process
        # run; the HTTP one is reported beside it.
        counted = ("ingest", "train", "predict (in-process)", "analyze")
        self.results["after_embedding_s"] = sum(stages[s]["seconds"] for s in counted if s in stages)
        try:
            self.start_service()
            self.results["after_embedding_s"] += stages["service start"]["seconds"]
            if not a.no_browser:
                self.map_render()
            self.search()
            self.pages()
        finally:
            self.stop_service()
        peaks = [f.get("peak_mb") or f.get("service_peak_mb") or 0 for s, f in stages.items() if s != "fill cache"]
        self.results["peak_mb"] = max(peaks)
        self.results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        if a.json:
            a.json.write_text(json.dumps(self.results, indent=1))
        print(f"\n{a.n:,} points on {self.results['cpu']} ({self.results['simd']}, {self.results['cores']} cores)\n")
        print(self.table())

    def predict_stages(self) -> None:
        from scripts.bench_map import free_port

        if not self.args.skip_before and not self.done("predict (in-process, before)"):
            self.child("predict (in-process, before)", "predict-asgi")
        if not self.done("predict (in-process)"):
            self.cli_stage("predict (in-process)", "predict", "--dataset", DATASET, "--force")
        if self.args.skip_http or self.done("predict (HTTP)"):
            return
        port = free_port()
        server = subprocess.Popen([self.cli, "model-server", "--port", str(port), "--dataset", DATASET],
                                  env=self.env, stdout=(self.home / "model-server.log").open("w"),
                                  stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
        try:
            _wait_http(f"http://127.0.0.1:{port}/health", server)
            stage = self.cli_stage("predict (HTTP)", "predict", "--dataset", DATASET, "--force",
                                   "--api-url", f"http://127.0.0.1:{port}")
            stage["model_server_peak_mb"] = vm_hwm_mb(server.pid)
            self.record("predict (HTTP)", **stage)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)


def _wait_http(url: str, proc: subprocess.Popen, limit: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the server exited ({proc.returncode})")
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {limit:.0f} s")


def _texts(home: Path, limit: int | None = None) -> list[str]:
    import pyarrow.parquet as pq

    column = pq.read_table(home / f"{DATASET}.parquet", columns=["text"]).column("text")
    return column.slice(0, limit).to_pylist() if limit else column.to_pylist()


def _labels(home: Path) -> list[str | None]:
    import pyarrow.parquet as pq

    return pq.read_table(home / f"{DATASET}.parquet", columns=["label"]).column("label").to_pylist()


async def drive_get(api: str, make, clients: int, seconds: float, warmup: float = 2.0) -> dict[str, Any]:
    """Closed loop of GETs from `clients` concurrent clients for `seconds`: latency percentiles (ms)."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    begin = time.perf_counter()
    measure_from, stop_at = begin + warmup, begin + warmup + seconds

    async def user(seed: int) -> None:
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=api, timeout=120) as client:
            while (t0 := time.perf_counter()) < stop_at:
                path, params = make(rng)
                response = await client.get(path, params=params)
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                elif t0 >= measure_from:
                    latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(user(i) for i in range(clients)))
    latencies.sort()
    n = len(latencies)
    if not n:
        raise SystemExit(f"no page answered: {errors[:3]}")
    return {"p50_ms": 1000 * latencies[n // 2], "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))],
            "max_ms": 1000 * latencies[-1], "rps": n / seconds, "requests": n, "errors": len(errors)}


# -- child tasks, each its own process so that its peak memory is its own ---------------------------------------
def child_embed_sample(args: argparse.Namespace) -> None:
    """The model's own throughput on unseen texts (no cache), after a warm-up batch."""
    from embeddings.embedder import build_embedder
    from service.settings import Settings

    texts = _texts(args.home)
    rng = random.Random(1)
    sample = [f"{t} {rng.choice(['please', 'today', 'now', 'thanks'])}" for t in rng.sample(texts, args.embed_sample)]
    embedder = build_embedder(Settings(home=args.home))
    embedder.embed(sample[:64])
    started = time.perf_counter()
    embedder.embed(sample)
    seconds = time.perf_counter() - started
    (args.home / "embed-sample.json").write_text(json.dumps({
        "texts_per_s": len(sample) / seconds, "sample": len(sample), "model": embedder.name}))


def child_fill_cache(args: argparse.Namespace) -> None:
    """Put a vector for every text in the embedding cache (see --fill)."""
    import numpy as np

    from embeddings.cache import CachedEmbedder, EmbeddingCache, text_hash
    from embeddings.embedder import build_embedder
    from service.settings import Settings

    settings = Settings(home=args.home)
    texts = _texts(args.home)
    cache = EmbeddingCache(settings.cache_path)
    embedder = CachedEmbedder(build_embedder(settings), cache)
    try:
        if args.fill == "real":
            for start in range(0, len(texts), 10_000):
                embedder.embed(texts[start : start + 10_000])
            return
        from scripts.synthetic_texts import load_bases

        bases = [b.text for b in load_bases()]
        if args.base_cache is not None:  # vectors of the real texts another run already computed
            import sqlite3

            wanted = {text_hash(t) for t in bases}
            seed = sqlite3.connect(f"file:{args.base_cache}?mode=ro", uri=True)
            try:
                rows = seed.execute("SELECT text_sha256, vector FROM embeddings WHERE model = ?", [embedder.name])
                found = {bytes(k): np.frombuffer(v, np.float32) for k, v in rows if bytes(k) in wanted}
            finally:
                seed.close()
            cache.put_many(embedder.name, found)
            print(f"{len(found):,} of {len(wanted):,} base vectors from {args.base_cache}", flush=True)
        base_vectors = embedder.embed(bases, show_progress=True)
        base_of = np.array(json.loads((args.home / "base_of.json").read_text()))
        rng = np.random.default_rng(args.seed)
        d = base_vectors.shape[1]
        for start in range(0, len(texts), 20_000):
            rows = np.arange(start, min(start + 20_000, len(texts)))
            v = base_vectors[base_of[rows]] + rng.normal(0, 0.3 / np.sqrt(d), (len(rows), d)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            # Every text that is not its base text verbatim: variants, and repeats of a base text varied to stay
            # unique (the real data holds a few exact duplicates).
            fresh = {text_hash(texts[r]): v[j] for j, r in enumerate(rows.tolist()) if texts[r] != bases[base_of[r]]}
            cache.put_many(embedder.name, fresh)
    finally:
        cache.close()


def child_predict_asgi(args: argparse.Namespace) -> None:
    """`predict` the way it ran before: 20-text requests through the in-process model app (ASGI)."""
    import httpx

    from embeddings.embedder import LazyEmbedder
    from service.predictions.client import enrich
    from service.predictions.registry import ModelRegistry
    from service.predictions.server import create_model_app
    from service.settings import Settings
    from service.workspace import Workspace

    settings = Settings(home=args.home)
    with Workspace(settings) as ws:
        app = create_model_app(ModelRegistry(settings.models_dir), LazyEmbedder(lambda: ws.embedder),
                               default_project=DATASET)
        enrich(ws, DATASET, transport=httpx.ASGITransport(app=app), force=True)


CHILDREN = {"embed-sample": child_embed_sample, "fill-cache": child_fill_cache, "predict-asgi": child_predict_asgi}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--home", type=Path, help="DATA_DEBUGGER_HOME (default: a new folder under /tmp)")
    parser.add_argument("--json", type=Path, help="write the figures here, after every stage")
    parser.add_argument("--fill", choices=("derived", "real"), default="derived")
    parser.add_argument("--base-cache", type=Path, help="an embedding cache (read only) that may already hold the "
                        "real base texts' vectors, e.g. another home's embedding_cache.sqlite")
    parser.add_argument("--embed-sample", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--page-clients", type=int, default=4)
    parser.add_argument("--page-seconds", type=float, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--train-args", default="", help="more `train` options, e.g. '--model logreg --folds 3'")
    parser.add_argument("--train-sample", type=int, help="train on the first N points only (train --from a file)")
    parser.add_argument("--stop-after", choices=("fill cache", "ingest"), help="stop after this stage (then --resume)")
    parser.add_argument("--index-at-ingest", action="store_true",
                        help="ingest builds the vector index too (default: --defer-index, analyze builds it)")
    parser.add_argument("--skip-http", action="store_true", help="leave out predict over HTTP")
    parser.add_argument("--skip-before", action="store_true", help="leave out the old-way predict (before/after)")
    parser.add_argument("--resume", action="store_true", help="keep the stages --json already holds; run the rest "
                        "in the same --home")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        CHILDREN[args.child](args)
        return 0
    if args.resume and not args.home:
        parser.error("--resume needs the --home of the run it resumes")
    args.home = args.home or Path(tempfile.mkdtemp(prefix=f"dd-scale-{args.n}-"))
    args.home.mkdir(parents=True, exist_ok=True)
    print(f"home {args.home}; {cpu_model()} ({cpu_flags()}), {os.cpu_count()} cores; load {load_average()}",
          flush=True)
    Bench(args).main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
