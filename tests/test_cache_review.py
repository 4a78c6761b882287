"""Adversarial review of the cache: edge cases the rest of the suite does not pin down.

Tests whose docstrings say "Regression" pin bugs this review found (fixed since); the
others cover behaviour (memory bounds, bookkeeping cleanup) no other test checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import hazina
from hazina._cache.flight import ABANDONED
from hazina._cache.log import DEBUG
from hazina.testing import FakeClock

#: Real seconds a thread may take before the test calls it stuck.
TIMEOUT = 5.0
#: Real seconds after which a call that should answer at once is taken to hang.
STUCK = 1.0


class Boom(Exception):
    """The dependency failed."""


@pytest.fixture
def debug_logging() -> Iterator[logging.Logger]:
    """The ``hazina`` logger switched to DEBUG, restored afterwards."""
    logger = logging.getLogger("hazina")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield logger
    finally:
        logger.setLevel(level)
        DEBUG.refresh()


# -- stats -----------------------------------------------------------------------------


def test_load_errors_never_exceed_loads_across_reset(registry: hazina.Registry) -> None:
    """Regression: a load begun before reset() that fails after it is not counted after it."""
    cache = registry.cache("c")
    started, release = threading.Event(), threading.Event()

    def factory() -> int:
        started.set()
        release.wait(TIMEOUT)
        raise Boom

    def call() -> None:
        with pytest.raises(Boom):
            cache.get_or_set("k", factory)

    thread = threading.Thread(target=call)
    thread.start()
    assert started.wait(TIMEOUT)
    cache.reset()
    release.set()
    thread.join(TIMEOUT)

    stats = cache.stats()
    assert stats.load_errors <= stats.loads


# -- coroutines --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_load_returning_a_coroutine_is_refused(registry: hazina.Registry) -> None:
    """Regression: an awaited value that is itself a coroutine is refused, as set() does."""

    async def inner() -> int:
        return 1

    @hazina.cached("co", registry=registry)
    async def forgot_await(key: int) -> Any:
        return inner()  # a bug in the user's code: the coroutine itself is returned

    value: Any = None
    try:
        with pytest.raises(TypeError, match="coroutine"):
            value = await forgot_await(1)
    finally:
        if inspect.iscoroutine(value):
            value.close()
        forgot_await.cache_clear()


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["ttl", "sliding", "expires_at"])
def test_huge_integer_durations_do_not_overflow(registry: hazina.Registry, option: str) -> None:
    """Regression: an int too large for a float raises no OverflowError at decoration."""
    config: dict[str, Any] = {option: 10**400}
    with contextlib.suppress(hazina.ConfigurationError):
        registry.cache("big", **config)


# -- single flight -------------------------------------------------------------------------


def test_overlapping_loads_without_single_flight_store_the_first_result(
    registry: hazina.Registry,
) -> None:
    """Regression: without single flight, a load finishing while another runs is stored."""
    gates: dict[str, threading.Event] = {"a": threading.Event(), "b": threading.Event()}
    entered: dict[str, threading.Event] = {"a": threading.Event(), "b": threading.Event()}
    local = threading.local()

    @hazina.cached("nsf", registry=registry, single_flight=False)
    def load(key: int) -> str:
        name: str = local.name
        entered[name].set()
        gates[name].wait(TIMEOUT)
        return name

    def run(name: str) -> None:
        local.name = name
        load(1)

    first = threading.Thread(target=run, args=("a",))
    second = threading.Thread(target=run, args=("b",))
    first.start()
    assert entered["a"].wait(TIMEOUT)
    second.start()
    assert entered["b"].wait(TIMEOUT)
    try:
        gates["a"].set()
        first.join(TIMEOUT)
        # Nothing set, deleted or cleared the key: the finished load should be cached.
        assert load.policy.get((1,), "missing") == "a"
    finally:
        gates["b"].set()
        second.join(TIMEOUT)


@pytest.mark.asyncio
async def test_cancelled_error_raised_by_the_load_is_shared(registry: hazina.Registry) -> None:
    """Regression: a load that raises CancelledError without its task being cancelled runs once."""
    calls = 0

    @hazina.cached("cx", registry=registry)
    async def load(key: int) -> int:
        nonlocal calls
        calls += 1
        inner = asyncio.ensure_future(asyncio.sleep(10))
        await asyncio.sleep(0)
        inner.cancel()
        await inner  # raises CancelledError; this task was never cancelled
        return key

    outcomes = await asyncio.gather(*(load(1) for _ in range(5)), return_exceptions=True)

    assert all(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)
    assert calls == 1


def test_failing_debug_log_does_not_leave_the_key_locked(
    registry: hazina.Registry, debug_logging: logging.Logger
) -> None:
    """Regression: a debug log handler that raises on a miss does not lock the key forever."""

    class BrokenSink(logging.Filter):
        failed = False

        def filter(self, record: logging.LogRecord) -> bool:
            if not self.failed and "miss" in record.getMessage():
                self.failed = True
                raise RuntimeError("log sink broke")
            return True

    @hazina.cached("lk", registry=registry)
    def load(key: int) -> int:
        return key

    sink = BrokenSink()
    debug_logging.addFilter(sink)
    results: list[int] = []
    other = threading.Thread(target=lambda: results.append(load(1)), daemon=True)
    try:
        with pytest.raises(RuntimeError, match="log sink broke"):
            load(1)
        other.start()
        other.join(STUCK)
        assert results == [1]
    finally:
        debug_logging.removeFilter(sink)
        policy = load.policy
        with policy._lock:
            orphans = list(policy._flights.values())
            policy._flights.clear()
        for flight in orphans:
            flight.settle(ABANDONED)
        other.join(TIMEOUT)


# -- names and keys --------------------------------------------------------------------------


def test_closures_from_one_factory_never_share_results(registry: hazina.Registry) -> None:
    """Regression: closures of one factory, cached by default name, shared one cache and
    returned each other's results; now they must be named, and named apart they stay apart."""

    def make_unnamed(n: int) -> Any:
        @hazina.cached(registry=registry)
        def add(x: int) -> int:
            return x + n

        return add

    def make_named(n: int) -> Any:
        @hazina.cached(f"add-{n}", registry=registry)
        def add(x: int) -> int:
            return x + n

        return add

    with pytest.raises(hazina.ConfigurationError, match="needs a name"):
        make_unnamed(1)
    add_one, add_two = make_named(1), make_named(2)
    assert (add_one(5), add_two(5)) == (6, 7)


@pytest.mark.asyncio
async def test_async_closures_from_one_factory_never_share_results(
    registry: hazina.Registry,
) -> None:
    """Regression: the same for coroutine functions made by one factory."""

    def make_unnamed(n: int) -> Any:
        @hazina.cached(registry=registry)
        async def add(x: int) -> int:
            return x + n

        return add

    with pytest.raises(hazina.ConfigurationError, match="needs a name"):
        make_unnamed(1)


# -- memory bounds (contract holds; not covered elsewhere) ----------------------------------


@pytest.mark.parametrize("sliding", [None, 5.0])
def test_expiry_heap_stays_bounded_when_one_key_is_set_repeatedly(
    registry: hazina.Registry, clock: FakeClock, sliding: float | None
) -> None:
    """Re-setting one key thousands of times never grows the expiry heap past O(max_size)."""
    cache = registry.cache("heap", ttl=10, sliding=sliding, max_size=8)
    heap = cache.store._expiry
    largest = 0
    for round_ in range(5000):
        cache.set("k", round_)
        assert cache.get("k") == round_
        clock.advance(0.001)
        largest = max(largest, len(heap))

    assert largest <= 2 * 8 + 65
    assert cache.stats().size == 1


def test_flights_are_forgotten_after_every_kind_of_outcome(
    registry: hazina.Registry,
) -> None:
    """A value, an error and an interrupt each leave no in-flight bookkeeping behind."""

    class Interrupted(BaseException):
        """Stands for KeyboardInterrupt."""

    cache = registry.cache("fl")

    def fail() -> int:
        raise Boom

    def interrupt() -> int:
        raise Interrupted

    assert cache.get_or_set("v", lambda: 1) == 1
    with pytest.raises(Boom):
        cache.get_or_set("e", fail)
    with pytest.raises(Interrupted):
        cache.get_or_set("i", interrupt)

    assert cache._flights == {}
    stats = cache.stats()
    assert (stats.loads, stats.load_errors, stats.size) == (3, 2, 1)


@pytest.mark.asyncio
async def test_cancelled_async_leader_leaves_no_flight_behind(registry: hazina.Registry) -> None:
    """A cancelled async load leaves no in-flight bookkeeping, and the key loads again."""
    started = asyncio.Event()

    @hazina.cached("cl", registry=registry)
    async def load(key: int) -> int:
        started.set()
        await asyncio.sleep(3600)
        return key

    task = asyncio.ensure_future(load(1))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert load.policy._flights == {}
    stats = load.policy.stats()
    assert (stats.loads, stats.load_errors, stats.size) == (1, 1, 0)
