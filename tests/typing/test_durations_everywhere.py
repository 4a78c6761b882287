"""Locks down that every duration parameter takes a ``datetime.timedelta`` for type
checkers too (at run time ``build_config`` converts it): ``mypy --strict`` checks this
file, pytest runs it.
"""

from __future__ import annotations

import datetime

import hazina

REGISTRY = hazina.Registry()
SECOND = datetime.timedelta(seconds=1)


@hazina.circuit_breaker(
    "typing.durations",
    registry=REGISTRY,
    open_for=30 * SECOND,
    half_open_timeout=10 * SECOND,
    max_open_for=60 * SECOND,
    slow_call_duration=2 * SECOND,
)
@hazina.cached("typing.durations", registry=REGISTRY, ttl=60 * SECOND, refresh_after=30 * SECOND)
@hazina.bulkhead("typing.durations", registry=REGISTRY, max_concurrent=2, max_wait=SECOND)
@hazina.timeout("typing.durations", registry=REGISTRY, seconds=5 * SECOND)
@hazina.hedge("typing.durations", registry=REGISTRY, delay=SECOND)
def lookup(key: str) -> str:
    return key


def test_every_duration_took_its_seconds() -> None:
    assert lookup("k") == "k"
    assert REGISTRY.circuit_breaker("typing.durations").config.open_for == 30
    assert REGISTRY.cache("typing.durations").config.ttl == 60
    assert REGISTRY.bulkhead("typing.durations").config.max_wait == 1
    assert REGISTRY.timeout("typing.durations").config.seconds == 5
    assert REGISTRY.hedge("typing.durations").config.delay == 1
