"""When and how long to wait before retrying an HTTP call: exponential backoff with full jitter, honouring
Retry-After on 429 and 503."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """max_retries extra attempts; the n-th wait is uniform in [0, min(cap, base * 2**n)] unless the server
    asked for longer with Retry-After (itself capped at max_retry_after)."""

    max_retries: int = 6
    base: float = 0.25
    cap: float = 20.0
    max_retry_after: float = 120.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter spreads clients that failed together, so they do not retry together."""
        ceiling = min(self.cap, self.base * (2 ** attempt))
        return (rng or random).uniform(0.0, ceiling)

    def delay(self, attempt: int, retry_after: str | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `attempt + 1`."""
        wait = self.backoff(attempt, rng)
        asked = parse_retry_after(retry_after)
        if asked is not None:
            wait = max(wait, min(asked, self.max_retry_after))
        return wait


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
