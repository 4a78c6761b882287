"""The bounded table of per-key states (a rate limiter's buckets, a keyed breaker's states).

Memory stays bounded however many distinct keys arrive: past ``max_keys`` a key must
go before a new one comes in. States that are full again carry no information (a
fresh state is the same), so they go first; only when none is full does the least
recently used key go, and what it had taken is forgotten.

No call pays for more than a few checks: a new key at the bound looks at the
:data:`NEAR_OLDEST` least recently used states only, and the first of them that is full
goes; if none is, the least recently used key itself. The keys used longest ago are the
likeliest to be full again, and a sweep of the whole table (what this replaced) made one
unlucky call wait for every state to be looked at.

A table whose hot path does not move keys to the end on every use (a keyed breaker's,
which reads it without a lock) passes ``touched``: before anything goes, the least
recently used keys that were used since they were last looked at move to the end
instead (a second chance, at most :data:`SECOND_CHANCES` per new key), so the keys that
go are the idle ones.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

EntryT = TypeVar("EntryT")

#: How many of the least recently used states a new key at the bound looks at.
NEAR_OLDEST = 16
#: How many recently used keys one new key may move to the end before one goes anyway.
SECOND_CHANCES = 64


class KeyTable(Generic[EntryT]):
    """Up to ``max_keys`` entries in least-recently-used order; not thread-safe.

    Every method leaves the table consistent at each step (a single C-level dict
    operation changes it), so an exception raised between two of them (a signal
    handler's) loses at most the count of one eviction.

    Args:
        max_keys: The most keys held at once.
        make: Builds the entry of a new key.
        is_full: Whether an entry is as good as new at a clock reading.
        touched: Whether an entry was used since the last time this asked (``None``:
            every use moves the key to the end).
        forget: Called with each entry evicted (not with those :meth:`clear` drops).
    """

    def __init__(
        self,
        max_keys: int,
        make: Callable[[Hashable], EntryT],
        is_full: Callable[[EntryT, float], bool],
        touched: Callable[[EntryT], bool] | None = None,
        forget: Callable[[EntryT], None] | None = None,
    ) -> None:
        self.max_keys = max_keys
        self._make = make
        self._is_full = is_full
        self._touched = touched
        self._forget = forget
        #: Key -> entry, least recently used first. Public for the hot paths' lookups.
        self.entries: OrderedDict[Hashable, EntryT] = OrderedDict()
        self.evicted: int = 0

    def clear(self) -> None:
        """Forget every key and the eviction count."""
        self.entries.clear()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self.entries)

    def obtain(self, key: Hashable, now: float) -> EntryT:
        """The entry of ``key``, made (evicting if need be) when new; marks it recently used."""
        entries = self.entries
        entry = entries.get(key)
        if entry is not None:
            entries.move_to_end(key)
            return entry
        if len(entries) >= self.max_keys:
            self._make_room(now)
        entry = entries[key] = self._make(key)
        return entry

    def _make_room(self, now: float) -> None:
        entries = self.entries
        if self._touched is not None:
            self._second_chance()
        # A full state among the oldest few goes before a draining one: forgetting a
        # draining state would hand its key a fresh, full one.
        victim = None
        for key, entry in itertools.islice(entries.items(), NEAR_OLDEST):
            if victim is None:
                victim = key
            if self._is_full(entry, now):
                victim = key
                break
        self._evict(victim)

    def _evict(self, key: Hashable) -> None:
        entry = self.entries.pop(key)
        self.evicted += 1
        if self._forget is not None:
            self._forget(entry)

    def _second_chance(self) -> None:
        # Each key moved here was used since it was last moved, so the moves are paid
        # for by calls already made. Bounded, so one new key never pays for a table
        # full of busy keys: past the bound the oldest goes, busy or not.
        touched, entries = self._touched, self.entries
        assert touched is not None
        for _ in range(min(len(entries), SECOND_CHANCES)):
            oldest = next(iter(entries))
            if not touched(entries[oldest]):
                return
            entries.move_to_end(oldest)
