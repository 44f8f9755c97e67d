"""Fewer glibc malloc arenas in the service process, so its memory levels off low under load.

glibc gives each thread that allocates under contention an arena of its own, up to 8 per core. The service
answers on a pool of ~40 worker threads, and a map or cluster answer allocates megabytes at once: each
arena keeps the high-water mark of what passed through it, so RSS climbs in steps as the big answers land
in ever more arenas (the soak in scripts/soak.py: +10 MB over 5k requests and still rising with glibc's
default on 2 cores, flat at 2 arenas, same throughput). Not a leak, but a bound that grows with the cores.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # from glibc's malloc.h


def limit_malloc_arenas(count: int) -> bool:
    """Cap glibc's malloc arenas at `count` for the rest of the process; False where nothing was changed
    (count 0, MALLOC_ARENA_MAX already set by the environment, or a C library without mallopt)."""
    if count <= 0 or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    if mallopt(M_ARENA_MAX, count) != 1:
        return False
    log.debug("malloc arenas limited to %d", count)
    return True
