"""Per-call cost of a bulkhead that admits the call, hazina beside its peers.

A bulkhead's everyday path is the admitted one: a free slot, taken and handed back.
Every row limits ``f(x) -> x`` to 10 calls at once (no queue); only one call runs at a
time here, so no row ever waits or refuses.

Groups: ``bulkhead-admitted-sync`` (time per call) and
``bulkhead-admitted-async (per 1000 calls)`` (see ``conftest.py``). Peers:

- ``semaphore``: the floor a hand-written bulkhead pays, ``with
  threading.BoundedSemaphore`` (sync) or ``async with asyncio.Semaphore`` (async)
  around the call; neither counts anything nor shares one limit between threads and
  tasks.
- ``pyresilience``: ``@resilient(bulkhead=BulkheadConfig(max_concurrent=10))``, sync
  and async.
- ``hyx``: ``@hyx.bulkhead.bulkhead(10, 10)``. Async only.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import hyx.bulkhead
import pyresilience
from pytest_benchmark.fixture import BenchmarkFixture

import hazina
from benchmarks.conftest import RunAsync, async_group, sync_group

SYNC = sync_group("bulkhead-admitted-sync")
ASYNC = async_group("bulkhead-admitted-async")
LIMIT = 10


def f(x: int) -> int:
    return x


async def af(x: int) -> int:
    return x


def lazily(make: Callable[[], Callable[[int], Awaitable[int]]]) -> Callable[[int], Awaitable[int]]:
    """Decorate on the first call, for peers that need the benchmark's running loop then."""
    made: list[Callable[[int], Awaitable[int]]] = []

    async def call(x: int) -> int:
        if not made:
            made.append(make())
        return await made[0](x)

    return call


# -- bulkhead-admitted-sync ---------------------------------------------------------


@SYNC
def test_sync_bare(benchmark: BenchmarkFixture) -> None:
    assert benchmark(f, 1) == 1


@SYNC
def test_sync_hazina(benchmark: BenchmarkFixture) -> None:
    guarded = hazina.bulkhead("b", registry=hazina.Registry(), max_concurrent=LIMIT)(f)
    assert benchmark(guarded, 1) == 1


@SYNC
def test_sync_hazina_keyed(benchmark: BenchmarkFixture) -> None:
    guarded = hazina.bulkhead(
        "b", registry=hazina.Registry(), max_concurrent=LIMIT, key=lambda x: x
    )(f)
    assert benchmark(guarded, 1) == 1


@SYNC
def test_sync_semaphore(benchmark: BenchmarkFixture) -> None:
    slots = threading.BoundedSemaphore(LIMIT)

    @functools.wraps(f)
    def guarded(x: int) -> int:
        with slots:
            return f(x)

    assert benchmark(guarded, 1) == 1


@SYNC
def test_sync_pyresilience(benchmark: BenchmarkFixture) -> None:
    guarded: Any = pyresilience.resilient(
        bulkhead=pyresilience.BulkheadConfig(max_concurrent=LIMIT)
    )(f)
    assert benchmark(guarded, 1) == 1


# -- bulkhead-admitted-async ---------------------------------------------------------


@ASYNC
def test_async_bare(run_async: RunAsync) -> None:
    assert run_async(af) == 1


@ASYNC
def test_async_hazina(run_async: RunAsync) -> None:
    guarded = hazina.bulkhead("b", registry=hazina.Registry(), max_concurrent=LIMIT)(af)
    assert run_async(guarded) == 1


@ASYNC
def test_async_semaphore(run_async: RunAsync) -> None:
    slots: list[asyncio.Semaphore] = []

    @functools.wraps(af)
    async def guarded(x: int) -> int:
        if not slots:
            slots.append(asyncio.Semaphore(LIMIT))
        async with slots[0]:
            return await af(x)

    assert run_async(guarded) == 1


@ASYNC
def test_async_pyresilience(run_async: RunAsync) -> None:
    guarded: Any = pyresilience.resilient(
        bulkhead=pyresilience.BulkheadConfig(max_concurrent=LIMIT)
    )(af)
    assert run_async(guarded) == 1


@ASYNC
def test_async_hyx(run_async: RunAsync) -> None:
    guarded = lazily(lambda: hyx.bulkhead.bulkhead(LIMIT, LIMIT)(af))
    assert run_async(guarded) == 1
