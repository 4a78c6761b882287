"""The bounded table of per-key rate-limit states.

Memory stays bounded however many distinct keys arrive: past ``max_keys`` a key must
go before a new one comes in. States that are full again carry no information (a
fresh state is the same), so they go first; only when none is full does the least
recently used key go, and what it had taken is forgotten.

No call pays for more than a few checks: a new key at the bound looks at the
:data:`NEAR_OLDEST` least recently used states only, and the first of them that is full
goes; if none is, the least recently used key itself. The keys used longest ago are the
likeliest to be full again, and a sweep of the whole table (what this replaced) made one
unlucky call wait for every state to be looked at.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

EntryT = TypeVar("EntryT")

#: How many of the least recently used states a new key at the bound looks at.
NEAR_OLDEST = 16


class KeyTable(Generic[EntryT]):
    """Up to ``max_keys`` entries in least-recently-used order; not thread-safe.

    Every method leaves the table consistent at each step (a single C-level dict
    operation changes it), so an exception raised between two of them (a signal
    handler's) loses at most the count of one eviction.

    Args:
        max_keys: The most keys held at once.
        make: Builds the entry of a new key.
        is_full: Whether an entry is as good as new at a clock reading.
    """

    def __init__(
        self,
        max_keys: int,
        make: Callable[[], EntryT],
        is_full: Callable[[EntryT, float], bool],
    ) -> None:
        self.max_keys = max_keys
        self._make = make
        self._is_full = is_full
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
        entry = entries[key] = self._make()
        return entry

    def _make_room(self, now: float) -> None:
        entries = self.entries
        # A full state among the oldest few goes before a draining one: forgetting a
        # draining state would hand its key a fresh, full one.
        victim = None
        for key, entry in itertools.islice(entries.items(), NEAR_OLDEST):
            if victim is None:
                victim = key
            if self._is_full(entry, now):
                victim = key
                break
        entries.pop(victim, None)
        self.evicted += 1
