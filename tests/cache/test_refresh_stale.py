"""Refresh-ahead (``refresh_after``) and stale-if-error (``stale_if_error``, ``stale_on``).

Time moves with the fake clock; background refreshes run on real threads (sync) and
real tasks (async), and the tests wait for them with a real-time bound.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

import hazina
from hazina.testing import FakeClock, instant_waits

if TYPE_CHECKING:
    from conftest import Flavor

Cached = hazina.CachedFunction[..., Any]

#: Real seconds a background refresh may take before the test calls it stuck.
TIMEOUT = 5.0


class Boom(Exception):
    """The dependency failed."""


class Source:
    """A dependency whose answers are numbered: "v1", "v2", ...; it fails while ``failing``."""

    def __init__(self) -> None:
        self.runs = 0
        self.finished = 0
        self.failing: BaseException | None = None
        #: Cleared, it holds every run (sync flavor) until set.
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, *args: Any) -> str:
        self.runs += 1
        run = self.runs
        try:
            if not self.gate.wait(TIMEOUT):
                raise AssertionError("the gate was never opened")
            if self.failing is not None:
                raise self.failing
            return f"v{run}"
        finally:
            self.finished += 1


def cached(flavor: Flavor, registry: hazina.Registry, body: Any, **config: Any) -> Cached:
    """``body`` as a sync or async function cached in ``registry``'s cache "c"."""
    decorate: Any = hazina.cached("c", registry=registry, **config)
    fn: Cached = decorate(flavor.define(body))
    return fn


def settle(flavor: Flavor) -> None:
    """Let every background refresh finish: join the refresh threads, or run the loop's tasks."""
    if flavor.is_async:

        async def drain() -> None:
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            await asyncio.wait_for(asyncio.gather(*others, return_exceptions=True), TIMEOUT)

        flavor.call(drain)
        return
    for thread in threading.enumerate():
        if thread.name.startswith("hazina-cache-refresh"):
            thread.join(TIMEOUT)
            assert not thread.is_alive(), "a refresh thread is stuck"


@pytest.fixture
def cache_debug() -> Iterator[None]:
    """The ``hazina.cache`` logger at DEBUG, restored afterwards."""
    logger = logging.getLogger("hazina.cache")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.setLevel(level)


# -- refresh_after --------------------------------------------------------------------


def test_old_entry_is_returned_at_once_and_refreshed_in_the_background(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A hit on an entry older than refresh_after returns it, and the next call sees the refresh."""
    source = Source()
    fn = cached(flavor, registry, source, ttl=60, refresh_after=10)
    assert flavor.call(fn, 1) == "v1"

    clock.advance(9)
    assert flavor.call(fn, 1) == "v1"
    settle(flavor)
    assert source.runs == 1  # young enough: no refresh

    clock.advance(2)
    assert flavor.call(fn, 1) == "v1"  # old: served at once, refreshed behind
    settle(flavor)
    assert source.runs == 2
    assert flavor.call(fn, 1) == "v2"
    stats = fn.policy.stats()
    assert (stats.refreshes, stats.loads, stats.misses, stats.hits) == (1, 2, 1, 3)


def test_refreshed_entry_lives_a_full_ttl_from_its_refresh(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """The refreshed value is stored with a new expiry, so a busy key never expires."""
    source = Source()
    fn = cached(flavor, registry, source, ttl=20, refresh_after=10)
    flavor.call(fn, 1)
    clock.advance(15)
    flavor.call(fn, 1)
    settle(flavor)

    clock.advance(15)  # 30 s after the first load, 15 s after the refresh
    assert flavor.call(fn, 1) == "v2"
    assert fn.policy.stats().misses == 1


def test_failed_refresh_is_counted_logged_at_debug_and_never_raised(
    flavor: Flavor,
    registry: hazina.Registry,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    cache_debug: None,
) -> None:
    """A refresh that raises leaves the old value served and counts in load_errors."""
    source = Source()
    fn = cached(flavor, registry, source, ttl=60, refresh_after=10)
    flavor.call(fn, 1)
    source.failing = Boom("down")
    clock.advance(11)

    with caplog.at_level(logging.DEBUG, logger="hazina.cache"):
        assert flavor.call(fn, 1) == "v1"
        settle(flavor)
    assert flavor.call(fn, 1) == "v1"
    settle(flavor)

    stats = fn.policy.stats()
    assert stats.load_errors >= 1
    assert stats.refreshes == stats.load_errors
    records = [r for r in caplog.records if r.name == "hazina.cache"]
    assert records
    assert all(r.levelno == logging.DEBUG for r in records)
    assert "background refresh" in records[0].getMessage()
    assert "Boom" in records[0].getMessage()


def test_clear_during_a_refresh_keeps_its_value_out(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """A refresh that finishes after cache_clear() does not store what it loaded."""
    source = Source()
    fn = hazina.cached("c", registry=registry, ttl=60, refresh_after=10)(source)
    fn(1)
    clock.advance(11)
    source.gate.clear()
    assert fn(1) == "v1"  # the refresh starts and waits at the gate
    deadline = time.monotonic() + TIMEOUT
    while source.runs < 2 and time.monotonic() < deadline:
        time.sleep(0.001)

    fn.cache_clear()
    source.gate.set()
    settle_threads()

    assert 1 not in fn.policy
    assert fn(1) == "v3"  # a miss: the refresh's "v2" was not kept


def settle_threads() -> None:
    """Join every background refresh thread."""
    for thread in threading.enumerate():
        if thread.name.startswith("hazina-cache-refresh"):
            thread.join(TIMEOUT)


@pytest.mark.asyncio
async def test_clear_during_an_async_refresh_keeps_its_value_out(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """An async refresh that finishes after cache_clear() does not store what it loaded."""
    gate, started = asyncio.Event(), asyncio.Event()
    runs = 0

    @hazina.cached("c", registry=registry, ttl=60, refresh_after=10)
    async def load(key: int) -> str:
        nonlocal runs
        runs += 1
        run = runs
        if run > 1:
            started.set()
            await gate.wait()
        return f"v{run}"

    await load(1)
    clock.advance(11)
    assert await load(1) == "v1"
    await asyncio.wait_for(started.wait(), TIMEOUT)
    load.cache_clear()
    gate.set()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    await asyncio.wait_for(asyncio.gather(*others), TIMEOUT)

    assert 1 not in load.policy
    assert await load(1) == "v3"


def test_twenty_threads_on_an_old_entry_start_one_refresh(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """Concurrent hits on an old entry all get it at once; one refresh runs, not twenty."""
    source = Source()
    fn = hazina.cached("c", registry=registry, ttl=60, refresh_after=10)(source)
    fn("k")
    clock.advance(11)
    source.gate.clear()  # the refresh is held until every thread has its answer
    start = threading.Barrier(20)

    def hit() -> str:
        start.wait(TIMEOUT)
        return fn("k")

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = [f.result(TIMEOUT) for f in [pool.submit(hit) for _ in range(20)]]
    source.gate.set()
    settle_threads()

    assert answers == ["v1"] * 20
    assert source.runs == 2
    assert fn.policy.stats().refreshes == 1
    assert fn("k") == "v2"


@pytest.mark.asyncio
async def test_a_thousand_tasks_on_an_old_entry_start_one_refresh(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """Concurrent tasks hitting an old entry all get it at once; one refresh task runs."""
    gate = asyncio.Event()
    runs = 0

    @hazina.cached("c", registry=registry, ttl=60, refresh_after=10)
    async def load(key: str) -> str:
        nonlocal runs
        runs += 1
        run = runs
        if run > 1:
            await gate.wait()
        return f"v{run}"

    await load("k")
    clock.advance(11)

    async def hit() -> str:
        await asyncio.sleep(0)
        return await load("k")

    answers = await asyncio.gather(*(hit() for _ in range(1000)))
    gate.set()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    await asyncio.wait_for(asyncio.gather(*others), TIMEOUT)

    assert answers == ["v1"] * 1000
    assert runs == 2
    assert load.policy.stats().refreshes == 1
    assert await load("k") == "v2"


def test_a_miss_during_a_refresh_waits_for_it(registry: hazina.Registry, clock: FakeClock) -> None:
    """An entry that expires while its refresh runs is not loaded a second time."""
    source = Source()
    fn = hazina.cached("c", registry=registry, ttl=20, refresh_after=10)(source)
    fn(1)
    clock.advance(11)
    source.gate.clear()
    fn(1)  # starts the refresh, held at the gate
    clock.advance(10)  # now expired
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiter = pool.submit(fn, 1)
        deadline = time.monotonic() + TIMEOUT
        while fn.policy.stats().coalesced == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        source.gate.set()
        assert waiter.result(TIMEOUT) == "v2"
    assert source.runs == 2


def test_get_or_set_refreshes_with_its_factory(registry: hazina.Registry, clock: FakeClock) -> None:
    """get_or_set on an old entry answers at once and refreshes through the factory."""
    cache = registry.cache("c", ttl=60, refresh_after=10)
    source = Source()
    assert cache.get_or_set("k", source) == "v1"
    clock.advance(11)
    assert cache.get_or_set("k", source) == "v1"
    settle_threads()
    assert cache.get("k") == "v2"
    assert cache.stats().refreshes == 1


@pytest.mark.asyncio
async def test_aget_or_set_refreshes_in_a_task(registry: hazina.Registry, clock: FakeClock) -> None:
    """aget_or_set on an old entry answers at once and refreshes in a task."""
    cache = registry.cache("c", ttl=60, refresh_after=10)
    runs = 0

    async def factory() -> str:
        nonlocal runs
        runs += 1
        return f"v{runs}"

    assert await cache.aget_or_set("k", factory) == "v1"
    clock.advance(11)
    assert await cache.aget_or_set("k", factory) == "v1"
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    await asyncio.wait_for(asyncio.gather(*others), TIMEOUT)
    assert cache.get("k") == "v2"


def test_methods_refresh_per_instance(registry: hazina.Registry, clock: FakeClock) -> None:
    """A cached method's refresh calls the method on the instance that was hit."""

    class Service:
        def __init__(self, name: str) -> None:
            self.name = name
            self.runs = 0

        @hazina.cached("m", registry=registry, ttl=60, refresh_after=10)
        def read(self) -> str:
            self.runs += 1
            return f"{self.name}{self.runs}"

    a, b = Service("a"), Service("b")
    assert (a.read(), b.read()) == ("a1", "b1")
    clock.advance(11)
    assert a.read() == "a1"
    settle_threads()
    assert (a.read(), b.read()) == ("a2", "b1")


# -- stale_if_error -------------------------------------------------------------------


def test_stale_value_answers_a_failed_load_within_stale_if_error(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """After expiry, a failing load returns the last good value until stale_if_error runs out."""
    source = Source()
    fn = cached(flavor, registry, source, ttl=10, stale_if_error=30)
    assert flavor.call(fn, 1) == "v1"
    source.failing = Boom("down")

    clock.advance(15)
    assert flavor.call(fn, 1) == "v1"
    clock.advance(24.5)  # 39.5 s: still within 10 + 30
    assert flavor.call(fn, 1) == "v1"
    clock.advance(0.5)  # exactly 40 s: never served past stale_if_error
    with pytest.raises(Boom):
        flavor.call(fn, 1)

    stats = fn.policy.stats()
    assert (stats.stale_served, stats.load_errors, stats.loads) == (2, 3, 4)
    assert stats.size == 0


def test_a_fresh_entry_is_served_without_a_load(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """stale_if_error changes nothing before expiry: hits stay hits."""
    source = Source()
    fn = cached(flavor, registry, source, ttl=10, stale_if_error=30)
    flavor.call(fn, 1)
    clock.advance(9.9)
    assert flavor.call(fn, 1) == "v1"
    assert source.runs == 1


def test_a_successful_load_replaces_the_stale_entry(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """After expiry a load that works is stored and served; the old entry counts as expired."""
    source = Source()
    fn = cached(flavor, registry, source, ttl=10, stale_if_error=30)
    flavor.call(fn, 1)
    clock.advance(11)
    assert flavor.call(fn, 1) == "v2"
    assert flavor.call(fn, 1) == "v2"
    stats = fn.policy.stats()
    assert (stats.expirations, stats.stale_served, stats.size) == (1, 0, 1)


def test_an_error_outside_stale_on_is_raised(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Only errors matching stale_on fall back to the stale value."""
    source = Source()
    fn = cached(flavor, registry, source, ttl=10, stale_if_error=30, stale_on=ConnectionError)
    flavor.call(fn, 1)
    clock.advance(11)
    source.failing = Boom("not a connection error")
    with pytest.raises(Boom):
        flavor.call(fn, 1)
    source.failing = ConnectionError("down")
    assert flavor.call(fn, 1) == "v1"


def test_get_and_contains_never_see_a_stale_entry(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """A kept entry is not fresh: get() misses and ``in`` is False."""
    cache = registry.cache("c", ttl=10, stale_if_error=30)
    cache.set("k", "old")
    clock.advance(11)
    assert "k" not in cache
    assert cache.get("k", "nothing") == "nothing"
    assert cache.get_or_set("k", lambda: "new") == "new"


def test_get_or_set_falls_back_to_the_stale_value(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """get_or_set with a failing factory returns the stale value it keeps."""
    cache = registry.cache("c", ttl=10, stale_if_error=30)
    cache.set("k", "old")
    clock.advance(11)

    def factory() -> str:
        raise Boom("down")

    assert cache.get_or_set("k", factory) == "old"
    assert cache.stats().stale_served == 1


def test_waiters_of_a_failed_load_get_the_stale_value(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """Callers coalesced on a failing load each get the stale value, each counted."""
    source = Source()
    fn = hazina.cached("c", registry=registry, ttl=10, stale_if_error=30)(source)
    fn(1)
    clock.advance(11)
    source.failing = Boom("down")
    source.gate.clear()
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(fn, 1) for _ in range(8)]
        deadline = time.monotonic() + TIMEOUT
        while fn.policy.stats().coalesced < 7 and time.monotonic() < deadline:
            time.sleep(0.001)
        source.gate.set()
        answers = [f.result(TIMEOUT) for f in futures]
    assert answers == ["v1"] * 8
    stats = fn.policy.stats()
    assert (stats.stale_served, stats.load_errors, stats.coalesced) == (8, 1, 7)


def test_kept_entries_count_toward_max_size(registry: hazina.Registry, clock: FakeClock) -> None:
    """Expired-but-kept entries take places like live ones: the cache never holds more than
    max_size, and they are evicted least recently used to make room."""
    cache = registry.cache("c", max_size=2, ttl=10, stale_if_error=30)
    cache.set("a", 1)
    cache.set("b", 2)
    clock.advance(11)  # both kept, stale
    cache.set("c", 3)
    stats = cache.stats()
    assert (stats.size, stats.evictions) == (2, 1)

    def fail() -> int:
        raise Boom("down")

    with pytest.raises(Boom):
        cache.get_or_set("a", fail)  # evicted: nothing stale to fall back on
    assert cache.get_or_set("b", fail) == 2


def test_sliding_entries_are_kept_after_their_sliding_expiry(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """stale_if_error counts from when a sliding entry stopped being fresh."""
    cache = registry.cache("c", sliding=10, stale_if_error=5)
    cache.set("k", "old")
    clock.advance(8)
    assert cache.get("k") == "old"  # slides to 18
    clock.advance(9)  # 17: fresh
    assert "k" in cache
    clock.advance(4)  # 21: stale until 32

    def fail() -> str:
        raise Boom("down")

    assert "k" not in cache
    assert cache.get_or_set("k", fail) == "old"
    clock.advance(11)  # 32
    with pytest.raises(Boom):
        cache.get_or_set("k", fail)


def test_cancellation_is_never_answered_with_a_stale_value(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """A load that stops for a BaseException (an exit, a cancellation) propagates it."""

    class Interrupted(BaseException):
        pass

    cache = registry.cache("c", ttl=10, stale_if_error=30)
    cache.set("k", "old")
    clock.advance(11)

    def interrupted() -> str:
        raise Interrupted

    with pytest.raises(Interrupted):
        cache.get_or_set("k", interrupted)


@pytest.fixture
def instant() -> Iterator[None]:
    """Retry waits take no time."""
    with instant_waits():
        yield


def test_stale_is_served_while_the_breaker_under_the_cache_is_open(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, instant: None
) -> None:
    """cache > retry > breaker: the dependency fails, the breaker opens and rejects, and the
    cache answers every call with the last good value meanwhile."""
    down = False
    calls = 0

    def dependency() -> str:
        nonlocal calls
        calls += 1
        if down:
            raise ConnectionError("down")
        return f"ok{calls}"

    breaker_decorator: Any = hazina.circuit_breaker(
        "b", registry=registry, failure_threshold=2, open_for=300
    )
    retry_decorator: Any = hazina.retry("r", registry=registry, attempts=2)
    cache_decorator: Any = hazina.cached("c", registry=registry, ttl=10, stale_if_error=600)
    fn = cache_decorator(retry_decorator(breaker_decorator(flavor.define(dependency))))
    breaker = registry.circuit_breaker("b")

    assert flavor.call(fn) == "ok1"
    down = True
    clock.advance(11)

    assert flavor.call(fn) == "ok1"  # two failed attempts: the breaker opens
    assert breaker.state is hazina.CircuitState.OPEN
    assert calls == 3
    for _ in range(3):
        clock.advance(11)
        assert flavor.call(fn) == "ok1"  # rejected by the breaker, answered stale
    assert calls == 3
    assert breaker.stats().rejections >= 3
    assert fn.policy.stats().stale_served == 4


# -- configuration --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "named"),
    [
        (
            {"refresh_after": 0},
            "refresh_after must be a number of seconds above 0 and at most 9.22337e+09, got 0",
        ),
        (
            {"refresh_after": -1.0},
            "refresh_after must be a number of seconds above 0 and at most 9.22337e+09, got -1.0",
        ),
        (
            {"refresh_after": "10"},
            "refresh_after must be a number of seconds above 0 and at most 9.22337e+09, got '10'",
        ),
        (
            {"refresh_after": True},
            "refresh_after must be a number of seconds above 0 and at most 9.22337e+09, got True",
        ),
        (
            {"refresh_after": float("nan")},
            "refresh_after must be a number of seconds above 0 and at most 9.22337e+09",
        ),
        ({"ttl": 10, "refresh_after": 10}, "refresh_after must be less than ttl (10)"),
        ({"stale_if_error": 1e300}, "stale_if_error must be a number of seconds above 0"),
        (
            {"stale_if_error": 0},
            "stale_if_error must be a number of seconds above 0 and at most 9.22337e+09, got 0",
        ),
        (
            {"stale_if_error": "1m"},
            "stale_if_error must be a number of seconds above 0 and at most 9.22337e+09, got '1m'",
        ),
        ({"stale_on": "ConnectionError"}, "stale_on must be an exception type"),
        ({"stale_on": (ValueError, 3)}, "stale_on must be an exception type"),
    ],
)
def test_bad_values_are_configuration_errors(
    registry: hazina.Registry, config: dict[str, Any], named: str
) -> None:
    """Each bad value is refused at decoration time, naming the cache and the value."""
    with pytest.raises(hazina.ConfigurationError) as caught:
        hazina.cached("bad", registry=registry, **config)(lambda: 1)
    message = str(caught.value)
    assert "cache 'bad'" in message
    assert named in message


def test_stale_on_takes_types_tuples_and_predicates(registry: hazina.Registry) -> None:
    """stale_on accepts what every ``on=`` parameter accepts."""
    registry.cache("a", stale_if_error=1, stale_on=(ConnectionError, TimeoutError))
    registry.cache("b", stale_if_error=1, stale_on=lambda error: "retry" in str(error))
    registry.cache("c", stale_if_error=1, stale_on=hazina.when(OSError) | ValueError)


def test_the_new_parameters_shape_the_configuration(registry: hazina.Registry) -> None:
    """A second decorator asking for another refresh_after is a configuration conflict."""
    registry.cache("c", ttl=60, refresh_after=10)
    with pytest.raises(hazina.ConfigurationError, match="refresh_after"):
        registry.cache("c", ttl=60, refresh_after=20)


def test_after_a_failed_refresh_the_next_waits_refresh_after(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A dependency that is down is not called again on every hit of an old entry."""
    source = Source()
    fn = cached(flavor, registry, source, ttl=60, refresh_after=10)
    flavor.call(fn, 1)
    clock.advance(11)
    source.failing = Boom("down")
    flavor.call(fn, 1)
    settle(flavor)
    for _ in range(5):
        clock.advance(1)
        assert flavor.call(fn, 1) == "v1"
        settle(flavor)
    assert source.runs == 2  # the load and one failed refresh
    source.failing = None
    clock.advance(5)  # refresh_after since the failure
    flavor.call(fn, 1)
    settle(flavor)
    assert flavor.call(fn, 1) == "v3"
