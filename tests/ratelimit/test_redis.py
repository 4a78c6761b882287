"""The rate limiter on Redis: one limit for every process, exact, and safe when Redis fails."""

from __future__ import annotations

import hazina
from hazina.redis import RedisBackend
from hazina.testing import FakeClock


def _registry(url: str, clock: FakeClock | None = None) -> hazina.Registry:
    backend = RedisBackend.from_url(url, clock="registry" if clock is not None else "redis")
    return hazina.Registry(clock=clock, backend=backend)


def test_two_registries_on_one_redis_share_one_limit(redis_url: str) -> None:
    """Two registries (stand-ins for two processes) draw from one shared bucket."""
    first, second = _registry(redis_url), _registry(redis_url)
    one = first.rate_limiter("search", rate=5, per=60)
    other = second.rate_limiter("search", rate=5, per=60)
    admitted = [one.try_acquire() for _ in range(3)] + [other.try_acquire() for _ in range(4)]
    assert admitted == [True] * 5 + [False] * 2
