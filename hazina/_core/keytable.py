"""The bounded table of per-key states (a rate limiter's buckets, a keyed breaker's states).

Memory stays bounded however many distinct keys arrive: past ``max_keys`` a key must
go before a new one comes in. States that are full again carry no information (a
fresh state is the same), so they go first; only when none is full does the least
recently used key go, and what it had taken is forgotten.

Finding full states means looking at every state, so a sweep is rationed: at most one
per ``max_keys // 8`` new keys, and half as often after each sweep that found little
(as under a flood of distinct keys that are all still draining). That keeps the cost
per new key constant on average. Between sweeps, the first full state among the
least recently used few goes, and only if none of those is full the least recently
used key itself.

A table whose hot path does not move keys to the end on every use (a keyed breaker's,
which reads it without a lock) passes ``touched``: before anything goes, the least
recently used keys that were used since they were last looked at move to the end
instead (a second chance), so the keys that go are the idle ones.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

EntryT = TypeVar("EntryT")

#: How many of the least recently used states are checked for a full one between sweeps.
_NEAR_OLDEST = 16


class KeyTable(Generic[EntryT]):
    """Up to ``max_keys`` entries in least-recently-used order; not thread-safe.

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
        self._base_interval = max(1, max_keys // 8)
        self.clear()

    def clear(self) -> None:
        """Forget every key and the eviction count."""
        self.entries.clear()
        self.evicted: int = 0
        self._sweep_interval = self._base_interval
        self._new_since_sweep = self._base_interval  # the first sweep may come at once

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
        self._new_since_sweep += 1
        return entry

    def _make_room(self, now: float) -> None:
        entries = self.entries
        if self._touched is not None:
            self._second_chance()
        oldest = next(iter(entries))
        sweep_due = self._new_since_sweep >= self._sweep_interval
        if sweep_due and not self._is_full(entries[oldest], now):
            self._new_since_sweep = 0
            full = [key for key, entry in entries.items() if self._is_full(entry, now)]
            for key in full:
                self._evict(key)
            # A sweep that freed little was mostly wasted: ration the next one harder.
            if len(full) * 2 < self._sweep_interval:
                self._sweep_interval = min(self._sweep_interval * 2, self.max_keys * 8)
            else:
                self._sweep_interval = self._base_interval
            if full:
                return
        # Between sweeps, a full bucket among the least recently used few still goes
        # before a draining one: forgetting a draining bucket would hand its key a
        # fresh, full one. Bounded, so a new key never costs more than a few checks.
        for key, entry in itertools.islice(entries.items(), _NEAR_OLDEST):
            if self._is_full(entry, now):
                oldest = key
                break
        self._evict(oldest)

    def _evict(self, key: Hashable) -> None:
        entry = self.entries.pop(key)
        self.evicted += 1
        if self._forget is not None:
            self._forget(entry)

    def _second_chance(self) -> None:
        # Each key moved here was used since it was last moved, so the moves are paid
        # for by calls already made; once every key has had its chance one is idle.
        touched, entries = self._touched, self.entries
        assert touched is not None
        for _ in range(len(entries)):
            oldest = next(iter(entries))
            if not touched(entries[oldest]):
                return
            entries.move_to_end(oldest)
