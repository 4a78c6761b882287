"""Per-call cost of an admitted call through a rate limiter, hazina beside its peers.

Almost every call through a rate limiter is admitted: that path, not the refusal, is
what a service pays all the time. Every row wraps ``f(x) -> x`` under a limit far above
what the benchmark can reach (10^9 or more a second), so no call is ever refused or
delayed; each row still makes its full decision (clock read, refill or window update).

Groups: ``rate-limit-admitted-sync`` (time per call) and
``rate-limit-admitted-async (per 1000 calls)`` (see ``conftest.py``).

Rows besides ``bare`` and ``functools``:

- ``hazina``: ``@hazina.rate_limited(rate=...)``, the default token bucket;
  ``hazina_gcra`` and ``hazina_sliding_window`` the other algorithms;
  ``hazina_keyed`` a per-key limit (``key=lambda x: x``, one key here).
- ``limits_moving_window`` / ``limits_fixed_window``: the ``limits`` library's
  in-memory storage and strategies (``limits.aio`` in the async group), called as its
  documentation shows, ``if limiter.hit(item): f(x)``, in a decorator. Its moving window
  keeps one entry per call in the last window in a list it inserts at the front of, so
  its cost grows with the calls per window.
- ``pyrate_limiter``: ``Limiter(Rate(...)).as_decorator(...)`` over its default
  ``InMemoryBucket``.
- ``ratelimit``: ``@limits(calls=..., period=1)`` (raises when over the limit);
  ``ratelimit_sleep_and_retry`` the same under ``@sleep_and_retry`` (waits instead).
  Sync only: its decorator does not await coroutines.
- ``aiolimiter``: ``async with AsyncLimiter(...)`` around the await. Async only.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import aiolimiter
import limits
import limits.aio
import pyrate_limiter
import ratelimit
from pytest_benchmark.fixture import BenchmarkFixture

import hazina
from benchmarks.conftest import RunAsync, async_group, async_passthrough, passthrough, sync_group

SYNC = sync_group("rate-limit-admitted-sync")
ASYNC = async_group("rate-limit-admitted-async")

#: Far beyond any rate the benchmark reaches, so every call is admitted (and the fastest
#: refill a limit may have: a billion tokens a second).
RATE = 10**9
LIMIT = "1000000000/second"


def f(x: int) -> int:
    return x


async def af(x: int) -> int:
    return x


def hazina_limited(fn: Callable[..., Any], **config: Any) -> Any:
    """``fn`` under a fresh hazina rate limiter with ``config``."""
    decorate: Any = hazina.rate_limited("bench", registry=hazina.Registry(), rate=RATE, **config)
    return decorate(fn)


HAZINA_VARIANTS = {
    "hazina": {},
    "hazina_gcra": {"algorithm": "gcra"},
    "hazina_sliding_window": {"algorithm": "sliding_window"},
    "hazina_keyed": {"key": lambda x: x},
}


def limits_sync(strategy: type[limits.strategies.RateLimiter]) -> Callable[[int], int]:
    """``f`` behind a ``limits`` strategy on in-memory storage, as its docs use it."""
    limiter = strategy(limits.storage.MemoryStorage())
    item = limits.parse(LIMIT)

    @functools.wraps(f)
    def wrapper(x: int) -> int:
        if not limiter.hit(item):
            raise RuntimeError("limited")
        return f(x)

    return wrapper


def limits_async(strategy: type[limits.aio.strategies.RateLimiter]) -> Callable[[int], Any]:
    """``af`` behind a ``limits.aio`` strategy on in-memory storage."""
    limiter = strategy(limits.aio.storage.MemoryStorage())
    item = limits.parse(LIMIT)

    @functools.wraps(af)
    async def wrapper(x: int) -> int:
        if not await limiter.hit(item):
            raise RuntimeError("limited")
        return await af(x)

    return wrapper


def pyrate(fn: Callable[..., Any]) -> Any:
    """``fn`` under pyrate-limiter's decorator over its default in-memory bucket."""
    limiter = pyrate_limiter.Limiter(pyrate_limiter.Rate(10**9, pyrate_limiter.Duration.SECOND))
    return limiter.as_decorator(name="bench", weight=1)(fn)


# -- rate-limit-admitted-sync ---------------------------------------------------------------


@SYNC
def test_sync_bare(benchmark: BenchmarkFixture) -> None:
    assert benchmark(f, 1) == 1


@SYNC
def test_sync_functools(benchmark: BenchmarkFixture) -> None:
    assert benchmark(passthrough(f), 1) == 1


@SYNC
def test_sync_hazina(benchmark: BenchmarkFixture) -> None:
    g = hazina_limited(f, **HAZINA_VARIANTS["hazina"])

    assert benchmark(g, 1) == 1
    assert g.policy.stats().rejected == 0


@SYNC
def test_sync_hazina_gcra(benchmark: BenchmarkFixture) -> None:
    g = hazina_limited(f, **HAZINA_VARIANTS["hazina_gcra"])

    assert benchmark(g, 1) == 1
    assert g.policy.stats().rejected == 0


@SYNC
def test_sync_hazina_sliding_window(benchmark: BenchmarkFixture) -> None:
    g = hazina_limited(f, **HAZINA_VARIANTS["hazina_sliding_window"])

    assert benchmark(g, 1) == 1
    assert g.policy.stats().rejected == 0


@SYNC
def test_sync_hazina_keyed(benchmark: BenchmarkFixture) -> None:
    g = hazina_limited(f, **HAZINA_VARIANTS["hazina_keyed"])

    assert benchmark(g, 1) == 1
    assert g.policy.stats().rejected == 0


@SYNC
def test_sync_limits_moving_window(benchmark: BenchmarkFixture) -> None:
    assert benchmark(limits_sync(limits.strategies.MovingWindowRateLimiter), 1) == 1


@SYNC
def test_sync_limits_fixed_window(benchmark: BenchmarkFixture) -> None:
    assert benchmark(limits_sync(limits.strategies.FixedWindowRateLimiter), 1) == 1


@SYNC
def test_sync_pyrate_limiter(benchmark: BenchmarkFixture) -> None:
    assert benchmark(pyrate(f), 1) == 1


@SYNC
def test_sync_ratelimit(benchmark: BenchmarkFixture) -> None:
    @ratelimit.limits(calls=RATE, period=1)
    def g(x: int) -> int:
        return x

    assert benchmark(g, 1) == 1


@SYNC
def test_sync_ratelimit_sleep_and_retry(benchmark: BenchmarkFixture) -> None:
    @ratelimit.sleep_and_retry
    @ratelimit.limits(calls=RATE, period=1)
    def g(x: int) -> int:
        return x

    assert benchmark(g, 1) == 1


# -- rate-limit-admitted-async ----------------------------------------------------------------


@ASYNC
def test_async_bare(run_async: RunAsync) -> None:
    assert run_async(af) == 1


@ASYNC
def test_async_functools(run_async: RunAsync) -> None:
    assert run_async(async_passthrough(af)) == 1


@ASYNC
def test_async_hazina(run_async: RunAsync) -> None:
    g = hazina_limited(af, **HAZINA_VARIANTS["hazina"])

    assert run_async(g) == 1
    assert g.policy.stats().rejected == 0


@ASYNC
def test_async_hazina_gcra(run_async: RunAsync) -> None:
    g = hazina_limited(af, **HAZINA_VARIANTS["hazina_gcra"])

    assert run_async(g) == 1
    assert g.policy.stats().rejected == 0


@ASYNC
def test_async_hazina_sliding_window(run_async: RunAsync) -> None:
    g = hazina_limited(af, **HAZINA_VARIANTS["hazina_sliding_window"])

    assert run_async(g) == 1
    assert g.policy.stats().rejected == 0


@ASYNC
def test_async_hazina_keyed(run_async: RunAsync) -> None:
    g = hazina_limited(af, **HAZINA_VARIANTS["hazina_keyed"])

    assert run_async(g) == 1
    assert g.policy.stats().rejected == 0


@ASYNC
def test_async_limits_moving_window(run_async: RunAsync) -> None:
    assert run_async(limits_async(limits.aio.strategies.MovingWindowRateLimiter)) == 1


@ASYNC
def test_async_limits_fixed_window(run_async: RunAsync) -> None:
    assert run_async(limits_async(limits.aio.strategies.FixedWindowRateLimiter)) == 1


@ASYNC
def test_async_pyrate_limiter(run_async: RunAsync) -> None:
    assert run_async(pyrate(af)) == 1


@ASYNC
def test_async_aiolimiter(run_async: RunAsync) -> None:
    limiter = aiolimiter.AsyncLimiter(RATE, 1)

    async def g(x: int) -> int:
        async with limiter:
            return await af(x)

    target: Callable[[int], Awaitable[int]] = g
    assert run_async(target) == 1
