"""Locks down the typing of keyed breakers, the growing open time and dry runs.

``mypy --strict`` checks this file, pytest runs it. Lines that must be *rejected* carry a
``# type: ignore[code]``; with ``warn_unused_ignores`` on, mypy fails if hazina's types
stopped catching the mistake. The ``check_*`` functions are only type-checked.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import assert_type

import hazina

REGISTRY = hazina.Registry()


@hazina.circuit_breaker(
    "typing.more.hosts",
    registry=REGISTRY,
    key=lambda host, path: host,
    max_keys=100,
    open_for_multiplier=2.0,
    max_open_for=300.0,
    failure_rate=None,
    dry_run=True,
)
def get(host: str, path: str) -> bytes:
    """Pretend to fetch ``path`` from ``host``."""
    return f"{host}{path}".encode()


@hazina.rate_limited("typing.more.api", registry=REGISTRY, rate=5, dry_run=True)
async def call_api(n: int) -> int:
    """Pretend to call an API."""
    return n


def check_keyed_breakers_keep_their_types() -> None:
    assert_type(get("a", "/"), bytes)
    assert_type(get.policy.state_of("a"), hazina.CircuitState)
    assert_type(get.policy.stats().open_keys, int)
    error = hazina.CircuitOpenError("b", 1.0, key=("db", 1))
    assert_type(error.key, Hashable)
    assert_type(hazina.CircuitStateChanged("b", get.policy.state, get.policy.state).dry_run, bool)
    assert_type(hazina.RateLimitRejected("l", None, 1, 1.0).dry_run, bool)


def check_bad_values_are_rejected() -> None:
    hazina.circuit_breaker("typing.more.bad", dry_run="yes")  # type: ignore[call-overload]
    hazina.circuit_breaker("typing.more.bad", max_keys=1.5)  # type: ignore[call-overload]
    hazina.circuit_breaker("typing.more.bad", key="host")  # type: ignore[call-overload]
    REGISTRY.rate_limiter("typing.more.bad", rate=1, dry_run=1.0)  # type: ignore[arg-type]


def test_keyed_breaker_and_dry_run_limiter_run() -> None:
    """The decorated functions above work as typed."""
    assert get("a", "/x") == b"a/x"
    assert get.policy.state_of("a") is hazina.CircuitState.CLOSED
    assert get.policy.stats().calls == 1
