"""The IETF ``RateLimit-Policy`` and ``RateLimit`` fields, from a limiter's configuration
and status.

draft-ietf-httpapi-ratelimit-headers (-08 on) writes each as a structured-field list of
items named after a quota policy: ``RateLimit-Policy: "api";q=100;w=60`` (a quota of 100
per 60-second window) and ``RateLimit: "api";r=42;t=30`` (42 left, back in full in 30 s).
A limiter with several limits names each item ``"<limiter>/<n>"``, in configuration order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .._ratelimit.limit import Limit
from .._ratelimit.records import RateLimitStatus


def _string(value: str) -> str:
    """``value`` as a structured-field String: printable ASCII, quotes and backslashes escaped."""
    printable = "".join(char if " " <= char <= "~" else "?" for char in value)
    return '"' + printable.replace("\\", "\\\\").replace('"', '\\"') + '"'


def policy_names(name: str, count: int) -> tuple[str, ...]:
    """The quoted item name of each of a limiter's ``count`` limits."""
    if count == 1:
        return (_string(name),)
    return tuple(_string(f"{name}/{number}") for number in range(1, count + 1))


def policy_field(names: Sequence[str], limits: Sequence[Limit]) -> str:
    """``RateLimit-Policy``: each limit's quota (its rate) and window (whole seconds)."""
    return ", ".join(
        f"{item};q={math.floor(limit.rate)};w={max(1, math.ceil(limit.per))}"
        for item, limit in zip(names, limits, strict=True)
    )


def limit_field(names: Sequence[str], status: RateLimitStatus) -> str:
    """``RateLimit``: what each limit has left (whole tokens) and when it is full again."""
    return ", ".join(
        f"{item};r={max(0, math.floor(limit.remaining))};t={max(0, math.ceil(limit.full_in))}"
        for item, limit in zip(names, status.limits, strict=True)
    )


def refused_field(names: Sequence[str], retry_after: float) -> str:
    """``RateLimit`` for a refused request: nothing left, back after ``retry_after``."""
    wait = max(1, math.ceil(retry_after)) if math.isfinite(retry_after) else 1
    return ", ".join(f"{item};r=0;t={wait}" for item in names)
