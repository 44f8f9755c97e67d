"""The free-space reserve: writes are refused before the disk under the data home runs out.

The embedded store (qdrant-edge) writes through memory maps, so on a full disk it does not raise: the
process dies of SIGBUS, mid-write. Checking the free space where each write starts (a review, a run, a CLI
command, every ingest batch, the analysis and prediction write-backs) turns that into an error that names
the path and the space needed (InsufficientStorage: HTTP 507, or one CLI line), while reads go on.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from service.errors import InsufficientStorage, Unavailable

# Read-only file system, no permission, a file where a folder should be.
UNWRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST}


@dataclass(frozen=True)
class DiskSpace:
    """Free bytes on the file system holding `path`, against the configured reserve."""

    path: Path
    free_bytes: int
    reserve_bytes: int

    @property
    def low(self) -> bool:
        return self.free_bytes < self.reserve_bytes


def human(size: int) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _existing(path: Path) -> Path:
    """The path itself or its nearest existing parent: the home may not have been created yet."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk_space(path: Path, reserve_bytes: int) -> DiskSpace:
    """The free space (for an unprivileged writer: root's reserved blocks do not count) under `path`.
    A read-only file system raises OSError(EROFS): its free space is no use to a writer."""
    where = _existing(path)
    st = os.statvfs(where)
    if st.f_flag & os.ST_RDONLY:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(where))
    return DiskSpace(Path(path), st.f_bavail * st.f_frsize, reserve_bytes)


def home_space(settings) -> DiskSpace:
    """The free space under the data home, against settings.min_free_bytes."""
    return disk_space(settings.home, settings.min_free_bytes)


def unwritable_home(home: Path, exc: OSError) -> Unavailable:
    """The one-line error for a data home the process cannot write (read-only, no permission, not a folder)."""
    where = exc.filename or home
    return Unavailable(
        f"the data home {home} is not writable ({where}: {exc.strerror or exc}); set DATA_DEBUGGER_HOME to a "
        "writable folder, or make this one writable (remount it read-write, or give this user write permission)"
    )


def ensure_space(settings, what: str, need_bytes: int = 0) -> DiskSpace:
    """Raise InsufficientStorage unless the home's file system has the reserve (plus `need_bytes`) free, and
    Unavailable when it is read-only."""
    try:
        space = home_space(settings)
    except OSError as exc:
        if exc.errno not in UNWRITABLE:
            raise
        raise unwritable_home(settings.home, exc) from exc
    needed = space.reserve_bytes + need_bytes
    if space.free_bytes < needed:
        raise InsufficientStorage(
            f"{what} refused: {space.path} has {human(space.free_bytes)} free and writing needs at least "
            f"{human(needed)} (the reserve DATA_DEBUGGER_MIN_FREE_BYTES={space.reserve_bytes}); free some space "
            "there, or point DATA_DEBUGGER_HOME at a larger disk; nothing was written"
        )
    return space
