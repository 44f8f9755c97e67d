"""The `data-debugger` command: composes the sub-commands each package registers."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from service.errors import DataDebuggerError
from service.settings import Settings

# Each module exposes register(subparsers); a sub-command's handler takes (args, settings) -> exit code.
COMMAND_MODULES = [
    "service.datasets.commands",
    "service.predictions.commands",
    "service.predictions.loop_commands",
    "service.analyses.commands",
    "service.api.commands",
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="data-debugger",
        description="Find wrong labels, weak spots and what to label next in a text classifier's data.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that part of the tool is not built yet
                continue
            raise
        module.register(sub)
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
    settings = Settings()
    try:
        return int(args.handler(args, settings) or 0)
    except DataDebuggerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; what was written so far is kept, run the command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
