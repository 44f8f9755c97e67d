"""A persistent numba cache under the data home: UMAP's compile is paid once per machine, not once per process.

numba compiles UMAP's and pynndescent's jitted functions the first time a process calls them (about 15 s
on these CPUs). The few their authors marked `cache=True` are kept on disk; most UMAP functions are not, so
every CLI process paid the compile again. `configure` (called by entry points, before numba is imported:
numba reads NUMBA_CACHE_DIR when it is imported) points numba's cache at `<home>/numba_cache`, and
`load_umap` turns caching on for the module-level functions of umap and pynndescent left uncached.

The cache stays valid by numba's own checks: an entry is keyed by the source file's modification time and
size, numba's version, the Python version and the CPU's name and features; anything else is recompiled and
overwritten. What a second process still compiles: functions with an explicit signature, which numba
compiles as the module is imported, before caching can be turned on (umap.utils.tau_rand_int and
tau_rand, about a second). The log says what was loaded and what was compiled.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ENV = "NUMBA_CACHE_DIR"
FOLDER = "numba_cache"
# Packages whose module-level jitted functions get an on-disk cache when their authors gave them none.
PACKAGES = ("umap", "pynndescent")


@dataclass
class CompileStats:
    """What numba did in this process since `load_umap`: functions compiled, and loaded from the cache."""

    cache_dir: str | None
    compiled: list[str] = field(default_factory=list)  # top-level compiles, in order
    compile_seconds: float = 0.0
    cache_hits: int = 0
    uncached: list[str] = field(default_factory=list)  # compiled before caching could be turned on

    def summary(self) -> str:
        """One log line: whether the compile came from the cache."""
        if self.cache_dir is None:
            return (f"numba: no persistent cache ({ENV} unset): {len(self.compiled)} function(s) compiled in "
                    f"{self.compile_seconds:.1f} s")
        names = ", ".join(self.compiled[:8]) + (", ..." if len(self.compiled) > 8 else "")
        return (f"numba: {self.cache_hits} function(s) loaded from the cache in {self.cache_dir}, "
                f"{len(self.compiled)} compiled in {self.compile_seconds:.1f} s" + (f": {names}" if names else ""))


class _CompileListener:
    """Counts numba's compile events, timing only the outermost one (callees compile inside callers)."""

    def __init__(self) -> None:
        self.compiled: list[str] = []
        self.seconds = 0.0
        self._depth = threading.local()
        self._started = 0.0

    def listener(self):
        from numba.core import event

        outer = self

        class Listener(event.Listener):
            def on_start(self, ev) -> None:
                depth = getattr(outer._depth, "n", 0)
                if depth == 0:
                    outer._started = time.perf_counter()
                    func = ev.data["dispatcher"].py_func
                    outer.compiled.append(f"{func.__module__}.{func.__qualname__}")
                outer._depth.n = depth + 1

            def on_end(self, ev) -> None:
                outer._depth.n -= 1
                if outer._depth.n == 0:
                    outer.seconds += time.perf_counter() - outer._started

        return Listener()


_lock = threading.Lock()
_listener: _CompileListener | None = None
_uncached: list[str] = []
_enabled = False


def cache_dir(home: Path) -> Path:
    """Where a data home keeps numba's compiled functions."""
    return home.resolve() / FOLDER


def configure(home: Path) -> Path | None:
    """Point numba's on-disk cache at `<home>/numba_cache`; call from an entry point, before numba is imported.

    A NUMBA_CACHE_DIR already in the environment wins. Returns the cache folder, or None when numba was
    imported already (it read its settings then; its functions keep the default cache, next to their source).
    """
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    if "numba" in sys.modules:
        log.debug("numba is already imported; %s not set", ENV)
        return None
    folder = cache_dir(home)
    os.environ[ENV] = str(folder)
    return folder


@contextmanager
def configured(home: Path) -> Iterator[Path | None]:
    """`configure` for the length of a command, then log whether its compile was cached; the environment is
    put back after, so a caller running commands in-process (the tests) keeps its own."""
    before = os.environ.get(ENV)
    try:
        yield configure(home)
    finally:
        log_stats()
        if before is None:
            os.environ.pop(ENV, None)


def _dispatchers() -> list[Any]:
    """The jitted functions defined at module level in the PACKAGES modules imported so far."""
    from numba.core.registry import CPUDispatcher

    found: dict[int, Any] = {}
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in PACKAGES:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, CPUDispatcher) and getattr(value.py_func, "__module__", None) == name:
                found[id(value)] = value
    return list(found.values())


def _enable_caching() -> None:
    """Give an on-disk cache to every uncached module-level function of PACKAGES not compiled yet."""
    from numba.core.caching import NullCache

    for dispatcher in _dispatchers():
        if not isinstance(dispatcher._cache, NullCache):
            continue
        func = dispatcher.py_func
        if dispatcher.overloads:  # compiled at import (an explicit signature): too late for this process
            _uncached.append(f"{func.__module__}.{func.__qualname__}")
            continue
        try:
            dispatcher.enable_caching()
        except RuntimeError as exc:  # no folder numba can write for its source file: stays uncached
            log.debug("numba cannot cache %s: %s", func.__qualname__, exc)


def load_umap():
    """`import umap`, with compiles counted and, when a cache folder is configured, cached on disk."""
    global _listener, _enabled
    with _lock:
        if _listener is None:
            from numba.core import event

            _listener = _CompileListener()
            event.register("numba:compile", _listener.listener())
        import umap

        if not _enabled and os.environ.get(ENV):
            _enable_caching()
            _enabled = True
    return umap


def stats() -> CompileStats | None:
    """What numba compiled and loaded from the cache since `load_umap`; None if it was never called."""
    if _listener is None:
        return None
    hits = sum(sum(d._cache_hits.values()) for d in _dispatchers())
    return CompileStats(cache_dir=os.environ.get(ENV) or None, compiled=list(_listener.compiled),
                        compile_seconds=_listener.seconds, cache_hits=hits, uncached=list(_uncached))


def log_stats() -> None:
    """Log whether this process's numba compile came from the cache (nothing if UMAP was not used)."""
    current = stats()
    if current is not None:
        log.info(current.summary())
        log.debug("numba compiled: %s", ", ".join(current.compiled) or "nothing")
