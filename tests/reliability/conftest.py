"""File systems made by the test: a small tmpfs (a disk that really fills up) and a read-only one, where
root can mount them; otherwise the closest real condition an unprivileged process can make (see each)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SMALL_DISK = 512 * 1024 * 1024


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _mount(target: Path, options: str) -> bool:
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
    return done.returncode == 0


def _unmount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], check=True)


@dataclass
class Disk:
    """A folder on its own file system (`real`: a 512 MiB tmpfs), which `fill` leaves nearly full."""

    root: Path
    real: bool

    def free(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int) -> None:
        """Take all but `leave` bytes of the file system (a real disk: allocated, not sparse)."""
        size = self.free() - leave
        with (self.root / "filler").open("wb") as fh:
            os.posix_fallocate(fh.fileno(), 0, size)

    def empty(self) -> None:
        (self.root / "filler").unlink()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Disk]:
    """A 512 MiB tmpfs where root may mount one; else a folder on the test's disk (`real` False), where the
    tests stand in for a full disk with a reserve larger than the free space."""
    root = tmp_path / "disk"
    root.mkdir()
    real = _mount(root, f"size={SMALL_DISK}")
    try:
        yield Disk(root, real)
    finally:
        if real:
            _unmount(root)


@pytest.fixture
def unwritable_home(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A data home this process cannot write, and how it was made: a read-only tmpfs (root; EROFS), a folder
    without write permission (anyone else; EACCES), or, for root where mounting is not allowed, a home path
    whose parent is a file (ENOTDIR). Each is a real OS refusal at the store's first write."""
    parent = tmp_path / "ro"
    parent.mkdir()
    if _mount(parent, "size=4m"):
        try:
            # A home that was in use (its store folder exists), then remounted read-only.
            (parent / "home" / "qdrant").mkdir(parents=True)
            subprocess.run(["mount", "-o", "remount,ro", str(parent)], check=True)
            yield parent / "home", "read-only tmpfs"
        finally:
            _unmount(parent)
    elif os.geteuid() != 0:
        parent.chmod(0o555)
        try:
            yield parent / "home", "no write permission"
        finally:
            parent.chmod(0o755)
    else:
        blocker = parent / "file"
        blocker.write_text("not a folder")
        yield blocker / "home", "parent is a file"
