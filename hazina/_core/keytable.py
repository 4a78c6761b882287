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

Shards: CPython compacts a dict that has seen enough deletions by rebuilding it, which
costs time in proportion to its size and lands on whichever insertion finds it full
(every ~0.7 to 2.5 times its size in new keys, so a table that keeps replacing keys
pays for it again and again). A table of 100,000 keys took 4 ms for that, 14 ms with
the fresh memory's page faults, in one call. A table larger than
:data:`ONE_SHARD_UP_TO` is therefore split by the keys' hashes into ordered dicts of
at most :data:`SHARD_KEYS` or so: a rebuild touches one shard. The price is on the hot
paths of such a table: the key's hash picks the shard before the dict lookup.
Recency is kept per shard, so the key that goes is the least recently used of the new
key's shard (most often), not of the whole table: among fifty keys in hash order,
the oldest is one of the table's oldest few percent.

A table whose hot path does not move keys to the end on every use (a keyed breaker's,
which reads it without a lock) passes ``touched``: before anything goes, the least
recently used keys that were used since they were last looked at move to the end
instead (a second chance, at most :data:`SECOND_CHANCES` per new key), so the keys that
go are the idle ones.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

EntryT = TypeVar("EntryT")

#: How many of the least recently used states a new key at the bound looks at. Each one
#: more costs a new key about 0.5 us (a call, and a state that is cold in the processor's
#: cache), and pays off only when the oldest is still draining but the next is full: the
#: oldest is the likeliest to be full, and a table whose oldest few all drain is
#: overloaded anyway (4 cost 5.9 us a new key at the bound, 2 cost 4.9, 1 cost 3.8).
NEAR_OLDEST = 2
#: How many recently used keys one new key may move to the end before one goes anyway.
SECOND_CHANCES = 64
#: A table of up to this many keys has one shard: its order is then exactly least
#: recently used first, its hot paths use the dict's own methods, and rebuilding it
#: takes well under 100 us.
ONE_SHARD_UP_TO = 1024
#: About how many keys a shard of a bigger table holds (half to all of this). Small, because a
#: shard is rebuilt every one to three times its size in new keys, so about one new key
#: in a hundred pays for a rebuild, and the p99.9 is that call: at 512 keys tens of
#: microseconds; at 128, 14 us for a limiter fed distinct keys; at 64, 9 us (and the
#: worst call 30 us, not 45). A shard's own objects cost about 3 B a key at 64.
SHARD_KEYS = 64


def shard_count(
    max_keys: int, per_shard: int = SHARD_KEYS, one_shard_up_to: int = ONE_SHARD_UP_TO
) -> int:
    """How many shards a table (or a cache's store) of ``max_keys`` gets: a power of two,
    one when small."""
    count = 1
    if max_keys > one_shard_up_to:
        while count * per_shard < max_keys:
            count *= 2
    return count


class KeyTable(Generic[EntryT]):
    """Up to ``max_keys`` entries in least-recently-used order; not thread-safe.

    Every method leaves the table consistent at each step (a single C-level dict
    operation changes it), so an exception raised between two of them (a signal
    handler's) loses at most the count of one eviction. The running count of keys
    changes right after each insertion and deletion, with no call in between: the
    interpreter runs signal handlers at calls and loops only, so none lands there.

    Lookups: the shard of ``key`` is ``shards[hash(key) & mask]``; with one shard
    (``mask`` 0) it is :attr:`entries` itself, which hot paths may use directly.

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
        #: Whether an entry is as good as new (replaced when a policy's limits change).
        self.is_full = is_full
        self._touched = touched
        self._forget = forget
        #: Key -> entry, least recently used first, per shard. Fixed at creation: a
        #: reconfigured ``max_keys`` changes the bound, not the shards.
        self.shards: tuple[OrderedDict[Hashable, EntryT], ...] = tuple(
            OrderedDict() for _ in range(shard_count(max_keys))
        )
        self.mask: int = len(self.shards) - 1
        #: Each shard's ``get`` and ``move_to_end``, bound once: hot paths index these
        #: (a method looked up on an ordered dict costs more than the lookup itself).
        self.gets: tuple[Callable[[Hashable], EntryT | None], ...] = tuple(
            shard.get for shard in self.shards
        )
        self.moves: tuple[Callable[[Hashable], None], ...] = tuple(
            shard.move_to_end for shard in self.shards
        )
        #: The only shard of an unsharded table (the first one otherwise).
        self.entries: OrderedDict[Hashable, EntryT] = self.shards[0]
        self.evicted: int = 0
        self._size = 0
        self._cursor = 0  # where the search for a shard with keys resumes

    def clear(self) -> None:
        """Forget every key and the eviction count."""
        for shard in self.shards:
            shard.clear()
        self._size = len(self)  # 0, unless an exception cut the loop short
        self.evicted = 0

    def __len__(self) -> int:
        return sum(map(len, self.shards))

    def get(self, key: Hashable) -> EntryT | None:
        """The entry of ``key`` if tracked; neither made nor marked recently used."""
        return self.shards[hash(key) & self.mask].get(key)

    def values(self) -> Iterator[EntryT]:
        """Every entry, shard by shard."""
        return itertools.chain.from_iterable(shard.values() for shard in self.shards)

    def obtain(self, key: Hashable, now: float) -> EntryT:
        """The entry of ``key``, made (evicting if need be) when new; marks it recently used."""
        shard = self.shards[hash(key) & self.mask]
        entry = shard.get(key)
        if entry is not None:
            shard.move_to_end(key)
            return entry
        if self._size >= self.max_keys:
            self._make_room(shard, now)
        entry = self._make(key)
        # No call between the insertion and the count: see the class doc.
        shard[key] = entry
        self._size += 1
        return entry

    def _make_room(self, shard: OrderedDict[Hashable, EntryT], now: float) -> None:
        if not shard:
            shard = self._any_shard()
        if self._touched is not None:
            self._second_chance(shard)
        # A full state among the oldest few goes before a draining one: forgetting a
        # draining state would hand its key a fresh, full one.
        victim = None
        for key, entry in itertools.islice(shard.items(), NEAR_OLDEST):
            if victim is None:
                victim = key
            if self.is_full(entry, now):
                victim = key
                break
        entry = shard[victim]
        del shard[victim]
        self._size -= 1
        self.evicted += 1
        if self._forget is not None:
            self._forget(entry)

    def _any_shard(self) -> OrderedDict[Hashable, EntryT]:
        # The new key's shard is empty though the table is full: keys hashing alike
        # crowd another one. Each call resumes where the last one stopped, so a run
        # of such keys looks at each empty shard once, not once per key.
        shards, mask = self.shards, self.mask
        for _ in range(len(shards)):
            self._cursor = (self._cursor + 1) & mask
            if shards[self._cursor]:
                return shards[self._cursor]
        raise AssertionError("a full table with no keys")  # pragma: no cover

    def _second_chance(self, shard: OrderedDict[Hashable, EntryT]) -> None:
        # Each key moved here was used since it was last moved, so the moves are paid
        # for by calls already made. Bounded, so one new key never pays for a table
        # full of busy keys: past the bound the oldest goes, busy or not.
        touched = self._touched
        assert touched is not None
        for _ in range(min(len(shard), SECOND_CHANCES)):
            oldest = next(iter(shard))
            if not touched(shard[oldest]):
                return
            shard.move_to_end(oldest)
