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

Each group also has three floor rows, timed the same way: ``bare``, one plain
``OrderedDict`` of as many keys doing the least a bounded table can (drop the oldest
key, insert the new one), shows what CPython's rebuild of one dict of 100,000 keys
full of deletions costs in one call (its max, milliseconds); ``bare_sharded``, the same
keys split by hash into 1,024 ordered dicts as hazina's key tables and cache stores
split them; ``fixed_work``, a loop of additions that allocates nothing and takes about
as long as hazina's call, shows what the machine adds to any call that long.

The machine, and the library apart from it. Times are wall-clock
(``time.perf_counter``, about 50 ns a read), so a call also holds whatever interrupts
the machine while it runs: a timer tick or a host's preemption on a shared virtual
machine costs tens of microseconds, and lands on a call with a probability
proportional to the call's length. On the machine these figures come from, the
``fixed_work`` row of 4 us, which does the same additions every time, reads a p99.9 of
about 25 us and a max of 0.1 to 1.6 ms: the issue's targets are below what a call that
long can show there. So every row is also **replayed**: the identical scenario (the
same keys, the same fake clock, the same calls in the same order) is built and timed
twice more, and each call's time is the least of its three. Work the library does
(a rebuild, an eviction, a purge) lands on the same call every time and stays in that
figure; an interrupt lands on a different call in each run and goes. The table's
columns are the first run, as timed; the figures after the tables give both, and
``extra_info`` keeps them.

The cyclic garbage collector is off while timing (``gc.disable()``): its full
collections stop any program holding 100,000 objects for milliseconds, whatever the
library, and they are not what is measured here (``gc.freeze()`` after start-up keeps
them short in production).
"""

from __future__ import annotations

import gc
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

import cachetools
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import hazina
from hazina.testing import FakeClock

ENTRIES = 100_000
DISTINCT_KEYS = 400_000
#: Issue 10's targets, in seconds.
WORST_CALL, P999 = 100e-6, 20e-6
#: How many times each scenario runs: the first as pytest-benchmark times it, the rest
#: timed the same way, for each call's least time (see "The machine" above).
RUNS = 3
#: Additions in one ``fixed_work`` call: about hazina's median call on this machine.
FIXED_ADDITIONS = {"cache": 200, "limiter": 120}

TIMER = time.perf_counter
CACHE = pytest.mark.benchmark(group="housekeeping-cache-writes", warmup=False, timer=TIMER)
LIMITER = pytest.mark.benchmark(group="housekeeping-keyed-limiter", warmup=False, timer=TIMER)

#: Every row's figures, printed by benchmarks/conftest.py once the tables are out.
RESULTS: list[str] = []

#: A scenario ready to time: its call, and a check of the state after the run.
Run = tuple[Callable[[], object], Callable[[], None]]
#: Builds a fresh :data:`Run`, the same every time (each row is timed several times).
Scenario = Callable[[], Run]


@pytest.fixture(autouse=True)
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def time_each(call: Callable[[], object], calls: int) -> list[float]:
    """Every call's time, measured as pytest-benchmark's pedantic rounds measure it."""
    times = [0.0] * calls
    once = range(1)
    timer = TIMER
    for index in range(calls):
        start = timer()
        for _ in once:
            call()
        times[index] = timer() - start
    return times


def figures(times: list[float]) -> tuple[float, float, float, float]:
    """Median, p99.9, p99.99 and max."""
    ordered = sorted(times)
    last = len(ordered) - 1
    p999, p9999 = (ordered[min(last, int(len(ordered) * share))] for share in (0.999, 0.9999))
    return ordered[len(ordered) // 2], p999, p9999, ordered[-1]


def shown(times: list[float]) -> str:
    median, p999, p9999, worst = (value * 1e6 for value in figures(times))
    return f"median {median:.1f}, p99.9 {p999:.1f}, p99.99 {p9999:.1f}, max {worst:.1f}"


def each_call(benchmark: BenchmarkFixture, scenario: Scenario, calls: int) -> None:
    """Time every one of ``calls`` calls of ``scenario``, :data:`RUNS` times over."""
    call, check = scenario()
    benchmark.pedantic(call, rounds=calls, iterations=1, warmup_rounds=0)
    check()
    runs = [list(benchmark.stats.stats.data)]
    for _ in range(RUNS - 1):
        call, check = scenario()
        gc.collect()
        runs.append(time_each(call, calls))
        check()
    replayed = [min(times) for times in zip(*runs, strict=True)]
    for label, times in (("as timed", runs[0]), ("replayed", replayed)):
        median, p999, p9999, worst = figures(times)
        benchmark.extra_info[label] = {
            "median": median,
            "p99_9": p999,
            "p99_99": p9999,
            "max": worst,
        }
    RESULTS.append(
        f"{benchmark.group}: {benchmark.name}\n"
        f"    as timed: {shown(runs[0])} us\n"
        f"    replayed: {shown(replayed)} us"
        f" (targets: p99.9 {P999 * 1e6:.0f}, max {WORST_CALL * 1e6:.0f})"
    )


def no_check() -> None:
    pass


def bare_bounded_table(size: int) -> Scenario:
    """Writes into a plain LRU table of ``size`` keys, already full: the floor."""

    def scenario() -> Run:
        table: OrderedDict[int, int] = OrderedDict.fromkeys(range(size), 0)
        new_keys = itertools.count(size)
        pop_oldest = table.popitem

        def write() -> None:
            pop_oldest(last=False)
            table[next(new_keys)] = 1

        return write, no_check

    return scenario


def bare_sharded_table(size: int, shards: int = 1024) -> Scenario:
    """The same writes into ``size`` keys split by hash into ``shards`` LRU tables."""

    def scenario() -> Run:
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

        return write, no_check

    return scenario


def fixed_work(additions: int) -> Scenario:
    """Calls that each do the same ``additions`` additions and allocate nothing."""
    steps = range(additions)

    def add() -> int:
        total = 0
        for step in steps:
            total += step
        return total

    def scenario() -> Run:
        return add, no_check

    return scenario


@CACHE
def test_bare_cache_writes_after_a_mass_expiry(benchmark: BenchmarkFixture) -> None:
    each_call(benchmark, bare_bounded_table(ENTRIES), ENTRIES)


@LIMITER
def test_bare_keyed_limiter_fed_distinct_keys(benchmark: BenchmarkFixture) -> None:
    each_call(benchmark, bare_bounded_table(ENTRIES), DISTINCT_KEYS)


@CACHE
def test_bare_sharded_cache_writes_after_a_mass_expiry(benchmark: BenchmarkFixture) -> None:
    each_call(benchmark, bare_sharded_table(ENTRIES), ENTRIES)


@LIMITER
def test_bare_sharded_keyed_limiter_fed_distinct_keys(benchmark: BenchmarkFixture) -> None:
    each_call(benchmark, bare_sharded_table(ENTRIES), DISTINCT_KEYS)


@CACHE
def test_fixed_work_cache_writes_after_a_mass_expiry(benchmark: BenchmarkFixture) -> None:
    each_call(benchmark, fixed_work(FIXED_ADDITIONS["cache"]), ENTRIES)


@LIMITER
def test_fixed_work_keyed_limiter_fed_distinct_keys(benchmark: BenchmarkFixture) -> None:
    each_call(benchmark, fixed_work(FIXED_ADDITIONS["limiter"]), DISTINCT_KEYS)


def hazina_cache_writes() -> Run:
    clock = FakeClock()
    cache = hazina.Registry(clock=clock).cache("bench", max_size=ENTRIES, ttl=1)
    for key in range(ENTRIES):
        cache.set(key, key)
    clock.advance(2)
    new_keys = itertools.count(ENTRIES)
    set_value = cache.set

    def check() -> None:
        assert len(cache.store) == ENTRIES
        assert cache.stats().evictions == 0

    return lambda: set_value(next(new_keys), 1), check


@CACHE
def test_hazina_cache_writes_after_a_mass_expiry(benchmark: BenchmarkFixture) -> None:
    each_call(benchmark, hazina_cache_writes, ENTRIES)


def cachetools_cache_writes() -> Run:
    now = [0.0]
    cache: cachetools.TTLCache[int, int] = cachetools.TTLCache(ENTRIES, ttl=1, timer=lambda: now[0])
    for key in range(ENTRIES):
        cache[key] = key
    now[0] = 2.0
    new_keys = itertools.count(ENTRIES)

    def set_value() -> None:
        cache[next(new_keys)] = 1

    def check() -> None:
        assert len(cache) == ENTRIES

    return set_value, check


@CACHE
def test_cachetools_cache_writes_after_a_mass_expiry(benchmark: BenchmarkFixture) -> None:
    each_call(benchmark, cachetools_cache_writes, ENTRIES)


def hazina_keyed_limiter() -> Run:
    limiter = hazina.Registry(clock=FakeClock()).rate_limiter(
        "bench", rate=10, per=60, max_keys=ENTRIES
    )
    keys = itertools.count()
    try_acquire = limiter.try_acquire

    def check() -> None:
        stats = limiter.stats()
        assert (stats.tracked_keys, stats.evicted_keys) == (ENTRIES, DISTINCT_KEYS - ENTRIES)

    return lambda: try_acquire(next(keys)), check


@LIMITER
def test_hazina_keyed_limiter_fed_distinct_keys(benchmark: BenchmarkFixture) -> None:
    each_call(benchmark, hazina_keyed_limiter, DISTINCT_KEYS)
