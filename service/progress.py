"""How a long step reports where it is: one callable taking a stage and counts, so the CLI, a background
run and a test can each listen in their own way (or not at all)."""

from __future__ import annotations

from typing import Protocol


class ProgressFn(Protocol):
    """`progress(stage=..., done=..., total=..., advance=...)`: any argument may be left out."""

    def __call__(self, stage: str | None = None, done: int | None = None, total: int | None = None,
                 advance: int = 0) -> None: ...


def no_progress(stage: str | None = None, done: int | None = None, total: int | None = None,
                advance: int = 0) -> None:
    """The listener nobody hears: the default of every step."""
