"""The worst call, not the typical one: housekeeping that must never land on one caller.

Each row times every single call of a long run (one call per pytest-benchmark round)
and reports the median, the **max** and the **p99.9** of those calls, beside the
targets of issue 10: worst call under 100 us, p99.9 under 20 us.

Groups:

- ``housekeeping-cache-writes``: a cache of 100,000 entries that all expired together
  (``ttl=1``, then the clock moved 2 s), then 100,000 writes of new keys. Each write
  must make room; the first one used to drop every expired entry at once.
  ``cachetools`` is ``TTLCache(100_000, ttl=1)`` with a fake timer, the same scenario.
- ``housekeeping-keyed-limiter``: a keyed rate limiter (``max_keys=100_000``, 10 per
  minute, so every key is still draining) fed 400,000 distinct keys: 300,000 of them
  arrive at the bound and must evict one. One call used to sweep the whole table.

Each group also has two floor rows, timed the same way, doing the least a bounded table
can (drop the oldest key, insert the new one): ``bare``, one plain ``OrderedDict`` of as
many keys, shows what CPython's rebuild of one dict of 100,000 keys full of deletions
costs in one call (its max, milliseconds); ``bare_sharded``, the same keys split by hash
into 1,024 ordered dicts as hazina's key tables and cache stores split them, shows what
this machine does to a table of small dicts that each rebuild now and then (its p99.9
and max: cold memory, other work on a shared virtual machine).

Times are wall-clock (``time.perf_counter``, about 50 ns a read). The calling thread's
CPU time would leave out a call the operating system descheduled, but reading it is a
system call here (about 1 us, with a p99.9 of its own of 10-25 us on the ``bare``
row), which hid the figures being measured. The cyclic garbage collector is off while
timing (``gc.disable()``): its full collections stop any program holding 100,000
objects for milliseconds, whatever the library, and they are not what is measured here
(``gc.freeze()`` after start-up keeps them short in production). pytest-benchmark's
``max`` column is the worst call; the p99.9 and the targets are printed after the
tables and kept in ``extra_info``.
"""

from __future__ import annotations

import gc
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import cachetools
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import hazina
from hazina.testing import FakeClock

ENTRIES = 100_000
DISTINCT_KEYS = 400_000
#: Issue 10's targets, in seconds.
WORST_CALL, P999 = 100e-6, 20e-6

# The calling thread's CPU time, not wall time: on a busy machine a call descheduled for
# a few milliseconds would otherwise show the scheduler's pause as the library's.
TIMER = time.perf_counter
CACHE = pytest.mark.benchmark(group="housekeeping-cache-writes", warmup=False, timer=TIMER)
LIMITER = pytest.mark.benchmark(group="housekeeping-keyed-limiter", warmup=False, timer=TIMER)

#: Every row's figures, printed by benchmarks/conftest.py once the tables are out.
RESULTS: list[str] = []


@pytest.fixture(autouse=True)
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def each_call(benchmark: BenchmarkFixture, call: Callable[[], Any], rounds: int) -> None:
    """Time ``rounds`` single calls of ``call`` and record the percentiles."""
    benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=0)
    data = sorted(benchmark.stats.stats.data)
    p999, p9999 = (data[min(len(data) - 1, int(len(data) * share))] for share in (0.999, 0.9999))
    median, worst = data[len(data) // 2], data[-1]
    benchmark.extra_info.update(median=median, p99_9=p999, p99_99=p9999, max=worst)
    RESULTS.append(
        f"{benchmark.group}: {benchmark.name}: median {median * 1e6:.1f} us, "
        f"p99.9 {p999 * 1e6:.1f} us (target {P999 * 1e6:.0f}), "
        f"p99.99 {p9999 * 1e6:.1f} us, "
        f"max {worst * 1e6:.1f} us (target {WORST_CALL * 1e6:.0f})"
    )


def bare_bounded_table(size: int) -> Callable[[], None]:
    """One write into a plain LRU table of ``size`` keys, already full: the floor."""
    table: OrderedDict[int, int] = OrderedDict.fromkeys(range(size), 0)
    new_keys = itertools.count(size)
    pop_oldest = table.popitem

    def write() -> None:
        pop_oldest(last=False)
        table[next(new_keys)] = 1

    return write


def bare_sharded_table(size: int, shards: int = 1024) -> Callable[[], None]:
    """The same write into ``size`` keys split by hash into ``shards`` LRU tables."""
    tables = [OrderedDict[int, int]() for _ in range(shards)]
    mask = shards - 1
    for key in range(size):
        tables[hash(key) & mask][key] = 0
    new_keys = itertools.count(size)

    def write() -> None:
        key = next(new_keys)
        table = tables[hash(key) & mask]
        table.popitem(last=False)
        table[key] = 1

    return write


@CACHE
def test_bare_sharded_cache_writes_after_a_mass_expiry(benchmark: BenchmarkFixture) -> None:
    each_call(benchmark, bare_sharded_table(ENTRIES), ENTRIES)


@LIMITER
def test_bare_sharded_keyed_limiter_fed_distinct_keys(benchmark: BenchmarkFixture) -> None:
    each_call(benchmark, bare_sharded_table(ENTRIES), DISTINCT_KEYS)


@CACHE
def test_bare_cache_writes_after_a_mass_expiry(benchmark: BenchmarkFixture) -> None:
    each_call(benchmark, bare_bounded_table(ENTRIES), ENTRIES)


@LIMITER
def test_bare_keyed_limiter_fed_distinct_keys(benchmark: BenchmarkFixture) -> None:
    each_call(benchmark, bare_bounded_table(ENTRIES), DISTINCT_KEYS)


@CACHE
def test_hazina_cache_writes_after_a_mass_expiry(benchmark: BenchmarkFixture) -> None:
    clock = FakeClock()
    cache = hazina.Registry(clock=clock).cache("bench", max_size=ENTRIES, ttl=1)
    for key in range(ENTRIES):
        cache.set(key, key)
    clock.advance(2)
    new_keys = itertools.count(ENTRIES)
    set_value = cache.set

    each_call(benchmark, lambda: set_value(next(new_keys), 1), ENTRIES)

    assert len(cache.store) == ENTRIES
    assert cache.stats().evictions == 0


@CACHE
def test_cachetools_cache_writes_after_a_mass_expiry(benchmark: BenchmarkFixture) -> None:
    now = [0.0]
    cache: cachetools.TTLCache[int, int] = cachetools.TTLCache(ENTRIES, ttl=1, timer=lambda: now[0])
    for key in range(ENTRIES):
        cache[key] = key
    now[0] = 2.0
    new_keys = itertools.count(ENTRIES)

    def set_value() -> None:
        cache[next(new_keys)] = 1

    each_call(benchmark, set_value, ENTRIES)

    assert len(cache) == ENTRIES


@LIMITER
def test_hazina_keyed_limiter_fed_distinct_keys(benchmark: BenchmarkFixture) -> None:
    registry = hazina.Registry(clock=FakeClock())
    limiter = registry.rate_limiter("bench", rate=10, per=60, max_keys=ENTRIES)
    keys = itertools.count()
    try_acquire = limiter.try_acquire

    each_call(benchmark, lambda: try_acquire(next(keys)), DISTINCT_KEYS)

    stats = limiter.stats()
    assert (stats.tracked_keys, stats.evicted_keys) == (ENTRIES, DISTINCT_KEYS - ENTRIES)
