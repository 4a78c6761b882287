"""Microseconds per cache write, the mean of 100,000 writes, the best of N runs.

Run from the repository root::

    python -m benchmarks.cache_writes        # 5 runs of each scenario
    python -m benchmarks.cache_writes 1      # one run (to interleave two checkouts)

The machine is noisy (one run varies 1.5x from the next), so two versions of the
code are compared by running this in both checkouts alternately, one run at a time,
and taking each one's best. Scenarios, on a fake clock (entries due at one time, as in
``test_housekeeping.py``), the garbage collector off:

- ``after_mass_expiry``: ``cache.set`` of a new key into 100,000 entries all expired:
  each write drops one expired entry and stores one.
- ``not_full``: ``cache.set`` of a new key into a cache with room.
- ``full_of_live``: ``cache.set`` of a new key into 100,000 live entries: one eviction.
- ``miss_after_mass_expiry``: a decorated function's miss (the load and its store) into
  100,000 entries all expired.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable

import hazina
from hazina.testing import FakeClock

ENTRIES = 100_000


def _per_write(write: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for key in range(ENTRIES, 2 * ENTRIES):
        write(key)
    return (time.perf_counter() - start) / ENTRIES


def after_mass_expiry() -> float:
    clock = FakeClock()
    cache = hazina.Registry(clock=clock).cache("writes", max_size=ENTRIES, ttl=1)
    for key in range(ENTRIES):
        cache.set(key, key)
    clock.advance(2)
    return _per_write(lambda key: cache.set(key, 1))


def not_full() -> float:
    cache = hazina.Registry(clock=FakeClock()).cache("writes", max_size=4 * ENTRIES, ttl=1000)
    for key in range(ENTRIES):
        cache.set(key, key)
    return _per_write(lambda key: cache.set(key, 1))


def full_of_live() -> float:
    clock = FakeClock()
    cache = hazina.Registry(clock=clock).cache("writes", max_size=ENTRIES, ttl=1000)
    for key in range(ENTRIES):
        cache.set(key, key)
        if key % 1000 == 0:
            clock.advance(0.001)
    return _per_write(lambda key: cache.set(key, 1))


def miss_after_mass_expiry() -> float:
    clock = FakeClock()
    registry = hazina.Registry(clock=clock)
    registry.cache("misses", max_size=ENTRIES, ttl=1)
    load = hazina.cached("misses", registry=registry)(lambda key: key)
    for key in range(ENTRIES):
        load(key)
    clock.advance(2)
    return _per_write(load)


SCENARIOS = (after_mass_expiry, not_full, full_of_live, miss_after_mass_expiry)


def main(runs: int) -> None:
    best = dict.fromkeys((scenario.__name__ for scenario in SCENARIOS), float("inf"))
    gc.disable()
    try:
        for _ in range(runs):
            for scenario in SCENARIOS:
                gc.collect()
                best[scenario.__name__] = min(best[scenario.__name__], scenario())
    finally:
        gc.enable()
    for name, seconds in best.items():
        print(f"{name:24} {seconds * 1e6:6.2f} us")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
