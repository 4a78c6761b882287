"""Every duration parameter of every kind takes a ``datetime.timedelta`` as its seconds."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest

import hazina
from hazina.testing import FakeClock

FIVE = datetime.timedelta(seconds=5)

#: One factory call per kind with a duration parameter, and the parameter.
FACTORIES: list[tuple[str, Callable[..., Any], str]] = [
    ("circuit_breaker", lambda r, **c: r.circuit_breaker("p", **c), "open_for"),
    ("circuit_breaker", lambda r, **c: r.circuit_breaker("p", **c), "half_open_timeout"),
    ("retry", lambda r, **c: r.retry("p", **c), "timeout"),
    ("retry", lambda r, **c: r.retry("p", **c), "initial"),
    ("retry", lambda r, **c: r.retry("p", **c), "max_delay"),
    ("cache", lambda r, **c: r.cache("p", **c), "ttl"),
    ("cache", lambda r, **c: r.cache("p", **c), "sliding"),
    ("rate_limiter", lambda r, **c: r.rate_limiter("p", rate=1, **c), "per"),
    ("rate_limiter", lambda r, **c: r.rate_limiter("p", rate=1, wait=True, **c), "max_wait"),
    ("retry_budget", lambda r, **c: r.retry_budget("p", **c), "window"),
]
IDS = [f"{kind}.{param}" for kind, _, param in FACTORIES]


@pytest.mark.parametrize(("kind", "make", "param"), FACTORIES, ids=IDS)
def test_a_timedelta_is_its_seconds(kind: str, make: Callable[..., Any], param: str) -> None:
    """timedelta(seconds=5) configures the same policy as 5: equal configurations."""
    registry = hazina.Registry()
    policy = make(registry, **{param: FIVE})

    assert getattr(policy.config, param) == 5
    assert make(registry, **{param: 5}) is policy


@pytest.mark.parametrize(("kind", "make", "param"), FACTORIES, ids=IDS)
def test_a_negative_timedelta_is_refused_by_name(
    kind: str, make: Callable[..., Any], param: str
) -> None:
    """A negative timedelta fails like the negative number it is, naming the parameter."""
    with pytest.raises(hazina.ConfigurationError, match=rf"{kind} 'p': {param} .*-5"):
        make(hazina.Registry(), **{param: -FIVE})


def test_a_cache_entry_ttl_takes_a_timedelta() -> None:
    """Per-entry durations (cache.set(ttl=...)) take a timedelta too."""
    clock = FakeClock()
    cache = hazina.Registry(clock=clock).cache("p")
    cache.set("k", "v", ttl=datetime.timedelta(seconds=2))  # type: ignore[arg-type]

    clock.advance(1.5)
    assert cache.get("k") == "v"
    clock.advance(1)
    assert cache.get("k") is None


def test_a_point_in_time_refuses_a_timedelta() -> None:
    """expires_at is an instant, not a duration: a timedelta there is an error, not 1970."""
    registry = hazina.Registry()
    with pytest.raises(hazina.ConfigurationError, match=r"cache 'p': expires_at"):
        registry.cache("p", expires_at=FIVE)  # type: ignore[arg-type]
    with pytest.raises(hazina.ConfigurationError, match=r"cache 'q': expires_at"):
        registry.cache("q").set("k", "v", expires_at=FIVE)  # type: ignore[arg-type]
