"""Per-call cost of a fallback decorator when the call succeeds, hazina beside its peers.

A fallback is there for the rare failure; every other call pays only its wrapper, so
this path is the overhead a service pays all the time. Each row wraps ``f(x) -> x``
with a fallback value of 0; the target never fails, so no fallback is ever used.

Groups: ``fallback-unused-sync`` (time per call) and
``fallback-unused-async (per 1000 calls)`` (see ``conftest.py``).

Rows besides hazina: ``try_except``, a hand-written wrapper (``try: return f(...)``
``except Exception: return 0``), the least any fallback can cost, and which keeps no
stats; pyresilience's ``@resilient(fallback=FallbackConfig(...))``; and hyx's
``@fallback`` (async only: hyx wraps coroutine functions alone).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import pyresilience
from hyx.fallback import fallback as hyx_fallback
from pytest_benchmark.fixture import BenchmarkFixture

import hazina
from benchmarks.conftest import RunAsync, async_group, async_passthrough, passthrough, sync_group

SYNC = sync_group("fallback-unused-sync")
ASYNC = async_group("fallback-unused-async")


def f(x: int) -> int:
    return x


async def af(x: int) -> int:
    return x


def try_except(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception:
            return 0

    return wrapper


def async_try_except(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except Exception:
            return 0

    return wrapper


async def zero(error: BaseException, *args: Any, **kwargs: Any) -> int:
    return 0


# -- fallback-unused-sync -------------------------------------------------------------


@SYNC
def test_sync_bare(benchmark: BenchmarkFixture) -> None:
    assert benchmark(f, 1) == 1


@SYNC
def test_sync_functools(benchmark: BenchmarkFixture) -> None:
    assert benchmark(passthrough(f), 1) == 1


@SYNC
def test_sync_try_except(benchmark: BenchmarkFixture) -> None:
    assert benchmark(try_except(f), 1) == 1


@SYNC
def test_sync_hazina(benchmark: BenchmarkFixture) -> None:
    reg = hazina.Registry()

    @hazina.fallback("f", registry=reg, value=0)
    def g(x: int) -> int:
        return x

    assert benchmark(g, 1) == 1


@SYNC
def test_sync_pyresilience(benchmark: BenchmarkFixture) -> None:
    @pyresilience.resilient(fallback=pyresilience.FallbackConfig(handler=lambda error: 0))
    def g(x: int) -> int:
        return x

    assert benchmark(g, 1) == 1


# -- fallback-unused-async ------------------------------------------------------------


@ASYNC
def test_async_bare(run_async: RunAsync) -> None:
    assert run_async(af) == 1


@ASYNC
def test_async_functools(run_async: RunAsync) -> None:
    assert run_async(async_passthrough(af)) == 1


@ASYNC
def test_async_try_except(run_async: RunAsync) -> None:
    assert run_async(async_try_except(af)) == 1


@ASYNC
def test_async_hazina(run_async: RunAsync) -> None:
    reg = hazina.Registry()

    @hazina.fallback("f", registry=reg, value=0)
    async def g(x: int) -> int:
        return x

    assert run_async(g) == 1


@ASYNC
def test_async_pyresilience(run_async: RunAsync) -> None:
    @pyresilience.resilient(fallback=pyresilience.FallbackConfig(handler=lambda error: 0))
    async def g(x: int) -> int:
        return x

    assert run_async(g) == 1


@ASYNC
def test_async_hyx(run_async: RunAsync) -> None:
    @hyx_fallback(zero)
    async def g(x: int) -> int:
        return x

    assert run_async(g) == 1
