"""The `data-debugger` command: composes the sub-commands each package registers."""

from __future__ import annotations

import argparse
import errno
import faulthandler
import importlib
import logging
import os
import re
import sys
from pathlib import Path

from service import numba_cache
from service.diskspace import disk_space, ensure_space, human
from service.errors import DataDebuggerError, StoreLocked
from service.settings import Settings

# Each module exposes register(subparsers); a sub-command's handler takes (args, settings) -> exit code.
COMMAND_MODULES = [
    "service.datasets.commands",
    "service.predictions.commands",
    "service.predictions.loop_commands",
    "service.analyses.commands",
    "service.api.commands",
    "service.labelstudio.commands",
    "service.pipeline",
]


def count(minimum: int):
    """An argparse type: an integer of at least `minimum`, refused with the option's usage line otherwise."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    return parse


# What a full, read-only or forbidden file system raises; anything else is a bug and keeps its traceback.
FILE_SYSTEM_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


# The store (Rust) raises plain Exceptions that end with the OS error: "... segment.json: No space left on
# device (os error 28)".
_RUST_OS_ERROR = re.compile(r"(?:(/[^:]+): )?[^:]*\(os error (\d+)\)")


def as_os_error(exc: BaseException) -> OSError | None:
    """The OSError behind an exception: itself, or the one a store error's message ends with."""
    if isinstance(exc, OSError):
        return exc
    match = _RUST_OS_ERROR.search(str(exc))
    if match is None:
        return None
    code = int(match.group(2))
    return OSError(code, os.strerror(code), match.group(1))


def file_system_message(exc: OSError, settings: Settings, output: str | None = None) -> str:
    """One line for a file the command could not write: the path (the error's, else the command's output
    file), the cause and the fix."""
    where = exc.filename or (output if output not in (None, "-") else None)
    subject = str(where) if where else "writing"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = f" ({human(disk_space(Path(where or settings.home), 0).free_bytes)} free there)"
        except OSError:
            free = ""
        return (f"{subject}: no space left on the device{free}; free some space, or write to a larger disk "
                "(DATA_DEBUGGER_HOME for the data, -o for an export), then run the command again")
    return (f"{subject}: {exc.strerror or exc}; point DATA_DEBUGGER_HOME (or the output path) at a writable "
            "folder, or make this one writable")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="data-debugger",
        description="Find wrong labels, weak spots and what to label next in a text classifier's data.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # httpx logs every request at INFO: one line per prediction batch would drown the progress output.
    logging.getLogger("httpx").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    # A fatal signal (SIGBUS from a memory-mapped write, SIGSEGV) then leaves a traceback, not silence.
    if not faulthandler.is_enabled() and sys.__stderr__ is not None:
        faulthandler.enable(sys.__stderr__)  # the process's own stderr: sys.stderr may be a capture
    settings = Settings()
    try:
        if getattr(args, "writes", False):
            ensure_space(settings, f"data-debugger {args.command}")
        # Set before anything imports numba: UMAP's compiled functions persist under the data home.
        with numba_cache.configured(settings.home):
            try:
                return int(args.handler(args, settings) or 0)
            except StoreLocked as locked:  # a running `serve` holds the store: ask it (service.delegate)
                from service.delegate import beside_service

                return beside_service(args, settings, locked)
    except DataDebuggerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        os_error = as_os_error(exc)
        if os_error is None or os_error.errno not in FILE_SYSTEM_ERRORS:
            raise
        print(f"error: {file_system_message(os_error, settings, getattr(args, 'output', None))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; what was written so far is kept, run the command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
