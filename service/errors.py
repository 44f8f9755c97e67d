"""The one exception tree of Data Debugger; the API maps it to HTTP status codes in one place.

    DataDebuggerError
    ├── NotFound            a dataset, point or model version that does not exist      -> 404
    ├── InvalidInput        bad records, parameters or files; names the field and fix  -> 422
    │   └── InvalidRecords  one or more bad records in an ingested file (all listed)   -> 422
    ├── Conflict            a concurrent edit or an existing resource                  -> 409
    ├── TooLarge            an upload or body over the configured limit                -> 413
    ├── InsufficientStorage the disk under the data home is below its free-space reserve -> 507
    ├── Unavailable         the store or prediction API cannot be reached              -> 503
    └── IntegrityError      shipped model weights whose hash does not match            -> 500
"""

from __future__ import annotations

from dataclasses import dataclass


class DataDebuggerError(Exception):
    """Base of every error this project raises on purpose."""


class NotFound(DataDebuggerError):
    """A named resource does not exist."""


class InvalidInput(DataDebuggerError):
    """Input that cannot be used as given; the message names the field and the fix."""


def invalid(field: str, message: str) -> InvalidInput:
    """An InvalidInput naming the request field at fault (answered as `field` in the error body)."""
    exc = InvalidInput(f"{field}: {message}")
    exc.field = field  # type: ignore[attr-defined]
    return exc


@dataclass(frozen=True)
class RecordProblem:
    """One bad record: its 1-based position, the file line where known, the field, and what is wrong."""

    record: int
    message: str
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = f"record {self.record}" + (f" (line {self.line})" if self.line is not None else "")
        what = f'"{self.field}" ' if self.field else ""
        return f"{where}: {what}{self.message}"


class InvalidRecords(InvalidInput):
    """A file holds bad records; nothing was written. Lists every problem found."""

    def __init__(self, source: str, problems: list[RecordProblem], hint: str = ""):
        self.source = source
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        hint = hint or "fix these records, or pass --skip-invalid to ingest the rest and write the rejects to a file"
        super().__init__(f"{source}: {len(problems)} bad record(s); nothing was written:\n{shown}{more}\n{hint}")


class Conflict(DataDebuggerError):
    """The resource changed since it was read, or already exists."""


class TooLarge(DataDebuggerError):
    """A body or upload over the configured limit."""


class InsufficientStorage(DataDebuggerError):
    """A write refused because the disk under the data home is below its free-space reserve."""


class Unavailable(DataDebuggerError):
    """A backing service (the store, the prediction API) cannot be reached or is locked."""


class IntegrityError(DataDebuggerError):
    """Files that do not match their pinned hash."""
