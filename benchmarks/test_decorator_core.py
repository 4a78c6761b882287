"""Per-call cost of the decorator mechanism itself, before any resilience logic.

Each row wraps ``f(x) -> x`` in a pass-through built a different way, so the table
shows what the *wrapping technique* costs: a plain ``functools.wraps`` closure versus
the ways wrapt offers, versus hazina's decorator core (``hazina._core.decorate.apply_policy``
with a policy whose drivers only forward) and a real hazina decorator (``retry``,
first try succeeds).

Groups: ``wrapper-sync`` (``f(1)``), ``wrapper-method`` (``obj.m(1)``: attribute
lookup, descriptor binding and call, every time) and ``wrapper-async (per 1000 calls)``
(see ``conftest.py`` for how async rounds are timed).
"""

from __future__ import annotations

import operator
import types
from collections.abc import Awaitable, Callable
from typing import Any

import wrapt
from pytest_benchmark.fixture import BenchmarkFixture

import hazina
from benchmarks.conftest import RunAsync, async_group, async_passthrough, passthrough, sync_group

SYNC = sync_group("wrapper-sync")
METHOD = sync_group("wrapper-method")
ASYNC = async_group("wrapper-async")

WrapperFn = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]

# obj.m(1) without a Python frame of the harness's own between the timer and the call.
call_m = operator.methodcaller("m", 1)


# -- the wrapt variants -------------------------------------------------------------


@wrapt.decorator
def wrapt_passthrough(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    return wrapped(*args, **kwargs)


@wrapt.decorator
async def wrapt_async_passthrough(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    return await wrapped(*args, **kwargs)


def _forward(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    return wrapped(*args, **kwargs)


async def _async_forward(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    return await wrapped(*args, **kwargs)


class UnprobedFunctionWrapper(wrapt.FunctionWrapper):  # type: ignore[misc]
    """A FunctionWrapper whose binding is declared "staticmethod".

    wrapt's C ``__call__`` probes ``wrapped.__self__`` on every call when the binding
    is "function" (an AttributeError raised and cleared for each plain function);
    the "staticmethod" binding skips that probe. This row shows what the probe costs.
    """

    def __init__(self, wrapped: Callable[..., Any], wrapper: WrapperFn) -> None:
        wrapt._wrappers._FunctionWrapperBase.__init__(
            self, wrapped, None, wrapper, None, "staticmethod"
        )


class CallProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """An ObjectProxy whose ``__call__`` is a Python method that forwards."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__wrapped__(*args, **kwargs)

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        # ObjectProxy is not a descriptor, so without this obj.m(1) would lose `self`;
        # MethodType is the cheapest correct binding.
        return self if instance is None else types.MethodType(self, instance)


class AsyncCallProxy(CallProxy):
    """:class:`CallProxy` whose ``__call__`` is ``async def`` and awaits the target."""

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return await self.__wrapped__(*args, **kwargs)


# -- hazina -------------------------------------------------------------------------


class PassThroughPolicy:
    """Duck-typed stand-in for ``hazina._core.policy.Policy`` whose drivers only forward.

    Through ``apply_policy`` it measures hazina's decorator core alone, with no
    resilience logic: the number to compare with the functools and wrapt rows.
    Tracks an internal API; if that changes, only the ``hazina_core`` rows fail.
    """

    kind = "pass_through"
    name = "bench"

    def _sync_driver(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def driver(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        return driver

    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def driver(*args: Any, **kwargs: Any) -> Any:
            return await fn(*args, **kwargs)

        return driver


def hazina_core(fn: Callable[..., Any]) -> Any:
    from hazina._core.decorate import apply_policy

    return apply_policy(PassThroughPolicy(), fn)  # type: ignore[arg-type]


def hazina_retry(fn: Callable[..., Any]) -> Any:
    reg = hazina.Registry()
    return hazina.retry("r", registry=reg)(fn)


# -- targets ------------------------------------------------------------------------


def f(x: int) -> int:
    return x


async def af(x: int) -> int:
    return x


def m(self: object, x: int) -> int:
    return x


def instance_with(method: Any) -> Any:
    """An instance of a fresh class whose ``m`` is ``method``, as if set in the body."""
    return type("C", (), {"m": method})()


# -- wrapper-sync -------------------------------------------------------------------


@SYNC
def test_sync_bare(benchmark: BenchmarkFixture) -> None:
    assert benchmark(f, 1) == 1


@SYNC
def test_sync_functools(benchmark: BenchmarkFixture) -> None:
    assert benchmark(passthrough(f), 1) == 1


@SYNC
def test_sync_wrapt_decorator(benchmark: BenchmarkFixture) -> None:
    assert benchmark(wrapt_passthrough(f), 1) == 1


@SYNC
def test_sync_wrapt_unprobed(benchmark: BenchmarkFixture) -> None:
    assert benchmark(UnprobedFunctionWrapper(f, _forward), 1) == 1


@SYNC
def test_sync_wrapt_objectproxy_call(benchmark: BenchmarkFixture) -> None:
    assert benchmark(CallProxy(f), 1) == 1


@SYNC
def test_sync_hazina_core(benchmark: BenchmarkFixture) -> None:
    assert benchmark(hazina_core(f), 1) == 1


@SYNC
def test_sync_hazina_retry(benchmark: BenchmarkFixture) -> None:
    assert benchmark(hazina_retry(f), 1) == 1


# -- wrapper-method -----------------------------------------------------------------


@METHOD
def test_method_bare(benchmark: BenchmarkFixture) -> None:
    assert benchmark(call_m, instance_with(m)) == 1


@METHOD
def test_method_functools(benchmark: BenchmarkFixture) -> None:
    assert benchmark(call_m, instance_with(passthrough(m))) == 1


@METHOD
def test_method_wrapt_decorator(benchmark: BenchmarkFixture) -> None:
    assert benchmark(call_m, instance_with(wrapt_passthrough(m))) == 1


@METHOD
def test_method_wrapt_unprobed(benchmark: BenchmarkFixture) -> None:
    assert benchmark(call_m, instance_with(UnprobedFunctionWrapper(m, _forward))) == 1


@METHOD
def test_method_wrapt_objectproxy_call(benchmark: BenchmarkFixture) -> None:
    assert benchmark(call_m, instance_with(CallProxy(m))) == 1


@METHOD
def test_method_hazina_core(benchmark: BenchmarkFixture) -> None:
    assert benchmark(call_m, instance_with(hazina_core(m))) == 1


@METHOD
def test_method_hazina_retry(benchmark: BenchmarkFixture) -> None:
    assert benchmark(call_m, instance_with(hazina_retry(m))) == 1


# -- wrapper-async ------------------------------------------------------------------


@ASYNC
def test_async_bare(run_async: RunAsync) -> None:
    assert run_async(af) == 1


@ASYNC
def test_async_functools(run_async: RunAsync) -> None:
    assert run_async(async_passthrough(af)) == 1


@ASYNC
def test_async_wrapt_decorator(run_async: RunAsync) -> None:
    assert run_async(wrapt_async_passthrough(af)) == 1


@ASYNC
def test_async_wrapt_unprobed(run_async: RunAsync) -> None:
    assert run_async(UnprobedFunctionWrapper(af, _async_forward)) == 1


@ASYNC
def test_async_wrapt_objectproxy_call(run_async: RunAsync) -> None:
    assert run_async(AsyncCallProxy(af)) == 1


@ASYNC
def test_async_hazina_core(run_async: RunAsync) -> None:
    assert run_async(hazina_core(af)) == 1


@ASYNC
def test_async_hazina_retry(run_async: RunAsync) -> None:
    assert run_async(hazina_retry(af)) == 1
