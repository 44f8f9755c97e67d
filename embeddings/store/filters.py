"""The one translation of a `PointFilter` into a Qdrant filter; each backend supplies its own constructors.

qdrant-edge and qdrant-client build the same conditions with different classes (and positional versus
keyword arguments), so the logic (which conditions go to must or must_not, validation, value lists) lives
here once and a backend only names its classes in a `FilterVocabulary`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from embeddings.store.base import PointFilter
from embeddings.store.ids import PointId


@dataclass(frozen=True)
class FilterVocabulary:
    """A backend's constructors for each kind of condition."""

    match_value: Callable[[str, Any], Any]
    match_any: Callable[[str, list[Any]], Any]
    range: Callable[[str, float | None, float | None], Any]
    text: Callable[[str, str], Any]
    is_empty: Callable[[str], Any]
    has_id: Callable[[Sequence[PointId]], Any]
    filter: Callable[[list[Any] | None, list[Any] | None], Any]


def _values(value: Any) -> list[Any] | None:
    return list(value) if isinstance(value, list | tuple | set) else None


def translate(f: PointFilter | None, vocab: FilterVocabulary) -> Any:
    """The backend filter for `f`, or None when it has no condition."""
    if f is None or f.is_empty():
        return None
    f.validate()
    must: list[Any] = []
    must_not: list[Any] = []
    for key, value in f.match.items():
        values = _values(value)
        must.append(vocab.match_value(key, value) if values is None else vocab.match_any(key, values))
    for key, value in f.exclude.items():
        values = _values(value)
        must_not.append(vocab.match_any(key, [value] if values is None else values))
    for key, (lo, hi) in f.ranges.items():
        must.append(vocab.range(key, lo, hi))
    for key, words in f.text.items():
        must.append(vocab.text(key, words))
    for key, is_empty in f.empty.items():
        (must if is_empty else must_not).append(vocab.is_empty(key))
    if f.ids is not None:
        must.append(vocab.has_id(f.ids))
    return vocab.filter(must or None, must_not or None)
