"""The one way to make values JSON-safe: numpy scalars and arrays, dataclasses and paths become plain JSON
values, and NaN and infinities become null (JSON has neither)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def _plain(value: Any) -> Any:
    # numpy goes through tolist()/item(), not OPT_SERIALIZE_NUMPY: that writes a float32 as its shortest
    # float32 spelling, which would change every stored and reported score in its last digits.
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """JSON bytes of `value`; `default` turns what is still unknown into something serialisable."""
    if default is None:
        return orjson.dumps(value, default=_plain, option=_OPTIONS)

    def fallback(v: Any) -> Any:
        try:
            return _plain(v)
        except TypeError:
            return default(v)

    return orjson.dumps(value, default=fallback, option=_OPTIONS)


def jsonable(value: Any, default: Callable[[Any], Any] | None = None) -> Any:
    """A copy of `value` made only of JSON values (dict keys become strings, tuples lists)."""
    return orjson.loads(dumps(value, default))
