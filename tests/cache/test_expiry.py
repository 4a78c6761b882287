"""Cache expiry: ttl, sliding, expires_at (datetimes, epoch seconds, functions of the value).

Time moves with the fake clock, or with freezegun where wall-clock times are involved
(freezegun moves ``time.time``, ``datetime.now`` and ``time.monotonic`` together). Every
scenario runs sync and async through the ``flavor`` fixture.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import freezegun
import pytest
from conftest import SteppingClock

import hazina
from hazina.testing import FakeClock

if TYPE_CHECKING:
    from conftest import Flavor

Cached = hazina.CachedFunction[..., Any]


class Value:
    """A cached value that can be watched with a weak reference."""


class Counter:
    """A body that returns how many times it has run, optionally taking fake time to do so."""

    def __init__(self, clock: FakeClock | None = None, takes: float = 0.0) -> None:
        self.runs = 0
        self.clock = clock
        self.takes = takes

    def __call__(self, *args: Any) -> int:
        self.runs += 1
        if self.clock is not None and self.takes:
            self.clock.advance(self.takes)
        return self.runs


def cached(
    flavor: Flavor, registry: hazina.Registry, body: Callable[..., Any], **config: Any
) -> Cached:
    """``body`` as a sync or async function cached in ``registry``'s cache "c"."""
    decorate: Any = hazina.cached("c", registry=registry, **config)
    fn: Cached = decorate(flavor.define(body))
    return fn


@pytest.fixture
def frozen() -> Iterator[Any]:
    """Wall-clock time frozen at 2024-01-01 12:00 UTC (local time is UTC+5)."""
    with freezegun.freeze_time("2024-01-01 12:00:00", tz_offset=5) as frozen:
        yield frozen


# -- ttl ------------------------------------------------------------------------------


def test_entry_lives_for_its_ttl_and_not_a_moment_longer(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Within ttl the cached value is served; at ttl it has expired and is loaded again."""
    fn = cached(flavor, registry, Counter(), ttl=10)
    assert flavor.call(fn) == 1

    clock.advance(9.999)
    assert flavor.call(fn) == 1
    clock.advance(0.001)
    assert flavor.call(fn) == 2

    stats = fn.policy.stats()
    assert (stats.hits, stats.misses, stats.expirations, stats.evictions) == (1, 2, 1, 0)


def test_expired_entry_is_never_returned_by_get(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """policy.get gives the default for an expired entry, and counts the expiration once."""
    fn = cached(flavor, registry, Counter(), ttl=10)
    flavor.call(fn, "k")
    clock.advance(10)

    assert fn.policy.get(("k",), "gone") == "gone"
    assert fn.policy.get(("k",), "gone") == "gone"
    assert fn.policy.stats().expirations == 1


def test_ttl_counts_from_when_the_value_was_loaded(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A load that takes 5 s stores a value that lives ttl seconds from the end of the load."""
    fn = cached(flavor, registry, Counter(clock, takes=5), ttl=10)
    flavor.call(fn)  # the load ends at +5

    clock.advance(9.5)  # +14.5: 9.5 s after the load ended
    assert flavor.call(fn) == 1


def test_without_expiry_entries_live_until_evicted(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """With no ttl, sliding or expires_at, time alone never expires an entry."""
    fn = cached(flavor, registry, Counter())
    flavor.call(fn)

    clock.advance(10**9)

    assert flavor.call(fn) == 1
    assert fn.policy.stats().expirations == 0


# -- sliding --------------------------------------------------------------------------


def test_sliding_expiry_is_pushed_back_by_each_read(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """An entry read within its sliding window lives on; one left unread expires."""
    fn = cached(flavor, registry, Counter(), sliding=5)
    flavor.call(fn)

    for _ in range(4):
        clock.advance(4)
        assert flavor.call(fn) == 1  # 16 s in all, never 5 s unread
    clock.advance(5)
    assert flavor.call(fn) == 2


def test_sliding_never_extends_past_the_ttl(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Reads keep a sliding entry alive only until its absolute expiry (ttl)."""
    fn = cached(flavor, registry, Counter(), ttl=10, sliding=5)
    flavor.call(fn)

    clock.advance(4)
    assert flavor.call(fn) == 1
    clock.advance(4)
    assert flavor.call(fn) == 1  # at 8 s; sliding alone would now last until 13 s
    clock.advance(2)
    assert flavor.call(fn) == 2  # 10 s: the ttl is the cap


def test_sliding_reads_through_the_policy_count_too(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """policy.get is a read: it pushes a sliding entry's expiry back like a call does."""
    fn = cached(flavor, registry, Counter(), sliding=5)
    flavor.call(fn, "k")

    clock.advance(4)
    assert fn.policy.get(("k",)) == 1
    clock.advance(4)
    assert flavor.call(fn, "k") == 1


def test_sliding_entry_is_purged_once_unread_long_enough(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A sliding entry that outlived its first deadline is still dropped once it expires."""
    fn = cached(flavor, registry, Counter(), sliding=5)
    flavor.call(fn)
    clock.advance(4)
    flavor.call(fn)

    clock.advance(4)  # past the first deadline, within the pushed-back one
    assert fn.policy.stats().size == 1
    clock.advance(1)  # 5 s after the last read
    stats = fn.policy.stats()
    assert (stats.size, stats.expirations) == (0, 1)


# -- expires_at ------------------------------------------------------------------------


@pytest.mark.usefixtures("frozen")
def test_expires_at_an_aware_datetime(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """An aware datetime is an absolute expiry, converted to the policy's clock when stored."""
    fn = cached(flavor, registry, Counter(), expires_at=datetime(2024, 1, 1, 12, 0, 30, tzinfo=UTC))
    flavor.call(fn)

    clock.advance(29.9)
    assert flavor.call(fn) == 1
    clock.advance(0.1)
    assert flavor.call(fn) == 2


@pytest.mark.usefixtures("frozen")
def test_a_naive_datetime_is_local_time(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A naive datetime is read as local time (here UTC+5), not as UTC."""
    thirty_seconds_from_now = datetime.now() + timedelta(seconds=30)
    fn = cached(flavor, registry, Counter(), expires_at=thirty_seconds_from_now)
    flavor.call(fn)

    clock.advance(29)
    assert flavor.call(fn) == 1
    clock.advance(1)
    assert flavor.call(fn) == 2


@pytest.mark.usefixtures("frozen")
def test_expires_at_epoch_seconds(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A number is seconds since the epoch."""
    fn = cached(flavor, registry, Counter(), expires_at=time.time() + 60)
    flavor.call(fn)

    clock.advance(59)
    assert flavor.call(fn) == 1
    clock.advance(1)
    assert flavor.call(fn) == 2


@pytest.mark.usefixtures("frozen")
def test_expires_at_computed_from_the_value(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A function of the value gives each entry its own expiry (here: a token's lifetime)."""

    def token(lifetime: int) -> dict[str, Any]:
        return {"lifetime": lifetime, "issued": time.time()}

    fn = cached(
        flavor,
        registry,
        token,
        expires_at=lambda value: value["issued"] + value["lifetime"],
    )
    short = flavor.call(fn, 10)
    long = flavor.call(fn, 100)

    clock.advance(10)
    assert flavor.call(fn, 10) is not short
    assert flavor.call(fn, 100) is long


def test_expires_at_function_may_return_none_for_no_absolute_expiry(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A None from the expires_at function leaves the entry to its ttl (here none)."""
    fn = cached(flavor, registry, Counter(), expires_at=lambda value: None)
    flavor.call(fn)

    clock.advance(10**6)

    assert flavor.call(fn) == 1


def test_expires_at_function_returning_nonsense_fails_the_load(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """An expires_at function returning something that is not a time raises; nothing is stored."""
    fn = cached(flavor, registry, Counter(), expires_at=lambda value: "tomorrow")

    with pytest.raises(TypeError, match="expires_at gave 'tomorrow'"):
        flavor.call(fn)
    stats = fn.policy.stats()
    assert (stats.size, stats.loads, stats.load_errors) == (0, 1, 1)


@pytest.mark.usefixtures("frozen")
def test_value_expiring_before_it_is_stored_is_returned_not_stored(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A value whose expires_at has already passed reaches the caller and is not kept."""
    body = Counter()
    fn = cached(flavor, registry, body, expires_at=lambda value: time.time() - 1)

    assert flavor.call(fn) == 1
    assert flavor.call(fn) == 2
    assert fn.policy.stats().size == 0


@pytest.mark.parametrize(("ttl", "in_seconds", "lives"), [(100, 10, 10), (5, 10, 5)])
@pytest.mark.usefixtures("frozen")
def test_earliest_of_ttl_and_expires_at_wins(
    flavor: Flavor,
    registry: hazina.Registry,
    clock: FakeClock,
    ttl: float,
    in_seconds: float,
    lives: float,
) -> None:
    """With both ttl and expires_at, the entry expires at whichever comes first."""
    fn = cached(flavor, registry, Counter(), ttl=ttl, expires_at=time.time() + in_seconds)
    flavor.call(fn)

    clock.advance(lives - 0.1)
    assert flavor.call(fn) == 1
    clock.advance(0.1)
    assert flavor.call(fn) == 2


# -- per-entry options ----------------------------------------------------------------


def test_set_options_override_the_policy_per_entry(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """set(ttl=...) applies to that entry; options left out take the policy's."""
    cache = registry.cache("c", ttl=100)
    cache.set("short", 1, ttl=5)
    cache.set("default", 2)

    clock.advance(5)

    assert cache.get("short") is None
    assert cache.get("default") == 2
    clock.advance(95)
    assert cache.get("default") is None


def test_get_or_set_takes_per_entry_options(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """get_or_set / aget_or_set store with the expiry they are given."""
    cache = registry.cache("c")

    async def async_factory() -> str:
        return "v"

    def load() -> Any:
        if flavor.is_async:
            return flavor.call(cache.aget_or_set, "k", async_factory, sliding=3)
        return cache.get_or_set("k", lambda: "v", sliding=3)

    assert load() == "v"
    clock.advance(2)
    assert cache.get("k") == "v"
    clock.advance(3)
    assert cache.get("k") is None


@pytest.mark.usefixtures("frozen")
def test_set_with_an_expiry_already_passed_removes_the_older_value(
    registry: hazina.Registry,
) -> None:
    """set() of a value that has already expired returns False and leaves no older value."""
    cache = registry.cache("c")
    cache.set("k", "old")

    assert cache.set("k", "new", expires_at=time.time() - 1) is False
    assert cache.get("k") is None


# -- memory ---------------------------------------------------------------------------


def test_expired_entries_make_room_before_anything_is_evicted(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """A full cache of expired entries takes new ones without evicting: they just expire."""
    fn = cached(flavor, registry, Counter(), ttl=10, max_size=3)
    for key in "abc":
        flavor.call(fn, key)
    clock.advance(10)

    for key in "def":
        flavor.call(fn, key)

    stats = fn.policy.stats()
    assert (stats.size, stats.expirations, stats.evictions) == (3, 3, 0)
    assert events == []


def test_size_counts_only_live_entries(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """stats().size drops entries as they expire, even if nobody asks for them again."""
    fn = cached(flavor, registry, Counter(), ttl=10)
    flavor.call(fn, "a")
    clock.advance(5)
    flavor.call(fn, "b")

    clock.advance(5)
    assert fn.policy.stats().size == 1
    clock.advance(5)
    assert fn.policy.stats().size == 0


def test_memory_stays_bounded_under_churn(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Thousands of short-lived keys never keep more than max_size values alive at once."""
    alive: weakref.WeakSet[Value] = weakref.WeakSet()

    def load(key: int) -> Value:
        value = Value()
        alive.add(value)
        return value

    fn = cached(flavor, registry, load, ttl=1, max_size=50)

    for key in range(2000):
        flavor.call(fn, key)
        clock.advance(0.01)
        assert len(alive) <= 50

    stats = fn.policy.stats()
    assert stats.evictions + stats.expirations == 2000 - stats.size


def test_removed_values_are_released_at_once(registry: hazina.Registry) -> None:
    """Deleting, replacing or clearing entries (with an expiry) lets go of their values."""
    cache = registry.cache("c", ttl=60)
    values = [Value() for _ in range(3)]
    refs = [weakref.ref(value) for value in values]
    cache.set("deleted", values[0])
    cache.set("replaced", values[1])
    cache.set("cleared", values[2])
    del values

    cache.delete("deleted")
    cache.set("replaced", "new")
    assert [ref() is None for ref in refs] == [True, True, False]
    cache.clear()
    assert refs[2]() is None


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


# -- the real clock, moved by freezegun ----------------------------------------------


def test_freezegun_moves_the_default_clock(flavor: Flavor) -> None:
    """On a registry with the real clock, freezegun's tick expires entries."""
    registry = hazina.Registry()
    with freezegun.freeze_time("2024-01-01 12:00:00") as frozen:
        fn = cached(flavor, registry, Counter(), ttl=60)
        flavor.call(fn)

        frozen.tick(59)
        assert flavor.call(fn) == 1
        frozen.tick(1)
        assert flavor.call(fn) == 2


# -- the clock stepping back -----------------------------------------------------------


def test_entries_keep_their_remaining_life_when_the_clock_steps_back(
    flavor: Flavor, stepping_clock: SteppingClock
) -> None:
    """Regression (issue 10): after the clock stepped back (freezegun's freeze_time ending),
    entries stayed fresh for as long as the step; a step back now counts as no time
    passing, so each entry keeps the life it had left, and then expires."""
    registry = hazina.Registry(clock=stepping_clock)
    fn = cached(flavor, registry, Counter(), ttl=60)
    assert flavor.call(fn, "a") == 1
    stepping_clock.advance(50)
    assert flavor.call(fn, "a") == 1

    stepping_clock.step_back(1e9)

    assert flavor.call(fn, "a") == 1
    assert fn.policy.get(("a",)) == 1
    stepping_clock.advance(9.9)
    assert flavor.call(fn, "a") == 1
    stepping_clock.advance(0.1)
    assert flavor.call(fn, "a") == 2


def test_get_sees_the_clock_step_back_too(stepping_clock: SteppingClock) -> None:
    """``get`` and ``in`` apply the same rule as a decorated call."""
    cache = hazina.Registry(clock=stepping_clock).cache("c", ttl=60)
    cache.set("k", "v")
    stepping_clock.advance(30)
    assert cache.get("k") == "v"

    stepping_clock.step_back(1e6)

    assert "k" in cache
    stepping_clock.advance(29)
    assert cache.get("k") == "v"
    stepping_clock.advance(1)
    assert "k" not in cache
    assert cache.get("k") is None


def test_leaving_freeze_time_leaves_no_entry_fresh_for_decades(flavor: Flavor) -> None:
    """Regression (issue 10): on the real clock, an entry stored inside freezegun's
    freeze_time stayed fresh for decades after the block (the monotonic clock stepped back
    from 2024 to the machine's uptime); now it lives out only what is left of its ttl."""
    registry = hazina.Registry()
    with freezegun.freeze_time("2024-01-01 12:00:00"):
        fn = cached(flavor, registry, Counter(), ttl=0.05)
        assert flavor.call(fn) == 1

    assert flavor.call(fn) == 1  # the step back took no time from it
    time.sleep(0.06)
    assert flavor.call(fn) == 2
