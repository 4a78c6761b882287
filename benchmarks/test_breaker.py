"""Per-call cost of a CLOSED circuit breaker on the success path, hazina beside its peers.

The ``_keyed`` rows time a known key's call through a keyed breaker
(``key=lambda x: x``), beside the way to get per-key breakers without one: a dict of
pybreaker instances.

This is the path every protected call takes while the dependency is healthy, so it is
the overhead a service pays all the time. Each row wraps ``f(x) -> x`` with a fresh
breaker that stays closed throughout (the target never fails).

Groups: ``breaker-closed-sync`` (time per call) and
``breaker-closed-async (per 1000 calls)`` (see ``conftest.py``).

Async peers: ``circuitbreaker`` (2.x) wraps ``async def`` natively. ``pybreaker`` is
left out of the async group: its only coroutine path, ``call_async`` /
``__pybreaker_call_async``, is built on tornado's ``gen.coroutine``, and decorating an
``async def`` with the plain decorator returns the coroutine un-awaited, so the breaker
would record a success before the call has even run.
"""

from __future__ import annotations

import circuitbreaker
import pybreaker
from pytest_benchmark.fixture import BenchmarkFixture

import hazina
from benchmarks.conftest import RunAsync, async_group, async_passthrough, passthrough, sync_group

SYNC = sync_group("breaker-closed-sync")
ASYNC = async_group("breaker-closed-async")


def f(x: int) -> int:
    return x


async def af(x: int) -> int:
    return x


# -- breaker-closed-sync ------------------------------------------------------------


@SYNC
def test_sync_bare(benchmark: BenchmarkFixture) -> None:
    assert benchmark(f, 1) == 1


@SYNC
def test_sync_functools(benchmark: BenchmarkFixture) -> None:
    assert benchmark(passthrough(f), 1) == 1


@SYNC
def test_sync_hazina(benchmark: BenchmarkFixture) -> None:
    reg = hazina.Registry()

    @hazina.circuit_breaker("b", registry=reg)
    def g(x: int) -> int:
        return x

    assert benchmark(g, 1) == 1


@SYNC
def test_sync_hazina_keyed(benchmark: BenchmarkFixture) -> None:
    reg = hazina.Registry()

    @hazina.circuit_breaker("b", registry=reg, key=lambda x: x)
    def g(x: int) -> int:
        return x

    g(1)  # the key's state exists: what is timed is a known key's closed call
    assert benchmark(g, 1) == 1


@SYNC
def test_sync_pybreaker(benchmark: BenchmarkFixture) -> None:
    breaker = pybreaker.CircuitBreaker()

    @breaker
    def g(x: int) -> int:
        return x

    assert benchmark(g, 1) == 1


@SYNC
def test_sync_pybreaker_keyed(benchmark: BenchmarkFixture) -> None:
    # What users write without keyed breakers: a dict of breakers, one per key.
    breakers: dict[int, pybreaker.CircuitBreaker] = {}

    def g(x: int) -> int:
        breaker = breakers.get(x)
        if breaker is None:
            breaker = breakers.setdefault(x, pybreaker.CircuitBreaker())
        return breaker.call(f, x)  # type: ignore[no-any-return]

    g(1)
    assert benchmark(g, 1) == 1


@SYNC
def test_sync_circuitbreaker(benchmark: BenchmarkFixture) -> None:
    @circuitbreaker.circuit
    def g(x: int) -> int:
        return x

    assert benchmark(g, 1) == 1


# -- breaker-closed-async -----------------------------------------------------------


@ASYNC
def test_async_bare(run_async: RunAsync) -> None:
    assert run_async(af) == 1


@ASYNC
def test_async_functools(run_async: RunAsync) -> None:
    assert run_async(async_passthrough(af)) == 1


@ASYNC
def test_async_hazina(run_async: RunAsync) -> None:
    reg = hazina.Registry()

    @hazina.circuit_breaker("b", registry=reg)
    async def g(x: int) -> int:
        return x

    assert run_async(g) == 1


@ASYNC
def test_async_hazina_keyed(run_async: RunAsync) -> None:
    reg = hazina.Registry()

    @hazina.circuit_breaker("b", registry=reg, key=lambda x: x)
    async def g(x: int) -> int:
        return x

    assert run_async(g) == 1


@ASYNC
def test_async_circuitbreaker(run_async: RunAsync) -> None:
    @circuitbreaker.circuit
    async def g(x: int) -> int:
        return x

    assert run_async(g) == 1
