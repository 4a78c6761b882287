"""Exact counters the hot paths can bump without taking a lock.

``next()`` on an :class:`itertools.count` runs entirely in C while holding the GIL,
so concurrent threads never lose an increment, at a fraction of the cost of
``with lock: n += 1``. There is no API to read one back; its ``repr`` is stable
("count(N)"), so reads (rare: stats, decisions on the slow path) parse that.
"""

from __future__ import annotations

import itertools

Counter = itertools.count


def new_counter() -> itertools.count[int]:
    """A counter at zero."""
    return itertools.count()


def read_counter(counter: itertools.count[int]) -> int:
    """How many times ``next()`` has been called on ``counter``."""
    return int(repr(counter)[6:-1])
