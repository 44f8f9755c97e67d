"""The numba cache under the data home: a second `analyze` process loads UMAP's compiled functions from it
instead of compiling them again (each process compiles from scratch otherwise, about 15 s)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.analyses.conftest import DATASET

REPO = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"numba: (\d+) function\(s\) loaded from the cache in (\S+), (\d+) compiled in [\d.]+ s")
COMPILED = re.compile(r"numba compiled: (.*)$", re.M)
# The functions UMAP's layout compiles on every call in a fresh process when nothing caches them.
LAYOUT_FUNCTIONS = {"umap.umap_.smooth_knn_dist", "umap.umap_.compute_membership_strengths",
                    "umap.layouts._optimize_layout_euclidean_single_epoch"}


@dataclass
class Run:
    hits: int
    cache_dir: Path
    compiled: list[str]
    report: dict


def _analyze(home: Path) -> Run:
    """`data-debugger analyze` in a new process, as a user runs it; its numba summary line parsed."""
    env = {**os.environ, "DATA_DEBUGGER_HOME": str(home), "DATA_DEBUGGER_FAKE_EMBEDDINGS": "true",
           "DATA_DEBUGGER_STORE_BACKEND": "edge"}
    env.pop("NUMBA_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-m", "service.cli", "--verbose", "analyze", "--dataset", DATASET, "--json"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    found = SUMMARY.search(done.stderr)
    assert found, done.stderr[-3000:]
    names = COMPILED.search(done.stderr).group(1)
    compiled = [] if names == "nothing" else names.split(", ")
    assert len(compiled) == int(found.group(3))
    return Run(int(found.group(1)), Path(found.group(2)), compiled, json.loads(done.stdout))


@pytest.mark.slow
def test_a_second_analyze_process_loads_umap_from_the_cache(analysed):
    home = analysed.settings.home
    first = _analyze(home)
    assert first.cache_dir == home.resolve() / "numba_cache"
    assert LAYOUT_FUNCTIONS <= set(first.compiled)
    index = {p.name.split("-")[0] for p in first.cache_dir.rglob("*.nbi")}
    assert {"umap_.smooth_knn_dist", "layouts._optimize_layout_euclidean_single_epoch"} <= index

    second = _analyze(home)
    assert second.hits > 0
    assert not LAYOUT_FUNCTIONS & set(second.compiled), second.compiled
    assert len(second.compiled) < len(first.compiled)
    # Cached machine code computes what freshly compiled code does: the same seeded UMAP, the same clusters.
    assert second.report["clusters"] == first.report["clusters"] and second.report["clusters"]
