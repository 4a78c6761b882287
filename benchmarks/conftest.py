"""Shared helpers for hazina's benchmark suite (pytest-benchmark).

How times are measured
----------------------
Sync rows time one call per iteration: ``benchmark(fn, 1)``, or for methods
``benchmark(operator.methodcaller("m", 1), obj)``, which performs the same attribute
lookup, descriptor binding and call as ``obj.m(1)`` without adding a Python frame of
its own. The tables show **time per call**. Sync rows warm up during calibration (see
:func:`sync_group`).

Async rows cannot be timed one call at a time without timing the event loop too:
``asyncio.run`` costs far more than the calls being measured. So every async
benchmark uses the ``run_async`` fixture below, which:

1. creates ONE event loop per benchmark, outside the timed region;
2. times ``loop.run_until_complete(many())``, where ``many`` awaits the target
   :data:`CALLS_PER_ROUND` (1000) times in a plain ``for`` loop.

The tables therefore show **time per 1000 calls**, and the async group names say so.
The ``bare`` row of each async group (``async def f(x): return x`` awaited directly)
is the floor: it contains the loop's per-round cost (one task, one
``run_until_complete``) spread over 1000 calls, plus the ``for`` loop and the
result check, all of which every other row pays identically. Subtract it to get a
wrapper's own overhead.

Test modules import the helpers from here (``benchmarks`` is a package for that) and
mark every test with :func:`sync_group` or :func:`async_group`, so each table compares
like with like.

Every benchmark checks its result (``f(1) == 1``; for async, the mean of the 1000
results is 1), so a wrapper that drops the result or returns an un-awaited
coroutine fails instead of looking fast.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterator
from typing import Final, ParamSpec, TypeVar

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

P = ParamSpec("P")
R = TypeVar("R")

#: How many awaits one timed async round performs; async tables are per this many calls.
CALLS_PER_ROUND: Final = 1000
#: Upper bound on calls spent warming up at each calibration step of a sync row.
WARMUP_ITERATIONS: Final = 10_000

AsyncTarget = Callable[[int], Awaitable[int]]
#: Signature of the ``run_async`` fixture: benchmark ``target``, return its mean result.
RunAsync = Callable[[AsyncTarget], float]


def passthrough(fn: Callable[P, R]) -> Callable[P, R]:
    """The reference decorator: a ``functools.wraps`` closure that only forwards the call.

    Any decorator pays at least this (one extra Python frame), so it is the fair
    baseline for what a resilience decorator adds on top.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return fn(*args, **kwargs)

    return wrapper


def async_passthrough(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """The async reference decorator: an ``async def`` closure that awaits the target.

    It awaits rather than returning the coroutine because any policy must see the
    outcome; that costs one coroutine frame, which every async policy pays too.
    """

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return await fn(*args, **kwargs)

    return wrapper


def sync_group(name: str) -> pytest.MarkDecorator:
    """The benchmark marker for a sync group: timed per call, with warm-up."""
    # Warm-up makes calibration take the *fastest* of many runs. Without it one slow
    # first call (cold caches, the interpreter not yet specialised) can exceed the 5 us
    # minimum round time and freeze calibration at one call per round, so the row then
    # measures the timer more than the call.
    return pytest.mark.benchmark(group=name, warmup=True, warmup_iterations=WARMUP_ITERATIONS)


def async_group(name: str) -> pytest.MarkDecorator:
    """The benchmark marker for an async group: timed per :data:`CALLS_PER_ROUND` calls."""
    # No warm-up: a round of 1000 awaits is far above the minimum round time, so
    # calibration cannot be misled, and warm-up would spend the time budget on rounds
    # that are thrown away.
    return pytest.mark.benchmark(group=f"{name} (per {CALLS_PER_ROUND} calls)", warmup=False)


@pytest.fixture
def run_async(benchmark: BenchmarkFixture) -> Iterator[RunAsync]:
    """Benchmark an async target as 1000 awaits per round inside one reused event loop.

    Each call is ``target(1)``; returns the mean result of the last round, so the test
    asserts ``== 1`` just as a sync row does.
    """
    # Not asyncio.run / pytest-asyncio: their per-call loop set-up would swamp the
    # nanoseconds being measured. One loop, made once, closed after the benchmark.
    loop = asyncio.new_event_loop()

    def run(target: AsyncTarget) -> float:
        async def many() -> int:
            total = 0
            for _ in range(CALLS_PER_ROUND):
                total += await target(1)
            return total

        def one_round() -> int:
            return loop.run_until_complete(many())

        total: int = benchmark(one_round)
        return total / CALLS_PER_ROUND

    try:
        yield run
    finally:
        loop.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the worst-call rows' percentiles beside their targets (test_housekeeping.py)."""
    from benchmarks.test_housekeeping import RESULTS

    if RESULTS:
        terminalreporter.section("worst calls (issue 10 targets)")
        for line in RESULTS:
            terminalreporter.write_line(line)
