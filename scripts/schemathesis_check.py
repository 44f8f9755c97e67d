"""Fuzz the service against its own OpenAPI document with schemathesis and report any 5xx.

Starts the real app (embedded Qdrant in a temp dir, the fake embedder) on 127.0.0.1, loads the Humanloop
export as dataset "humanloop" (the OpenAPI path examples name it) and runs train -> predict -> analyze
through the API, so the fuzzer reaches every view with data behind it. Then runs `schemathesis run`
with the not_a_server_error check over every operation but DELETE, and a last pass over DELETE.

    .venv/bin/python scripts/schemathesis_check.py [--max-examples 30] [--checks not_a_server_error]

Exit status 0 when no operation answered a 5xx.
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from service.api.commands import serve  # noqa: E402
from service.settings import DEFAULT_HUMANLOOP_PATH, Settings  # noqa: E402

FALLBACK = REPO / "tests" / "api" / "fixtures" / "humanloop_small.json"


def start(settings: Settings) -> tuple[str, object, threading.Thread]:
    up = threading.Event()
    holder: dict = {}

    def started(server) -> None:
        holder["server"] = server
        up.set()

    def announce(text: str) -> None:
        holder["url"] = re.search(r"API\s+(http://[\d.]+:\d+)/api", text).group(1)

    thread = threading.Thread(target=serve, args=(settings,), daemon=True, kwargs={
        "host": "127.0.0.1", "port": 0, "companions": [], "announce": announce, "started": started})
    thread.start()
    if not up.wait(120):
        raise SystemExit("the service did not start")
    return holder["url"], holder["server"], thread


def seed(url: str, data: Path) -> None:
    """The default dataset, trained, predicted and analysed through the API."""
    with httpx.Client(base_url=url, timeout=600) as client:
        created = client.post("/api/datasets", files={"file": (data.name, data.read_bytes())},
                              data={"name": "humanloop"})
        created.raise_for_status()
        for step in ("train", "predict", "analyze"):
            run = client.post("/api/datasets/humanloop/runs", json={"step": step}).json()
            while run["status"] in ("queued", "running"):
                time.sleep(0.2)
                run = client.get(f"/api/runs/{run['id']}").json()
            if run["status"] != "succeeded":
                raise SystemExit(f"{step} failed: {run['error']}")
            print(f"seeded: {step} done", flush=True)


def fuzz(url: str, extra: list[str], max_examples: int, checks: str, report: Path) -> tuple[int, str]:
    command = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{url}/openapi.json",
               "--checks", checks, "--max-examples", str(max_examples), "--seed", "1",
               "--phases", "examples,coverage,fuzzing", "--request-timeout", "60", "--no-shrink",
               "--workers", "1", "--report", "junit", "--report-junit-path", str(report), *extra]
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=30)
    parser.add_argument("--checks", default="not_a_server_error")
    parser.add_argument("--keep", type=Path, help="directory for the junit reports (default: a temp dir)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = DEFAULT_HUMANLOOP_PATH if DEFAULT_HUMANLOOP_PATH.exists() else FALLBACK
    with tempfile.TemporaryDirectory(prefix="dd-schemathesis-") as tmp:
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        settings = Settings(home=Path(tmp) / "home", fake_embeddings=True, store_backend="edge")
        url, server, thread = start(settings)
        print(f"service on {url}; data {data}", flush=True)
        started = time.perf_counter()
        seed(url, data)
        results = []
        for name, extra in (("all but DELETE", ["--exclude-method", "DELETE"]),
                            ("DELETE", ["--include-method", "DELETE"])):
            code, output = fuzz(url, extra, args.max_examples, args.checks, out / f"junit-{len(results)}.xml")
            print(output[-6000:], flush=True)
            results.append((name, code, output))
        server.should_exit = True
        thread.join(30)
    print(f"\n== schemathesis ({time.perf_counter() - started:.0f} s, checks: {args.checks})")
    failed = False
    for name, code, output in results:
        server_errors = len(re.findall(r"Server error", output))
        print(f"{name}: exit {code}, 'Server error' findings: {server_errors}")
        failed |= code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
