"""Ingest throughput end to end (read, validate, embed with the real model, upsert to embedded Qdrant):
Banking77 train + test (13,083 records), then the same again (nothing to re-embed).

    .venv/bin/python scripts/bench_ingest.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.datasets.ingest import ingest, make_sources  # noqa: E402
from service.datasets.readers import ColumnMap  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.workspace import Workspace  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def run(ws: Workspace) -> tuple[int, float]:
    start = time.perf_counter()
    total = 0
    for name, split in (("train.csv", "training"), ("test.csv", "testing")):
        columns = ColumnMap(label="category", fixed_split=split)
        report = ingest(ws.catalog, ws.embedder, "banking77", make_sources([DATA / "banking77" / name],
                        columns=columns))
        total += report.read
    return total, time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with Workspace(Settings(home=Path(tmp), store_backend="edge")) as ws:
            ws.embedder.embed(["warm up the model"])
            for label in ("first ingest", "second ingest (unchanged)"):
                n, seconds = run(ws)
                print(f"{label}: {n} records in {seconds:.1f} s = {n / seconds:,.0f} records/s")
        with Workspace(Settings(home=Path(tmp), store_backend="edge")) as ws:
            ws.catalog.drop("banking77")
            n, seconds = run(ws)
            print(f"re-ingest into an empty store, embeddings cached: {n} records in {seconds:.1f} s "
                  f"= {n / seconds:,.0f} records/s")


if __name__ == "__main__":
    main()
