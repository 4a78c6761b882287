"""Locks down the rate limiter's typing: ``mypy --strict`` checks this file, pytest runs it.

Every ``assert_type`` must hold for mypy. Lines that must be *rejected* carry a
``# type: ignore[code]``; with ``warn_unused_ignores`` on, mypy fails if hazina's types
stopped catching the mistake. The ``check_*`` functions are only type-checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Hashable
from typing import Any, assert_type

import hazina

REGISTRY = hazina.Registry()


@hazina.rate_limited("typing.search", registry=REGISTRY, rate=10, key=lambda user, q: user)
def search(user: str, q: str) -> list[str]:
    """Search for ``q`` on behalf of ``user``."""
    return [user, q]


@hazina.rate_limited("typing.fetch", registry=REGISTRY, limits=["5/second", hazina.Limit(100, 60)])
async def fetch(url: str, *, size: int = 1) -> bytes:
    """Pretend to fetch ``url``."""
    return url.encode()[:size]


class Client:
    """A class with a rate-limited method."""

    @hazina.rate_limited("typing.Client.get", registry=REGISTRY, rate=1, cost=lambda self, n: n)
    def get(self, n: int) -> int:
        """Return ``n``."""
        return n


def check_decorated_functions_keep_their_types() -> None:
    """Parameters and results survive; ``policy`` is a RateLimiter."""
    assert_type(search("u", "q"), list[str])
    assert_type(search.policy, hazina.RateLimiter)
    fetching = fetch("u", size=2)
    assert_type(fetching, Coroutine[Any, Any, bytes]).close()
    assert_type(Client().get(2), int)
    assert_type(Client().get.policy, hazina.RateLimiter)


async def check_policy_api() -> None:
    """The policy API's results have their documented types."""
    limiter = REGISTRY.rate_limiter("typing.search")
    assert_type(limiter, hazina.RateLimiter)
    assert_type(limiter.acquire("k", 2), None)
    assert_type(await limiter.aacquire(), None)
    assert_type(limiter.try_acquire(cost=0.5), bool)
    status = limiter.status("k")
    assert_type(status, hazina.RateLimitStatus)
    assert_type(status.remaining, float)
    assert_type(status.key, Hashable)
    assert_type(status.limits, tuple[hazina.LimitStatus, ...])
    assert_type(limiter.stats(), hazina.RateLimiterStats)
    assert_type(limiter.config, hazina.RateLimiterConfig)
    assert_type(limiter.config.limits, tuple[hazina.Limit, ...])


@hazina.rate_limited("typing.local", registry=REGISTRY, rate=1, backend="memory")
def kept_local(user: str) -> str:
    """A backend choice is a typed keyword of the decorator."""
    return user


assert_type(kept_local("u"), str)


def check_mistakes_are_caught() -> None:
    """Wrong options and arguments are type errors."""
    hazina.rate_limited("typing.bad", rate="10")  # type: ignore[call-overload]
    hazina.rate_limited("typing.bad", rate=1, algorithm="leaky")  # type: ignore[call-overload]
    hazina.rate_limited("typing.bad", rate=1, wait="yes")  # type: ignore[call-overload]
    hazina.rate_limited("typing.bad", limits=[10])  # type: ignore[list-item]
    REGISTRY.rate_limiter("typing.bad", rte=1)  # type: ignore[call-arg]
    hazina.rate_limited("typing.bad", rate=1, backend="disk")  # type: ignore[call-overload]
    hazina.rate_limited("typing.bad", rate=1, on_backend_error="ignore")  # type: ignore[call-overload]
    search("u", 1)  # type: ignore[arg-type]
    wrong: hazina.Retry = search.policy  # type: ignore[assignment]
    del wrong


def test_typed_declarations_run() -> None:
    """The declarations above work at run time too: limited, keyed, charged by cost."""
    assert search("alice", "q") == ["alice", "q"]
    assert asyncio.run(fetch("abc", size=2)) == b"ab"
    assert Client().get(1) == 1
    assert REGISTRY.rate_limiter("typing.Client.get").status().remaining < 1
