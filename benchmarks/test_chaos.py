"""Per-call cost of ``@chaos`` switched off (its state in production), beside a plain wrapper.

A chaos policy stays in the code and is switched on for a game day; the rest of the
time each call pays its pass-through. The contract: within 1.1x of a ``functools.wraps``
closure. There is no peer library for Python fault injection by decorator to set
beside it; ``enabled_no_faults`` shows the cost when on with every rate at 0 (each
call draws its faults under a lock).

Groups: ``chaos-disabled-sync`` (time per call) and
``chaos-disabled-async (per 1000 calls)`` (see ``conftest.py``).
"""

from __future__ import annotations

from pytest_benchmark.fixture import BenchmarkFixture

import hazina
from benchmarks.conftest import RunAsync, async_group, async_passthrough, passthrough, sync_group

SYNC = sync_group("chaos-disabled-sync")
ASYNC = async_group("chaos-disabled-async")


def f(x: int) -> int:
    return x


async def af(x: int) -> int:
    return x


@SYNC
def test_sync_bare(benchmark: BenchmarkFixture) -> None:
    assert benchmark(f, 1) == 1


@SYNC
def test_sync_functools(benchmark: BenchmarkFixture) -> None:
    assert benchmark(passthrough(f), 1) == 1


@SYNC
def test_sync_hazina(benchmark: BenchmarkFixture) -> None:
    reg = hazina.Registry()

    @hazina.chaos("c", registry=reg, error=ValueError, error_rate=0.5, enabled=False)
    def g(x: int) -> int:
        return x

    assert benchmark(g, 1) == 1


@SYNC
def test_sync_hazina_enabled_no_faults(benchmark: BenchmarkFixture) -> None:
    reg = hazina.Registry()

    @hazina.chaos("c", registry=reg)
    def g(x: int) -> int:
        return x

    assert benchmark(g, 1) == 1


@ASYNC
def test_async_bare(run_async: RunAsync) -> None:
    assert run_async(af) == 1


@ASYNC
def test_async_functools(run_async: RunAsync) -> None:
    assert run_async(async_passthrough(af)) == 1


@ASYNC
def test_async_hazina(run_async: RunAsync) -> None:
    reg = hazina.Registry()

    @hazina.chaos("c", registry=reg, error=ValueError, error_rate=0.5, enabled=False)
    async def g(x: int) -> int:
        return x

    assert run_async(g) == 1


@ASYNC
def test_async_hazina_enabled_no_faults(run_async: RunAsync) -> None:
    reg = hazina.Registry()

    @hazina.chaos("c", registry=reg)
    async def g(x: int) -> int:
        return x

    assert run_async(g) == 1
