"""Bounded size: LRU eviction that honours priorities, never_remove, eviction events.

Every scenario runs sync and async through the ``flavor`` fixture; entries are made by
calling a cached function (key ``(name,)``) or through the policy API.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

import hazina
from hazina import CacheEvicted
from hazina._cache import store as store_module
from hazina.testing import FakeClock

if TYPE_CHECKING:
    from conftest import Flavor

Cached = hazina.CachedFunction[..., Any]


class Loads:
    """A body returning ``name.upper()`` and recording the names it loaded."""

    def __init__(self) -> None:
        self.loaded: list[str] = []

    def __call__(self, name: str) -> str:
        self.loaded.append(name)
        return name.upper()


def cached(
    flavor: Flavor, registry: hazina.Registry, body: Callable[..., Any], **config: Any
) -> Cached:
    """``body`` as a sync or async function cached in ``registry``'s cache "c"."""
    decorate: Any = hazina.cached("c", registry=registry, **config)
    fn: Cached = decorate(flavor.define(body))
    return fn


def kept(fn: Cached, *names: str) -> list[str]:
    """Which of ``names`` are cached now (``in`` peeks: no read, no recency change)."""
    return [name for name in names if (name,) in fn.policy]


def evicted_keys(events: list[object]) -> list[Any]:
    """The keys of the eviction events, in order."""
    return [event.key for event in events if isinstance(event, CacheEvicted)]


def test_least_recently_used_entry_is_evicted(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """When full, the entry read least recently makes room, whatever order it was stored in."""
    fn = cached(flavor, registry, Loads(), max_size=3)
    for name in ("a", "b", "c"):
        flavor.call(fn, name)
    flavor.call(fn, "a")  # now b is the least recently used

    flavor.call(fn, "d")
    flavor.call(fn, "e")

    assert evicted_keys(events) == [("b",), ("c",)]
    assert events[0] == CacheEvicted("c", ("b",), "normal")
    assert fn.policy.stats().evictions == 2


def test_evicted_entry_is_loaded_again(flavor: Flavor, registry: hazina.Registry) -> None:
    """An evicted key runs the function again on its next call."""
    body = Loads()
    fn = cached(flavor, registry, body, max_size=1)

    for name in ("a", "b", "a"):
        flavor.call(fn, name)

    assert body.loaded == ["a", "b", "a"]


def test_replacing_an_entry_evicts_nothing(registry: hazina.Registry, events: list[object]) -> None:
    """Setting a key that is already cached replaces it in place."""
    cache = registry.cache("c", max_size=2)
    cache.set("a", 1)
    cache.set("b", 2)

    cache.set("a", 3)

    assert events == []
    assert (cache.get("a"), cache.get("b")) == (3, 2)


def test_peeking_with_in_is_not_a_read(registry: hazina.Registry, events: list[object]) -> None:
    """``key in cache`` neither counts a hit nor saves the entry from eviction."""
    cache = registry.cache("c", max_size=2)
    cache.set("a", 1)
    cache.set("b", 2)

    assert "a" in cache
    assert "z" not in cache
    cache.set("c", 3)

    assert evicted_keys(events) == ["a"]
    assert (cache.stats().hits, cache.stats().misses) == (0, 0)


def test_lower_priorities_are_evicted_first(
    registry: hazina.Registry, events: list[object]
) -> None:
    """low goes before normal before high, even when the higher ones are older and unread."""
    cache = registry.cache("c", max_size=3)
    cache.set("high", 1, priority="high")
    cache.set("normal", 2)
    cache.set("low", 3, priority="low")

    for key in ("new1", "new2", "new3"):
        cache.set(key, 0)

    assert evicted_keys(events) == ["low", "normal", "new1"]
    assert cache.get("high") == 1


def test_recency_decides_within_a_priority(registry: hazina.Registry, events: list[object]) -> None:
    """Among entries of one priority, the least recently read goes first."""
    cache = registry.cache("c", max_size=3, priority="high")
    for key in ("a", "b", "c"):
        cache.set(key, key)
    cache.get("a")
    cache.get("b")

    cache.set("d", "d")
    cache.set("e", "e")

    assert evicted_keys(events) == ["c", "a"]


def test_high_priority_entries_go_when_nothing_lower_is_left(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """A cache full of high-priority entries still makes room, least recently used first."""
    fn = cached(flavor, registry, Loads(), max_size=2, priority="high")
    for name in ("a", "b", "c"):
        flavor.call(fn, name)

    assert evicted_keys(events) == [("a",)]
    assert events == [CacheEvicted("c", ("a",), "high")]


def test_never_remove_entries_are_never_evicted(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """never_remove entries stay however old; the others make room around them."""
    fn = cached(flavor, registry, Loads(), max_size=3)
    fn.policy.set(("pinned",), "PINNED", priority="never_remove")

    for name in "abcdef":
        flavor.call(fn, name)

    assert kept(fn, "pinned", "e", "f") == ["pinned", "e", "f"]
    assert ("pinned",) not in evicted_keys(events)


def test_full_of_never_remove_returns_new_values_without_storing_them(
    flavor: Flavor,
    registry: hazina.Registry,
    events: list[object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When every entry is never_remove, a new value reaches its caller but is not kept."""
    body = Loads()
    fn = cached(flavor, registry, body, max_size=2, priority="never_remove")
    flavor.call(fn, "a")
    flavor.call(fn, "b")

    assert flavor.call(fn, "c") == "C"
    assert flavor.call(fn, "c") == "C"
    assert flavor.call(fn, "d") == "D"

    assert body.loaded == ["a", "b", "c", "c", "d"]
    assert kept(fn, "a", "b", "c", "d") == ["a", "b"]
    assert events == []
    assert fn.policy.set(("e",), "E") is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "the full cache is reported once, not per call"
    assert "'c' is full of never_remove entries" in warnings[0].getMessage()


def test_never_remove_entries_still_expire(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """never_remove protects from eviction, not from expiry; expired ones make room."""
    body = Loads()
    fn = cached(flavor, registry, body, max_size=1, priority="never_remove", ttl=10)
    flavor.call(fn, "a")

    clock.advance(10)
    assert flavor.call(fn, "b") == "B"

    assert kept(fn, "a", "b") == ["b"]
    stats = fn.policy.stats()
    assert (stats.expirations, stats.evictions) == (1, 0)


def test_a_removed_never_remove_entry_frees_its_room(registry: hazina.Registry) -> None:
    """Deleting a never_remove entry from a full cache lets the next value be stored."""
    cache = registry.cache("c", max_size=1, priority="never_remove")
    cache.set("a", 1)
    assert cache.set("b", 2) is False

    cache.delete("a")

    assert cache.set("b", 2) is True


def test_evictions_and_expirations_are_counted_apart(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """Making room counts evictions (with events); running out of time counts expirations."""
    fn = cached(flavor, registry, Loads(), max_size=2, ttl=10)
    flavor.call(fn, "a")
    flavor.call(fn, "b")
    flavor.call(fn, "c")  # evicts a
    clock.advance(10)
    flavor.call(fn, "d")  # b and c have expired: no eviction

    stats = fn.policy.stats()
    assert (stats.evictions, stats.expirations, stats.size) == (1, 2, 1)
    assert evicted_keys(events) == [("a",)]


def test_listener_errors_do_not_break_the_call(flavor: Flavor, registry: hazina.Registry) -> None:
    """An eviction listener that raises is logged; the call that evicted still returns."""

    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    registry.subscribe(broken)
    fn = cached(flavor, registry, Loads(), max_size=1)
    flavor.call(fn, "a")

    assert flavor.call(fn, "b") == "B"


# -- housekeeping a little at a time -------------------------------------------------------


def test_a_write_after_a_mass_expiry_drops_a_few_expired_entries_not_all(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """Regression (issue 10): the first write into a full cache whose entries had all
    expired dropped every one of them in that call (185 ms at 100,000 entries); now a
    write drops a few, and the rest go with later writes."""
    cache = registry.cache("c", max_size=1000, ttl=1)
    for key in range(1000):
        cache.set(key, key)
    clock.advance(2)

    cache.set("new", 1)

    assert len(cache.store) >= 990
    assert cache.get("new") == 1


def test_a_full_cache_of_expired_entries_takes_new_ones_without_evicting_live_ones(
    registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """Expired entries never crowd out live ones: each write into a full cache replaces
    an expired entry while one is left, whether all of them expired or some."""
    cache = registry.cache("c", max_size=100)
    for key in range(50):
        cache.set(("short", key), key, ttl=1)
        cache.set(("long", key), key, ttl=60)
    clock.advance(2)

    for key in range(50):
        cache.set(("new", key), key, ttl=60)

    assert evicted_keys(events) == []
    assert all(("long", key) in cache and ("new", key) in cache for key in range(50))
    assert cache.stats().evictions == 0


def test_mixed_priorities_still_evict_lowest_first_after_many_passes(
    registry: hazina.Registry, events: list[object]
) -> None:
    """With high and never_remove entries in front, a normal entry is still the one that
    goes, write after write, and the high ones stay in their own recency order."""
    cache = registry.cache("c", max_size=30)
    for key in range(10):
        cache.set(("pinned", key), key, priority="never_remove")
        cache.set(("high", key), key, priority="high")
    for key in range(200):
        cache.set(("normal", key), key)

    assert {key[0] for key in evicted_keys(events)} == {"normal"}
    assert all(("pinned", k) in cache and ("high", k) in cache for k in range(10))
    assert [("normal", k) in cache for k in range(190, 200)] == [True] * 10


# -- big stores: split into shards --------------------------------------------------------


def test_no_dict_of_a_big_cache_holds_much_more_than_a_shard() -> None:
    """Regression (issue 10): a cache of 100,000 entries kept them in one dict, which
    CPython rebuilds in one write (5-18 ms) once deletions have filled it; now each dict
    holds about SHARD_SIZE entries, and writes after a mass expiry replace expired
    entries without evicting a live one."""
    clock = FakeClock()
    cache = hazina.Registry(clock=clock).cache("big", max_size=100_000, ttl=1)
    for key in range(100_000):
        cache.set(key, key)
    clock.advance(2)

    for key in range(100_000, 250_000):
        cache.set(key, key)

    sizes = [len(shard) for shard in cache.store.shards]
    assert sum(sizes) == len(cache.store) == cache.stats().size == 100_000
    assert max(sizes) <= 2 * store_module.SHARD_SIZE
    assert cache.stats().evictions == 50_000  # live ones, once the expired were gone
    assert cache.stats().expirations == 100_000


def test_a_sharded_cache_still_evicts_the_lowest_priority_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Split into shards, a full cache still evicts low entries before normal ones and
    normal before high, wherever they sit, and never a never_remove entry: a new key
    whose shard holds no normal entry evicts a normal one from another shard."""
    monkeypatch.setattr(store_module, "ONE_SHARD_UP_TO", 2)
    monkeypatch.setattr(store_module, "SHARD_SIZE", 2)
    cache = hazina.Registry(clock=FakeClock()).cache("sharded", max_size=8)
    assert len(cache.store.shards) == 4
    # Small ints hash to themselves: key k sits in shard k % 4.
    for key in (0, 4, 8):
        cache.set(key, "pinned", priority="never_remove")
    cache.set(1, "low", priority="low")
    cache.set(2, "high", priority="high")
    for key in (3, 5, 7):
        cache.set(key, "normal")
    assert len(cache.store) == 8

    cache.set(12, "new", priority="high")  # the low entry (shard 1) goes
    cache.set(16, "new", priority="high")  # shard 0 has no normal: one from another goes
    cache.set(6, "new")  # shard 2 neither

    assert 1 not in cache
    assert all(key in cache for key in (0, 4, 8, 2, 12, 16, 6))
    assert sum(key in cache for key in (3, 5, 7)) == 1
    assert len(cache.store) == 8


def store_low_and_high_from_four_threads_at_once(cache: hazina.Cache) -> None:
    """Threads 0 and 1 store one low entry in every shard, 2 and 3 one high entry, at once."""
    shards = len(cache.store.shards)
    start = threading.Barrier(4)

    def store(worker: int) -> None:
        start.wait()
        for offset in range(shards):  # small ints hash to themselves: one key a shard
            key = worker * shards + offset
            cache.set(key, key, priority="low" if worker < 2 else "high")

    threads = [threading.Thread(target=store, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_threads_storing_the_first_low_and_high_entries_of_each_shard_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sharded store makes the touch of a shard's low and high entries when the first
    one arrives, without the lock: threads racing to store the first ones all get
    entries that can be read, and evicted in priority order (low, normal, high)."""
    monkeypatch.setattr(store_module, "ONE_SHARD_UP_TO", 2)
    monkeypatch.setattr(store_module, "SHARD_SIZE", 8)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for attempt in range(20):
            registry = hazina.Registry(clock=FakeClock())
            cache = registry.cache(f"racing-{attempt}", max_size=256)
            assert len(cache.store.shards) == 32

            store_low_and_high_from_four_threads_at_once(cache)

            keys = range(4 * 32)
            assert [cache.get(key) for key in keys] == list(keys)  # each read touches
            events: list[object] = []
            registry.subscribe(events.append)
            for key in range(1000, 1000 + 256):  # full of normal entries at the end
                cache.set(key, key)
            evicted = [event for event in events if isinstance(event, CacheEvicted)]
            assert {event.key for event in evicted[:64]} == set(range(64))  # the lows
            assert [event.priority for event in evicted] == ["low"] * 64 + ["normal"] * 64
            assert all(key in cache for key in range(64, 128))  # the highs
    finally:
        sys.setswitchinterval(previous)
