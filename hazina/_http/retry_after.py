"""Reading and writing ``Retry-After`` (RFC 9110, section 10.2.3)."""

from __future__ import annotations

import math
import time
from datetime import UTC
from email.utils import parsedate_to_datetime


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait that ``value`` asks for, or ``None`` if it asks for nothing readable.

    ``value`` is a whole number of seconds or an HTTP date; a date in the past asks for
    no wait (0). ``now`` is the wall-clock time to measure a date from (default: now).
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit() and value.isascii():
        return float(int(value))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        # HTTP dates are always GMT, whether or not the obsolete forms say so.
        moment = moment.replace(tzinfo=UTC)
    wall = time.time() if now is None else now
    return max(0.0, moment.timestamp() - wall)


def retry_after_header(seconds: float | None, default: int = 1) -> str:
    """``seconds`` as a ``Retry-After`` value: whole seconds, rounded up, never below 1.

    A client told 0 would come straight back; ``default`` stands in for an unknown wait.
    """
    if seconds is None or not math.isfinite(seconds):
        return str(default)
    return str(max(1, math.ceil(seconds)))
