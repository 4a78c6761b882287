"""Locks down @cached's typing: ``mypy --strict`` checks this file, pytest runs its last test.

Every ``assert_type`` must hold for mypy. Lines that must be *rejected* carry a
``# type: ignore[code]``; with ``warn_unused_ignores`` on, mypy fails if hazina's types
stopped catching the mistake. The ``check_*`` functions are only type-checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, assert_type

import hazina
from hazina import Cache, CachedFunction, CachedMethod, CacheStats

REGISTRY = hazina.Registry()


@hazina.cached("typing.square", registry=REGISTRY, ttl=60, max_size=10)
def square(x: int, *, offset: int = 0) -> int:
    """Square a number."""
    return x * x + offset


@hazina.cached("typing.fetch", registry=REGISTRY, sliding=5.0, priority="high")
async def fetch(url: str) -> bytes:
    """Pretend to fetch ``url``."""
    return url.encode()


@hazina.cached(
    "typing.quote",
    registry=REGISTRY,
    ttl=60,
    refresh_after=45,
    stale_if_error=600.0,
    stale_on=(ConnectionError, hazina.CircuitOpenError),
)
def quote(symbol: str) -> float:
    """A price that may be served stale."""
    return 1.0


class Repo:
    """A class with cached methods."""

    @hazina.cached("typing.Repo.find", registry=REGISTRY, key=lambda self, id: id)
    def find(self, id: int) -> str:
        """Find a record."""
        return str(id)

    @hazina.cached("typing.Repo.afind", registry=REGISTRY)
    async def afind(self, id: int) -> str:
        """Find a record, asynchronously."""
        return str(id)


# -- what mypy must accept ---------------------------------------------------------------


def check_functions_keep_their_types() -> None:
    """Results, parameters and the cache-specific attributes are typed."""
    assert_type(square(2), int)
    assert_type(square(2, offset=1), int)
    assert_type(square.policy, Cache)
    assert_type(square.cache_invalidate(2), bool)
    assert_type(square.cache_invalidate(2, offset=1), bool)
    assert_type(square.cache_clear(), None)
    as_callable: Callable[[int], int] = square
    assert_type(as_callable(1), int)
    fetching = fetch("u")
    assert_type(fetching, Coroutine[Any, Any, bytes]).close()
    assert_type(fetch.cache_invalidate("u"), bool)


def check_bare_forms() -> None:
    """``@cached`` and ``@cached()`` are typed alike (never run: they use the default registry)."""

    @hazina.cached
    def bare(x: str) -> str:
        return x

    @hazina.cached()
    async def called(x: str) -> str:
        return x

    assert_type(bare("x"), str)
    as_cached: CachedFunction[[str], str] = bare
    assert_type(as_cached.policy, Cache)
    assert_type(called.policy, Cache)


async def check_async_results() -> None:
    """Awaiting a cached coroutine function gives the original result type."""
    assert_type(await fetch("u"), bytes)
    assert_type(await Repo().afind(1), str)


def check_methods() -> None:
    """Bound methods drop ``self`` when called, and take the instance to invalidate."""
    repo = Repo()
    assert_type(repo.find(1), str)
    assert_type(Repo.find(repo, 1), str)
    bound: CachedMethod[Repo, [int], str] = repo.find
    assert_type(bound(1), str)
    assert_type(repo.find.cache_invalidate(repo, 1), bool)
    assert_type(Repo.find.cache_invalidate(repo, 1), bool)
    assert_type(repo.find.policy, Cache)


def check_policy_api() -> None:
    """The policy API: get/set/delete/get_or_set, stats and per-entry options."""
    cache = REGISTRY.cache("typing.api", ttl=10, expires_at=lambda value: None)
    assert_type(cache, Cache)
    assert_type(cache.set("k", 1, ttl=5, priority="never_remove"), bool)
    assert_type(cache.set("k", 1, expires_at=datetime.now() + timedelta(hours=1)), bool)
    assert_type(cache.set("k", 1, expires_at=1_900_000_000), bool)
    assert_type(cache.get_or_set("k", lambda: 3), int)
    assert_type(cache.delete("k"), bool)
    assert_type(cache.stats(), CacheStats)
    assert_type(cache.get("k"), Any)


async def check_async_policy_api() -> None:
    """aget_or_set gives the factory's awaited type."""

    async def load() -> list[str]:
        return []

    assert_type(await REGISTRY.cache("typing.api").aget_or_set("k", load), list[str])


# -- what mypy must reject ---------------------------------------------------------------


def check_mistakes_are_caught() -> None:
    """Wrong arguments and options are type errors."""
    square("2")  # type: ignore[arg-type]
    square.cache_invalidate("2")  # type: ignore[arg-type]
    wrong: str = square(2)  # type: ignore[assignment]
    repo = Repo()
    repo.find.cache_invalidate(1)  # type: ignore[arg-type, call-arg]
    hazina.cached("typing.bad", ttl="60")  # type: ignore[call-overload]
    hazina.cached("typing.bad", priority="urgent")  # type: ignore[call-overload]
    hazina.cached("typing.bad", max_szie=3)  # type: ignore[call-overload]
    REGISTRY.cache("typing.api").set("k", 1, priority="urgent")  # type: ignore[arg-type]
    REGISTRY.cache("typing.api").get(["unhashable"])  # type: ignore[arg-type]
    hazina.cached("typing.bad", refresh_after="45")  # type: ignore[call-overload]
    hazina.cached("typing.bad", stale_if_error="1m")  # type: ignore[call-overload]
    hazina.cached("typing.bad", stale_on="ConnectionError")  # type: ignore[call-overload]
    del wrong


# -- run time ----------------------------------------------------------------------------


def test_typed_examples_run() -> None:
    """The decorated examples above behave as their types say."""
    repo = Repo()
    assert square(3) == 9
    assert quote("ACME") == 1.0
    assert_type(quote.policy.stats().stale_served, int)
    assert_type(quote.policy.stats().refreshes, int)
    assert square(3, offset=1) == 10
    assert square.cache_invalidate(3) is True
    assert asyncio.run(fetch("u")) == b"u"
    assert repo.find(1) == "1"
    assert repo.find.cache_invalidate(repo, 1) is True
    assert asyncio.run(repo.afind(2)) == "2"
    repo.find.cache_clear()
    assert isinstance(square.policy.stats(), CacheStats)
