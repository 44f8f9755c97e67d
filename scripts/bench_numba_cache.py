"""`analyze` in new processes, one after another: what numba's compile costs each one, with the data home's
persistent cache (the first run fills it, the next ones load from it).

    python scripts/bench_numba_cache.py --home data --dataset humanloop --runs 3 [--fresh]
    python scripts/bench_numba_cache.py --home data --runs 2 --repo /path/to/an/older/checkout   # before

The home must hold the dataset with predictions (`make run`, or `make train` then `data-debugger predict`).
Per run it prints the wall time, the CPU time of the process, the analysis' `clusters` stage (UMAP + HDBSCAN)
and numba's own summary line (functions loaded from the cache, functions compiled and their compile time).
`--repo` runs another checkout's code (cwd and PYTHONPATH), e.g. one from before the cache existed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"numba: (\d+) function\(s\) loaded from the cache in \S+, (\d+) compiled in ([\d.]+) s")


def run_once(home: Path, dataset: str, repo: Path) -> dict:
    """One `analyze` in a new process; its times and numba's summary."""
    env = {**os.environ, "DATA_DEBUGGER_HOME": str(home), "PYTHONPATH": str(repo)}
    env.pop("NUMBA_CACHE_DIR", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "service.cli", "analyze", "--dataset", dataset], cwd=repo, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(done.stderr[-2000:])
    report = json.loads((home / "reports" / dataset / "analysis.json").read_text())
    found = SUMMARY.search(done.stderr)
    return {"wall": wall, "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "clusters": report["stages"]["clusters"], "total": report["stages"]["total"],
            "loaded": int(found.group(1)) if found else None, "compiled": int(found.group(2)) if found else None,
            "compile_s": float(found.group(3)) if found else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=Path("data"))
    parser.add_argument("--dataset", default="humanloop")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="empty <home>/numba_cache first")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose code runs (default: this one)")
    args = parser.parse_args()
    if args.fresh:
        shutil.rmtree(args.home / "numba_cache", ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.1f}; code from {args.repo}")
    print("run  wall s  cpu s  clusters s  analysis s  numba: loaded  compiled  compile s")
    for i in range(1, args.runs + 1):
        r = run_once(args.home.resolve(), args.dataset, args.repo.resolve())
        numba = (f"{r['loaded']:>13}  {r['compiled']:>8}  {r['compile_s']:>9.1f}" if r["loaded"] is not None
                 else f"{'(no cache: this code logs no numba line)':>34}")
        print(f"{i:>3}  {r['wall']:>6.1f}  {r['cpu']:>5.1f}  {r['clusters']:>10.1f}  {r['total']:>10.1f}  {numba}")


if __name__ == "__main__":
    main()
