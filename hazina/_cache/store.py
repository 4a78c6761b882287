"""The in-memory store behind a cache: entries, recency per priority, and expiry order.

Concurrency contract: every method here mutates, and runs under the owning policy's
lock. Readers on the hot path take no lock: they look an entry up in :attr:`Store.entries`
(one atomic ``dict.get``), compare its deadline with the clock, and mark it recently
used by calling ``entry.touch(key)``, which is the C-level
``OrderedDict.move_to_end`` of its priority's list, atomic under the GIL. ``touch``
only reorders and raises ``KeyError`` for a key that has just been removed, so a
reader can never put an entry back, and eviction stays exact LRU. For the readers'
sake the containers are emptied in place, never replaced.

Expired entries do not pile up and need no background thread: an entry found expired
on access is removed then, and before anything live is evicted to make room, a heap
ordered by deadline gives up every entry that has expired (O(log n) each).
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from .expiry import NEVER, NEVER_REMOVE, PRIORITIES


class Entry:
    """One cached value; only ``deadline`` changes after creation (sliding expiry)."""

    __slots__ = ("cap", "deadline", "key", "rank", "scheduled", "sliding", "touch", "value")

    def __init__(
        self,
        key: Hashable,
        value: Any,
        rank: int,
        touch: Callable[[Hashable], None],
        deadline: float,
        sliding: float | None,
        cap: float,
    ) -> None:
        self.key: Hashable = key
        self.value: Any = value
        self.rank: int = rank
        #: Marks the entry most recently used within its priority.
        self.touch: Callable[[Hashable], None] = touch
        #: Monotonic time from which the entry is no longer served.
        self.deadline: float = deadline
        self.sliding: float | None = sliding
        #: The absolute expiry that sliding never passes.
        self.cap: float = cap
        #: The number of its item in the expiry heap (items of other numbers are stale).
        self.scheduled: int = -1

    def slide(self, now: float) -> None:
        """Push the deadline back after a read at ``now``, never past the cap."""
        # Lock-free: two readers racing may leave the earlier of their two deadlines,
        # microseconds apart, which is still a deadline one of them set.
        deadline = now + self.sliding  # type: ignore[operator]
        self.deadline = deadline if deadline < self.cap else self.cap


class Store:
    """Entries bounded by ``max_size``, evicted least recently used, lowest priority first."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.entries: dict[Hashable, Entry] = {}
        self._recency = tuple(OrderedDict[Hashable, Entry]() for _ in PRIORITIES)
        self._touches = tuple(lru.move_to_end for lru in self._recency)
        # (deadline when pushed, number, key). Items name the key, not the entry, so a
        # removed entry's value is freed at once, not when its stale item is popped.
        self._expiry: list[tuple[float, int, Hashable]] = []
        self._numbers = itertools.count()

    def __len__(self) -> int:
        return len(self.entries)

    def new_entry(
        self,
        key: Hashable,
        value: Any,
        rank: int,
        expiry: tuple[float, float | None, float],
    ) -> Entry:
        """An entry for this store (not yet in it)."""
        deadline, sliding, cap = expiry
        return Entry(key, value, rank, self._touches[rank], deadline, sliding, cap)

    def put(self, entry: Entry, now: float) -> tuple[bool, list[Entry], int]:
        """Store ``entry``, making room if needed.

        Returns whether it was stored (not when every entry is ``never_remove``), the
        entries evicted for it, and how many expired entries were dropped first.
        """
        key = entry.key
        old = self.entries.get(key)
        evicted: list[Entry] = []
        expired = 0
        if old is not None:
            del self._recency[old.rank][key]
        elif len(self.entries) >= self.max_size:
            expired = self.purge(now)
            if len(self.entries) >= self.max_size:
                victim = self._evict()
                if victim is None:
                    return False, evicted, expired
                evicted.append(victim)
        # Recency first, so a reader that finds the entry can always touch it.
        self._recency[entry.rank][key] = entry
        self.entries[key] = entry
        if entry.deadline is not NEVER:
            self._schedule(entry)
        return True, evicted, expired

    def remove(self, entry: Entry) -> bool:
        """Remove ``entry`` if it is still the one stored under its key."""
        key = entry.key
        if self.entries.get(key) is not entry:
            return False
        # The lookup table first: from here on readers miss instead of finding it.
        del self.entries[key]
        del self._recency[entry.rank][key]
        return True

    def purge(self, now: float) -> int:
        """Drop every entry expired at ``now``; returns how many."""
        expiry, entries = self._expiry, self.entries
        expired = 0
        while expiry and expiry[0][0] <= now:
            _, number, key = heapq.heappop(expiry)
            entry = entries.get(key)
            if entry is None or entry.scheduled != number:
                continue  # removed or replaced since it was scheduled
            if entry.deadline > now:
                self._schedule(entry)  # a sliding entry read since it was scheduled
            else:
                self.remove(entry)
                expired += 1
        return expired

    def shift(self, step: float) -> None:
        """Move every deadline by ``step`` seconds: the clock stepped back by ``-step``."""
        for entry in self.entries.values():
            if entry.deadline is not NEVER:
                entry.deadline += step
            if entry.cap != NEVER:
                entry.cap += step
        # A shift keeps the heap's order, so it stays a heap.
        self._expiry[:] = [(deadline + step, number, key) for deadline, number, key in self._expiry]

    def clear(self) -> None:
        """Remove every entry."""
        self.entries.clear()
        for lru in self._recency:
            lru.clear()
        self._expiry.clear()

    def _evict(self) -> Entry | None:
        """Remove the least recently used entry of the lowest priority present."""
        for lru in self._recency[:NEVER_REMOVE]:
            if lru:
                key, victim = lru.popitem(last=False)
                del self.entries[key]
                return victim
        return None

    def _schedule(self, entry: Entry) -> None:
        expiry = self._expiry
        entry.scheduled = number = next(self._numbers)
        heapq.heappush(expiry, (entry.deadline, number, entry.key))
        # Items of replaced or removed entries linger until popped; rebuilding once
        # they outnumber the live ones keeps the heap O(max_size), amortised O(1).
        if len(expiry) > 2 * len(self.entries) + 64:
            entries = self.entries
            expiry[:] = [item for item in expiry if _is_live(entries.get(item[2]), item[1])]
            heapq.heapify(expiry)


def _is_live(entry: Entry | None, number: int) -> bool:
    return entry is not None and entry.scheduled == number
