"""Per-call cost of a retry decorator when the first attempt succeeds, hazina beside its peers.

Almost every call through a retry decorator succeeds at once, so this path, not the
retrying one, is the overhead a service pays all the time. Each row wraps ``f(x) -> x``
with up to 3 attempts; the target never fails, so no row ever waits.

Rows ``hazina_budget`` share a retry budget (target: within 1.2x of ``hazina``);
``hazina_block`` is the block form, ``for attempt in hazina.retrying(...)``, where the
closest peer is stamina's ``retry_context``.

Groups: ``retry-first-try-sync`` (time per call) and
``retry-first-try-async (per 1000 calls)`` (see ``conftest.py``). Every peer here
supports ``async def`` natively, so each appears in both groups.
"""

from __future__ import annotations

import backoff
import stamina
import tenacity
from pytest_benchmark.fixture import BenchmarkFixture

import hazina
from benchmarks.conftest import RunAsync, async_group, async_passthrough, passthrough, sync_group

SYNC = sync_group("retry-first-try-sync")
ASYNC = async_group("retry-first-try-async")


def f(x: int) -> int:
    return x


async def af(x: int) -> int:
    return x


# -- retry-first-try-sync -----------------------------------------------------------


@SYNC
def test_sync_bare(benchmark: BenchmarkFixture) -> None:
    assert benchmark(f, 1) == 1


@SYNC
def test_sync_functools(benchmark: BenchmarkFixture) -> None:
    assert benchmark(passthrough(f), 1) == 1


@SYNC
def test_sync_hazina(benchmark: BenchmarkFixture) -> None:
    reg = hazina.Registry()

    @hazina.retry("r", registry=reg)
    def g(x: int) -> int:
        return x

    assert benchmark(g, 1) == 1


@SYNC
def test_sync_hazina_budget(benchmark: BenchmarkFixture) -> None:
    reg = hazina.Registry()
    reg.retry_budget("b")

    @hazina.retry("r", registry=reg, budget="b")
    def g(x: int) -> int:
        return x

    assert benchmark(g, 1) == 1


@SYNC
def test_sync_hazina_block(benchmark: BenchmarkFixture) -> None:
    reg = hazina.Registry()

    def g(x: int) -> int:
        for attempt in hazina.retrying("r", registry=reg):
            with attempt:
                return x
        raise AssertionError("unreachable")

    assert benchmark(g, 1) == 1


@SYNC
def test_sync_stamina_block(benchmark: BenchmarkFixture) -> None:
    def g(x: int) -> int:
        for attempt in stamina.retry_context(on=Exception, attempts=3):
            with attempt:
                return x
        raise AssertionError("unreachable")

    assert benchmark(g, 1) == 1


@SYNC
def test_sync_tenacity_block(benchmark: BenchmarkFixture) -> None:
    def g(x: int) -> int:
        for attempt in tenacity.Retrying(stop=tenacity.stop_after_attempt(3)):
            with attempt:
                return x
        raise AssertionError("unreachable")

    assert benchmark(g, 1) == 1


@SYNC
def test_sync_tenacity(benchmark: BenchmarkFixture) -> None:
    @tenacity.retry(stop=tenacity.stop_after_attempt(3))
    def g(x: int) -> int:
        return x

    assert benchmark(g, 1) == 1


@SYNC
def test_sync_stamina(benchmark: BenchmarkFixture) -> None:
    @stamina.retry(on=Exception, attempts=3)
    def g(x: int) -> int:
        return x

    assert benchmark(g, 1) == 1


@SYNC
def test_sync_backoff(benchmark: BenchmarkFixture) -> None:
    @backoff.on_exception(backoff.expo, Exception, max_tries=3)
    def g(x: int) -> int:
        return x

    assert benchmark(g, 1) == 1


# -- retry-first-try-async ----------------------------------------------------------


@ASYNC
def test_async_bare(run_async: RunAsync) -> None:
    assert run_async(af) == 1


@ASYNC
def test_async_functools(run_async: RunAsync) -> None:
    assert run_async(async_passthrough(af)) == 1


@ASYNC
def test_async_hazina(run_async: RunAsync) -> None:
    reg = hazina.Registry()

    @hazina.retry("r", registry=reg)
    async def g(x: int) -> int:
        return x

    assert run_async(g) == 1


@ASYNC
def test_async_hazina_budget(run_async: RunAsync) -> None:
    reg = hazina.Registry()
    reg.retry_budget("b")

    @hazina.retry("r", registry=reg, budget="b")
    async def g(x: int) -> int:
        return x

    assert run_async(g) == 1


@ASYNC
def test_async_tenacity(run_async: RunAsync) -> None:
    @tenacity.retry(stop=tenacity.stop_after_attempt(3))
    async def g(x: int) -> int:
        return x

    assert run_async(g) == 1


@ASYNC
def test_async_stamina(run_async: RunAsync) -> None:
    @stamina.retry(on=Exception, attempts=3)
    async def g(x: int) -> int:
        return x

    assert run_async(g) == 1


@ASYNC
def test_async_backoff(run_async: RunAsync) -> None:
    @backoff.on_exception(backoff.expo, Exception, max_tries=3)
    async def g(x: int) -> int:
        return x

    assert run_async(g) == 1
