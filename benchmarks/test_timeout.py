"""Per-call cost of a timeout that does not fire, hazina beside its peers.

Every row gives ``f(x) -> x`` 10 seconds, which it never comes near.

Groups: ``timeout-not-firing-sync`` (time per call) and
``timeout-not-firing-async (per 1000 calls)`` (see ``conftest.py``). Peers:

- ``futures``: the hand-written thread timeout,
  ``executor.submit(f, x).result(timeout=10)`` on a ``ThreadPoolExecutor``: like
  hazina's sync timeout, it runs the call in a worker and can walk away from it.
- ``wrapt_timeout_decorator``: ``@timeout(10)``. Its default (``use_signals=True``) arms
  SIGALRM and runs the call in the caller's thread, raising inside it at the deadline:
  only in the main thread, and only between bytecodes (a call blocked in C is not
  interrupted). ``use_signals=False`` runs each call in a new process.
- ``pyresilience``: ``@resilient(timeout=TimeoutConfig(seconds=10))``, sync (a thread
  pool) and async.
- ``asyncio``: ``async with asyncio.timeout(10)`` around the await, the floor any async
  timeout pays (hazina aims within 2x of it).
- ``hyx``: ``@hyx.timeout.timeout(10)`` (a new task per call). Async only.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import hyx.timeout
import pyresilience
import pytest
import wrapt_timeout_decorator
from pytest_benchmark.fixture import BenchmarkFixture

import hazina
from benchmarks.conftest import RunAsync, async_group, sync_group

SYNC = sync_group("timeout-not-firing-sync")
ASYNC = async_group("timeout-not-firing-async")
SECONDS = 10.0


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


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor() as pool:
        yield pool


# -- timeout-not-firing-sync ---------------------------------------------------------


@SYNC
def test_sync_bare(benchmark: BenchmarkFixture) -> None:
    assert benchmark(f, 1) == 1


@SYNC
def test_sync_hazina(benchmark: BenchmarkFixture) -> None:
    timed = hazina.timeout("t", registry=hazina.Registry(), seconds=SECONDS)(f)
    assert benchmark(timed, 1) == 1


@SYNC
def test_sync_futures(benchmark: BenchmarkFixture, executor: ThreadPoolExecutor) -> None:
    @functools.wraps(f)
    def timed(x: int) -> int:
        return executor.submit(f, x).result(timeout=SECONDS)

    assert benchmark(timed, 1) == 1


@SYNC
def test_sync_wrapt_timeout_decorator_signals(benchmark: BenchmarkFixture) -> None:
    timed: Any = wrapt_timeout_decorator.timeout(SECONDS)(f)
    assert benchmark(timed, 1) == 1


@SYNC
def test_sync_wrapt_timeout_decorator_process(benchmark: BenchmarkFixture) -> None:
    timed: Any = wrapt_timeout_decorator.timeout(SECONDS, use_signals=False)(f)
    assert benchmark.pedantic(timed, (1,), rounds=20) == 1


@SYNC
def test_sync_pyresilience(benchmark: BenchmarkFixture) -> None:
    timed: Any = pyresilience.resilient(timeout=pyresilience.TimeoutConfig(seconds=SECONDS))(f)
    assert benchmark(timed, 1) == 1


# -- timeout-not-firing-async ---------------------------------------------------------


@ASYNC
def test_async_bare(run_async: RunAsync) -> None:
    assert run_async(af) == 1


@ASYNC
def test_async_hazina(run_async: RunAsync) -> None:
    timed = hazina.timeout("t", registry=hazina.Registry(), seconds=SECONDS)(af)
    assert run_async(timed) == 1


@ASYNC
def test_async_asyncio(run_async: RunAsync) -> None:
    @functools.wraps(af)
    async def timed(x: int) -> int:
        async with asyncio.timeout(SECONDS):
            return await af(x)

    assert run_async(timed) == 1


@ASYNC
def test_async_pyresilience(run_async: RunAsync) -> None:
    timed: Any = pyresilience.resilient(timeout=pyresilience.TimeoutConfig(seconds=SECONDS))(af)
    assert run_async(timed) == 1


@ASYNC
def test_async_hyx(run_async: RunAsync) -> None:
    timed = lazily(lambda: hyx.timeout.timeout(SECONDS)(af))
    assert run_async(timed) == 1
