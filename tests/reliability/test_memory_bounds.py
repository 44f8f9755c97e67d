"""What the service keeps in memory between requests is bounded: per-snapshot derived values, the report
memo, and the malloc arenas its worker threads spread big answers over (scripts/soak.py shows the curve)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from embeddings.embedder import FakeEmbedder
from service.api import reports
from service.api.snapshots import MAX_DERIVED, Snapshot
from service.api.state import ApiState
from service.settings import Settings
from service.workspace import Workspace


def snapshot() -> Snapshot:
    return Snapshot("d", ("k",), [1, 2, 3], {"label": ["a", "b", None]}, label_revision=0)


def test_derived_values_are_kept_for_the_most_recent_names_only():
    snap = snapshot()
    builds: list[str] = []

    def build_of(name: str):
        return lambda s: builds.append(name) or [name]

    names = [f"cluster-changes:v1:v2:{size}" for size in range(MAX_DERIVED + 10)]
    for name in names:
        assert snap.derived(name, build_of(name)) == [name]
    assert len(snap._orders) == MAX_DERIVED
    snap.derived(names[-1], build_of(names[-1]))  # recent: still held, not built again
    assert builds.count(names[-1]) == 1
    snap.derived(names[0], build_of(names[0]))  # the oldest was let go: built again
    assert builds.count(names[0]) == 2
    assert len(snap._orders) == MAX_DERIVED


def test_a_name_in_use_survives_many_others():
    snap = snapshot()
    builds: list[str] = []
    for n in range(MAX_DERIVED * 3):
        snap.order("issues", lambda s: builds.append("issues") or [0, 1])
        snap.derived(f"other:{n}", lambda s, n=n: [n])
    assert builds == ["issues"]


def test_report_memo_keeps_one_report_per_dataset_and_lives_with_its_service(tmp_path):
    """The parsed reports are cached in the service's CachedViews (no module-wide memo that outlives a
    service): one per dataset, a newer report replacing the older."""
    with Workspace(Settings(home=tmp_path / "store", store_backend="memory"), embedder=FakeEmbedder()) as ws:
        ws.catalog.create("d", 4, "fake-4", "csv")
        state = ApiState.build(Settings(home=tmp_path / "home", store_backend="memory"), ws)
        folder = state.settings.reports_dir / "d"
        folder.mkdir(parents=True)
        for i in range(40):
            (folder / "analysis.json").write_text(json.dumps({"run_id": f"run-{i}", "clusters": [0] * i}))
            assert reports.report_of(state, "d")["run_id"] == f"run-{i}"
        assert len(state.views.reports._items) == 1
        assert reports.report_of(state, "d") is reports.report_of(state, "d")  # still memoised


ARENAS = textwrap.dedent("""
    import ctypes, sys, threading
    from service.memory import limit_malloc_arenas
    if sys.argv[1] == "limit":
        assert limit_malloc_arenas(2)
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    barrier = threading.Barrier(8)
    def work():
        barrier.wait()  # all at once, so that they contend for the main arena
        for _ in range(200):
            libc.free(ctypes.c_void_p(libc.malloc(64 * 1024)))
    threads = [threading.Thread(target=work) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    libc.fopen.restype = ctypes.c_void_p
    out = libc.fopen(sys.argv[2].encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(out))
    libc.fclose(ctypes.c_void_p(out))
""")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas are a glibc mechanism")
@pytest.mark.parametrize("mode", ["default", "limit"])
def test_serve_caps_the_malloc_arenas_its_threads_spread_over(tmp_path, mode):
    info = tmp_path / "malloc.xml"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[2])}
    subprocess.run([sys.executable, "-c", ARENAS, mode, str(info)], check=True, env=env, timeout=60)
    arenas = info.read_text().count("<heap nr=")
    if mode == "limit":
        assert arenas <= 2
    else:  # the condition the limit is for: without it, the threads spread over more arenas (9 here)
        assert arenas > 2
