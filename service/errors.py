"""The one exception tree of Data Debugger; the API maps it to HTTP status codes in one place.

    DataDebuggerError
    ├── NotFound            a dataset, point or model version that does not exist      -> 404
    ├── InvalidInput        bad records, parameters or files; names the field and fix  -> 422
    │   └── InvalidRecords  one or more bad records in an ingested file (all listed)   -> 422
    ├── Conflict            a concurrent edit or an existing resource                  -> 409
    ├── TooLarge            an upload or body over the configured limit                -> 413
    ├── InsufficientStorage the disk under the data home is below its free-space reserve -> 507
    ├── NotAuthorized       a write without the service's bearer token                 -> 401
    ├── Unavailable         the store or prediction API cannot be reached              -> 503
    │   └── StoreLocked     an embedded store held by another process (the CLI asks its service)
    └── IntegrityError      shipped model weights whose hash does not match            -> 500

DataDebuggerError, NotFound, InvalidInput, Conflict, Unavailable and IntegrityError are defined in
`embeddings.errors` (the store and the embedder raise them) and re-exported here; `STATUSES` below is the
one table of statuses, read by the API, the prediction API and the dashboard's client.
"""

from __future__ import annotations

from dataclasses import dataclass

# The store's own errors (defined in the embeddings layer, which imports nothing from service) are this
# tree's root and first branches: the same classes, so one `except NotFound` catches either layer's.
from embeddings.errors import (
    Conflict,
    DataDebuggerError,
    IntegrityError,
    InvalidInput,
    NotFound,
    StoreLocked,
    Unavailable,
)

__all__ = ["Conflict", "DataDebuggerError", "InsufficientStorage", "IntegrityError", "InvalidInput", "InvalidRecords",
           "NotAuthorized", "NotFound", "RecordProblem", "STATUSES", "StoreLocked", "TooLarge", "Unavailable",
           "invalid", "status_of"]


def invalid(field: str, message: str) -> InvalidInput:
    """An InvalidInput naming the request field at fault (answered as `field` in the error body)."""
    exc = InvalidInput(f"{field}: {message}")
    exc.field = field
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


class TooLarge(DataDebuggerError):
    """A body or upload over the configured limit."""


class InsufficientStorage(DataDebuggerError):
    """A write refused because the disk under the data home is below its free-space reserve."""


class NotAuthorized(DataDebuggerError):
    """A write without the bearer token the service was started with."""


# Each class with its HTTP status and error code, most specific first; a subclass not listed takes its
# nearest listed ancestor's (InvalidRecords answers 422).
STATUSES: tuple[tuple[type[DataDebuggerError], int, str], ...] = (
    (NotFound, 404, "not_found"),
    (InvalidInput, 422, "invalid_input"),
    (Conflict, 409, "conflict"),
    (TooLarge, 413, "too_large"),
    (InsufficientStorage, 507, "insufficient_storage"),
    (NotAuthorized, 401, "not_authorized"),
    (Unavailable, 503, "unavailable"),
    (IntegrityError, 500, "integrity_error"),
)


def status_of(exc: DataDebuggerError) -> tuple[int, str]:
    """The HTTP status and error code of an error of the tree (500, "error" for one nobody mapped)."""
    return next(((status, code) for cls, status, code in STATUSES if isinstance(exc, cls)), (500, "error"))
