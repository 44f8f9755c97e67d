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
MAX_POINT_ID = 2**64 - 1  # Qdrant's integer ids are unsigned 64-bit


def point_id(record_id: Any) -> PointId:
    """The Qdrant point id of a record id: non-negative ints stay, anything else maps to a stable UUID."""
    if isinstance(record_id, bool):
        raise InvalidInput(f"record id {record_id!r} is a boolean; use a number or a string")
    if isinstance(record_id, int) and fits_point_id(record_id):
        return record_id
    text = str(record_id)
    # ASCII digits only: "²" passes isdigit() but not int(), and "١٢" would become the id 12.
    canonical = text.isascii() and text.isdigit() and len(text) <= 20 and (text == "0" or text[0] != "0")
    if canonical and fits_point_id(int(text)):
        return int(text)
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return str(uuid.uuid5(_ID_NAMESPACE, text))


def fits_point_id(number: int) -> bool:
    """Whether an integer can be a Qdrant point id; a larger one is an id like any string (a UUID)."""
    return 0 <= number <= MAX_POINT_ID


def check_name(name: str) -> str:
    """A collection name safe as a folder and a Qdrant collection name."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):  # fullmatch: `$` would pass "name\n"
        raise InvalidInput(
            f"dataset name {name!r} is not allowed: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return name
