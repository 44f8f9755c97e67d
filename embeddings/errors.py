"""The errors the embeddings layer raises; `service.errors` builds the rest of the project's tree on them.

    DataDebuggerError
    ├── NotFound            a collection (dataset) or point that does not exist
    ├── InvalidInput        a bad name, id, filter or setting; names the value and the fix
    ├── Conflict            a collection that already exists
    ├── Unavailable         the store cannot be reached, or an embedded store is held by another process
    │   └── StoreLocked     that last case: the CLI then hands its work to the running service
    └── IntegrityError      shipped model weights whose hash does not match

They are defined here, not in `service`, so the embeddings layer imports nothing above it; the service
re-exports these same classes, so `except service.errors.NotFound` catches a store's NotFound.
"""

from __future__ import annotations


class DataDebuggerError(Exception):
    """Base of every error this project raises on purpose."""


class NotFound(DataDebuggerError):
    """A named resource does not exist."""


class InvalidInput(DataDebuggerError):
    """Input that cannot be used as given; the message names the field and the fix."""

    field: str | None = None  # the request field at fault, where one is (answered as `field` in the error body)


class Conflict(DataDebuggerError):
    """The resource changed since it was read, or already exists."""


class Unavailable(DataDebuggerError):
    """A backing service (the store, the prediction API) cannot be reached or is locked."""


class StoreLocked(Unavailable):
    """An embedded store held by another process (its lock), as opposed to one that is down or missing."""


class IntegrityError(DataDebuggerError):
    """Files that do not match their pinned hash."""
