"""Stampede protection and thread safety: one load per key, shared outcomes, cancellation.

Real threads and real asyncio tasks. In the async flavor, each thread runs the cached
coroutine function on an event loop of its own, so waiters are woken across loops.
Nothing waits for time to pass: loads block until the test sees the waiters it expects
(``stats().coalesced``), and every wait is bounded by ``TIMEOUT`` so that a regression
(a deadlock, a lost wake-up) fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import dis
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
from interrupts import fork_children, hammered, lock_is_free, signal_storm

import hazina
from hazina._cache import store as store_module
from hazina._cache.flight import ABANDONED
from hazina._cache.log import DEBUG
from hazina._cache.store import Entry
from hazina.testing import FakeClock

if TYPE_CHECKING:
    from conftest import Flavor

Cached = hazina.CachedFunction[..., Any]

#: Real seconds a thread or task may take before the test calls it stuck.
TIMEOUT = 10.0
#: Real seconds after which a call that should answer at once is taken to hang.
STUCK = 1.0


class Boom(Exception):
    """The dependency failed."""


class Interrupted(BaseException):
    """Stands for KeyboardInterrupt or SystemExit: the leader stops without an answer."""


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Block until ``condition()`` holds; fail after ``TIMEOUT`` real seconds."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.0005)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Yield to other tasks until ``condition()`` holds; fail after ``TIMEOUT`` real seconds."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0)


def cached(
    flavor: Flavor, registry: hazina.Registry, body: Callable[..., Any], **config: Any
) -> Cached:
    """``body`` as a sync or async function cached in ``registry``'s cache "c"."""
    decorate: Any = hazina.cached("c", registry=registry, **config)
    fn: Cached = decorate(flavor.define(body))
    return fn


def call_on_this_thread(flavor: Flavor, fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn`` from any thread: directly, or on a fresh event loop for the async flavor."""
    if flavor.is_async:
        coroutine: Coroutine[Any, Any, Any] = fn(*args)
        return asyncio.run(coroutine)
    return fn(*args)


def in_threads(
    pool: ThreadPoolExecutor, count: int, flavor: Flavor, fn: Callable[..., Any], *args: Any
) -> list[Future[Any]]:
    """Start ``count`` calls of ``fn(*args)``, each on a pool thread."""
    return [pool.submit(call_on_this_thread, flavor, fn, *args) for _ in range(count)]


def outcomes(futures: list[Future[Any]]) -> list[Any]:
    """Each call's result, or the exception it raised."""
    results = []
    for future in futures:
        error = future.exception(timeout=TIMEOUT)
        results.append(error if error is not None else future.result())
    return results


@pytest.fixture
def pool() -> Any:
    """Real threads, enough for every caller at once."""
    with ThreadPoolExecutor(max_workers=24) as pool:
        yield pool


# -- threads --------------------------------------------------------------------------


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


def test_twenty_threads_missing_one_key_run_the_function_once(
    flavor: Flavor, registry: hazina.Registry, pool: ThreadPoolExecutor
) -> None:
    """20 concurrent misses of one key: one run; 19 callers wait for it and get its value."""
    runs = 0

    def load(key: str) -> str:
        nonlocal runs
        runs += 1
        wait_until(lambda: fn.policy.stats().coalesced == 19, "19 waiting callers")
        return f"value of {key}"

    fn = cached(flavor, registry, load)

    results = outcomes(in_threads(pool, 20, flavor, fn, "k"))

    assert results == ["value of k"] * 20
    assert runs == 1
    stats = fn.policy.stats()
    assert (stats.misses, stats.loads, stats.coalesced, stats.hits) == (1, 1, 19, 0)
    assert flavor.call(fn, "k") == "value of k"
    assert runs == 1


def test_waiters_get_the_leaders_exception_and_nothing_is_cached(
    flavor: Flavor, registry: hazina.Registry, pool: ThreadPoolExecutor
) -> None:
    """When the one load raises, every waiting caller raises that same exception."""
    runs = 0
    error = Boom("down")

    def load(key: str) -> str:
        nonlocal runs
        runs += 1
        if runs == 1:
            wait_until(lambda: fn.policy.stats().coalesced == 4, "4 waiting callers")
            raise error
        return "recovered"

    fn = cached(flavor, registry, load)

    results = outcomes(in_threads(pool, 5, flavor, fn, "k"))

    assert all(result is error for result in results)
    stats = fn.policy.stats()
    assert (stats.loads, stats.load_errors, stats.coalesced, stats.size) == (1, 1, 4, 0)
    assert flavor.call(fn, "k") == "recovered"


def test_interrupted_leader_hands_the_load_to_a_waiter(
    flavor: Flavor, registry: hazina.Registry, pool: ThreadPoolExecutor
) -> None:
    """A leader stopped by a BaseException leaves no lock: a waiter loads, the rest share it."""
    runs = 0

    def load(key: str) -> str:
        nonlocal runs
        runs += 1
        if runs == 1:
            wait_until(lambda: fn.policy.stats().coalesced == 3, "3 waiting callers")
            raise Interrupted
        return "second load"

    fn = cached(flavor, registry, load)

    results = outcomes(in_threads(pool, 4, flavor, fn, "k"))

    assert sorted(map(repr, results)) == ["'second load'"] * 3 + ["Interrupted()"]
    assert runs == 2
    stats = fn.policy.stats()
    # Each call counted once: two loads (one failed); the other two waited for the
    # second or, arriving after it, hit.
    assert (stats.misses, stats.loads, stats.load_errors) == (2, 2, 1)
    assert stats.coalesced + stats.hits == 2


def test_interrupted_leader_alone_leaves_the_key_free(
    flavor: Flavor, registry: hazina.Registry, pool: ThreadPoolExecutor
) -> None:
    """After a leader is interrupted with nobody waiting, the next call simply loads."""
    runs = 0

    def load() -> str:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise Interrupted
        return "loaded"

    fn = cached(flavor, registry, load)

    with pytest.raises(Interrupted):
        flavor.call(fn)
    # On a pool thread, so that a key left locked fails the test instead of hanging it.
    assert outcomes(in_threads(pool, 1, flavor, fn)) == ["loaded"]


def test_debug_log_raising_on_a_miss_no_longer_leaves_the_key_locked(
    registry: hazina.Registry, debug_logging: logging.Logger
) -> None:
    """Regression (cache review): a debug log handler that raised on a miss left the key locked
    for every later caller; the next call on another thread is now answered."""

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


class FragileKey:
    """A key whose ``__hash__`` raises while ``broken`` is set (say, a mutable object)."""

    broken = False

    def __hash__(self) -> int:
        if FragileKey.broken:
            raise RuntimeError("cannot hash now")
        return 7


def test_a_key_that_cannot_be_hashed_when_its_load_is_stored_is_not_locked_for_ever(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """Regression (issue 10): a key's ``__hash__`` (or ``__eq__``) raising while its finished
    load was put away left that load unsettled and registered: every later caller of the key
    waited for ever. The leader gets the error; the next caller loads afresh."""
    key = FragileKey()
    loads = 0

    def load(arg: FragileKey) -> int:
        nonlocal loads
        loads += 1
        FragileKey.broken = loads == 1  # breaks the key during the first load only
        return loads

    fn = cached(flavor, registry, load)
    try:
        with pytest.raises(RuntimeError, match="cannot hash now"):
            flavor.call(fn, key)
        FragileKey.broken = False
        results: list[int] = []
        other = threading.Thread(
            target=lambda: results.append(call_on_this_thread(flavor, fn, key)), daemon=True
        )
        other.start()
        other.join(STUCK)
        assert results == [2]
        assert flavor.call(fn, key) == 2
        assert fn.policy.stats().load_errors == 1
    finally:
        FragileKey.broken = False
        policy = fn.policy
        with policy._lock:
            orphans = list(policy._flights.values())
        for flight in orphans:
            if flight.outcome == "pending":
                flight.settle(ABANDONED)


def test_flights_are_forgotten_after_every_kind_of_outcome(
    registry: hazina.Registry,
) -> None:
    """A value, an error and an interrupt each leave no in-flight bookkeeping behind."""
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


def test_other_keys_are_served_and_loaded_while_one_load_is_in_flight(
    flavor: Flavor, registry: hazina.Registry, pool: ThreadPoolExecutor
) -> None:
    """A slow load holds up callers of its own key only, never the whole cache."""
    release = threading.Event()

    def load(key: str) -> str:
        if key == "slow":
            assert release.wait(TIMEOUT)
        return key

    fn = cached(flavor, registry, load)
    slow = in_threads(pool, 1, flavor, fn, "slow")
    wait_until(lambda: fn.policy.stats().loads == 1, "the slow load to start")

    assert call_on_this_thread(flavor, fn, "fast") == "fast"
    assert call_on_this_thread(flavor, fn, "fast") == "fast"
    release.set()
    assert outcomes(slow) == ["slow"]


def test_stats_are_exact_under_threads(
    flavor: Flavor, registry: hazina.Registry, pool: ThreadPoolExecutor
) -> None:
    """Hits and misses from many threads at once add up exactly."""
    fn = cached(flavor, registry, lambda key: key)
    for key in range(10):
        call_on_this_thread(flavor, fn, key)

    def hammer(thread: int) -> None:
        for round_ in range(50):
            for key in range(10):
                call_on_this_thread(flavor, fn, key)
            call_on_this_thread(flavor, fn, f"{thread}-{round_}")

    for future in [pool.submit(hammer, thread) for thread in range(8)]:
        future.result(timeout=TIMEOUT)

    stats = fn.policy.stats()
    assert (stats.hits, stats.misses, stats.loads) == (8 * 50 * 10, 10 + 8 * 50, 10 + 8 * 50)
    assert stats.size == 10 + 8 * 50


def test_without_single_flight_every_miss_runs(
    flavor: Flavor, registry: hazina.Registry, pool: ThreadPoolExecutor
) -> None:
    """single_flight=False: concurrent misses of one key all run the function."""
    together = threading.Barrier(5, timeout=TIMEOUT)

    def load(key: str) -> str:
        together.wait()  # only passes if all five run at once
        return key

    fn = cached(flavor, registry, load, single_flight=False)

    assert outcomes(in_threads(pool, 5, flavor, fn, "k")) == ["k"] * 5
    stats = fn.policy.stats()
    assert (stats.loads, stats.coalesced) == (5, 0)


def test_without_single_flight_a_later_load_no_longer_keeps_a_finished_one_out(
    registry: hazina.Registry,
) -> None:
    """Regression (cache review): without single flight, a later overlapping load displaced the
    key's registered load, which kept the earlier finished result out of the cache for good."""
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


def test_recursive_call_for_the_same_key_does_not_deadlock(
    flavor: Flavor, registry: hazina.Registry, pool: ThreadPoolExecutor
) -> None:
    """A function calling itself with the same arguments computes instead of awaiting itself."""
    depth = 0

    def load(key: str) -> int:
        nonlocal depth
        depth += 1
        if depth == 1:
            return call_on_this_thread(flavor, fn, key) + 1  # type: ignore[no-any-return]
        return 1

    fn = cached(flavor, registry, load)

    if flavor.is_async:
        # Re-entering the same task: awaited inline, not on a new event loop.
        @hazina.cached("a", registry=registry)
        async def nested(key: str) -> int:
            nonlocal depth
            depth += 1
            if depth == 1:
                return await nested(key) + 1
            return 1

        assert flavor.call(asyncio.wait_for, nested("k"), TIMEOUT) == 2
    else:
        assert outcomes([pool.submit(fn, "k")]) == [2]


# -- invalidation racing a load ---------------------------------------------------------


@pytest.mark.parametrize("invalidate", ["delete", "cache_invalidate", "clear", "set"])
def test_invalidation_during_a_load_keeps_its_older_result_out(
    flavor: Flavor, registry: hazina.Registry, pool: ThreadPoolExecutor, invalidate: str
) -> None:
    """A key deleted, cleared or set while its load runs does not get that load's result stored."""
    release = threading.Event()

    def load(key: str) -> str:
        assert release.wait(TIMEOUT)
        return "loaded before the change"

    fn = cached(flavor, registry, load)
    caller = in_threads(pool, 1, flavor, fn, "k")
    wait_until(lambda: fn.policy.stats().loads == 1, "the load to start")

    if invalidate == "delete":
        fn.policy.delete(("k",))
    elif invalidate == "cache_invalidate":
        fn.cache_invalidate("k")
    elif invalidate == "clear":
        fn.cache_clear()
    else:
        fn.policy.set(("k",), "set meanwhile")
    release.set()

    assert outcomes(caller) == ["loaded before the change"]
    expected = "set meanwhile" if invalidate == "set" else None
    assert fn.policy.get(("k",)) == expected


# -- tasks ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_fifty_tasks_missing_one_key_make_one_call(registry: hazina.Registry) -> None:
    """50 concurrent tasks missing one key: one call, 49 waiters, everyone gets its result."""
    runs = 0

    @hazina.cached("c", registry=registry)
    async def load(key: str) -> dict[str, str]:
        nonlocal runs
        runs += 1
        await until(lambda: load.policy.stats().coalesced == 49, "49 waiting tasks")
        return {"key": key}

    results = await asyncio.wait_for(asyncio.gather(*(load("k") for _ in range(50))), TIMEOUT)

    assert runs == 1
    assert all(result is results[0] for result in results)
    stats = load.policy.stats()
    assert (stats.misses, stats.loads, stats.coalesced) == (1, 1, 49)


@pytest.mark.asyncio
async def test_waiting_tasks_get_the_leaders_exception(registry: hazina.Registry) -> None:
    """Tasks waiting on a load that raises all raise that exception; nothing is cached."""
    error = Boom("down")

    @hazina.cached("c", registry=registry)
    async def load() -> str:
        await until(lambda: load.policy.stats().coalesced == 9, "9 waiting tasks")
        raise error

    results = await asyncio.gather(*(load() for _ in range(10)), return_exceptions=True)

    assert all(result is error for result in results)
    assert load.policy.stats().size == 0


@pytest.mark.asyncio
async def test_cancelled_waiter_does_not_cancel_the_load(registry: hazina.Registry) -> None:
    """Cancelling one waiting task leaves the load, and the other waiters, untouched."""
    release = asyncio.Event()
    runs = 0

    @hazina.cached("c", registry=registry)
    async def load() -> str:
        nonlocal runs
        runs += 1
        await release.wait()
        return "value"

    leader = asyncio.create_task(load())
    doomed = asyncio.create_task(load())
    patient = asyncio.create_task(load())
    await until(lambda: load.policy.stats().coalesced == 2, "two waiting tasks")

    doomed.cancel()
    await asyncio.sleep(0)
    release.set()

    assert await asyncio.wait_for(leader, TIMEOUT) == "value"
    assert await asyncio.wait_for(patient, TIMEOUT) == "value"
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert runs == 1
    assert load.policy.get(()) == "value"


@pytest.mark.asyncio
async def test_cancelled_leader_hands_the_load_to_a_waiting_task(
    registry: hazina.Registry,
) -> None:
    """Cancelling the task that runs the load wakes a waiter, which loads for everyone left."""
    runs = 0
    never = asyncio.Event()

    @hazina.cached("c", registry=registry)
    async def load() -> str:
        nonlocal runs
        runs += 1
        if runs == 1:
            await never.wait()
        await asyncio.sleep(0)  # the other waiters look again meanwhile, and join this load
        return f"load {runs}"

    leader = asyncio.create_task(load())
    waiters = [asyncio.create_task(load()) for _ in range(3)]
    await until(lambda: load.policy.stats().coalesced == 3, "three waiting tasks")

    leader.cancel()
    results = await asyncio.wait_for(asyncio.gather(*waiters), TIMEOUT)

    assert results == ["load 2"] * 3
    assert leader.cancelled()
    stats = load.policy.stats()
    assert (stats.misses, stats.loads, stats.load_errors, stats.coalesced) == (2, 2, 1, 2)


@pytest.mark.asyncio
async def test_cancelled_leader_alone_leaves_the_key_free(registry: hazina.Registry) -> None:
    """After the only caller is cancelled mid-load, the next call loads instead of waiting."""
    started = asyncio.Event()
    runs = 0

    @hazina.cached("c", registry=registry)
    async def load() -> str:
        nonlocal runs
        runs += 1
        if runs == 1:
            started.set()
            await asyncio.Event().wait()
        return "loaded"

    first = asyncio.create_task(load())
    await started.wait()
    first.cancel()

    assert await asyncio.wait_for(load(), TIMEOUT) == "loaded"


@pytest.mark.asyncio
async def test_cancelled_error_raised_by_the_load_is_shared_not_rerun(
    registry: hazina.Registry,
) -> None:
    """Regression (cache review): a CancelledError raised by the load itself (its task never
    cancelled) made each waiter run the load again; now it is shared and the load runs once."""
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


# -- threads and tasks together --------------------------------------------------------


def test_threads_wait_for_a_load_running_on_an_event_loop(
    registry: hazina.Registry, pool: ThreadPoolExecutor
) -> None:
    """Sync callers on other threads wait for an async load of the same key, and share it."""
    cache = registry.cache("shared")
    release = threading.Event()
    runs = 0

    async def slow_factory() -> str:
        nonlocal runs
        runs += 1
        await until(release.is_set, "the release")
        return "from the loop"

    def sync_factory() -> str:
        raise AssertionError("a waiting thread must not load")

    async def scenario() -> list[Any]:
        leader = asyncio.create_task(cache.aget_or_set("k", slow_factory))
        await until(lambda: cache.stats().loads == 1, "the async load to start")
        threads = [pool.submit(cache.get_or_set, "k", sync_factory) for _ in range(3)]
        await until(lambda: cache.stats().coalesced == 3, "three waiting threads")
        release.set()
        return [await leader, *outcomes(threads)]

    assert asyncio.run(scenario()) == ["from the loop"] * 4
    assert runs == 1


@pytest.mark.asyncio
async def test_tasks_wait_for_a_load_running_on_a_thread(
    registry: hazina.Registry, pool: ThreadPoolExecutor
) -> None:
    """Tasks wait for a sync load of the same key on another thread, and are woken by it."""
    cache = registry.cache("shared")
    release = threading.Event()

    def slow_factory() -> str:
        assert release.wait(TIMEOUT)
        return "from the thread"

    async def async_factory() -> str:
        raise AssertionError("a waiting task must not load")

    leader = pool.submit(cache.get_or_set, "k", slow_factory)
    await until(lambda: cache.stats().loads == 1, "the sync load to start")
    tasks = [asyncio.create_task(cache.aget_or_set("k", async_factory)) for _ in range(3)]
    await until(lambda: cache.stats().coalesced == 3, "three waiting tasks")
    release.set()

    assert await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT) == ["from the thread"] * 3
    assert leader.result(timeout=TIMEOUT) == "from the thread"


@pytest.mark.asyncio
async def test_sync_call_on_the_event_loop_does_not_wait_for_a_task(
    registry: hazina.Registry,
) -> None:
    """Sync code run by the loop that is loading the key computes instead of deadlocking."""
    cache = registry.cache("shared")
    release = asyncio.Event()

    async def slow_factory() -> str:
        await release.wait()
        return "from the task"

    leader = asyncio.create_task(cache.aget_or_set("k", slow_factory))
    await until(lambda: cache.stats().loads == 1, "the async load to start")

    # Blocking here would block the very loop the leader needs to finish.
    assert cache.get_or_set("k", lambda: "computed inline") == "computed inline"
    release.set()
    assert await asyncio.wait_for(leader, TIMEOUT) == "from the task"


def test_threads_racing_on_hits_and_loads_never_see_the_clock_step_back(
    pool: ThreadPoolExecutor,
) -> None:
    """Hits store their clock reading without the lock, so a locked path can find a reading
    later than its own: that must not pass for the clock stepping back (which would move
    every deadline), on the real clock with threads hitting and loading at once."""
    registry = hazina.Registry()
    steps: list[float] = []

    @hazina.cached("race", registry=registry, ttl=60, max_size=64)
    def load(key: int) -> int:
        return key

    store = load.policy.store
    shift = store.shift

    def counted_shift(step: float) -> None:
        steps.append(step)
        shift(step)

    store.shift = counted_shift  # type: ignore[method-assign]
    deadline = time.monotonic() + 0.3

    def hammer(offset: int) -> int:
        calls = 0
        while time.monotonic() < deadline:
            for key in range(offset, offset + 100):  # mostly hits, some loads and evictions
                assert load(key % 80) == key % 80
                calls += 1
        return calls

    calls = sum(future.result(TIMEOUT) for future in [pool.submit(hammer, n) for n in range(8)])

    assert calls > 0
    assert steps == []


# -- signals and fork ------------------------------------------------------------------------


def _due(entry: Entry) -> float:
    """When the expiry heap should have ``entry`` due: its deadline, or for a sliding
    entry the due time it was last scheduled at."""
    sliding = entry.sliding
    return entry.deadline if sliding is None else sliding[2]


def assert_store_is_consistent(cache: hazina.Cache) -> None:
    """The lock is free, nothing is in flight, and the store's parts agree."""
    assert lock_is_free(cache._lock)
    assert cache._flights == {}
    store = cache.store
    assert len(store) <= store.max_size
    store.purge(cache._now(), limit=0)  # finishes a sift an exception cut short
    heap = store._expiry
    assert len(store._dues) == len(heap)
    for spot, entry in enumerate(heap):
        assert entry.spot == spot
        assert store._dues[spot] == _due(entry)
        parent = heap[(spot - 1) // store_module.HEAP_ARITY]
        assert spot == 0 or _due(parent) <= _due(entry)
    for index, shard in enumerate(store.shards):
        normal = 0
        for key, entry in shard.items():
            rank = store.rank_of(entry)
            normal += rank == 1
            if entry.deadline != math.inf:
                assert heap[entry.spot] is entry
            if rank in (0, 2):
                assert store._ranked[rank][key] is entry
        assert store._normals[index] == normal
    assert store._normal == sum(store._normals)
    assert len(store) == sum(map(len, store.shards))


@pytest.mark.parametrize("shard_size", [None, 8], ids=["one-dict", "sharded"])
def test_exceptions_from_a_signal_storm_leave_the_cache_consistent_and_unlocked(
    registry: hazina.Registry,
    clock: FakeClock,
    shard_size: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression (issue 10): exceptions from a signal handler landing inside cache calls
    corrupted the store or left a key's load registered for ever; thousands of them,
    anywhere in loads, writes, reads and deletes, now leave every part in agreement, in a
    store of one dict and in a sharded one (whose counts per shard must stay true)."""
    if shard_size is not None:
        monkeypatch.setattr(store_module, "ONE_SHARD_UP_TO", shard_size)
        monkeypatch.setattr(store_module, "SHARD_SIZE", shard_size)
    cache = registry.cache("storm", max_size=64, ttl=5)
    fn = hazina.cached("storm", registry=registry)(lambda k: k * 2)
    priorities: list[Any] = ["low", "normal", "high"]

    def call(i: int) -> None:
        op = i % 6
        if op == 0:
            assert fn(i % 100) == (i % 100) * 2
        elif op == 1:
            sliding = 2.0 if i % 4 == 1 else None
            cache.set(("s", i % 100), i, priority=priorities[i % 3], sliding=sliding)
        elif op == 2:
            cache.get(("s", i % 100))
        elif op == 3:
            assert cache.get_or_set(("g", i % 50), lambda: "v") == "v"
        elif op == 4:
            cache.delete(("s", i % 100))
        else:
            clock.advance(0.25)

    signal_storm(call)

    assert_store_is_consistent(cache)
    cache.clear()
    assert [fn(21), fn(21)] == [42, 42]
    assert cache.stats().size == 1


#: Where an exception from a signal handler can land in the store's code: at a loop's
#: edge, at a call (before it, as a handler run after it leaves the same state) and as a
#: function starts.
_EDGES = {
    dis.opmap[name]
    for name in (
        "CALL",
        "JUMP_BACKWARD",
        "POP_JUMP_BACKWARD_IF_FALSE",
        "POP_JUMP_BACKWARD_IF_TRUE",
        "POP_JUMP_BACKWARD_IF_NONE",
        "POP_JUMP_BACKWARD_IF_NOT_NONE",
    )
    if name in dis.opmap
}


class EdgeInterrupt(Exception):
    """Raised by the tracer at one chosen edge of the store's code."""


def interrupted_at(edge: int, action: Callable[[], Any]) -> bool:
    """Run ``action``, raising :class:`EdgeInterrupt` at the ``edge``-th edge (counted
    from 1) met in the store's code; returns whether it was raised."""
    seen = [0]

    def hit() -> None:
        seen[0] += 1
        if seen[0] == edge:
            raise EdgeInterrupt

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "opcode" and frame.f_code.co_code[frame.f_lasti] in _EDGES:
            hit()
        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != store_module.__file__:
            return None
        frame.f_trace_lines = False
        frame.f_trace_opcodes = True
        hit()
        return local

    sys.settrace(tracer)
    try:
        action()
    except EdgeInterrupt:
        return True
    finally:
        sys.settrace(None)
    return False


@pytest.mark.parametrize("shard_size", [None, 8], ids=["one-dict", "sharded"])
def test_an_exception_at_any_edge_of_a_write_leaves_the_store_consistent(
    registry: hazina.Registry,
    clock: FakeClock,
    shard_size: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every write, delete and purge below is run again and again with an exception at
    its first edge (a call, a loop's edge), then its second, and so on until it runs
    through: after each, the store's parts agree. Unlike a signal storm, no edge is
    missed, among them each level of a sift through the expiry heap."""
    if shard_size is not None:
        monkeypatch.setattr(store_module, "ONE_SHARD_UP_TO", shard_size)
        monkeypatch.setattr(store_module, "SHARD_SIZE", shard_size)
    cache = registry.cache("edges", max_size=48, ttl=5)
    priorities: list[Any] = ["low", "normal", "high", "never_remove"]
    cut_sifts = 0

    def op(i: int) -> Callable[[], Any]:
        kind = i % 5
        if kind == 0:
            return lambda: cache.delete(i % 60)
        if kind == 1:
            return lambda: cache.stats()  # a purge of everything due
        sliding = 1.5 if i % 7 == 0 else None
        ttl = 1 + (i * 37) % 11
        return lambda: cache.set(i % 60, i, ttl=ttl, sliding=sliding, priority=priorities[i % 4])

    for i in range(400):
        clock.advance(0.1)
        action = op(i)
        edge = 1
        while interrupted_at(edge, action):
            cut_sifts += cache.store._unsifted is not None
            assert_store_is_consistent(cache)
            edge += 1
        assert_store_is_consistent(cache)

    assert cut_sifts > 0, "no sift through the heap was interrupted"


def test_a_child_forked_during_loads_and_writes_can_use_the_cache(
    registry: hazina.Registry,
) -> None:
    """Regression (issue 10): a child forked while another thread held the cache's lock,
    or led a load the child then missed, hung; now it starts with the lock free and
    leads its own loads."""
    cache = registry.cache("forked", max_size=50, ttl=60)
    counter = iter(range(10**12))

    def slow() -> str:
        time.sleep(0.001)
        return "parent"

    def work() -> None:
        n = next(counter)
        cache.set(n % 200, n)
        if n % 10 == 0:
            cache.delete("shared")
            cache.get_or_set("shared", slow)

    def use() -> None:
        cache.set(("child", os.getpid()), 1)
        assert cache.get(("child", os.getpid())) == 1
        assert cache.get_or_set(("loaded", os.getpid()), lambda: 2) == 2
        cache.get_or_set("shared", lambda: "child")

    with hammered(work):
        assert fork_children(use) == []
