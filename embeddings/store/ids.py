"""Point ids from record ids, and the rule for collection (dataset) names."""

from __future__ import annotations

import re
import uuid
from typing import Any

from embeddings.errors import InvalidInput

PointId = int | str
# Namespace for UUIDs derived from string record ids; fixed forever, or ids would change between runs.
_ID_NAMESPACE = uuid.UUID("6f1c3a52-3b1e-4f0e-9d55-0c6a2f7e4a10")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_NAME_RE = re.compile(NAME_PATTERN)


def point_id(record_id: Any) -> PointId:
    """The Qdrant point id of a record id: non-negative ints stay, anything else maps to a stable UUID."""
    if isinstance(record_id, bool):
        raise InvalidInput(f"record id {record_id!r} is a boolean; use a number or a string")
    if isinstance(record_id, int) and record_id >= 0:
        return record_id
    text = str(record_id)
    if text.isdigit() and not (len(text) > 1 and text.startswith("0")):
        return int(text)
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return str(uuid.uuid5(_ID_NAMESPACE, text))


def check_name(name: str) -> str:
    """A collection name safe as a folder and a Qdrant collection name."""
    if not _NAME_RE.match(name):
        raise InvalidInput(
            f"dataset name {name!r} is not allowed: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return name
