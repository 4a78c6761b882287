"""Per-call cost of a hedging decorator when the first attempt is fast, hazina beside peers.

A hedge exists for the slow tail; most calls end well within the delay and never
start a second attempt, so this path is the overhead a service pays all the time.
Each row wraps ``f(x) -> x`` with a 1-second delay and one hedge at most; the target
returns at once, so no row ever hedges.

Groups: ``hedge-fast-sync`` (time per call) and
``hedge-fast-async (per 1000 calls)`` (see ``conftest.py``).

No Python resilience library hedges (hyx, pyresilience, tenacity and stamina have no
such policy), so the peers are the two wrappers one writes by hand: for async,
``asyncio_wait`` runs each attempt as a task and waits with
``asyncio.wait(..., timeout=delay, return_when=FIRST_COMPLETED)``; for sync,
``futures_wait`` submits each attempt to a ``concurrent.futures.ThreadPoolExecutor``
and waits with ``concurrent.futures.wait`` the same way. A sync hedge must run its
attempts on other threads (the caller cannot leave an attempt it runs itself), so the
sync rows measure a hand-off to a worker thread and back.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import hazina
from benchmarks.conftest import RunAsync, async_group, sync_group

SYNC = sync_group("hedge-fast-sync")
ASYNC = async_group("hedge-fast-async")
DELAY = 1.0


def f(x: int) -> int:
    return x


async def af(x: int) -> int:
    return x


def futures_wait(
    executor: ThreadPoolExecutor, delay: float, max_hedges: int = 1
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A hand-written sync hedge over ``concurrent.futures``."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            running: set[Future[Any]] = {executor.submit(fn, *args, **kwargs)}
            errors: list[BaseException] = []
            started = 1
            while running:
                done, running = wait(running, timeout=delay, return_when=FIRST_COMPLETED)
                for future in done:
                    error = future.exception()
                    if error is None:
                        return future.result()
                    errors.append(error)
                if started <= max_hedges:
                    running.add(executor.submit(fn, *args, **kwargs))
                    started += 1
            raise errors[0]

        return wrapper

    return decorate


def asyncio_wait(
    delay: float, max_hedges: int = 1
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """A hand-written async hedge over ``asyncio.wait``."""

    def decorate(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            running: set[asyncio.Future[Any]] = {asyncio.ensure_future(fn(*args, **kwargs))}
            errors: list[BaseException] = []
            started = 1
            try:
                while running:
                    done, running = await asyncio.wait(
                        running, timeout=delay, return_when=asyncio.FIRST_COMPLETED
                    )
                    for task in done:
                        error = task.exception()
                        if error is None:
                            return task.result()
                        errors.append(error)
                    if started <= max_hedges:
                        running.add(asyncio.ensure_future(fn(*args, **kwargs)))
                        started += 1
                raise errors[0]
            finally:
                for task in running:
                    task.cancel()

        return wrapper

    return decorate


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield pool


# -- hedge-fast-sync -----------------------------------------------------------------


@SYNC
def test_sync_bare(benchmark: BenchmarkFixture) -> None:
    assert benchmark(f, 1) == 1


@SYNC
def test_sync_hazina(benchmark: BenchmarkFixture) -> None:
    reg = hazina.Registry()

    @hazina.hedge("h", registry=reg, delay=DELAY)
    def g(x: int) -> int:
        return x

    assert benchmark(g, 1) == 1


@SYNC
def test_sync_futures_wait(benchmark: BenchmarkFixture, executor: ThreadPoolExecutor) -> None:
    assert benchmark(futures_wait(executor, DELAY)(f), 1) == 1


# -- hedge-fast-async ----------------------------------------------------------------


@ASYNC
def test_async_bare(run_async: RunAsync) -> None:
    assert run_async(af) == 1


@ASYNC
def test_async_hazina(run_async: RunAsync) -> None:
    reg = hazina.Registry()

    @hazina.hedge("h", registry=reg, delay=DELAY)
    async def g(x: int) -> int:
        return x

    assert run_async(g) == 1


@ASYNC
def test_async_asyncio_wait(run_async: RunAsync) -> None:
    assert run_async(asyncio_wait(DELAY)(af)) == 1
