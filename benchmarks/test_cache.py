"""Per-call cost of a cache hit, hazina beside functools.lru_cache and the peer libraries.

A cache earns its keep on hits, so the hit path is what every row times: ``f(1)`` whose
entry is already stored (each row warms its own entry before timing). Rows with a
time-to-live use 60 s, far longer than the run.

Groups: ``cache-hit-sync`` (time per call) and ``cache-hit-async (per 1000 calls)``
(see ``conftest.py``). Equivalent guarantees, for comparing like with like:

- ``hazina``: ``@hazina.cached(ttl=60)``: TTL, LRU bound (1024), thread-safe, single
  flight for threads and tasks. ``hazina_no_ttl`` is the same without expiry (its hit
  skips the clock). ``hazina_refresh_after`` adds ``refresh_after=30`` (refresh-ahead:
  each hit also checks the entry's age; the entry stays younger than 30 s, so no refresh
  runs) and ``hazina_stale_if_error`` adds ``stale_if_error=60`` (same hit path).
- ``lru_cache``: ``functools.lru_cache(maxsize=1024)``, in C: the floor. No expiry,
  no single flight.
- ``cachetools``: ``@cachetools.cached(TTLCache(1024, 60))``: not thread-safe;
  ``cachetools_lock`` adds ``lock=threading.Lock()`` (thread-safe, no single flight);
  ``cachetools_condition`` adds ``condition=threading.Condition()`` (single flight, for
  threads only). cachetools is absent from the async group: on an ``async def`` it
  caches the coroutine object, which cannot be awaited twice.
- ``cashews``: ``Cache().setup("mem://")`` and ``@cache(ttl=60)``; ``cashews_lock``
  adds ``lock=True`` (its stampede protection).
- ``aiocache``: ``@cached(ttl=60, cache=SimpleMemoryCache)``; ``aiocache_stampede`` is
  ``@cached_stampede(lease=2, ...)`` (its stampede protection). Neither is bounded in size.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import aiocache
import cachetools
import cashews
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import hazina
from benchmarks.conftest import RunAsync, async_group, sync_group

SYNC = sync_group("cache-hit-sync")
ASYNC = async_group("cache-hit-async")


def f(x: int) -> int:
    return x


async def af(x: int) -> int:
    return x


def warmed(fn: Callable[[int], Any]) -> Callable[[int], Any]:
    """``fn`` with the entry for ``1`` already stored."""
    assert fn(1) == 1
    return fn


# -- cache-hit-sync -----------------------------------------------------------------


@SYNC
def test_sync_bare(benchmark: BenchmarkFixture) -> None:
    assert benchmark(f, 1) == 1


@SYNC
def test_sync_lru_cache(benchmark: BenchmarkFixture) -> None:
    assert benchmark(warmed(functools.lru_cache(maxsize=1024)(f)), 1) == 1


@SYNC
def test_sync_hazina(benchmark: BenchmarkFixture) -> None:
    reg = hazina.Registry()
    assert benchmark(warmed(hazina.cached("c", registry=reg, ttl=60)(f)), 1) == 1


@SYNC
def test_sync_hazina_no_ttl(benchmark: BenchmarkFixture) -> None:
    reg = hazina.Registry()
    assert benchmark(warmed(hazina.cached("c", registry=reg)(f)), 1) == 1


@SYNC
def test_sync_hazina_refresh_after(benchmark: BenchmarkFixture) -> None:
    reg = hazina.Registry()
    fn = hazina.cached("c", registry=reg, ttl=60, refresh_after=30)(f)
    assert benchmark(warmed(fn), 1) == 1


@SYNC
def test_sync_hazina_stale_if_error(benchmark: BenchmarkFixture) -> None:
    reg = hazina.Registry()
    fn = hazina.cached("c", registry=reg, ttl=60, stale_if_error=60)(f)
    assert benchmark(warmed(fn), 1) == 1


@SYNC
def test_sync_cachetools(benchmark: BenchmarkFixture) -> None:
    fn = cachetools.cached(cachetools.TTLCache(maxsize=1024, ttl=60))(f)
    assert benchmark(warmed(fn), 1) == 1


@SYNC
def test_sync_cachetools_lock(benchmark: BenchmarkFixture) -> None:
    fn = cachetools.cached(cachetools.TTLCache(maxsize=1024, ttl=60), lock=threading.Lock())(f)
    assert benchmark(warmed(fn), 1) == 1


@SYNC
def test_sync_cachetools_condition(benchmark: BenchmarkFixture) -> None:
    cache = cachetools.TTLCache(maxsize=1024, ttl=60)
    fn = cachetools.cached(cache, condition=threading.Condition())(f)
    assert benchmark(warmed(fn), 1) == 1


# -- cache-hit-async ----------------------------------------------------------------
# Each row's only miss is its first call, in the first of many timed rounds.


@pytest.fixture
def cashews_cache() -> cashews.Cache:
    """An isolated cashews cache on its in-memory backend."""
    cache = cashews.Cache()
    cache.setup("mem://")
    return cache


@ASYNC
def test_async_bare(run_async: RunAsync) -> None:
    assert run_async(af) == 1


@ASYNC
def test_async_hazina(run_async: RunAsync) -> None:
    reg = hazina.Registry()
    assert run_async(hazina.cached("c", registry=reg, ttl=60)(af)) == 1


@ASYNC
def test_async_hazina_no_ttl(run_async: RunAsync) -> None:
    reg = hazina.Registry()
    assert run_async(hazina.cached("c", registry=reg)(af)) == 1


@ASYNC
def test_async_hazina_refresh_after(run_async: RunAsync) -> None:
    reg = hazina.Registry()
    assert run_async(hazina.cached("c", registry=reg, ttl=60, refresh_after=30)(af)) == 1


@ASYNC
def test_async_hazina_stale_if_error(run_async: RunAsync) -> None:
    reg = hazina.Registry()
    assert run_async(hazina.cached("c", registry=reg, ttl=60, stale_if_error=60)(af)) == 1


@ASYNC
def test_async_cashews(run_async: RunAsync, cashews_cache: cashews.Cache) -> None:
    assert run_async(cashews_cache(ttl=60)(af)) == 1


@ASYNC
def test_async_cashews_lock(run_async: RunAsync, cashews_cache: cashews.Cache) -> None:
    assert run_async(cashews_cache(ttl=60, lock=True)(af)) == 1


@ASYNC
def test_async_aiocache(run_async: RunAsync) -> None:
    fn = aiocache.cached(ttl=60, cache=aiocache.SimpleMemoryCache)(af)
    assert run_async(fn) == 1


@ASYNC
def test_async_aiocache_stampede(run_async: RunAsync) -> None:
    fn = aiocache.cached_stampede(lease=2, ttl=60, cache=aiocache.SimpleMemoryCache)(af)
    assert run_async(fn) == 1
