"""The in-memory store behind a cache: entries, recency per priority, and expiry order.

Concurrency contract: every method here mutates, and runs under the owning policy's
lock. Readers on the hot path take no lock: they look an entry up with :attr:`Store.get`
(one atomic ``dict.get``), compare its deadline with the clock, and mark it recently
used by calling ``entry.touch(key)``: the C-level ``OrderedDict.move_to_end`` (atomic
under the GIL) of its shard, and for ``low`` and ``high`` entries of their priority's
own list too. ``touch`` only reorders and raises ``KeyError`` for
a key that has just been removed, so a reader can never put an entry back. For the
readers' sake the containers are emptied in place, never replaced.

Memory: one ordered dict (one shard of them, see below) holds each entry in recency
order, so an entry costs one dict slot, not two. ``normal`` and ``never_remove`` entries
need nothing more; ``low`` and ``high`` ones also sit in their priority's own ordered
dict, so the least recently used of a priority is found at once. The least recently
used ``normal`` entry is the first one in its shard that is ``normal``: the ``high`` and
``never_remove`` entries in front of it are moved to the back on the way (their order
among themselves lives elsewhere or does not matter), so each is stepped over once per
pass.

Shards: CPython compacts a dict that has seen enough deletions by rebuilding it, in
time proportional to its size, inside whichever insertion finds it full. A cache of
100,000 entries that keeps replacing them paid 5-18 ms for that in one write, every
few hundred thousand writes. A store larger than :data:`ONE_SHARD_UP_TO` therefore
splits its entries by their keys' hashes into ordered dicts of at most
:data:`SHARD_SIZE` or so, so a rebuild touches one shard (tens of microseconds with the
fresh memory's page faults; shards filled together rebuild close together, so smaller
is better). Recency is kept per shard: the ``normal`` entry evicted for a new key is
the least recently used of the new key's shard (of another shard when that one has
none), which among fifty keys in hash order is about the store's oldest two
percent. The price is on the readers' lookup of a sharded store: the key's
hash picks the shard's ``get`` first (inline in the decorators' hot path, a Python
function in :attr:`Store.get`). A store of up
to :data:`ONE_SHARD_UP_TO` entries (the default 1024) has one shard, in exact recency
order, and its lookup is that dict's own ``get``. The ``low`` and ``high`` lists stay
one dict each: a store full of them still rebuilds them whole.

Expiry: entries with a deadline sit in a heap ordered by when they are due (their
deadline when scheduled; a sliding entry read since then is due later and is
rescheduled when found). Each entry knows its place in the heap, so removing one costs
O(log n) and the heap never holds more than the entries. Expired entries are dropped a
few at a time: on each write, and before anything live is evicted to make room, so no
single call pays for a mass expiry. Each item of the heap has four children, not two:
dropping the first item sinks the last one from the top over 9 levels at 100,000
entries instead of 17, and the three comparisons that pick a level's earliest child
cost less than the level's moves.

Interruptions: an exception from a signal handler can land wherever Python code calls
a function or loops. Every change here is ordered so that the state at each such point
is one the next call copes with: an entry joins the heap and its priority's list before
the lookup table and leaves them after it (so a stray one there is dropped when met),
heap slots are swapped with no call in between, and an entry whose sift was cut short
is sifted again by the next heap operation.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from .._core.keytable import ONE_SHARD_UP_TO as ONE_TABLE_SHARD_UP_TO
from .._core.keytable import SHARD_KEYS, shard_count
from .expiry import NEVER, PRIORITIES

_LOW, _NORMAL, _HIGH = (PRIORITIES.index(name) for name in ("low", "normal", "high"))
#: A store of up to this many entries has one shard (see "Shards" above), as a key
#: table, for the same reasons.
ONE_SHARD_UP_TO = ONE_TABLE_SHARD_UP_TO
#: A bigger store has shards of about this many entries (half to all): as a key table's.
#: A write costs twice a limiter's call and reads colder memory, so a rebuild costs
#: more here: the p99.9 of writes after a mass expiry was 20 us at 128 (12 us at 64).
SHARD_SIZE = SHARD_KEYS
#: A write that needs room looks at up to this many heap items to find an expired entry.
_LOOK_FOR_ROOM = 8
#: How many children an item of the expiry heap has: the parent of spot ``i`` is
#: ``(i - 1) >> 2`` (see "Expiry" above; the sifts are written for four).
HEAP_ARITY = 4


class Entry:
    """One cached value; only ``deadline`` changes after creation (sliding expiry)."""

    __slots__ = ("deadline", "key", "sliding", "spot", "touch", "value")

    def __init__(
        self,
        key: Hashable,
        value: Any,
        touch: Callable[[Hashable], None],
        deadline: float,
        sliding: list[float] | None,
    ) -> None:
        self.key: Hashable = key
        self.value: Any = value
        #: Marks the entry most recently used (in its priority, and overall).
        self.touch: Callable[[Hashable], None] = touch
        #: Monotonic time from which the entry is no longer served.
        self.deadline: float = deadline
        #: ``[sliding, cap, due]`` for a sliding entry: its window, the absolute expiry
        #: it never slides past, and when the heap has it due. ``None`` otherwise (it is
        #: then due at its deadline).
        self.sliding: list[float] | None = sliding
        #: Its index in the expiry heap; -1 when not in it.
        self.spot: int = -1

    def slide(self, now: float) -> None:
        """Push the deadline back after a read at ``now``, never past the cap."""
        # Lock-free: two readers racing may leave the earlier of their two deadlines,
        # microseconds apart, which is still a deadline one of them set.
        sliding = self.sliding
        deadline = now + sliding[0]  # type: ignore[index]
        cap = sliding[1]  # type: ignore[index]
        self.deadline = deadline if deadline < cap else cap


def _ranked_touch(
    move: Callable[[Hashable], None], move_ranked: Callable[[Hashable], None]
) -> Callable[[Hashable], None]:
    """The touch of a ``low`` or ``high`` entry: its shard's move, and its priority's."""

    def touch(key: Hashable) -> None:
        move(key)
        move_ranked(key)

    return touch


def _oldest(ordered: OrderedDict[Hashable, Entry]) -> tuple[Hashable, Entry]:
    """The first item of ``ordered``. Lock-free readers move entries to the end while the
    lock holder looks (``touch``), which makes the iterator raise ``RuntimeError``: that
    only means look again."""
    while True:
        try:
            return next(iter(ordered.items()))
        except RuntimeError:
            continue


class Store:
    """Entries bounded by ``max_size``, evicted least recently used, lowest priority first."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        #: Every entry, least recently used first, per shard (see "Shards"). Fixed at
        #: creation: a reconfigured ``max_size`` changes the bound, not the shards.
        self.shards: tuple[OrderedDict[Hashable, Entry], ...] = tuple(
            OrderedDict() for _ in range(shard_count(max_size, SHARD_SIZE, ONE_SHARD_UP_TO))
        )
        self.mask: int = len(self.shards) - 1
        mask = self.mask
        #: Each shard's ``get``, bound once: the hot path indexes these (a method
        #: looked up on an ordered dict costs more than the lookup itself).
        self.gets: tuple[Callable[[Hashable], Entry | None], ...] = tuple(
            shard.get for shard in self.shards
        )
        gets = self.gets
        #: The only shard of an unsharded store (the first one otherwise).
        self.entries: OrderedDict[Hashable, Entry] = self.shards[0]
        #: The entry under a key, or ``None``: one ``dict.get`` (the readers' lookup).
        self.get: Callable[[Hashable], Entry | None]
        if mask:

            def get(key: Hashable) -> Entry | None:
                return gets[hash(key) & mask](key)

            self.get = get
        else:
            self.get = self.entries.get
        # Recency within low and high; normal's is the order of each shard itself.
        self._ranked = {_LOW: OrderedDict[Hashable, Entry](), _HIGH: OrderedDict[Hashable, Entry]()}
        #: Per shard, one touch per priority, told apart by identity: `never_remove`'s
        #: is another bound method object than `normal`'s, for the same move. A new
        #: entry's is ``touches[hash(key) & mask][rank]``, or :meth:`ranked_touch` where
        #: that is ``None``: ``low`` and ``high`` ones are made on first use (most stores
        #: never hold one, and two closures a shard were 40% of a big store's fixed cost).
        self.touches: list[tuple[Callable[[Hashable], None] | None, ...]] = [
            (None, shard.move_to_end, None, shard.move_to_end) for shard in self.shards
        ]
        #: ``id(touch)`` -> ``(shard, rank)``: an entry's touch tells both, with no
        #: call of its key's ``__hash__``.
        self._whose = {
            id(touch): (index, rank)
            for index, touches in enumerate(self.touches)
            for rank, touch in enumerate(touches)
            if touch is not None
        }
        self._size = 0  # how many entries are stored, over every shard
        self._normal = 0  # how many normal entries are stored
        self._normals = [0] * len(self.shards)  # the same, per shard
        self._cursor = 0  # where the search for a shard with a normal entry resumes
        #: The expiry heap: entries by when they are due, and beside it when each is
        #: due (the sifts compare these without reading the entries).
        self._expiry: list[Entry] = []
        self._dues: list[float] = []
        # The entry whose sift an exception cut short; sifted again before the next change.
        self._unsifted: Entry | None = None

    def __len__(self) -> int:
        return self._size

    def items(self) -> Iterator[tuple[Hashable, Entry]]:
        """Every key and entry, shard by shard."""
        return itertools.chain.from_iterable(shard.items() for shard in self.shards)

    def new_entry(
        self,
        key: Hashable,
        value: Any,
        rank: int,
        expiry: tuple[float, float | None, float],
    ) -> Entry:
        """An entry for this store (not yet in it)."""
        deadline, sliding, cap = expiry
        window = None if sliding is None else [sliding, cap, deadline]
        index = hash(key) & self.mask
        touch = self.touches[index][rank] or self.ranked_touch(index, rank)
        return Entry(key, value, touch, deadline, window)

    def ranked_touch(self, index: int, rank: int) -> Callable[[Hashable], None]:
        """The touch of shard ``index``'s entries of priority ``rank`` (``low`` or
        ``high``), made the first time one is needed.

        Called without the policy's lock: two threads may each make one, and entries
        made with either work, as both are known in ``_whose`` before they are handed
        out. An interruption between the two steps leaves one known touch unused.
        """
        touch = self.touches[index][rank]
        if touch is None:
            touch = _ranked_touch(self.shards[index].move_to_end, self._ranked[rank].move_to_end)
            self._whose[id(touch)] = (index, rank)
            touches = list(self.touches[index])
            touches[rank] = touch
            self.touches[index] = tuple(touches)
        return touch

    def rank_of(self, entry: Entry) -> int:
        """The index in :data:`PRIORITIES` of ``entry``'s priority."""
        return self._whose[id(entry.touch)][1]

    def put(self, entry: Entry, now: float) -> tuple[bool, list[Entry], int]:
        """Store ``entry``, making room if needed.

        Returns whether it was stored (not when every entry is ``never_remove``), the
        entries evicted for it, and how many expired entries were dropped first.
        """
        # Written out: each call saved here is a few tenths of a microsecond a write.
        key = entry.key
        index, rank = self._whose[id(entry.touch)]
        shard = self.shards[index]
        evicted: list[Entry] = []
        old = shard.get(key)
        if old is not None:
            self.remove(old)
        if self._unsifted is not None:
            self._resift()
        heap, dues = self._expiry, self._dues
        # One expired entry dropped in passing, whether room is needed or not: a write
        # into a full cache of expired entries then replaces one, and pays for one. Most
        # writes find nothing due: the test here saves them the call.
        expired = self._drop_first(now) if dues and dues[0] <= now else 0
        if self._size >= self.max_size:
            if dues and dues[0] <= now:
                expired += self.purge(now, _LOOK_FOR_ROOM, wanted=1)
            if self._size >= self.max_size:
                victim = self._evict(index)
                if victim is None:
                    return False, evicted, expired
                evicted.append(victim)
        # The heap and the priority's list first: see "Interruptions" above. Every
        # change before this one finished, so no sift is left to finish.
        if entry.deadline is not NEVER:
            spot = len(heap)
            sliding = entry.sliding
            due = entry.deadline if sliding is None else sliding[2]
            entry.spot = spot
            self._unsifted = entry
            # `+=`, not append(): no call between the two, so the lists never differ
            # in length.
            heap += (entry,)
            dues += (due,)
            # Most new entries are due last (the same ttl, a later now): no sift to call.
            if spot and dues[(spot - 1) >> 2] > due:
                self._sift_up(entry)
            self._unsifted = None
        if rank != _NORMAL and rank in self._ranked:
            self._ranked[rank][key] = entry
        # No call from here to the counts, so they never disagree with the shard.
        shard[key] = entry
        self._size += 1
        if rank == _NORMAL:
            self._normal += 1
            self._normals[index] += 1
        return True, evicted, expired

    def remove(self, entry: Entry) -> bool:
        """Remove ``entry`` if it is still the one stored under its key."""
        key = entry.key
        index, rank = self._whose[id(entry.touch)]
        shard = self.shards[index]
        if shard.get(key) is not entry:
            return False
        # The lookup table first: from here on readers miss instead of finding it. No
        # call between the removal and the counts, so they never disagree.
        del shard[key]
        self._size -= 1
        if rank == _NORMAL:
            self._normal -= 1
            self._normals[index] -= 1
        self._forget(entry, rank)
        return True

    def purge(self, now: float, limit: float = float("inf"), wanted: float = float("inf")) -> int:
        """Drop entries expired at ``now``, looking at ``limit`` heap items at most and
        stopping after ``wanted`` drops; returns how many were dropped."""
        dues = self._dues
        if self._unsifted is not None:
            self._resift()
        expired = looked = 0
        while dues and looked < limit and expired < wanted:
            if dues[0] > now:
                break
            looked += 1
            expired += self._drop_first(now)
        return expired

    def _drop_first(self, now: float) -> int:
        """Look at the heap's first item, due at ``now``: drop it if it expired (1),
        reschedule it if it slid, or unschedule it if it was removed (0).

        Runs after any cut-short sift was finished (see _resift): the heap is in order.
        """
        first = self._expiry[0]
        key = first.key
        index, rank = self._whose[id(first.touch)]
        shard = self.shards[index]
        if shard.get(key) is not first:
            self._unschedule(first)  # left behind by an interrupted removal
            return 0
        if first.deadline > now:
            self._reschedule(first)  # a sliding entry read since it was scheduled
            return 0
        # As remove() and _forget(), written out: the lookup table, the counts (no call
        # between), the priority's list, then the heap.
        del shard[key]
        self._size -= 1
        if rank == _NORMAL:
            self._normal -= 1
            self._normals[index] -= 1
        elif rank in self._ranked:
            lru = self._ranked[rank]
            if lru.get(key) is first:
                del lru[key]
        # _unschedule() of the first slot: the last item moves there and sinks.
        heap, dues = self._expiry, self._dues
        last = heap[-1]
        # No call from here to the sift: the slot changes hands in one piece.
        heap[0] = last
        dues[0] = dues[-1]
        last.spot = 0
        first.spot = -1
        del heap[-1]
        del dues[-1]
        if last is not first:
            self._unsifted = last
            self._sift_down(last)
            self._unsifted = None
        return 1

    def shift(self, step: float) -> None:
        """Move every deadline by ``step`` seconds: the clock stepped back by ``-step``.

        O(n), but only when the clock steps back (leaving a freezegun block), never on
        an ordinary call.
        """
        for _, entry in self.items():
            if entry.deadline is not NEVER:
                entry.deadline += step
            sliding = entry.sliding
            if sliding is not None:
                sliding[1] += step  # the cap
                sliding[2] += step  # when the heap has it due
        # The same step for every due time keeps the heap's order: it stays a heap.
        dues = self._dues
        for index in range(len(dues)):
            dues[index] += step

    def clear(self) -> None:
        """Remove every entry."""
        for shard in self.shards:
            shard.clear()
        for lru in self._ranked.values():
            lru.clear()
        # `del [:]`, not clear(): no call between the two, which must stay one length.
        del self._expiry[:]
        del self._dues[:]
        self._unsifted = None
        self._normals[:] = [0] * len(self.shards)
        self._normal = 0
        self._size = 0

    # -- eviction ----------------------------------------------------------------------

    def _evict(self, near: int = 0) -> Entry | None:
        """Remove the least recently used entry of the lowest priority present (of
        normal entries, of shard ``near`` if it has one)."""
        if self._ranked[_LOW]:
            return self._evict_from(self._ranked[_LOW])
        while self._normal > 0:
            index = near if self._normals[near] > 0 else self._shard_with_normal()
            if index < 0:
                self._normal = 0  # pragma: no cover - a miscount; it must not loop for ever
                break
            shard = self.shards[index]
            normal = self.touches[index][_NORMAL]
            for _ in range(len(shard)):
                key, victim = _oldest(shard)
                if victim.touch is normal:
                    del shard[key]
                    self._size -= 1
                    self._normal -= 1
                    self._normals[index] -= 1
                    # _forget() of a normal entry: it is in no priority's list.
                    if victim.spot >= 0:
                        self._unschedule(victim)
                    return victim
                shard.move_to_end(key)  # high or never_remove: see the module doc
            self._normal -= self._normals[index]  # pragma: no cover - a miscount
            self._normals[index] = 0  # pragma: no cover
        if self._ranked[_HIGH]:
            return self._evict_from(self._ranked[_HIGH])
        return None

    def _shard_with_normal(self) -> int:
        # Resumes where the last search stopped: a run of new keys in shards without
        # normal entries looks at each shard once, not once per key.
        normals, mask = self._normals, self.mask
        for _ in range(len(normals)):
            self._cursor = (self._cursor + 1) & mask
            if normals[self._cursor] > 0:
                return self._cursor
        return -1

    def _evict_from(self, lru: OrderedDict[Hashable, Entry]) -> Entry | None:
        while lru:
            key, victim = _oldest(lru)
            index, rank = self._whose[id(victim.touch)]
            shard = self.shards[index]
            if shard.get(key) is victim:
                del shard[key]
                self._size -= 1
                self._forget(victim, rank)
                return victim
            del lru[key]  # left behind by an interrupted removal
        return self._evict()

    def _forget(self, entry: Entry, rank: int) -> None:
        """Drop a removed entry (of priority ``rank``) from its priority's list and from
        the heap."""
        if rank in self._ranked:
            lru = self._ranked[rank]
            if lru.get(entry.key) is entry:
                del lru[entry.key]
        if entry.spot >= 0:
            self._unschedule(entry)

    # -- the expiry heap ------------------------------------------------------------------

    def _unschedule(self, entry: Entry) -> None:
        if self._unsifted is not None:
            self._resift()
        heap, dues = self._expiry, self._dues
        spot = entry.spot
        if not 0 <= spot < len(heap) or heap[spot] is not entry:
            entry.spot = -1
            return
        last = heap[-1]
        # No call from here to the sift: the slot changes hands in one piece.
        heap[spot] = last
        dues[spot] = dues[-1]
        last.spot = spot
        entry.spot = -1
        del heap[-1]
        del dues[-1]
        if last is not entry:
            self._unsifted = last
            # It moves up or down, never both: one sift, chosen by its parent's due time.
            if spot and dues[(spot - 1) >> 2] > dues[spot]:
                self._sift_up(last)
            else:
                self._sift_down(last)
            self._unsifted = None

    def _reschedule(self, entry: Entry) -> None:
        sliding = entry.sliding
        assert sliding is not None
        self._unsifted = entry
        due = sliding[2] = entry.deadline
        self._dues[entry.spot] = due
        self._sift_down(entry)
        self._unsifted = None

    def _resift(self) -> None:
        entry = self._unsifted
        if entry is not None:
            heap = self._expiry
            if 0 <= entry.spot < len(heap) and heap[entry.spot] is entry:
                self._sift_up(entry)
                self._sift_down(entry)
            self._unsifted = None

    def _sift_up(self, entry: Entry) -> None:
        heap, dues = self._expiry, self._dues
        spot = entry.spot
        due = dues[spot]
        while spot > 0:
            parent_spot = (spot - 1) >> 2
            parent_due = dues[parent_spot]
            if parent_due <= due:
                break
            parent = heap[parent_spot]
            # A swap with no call inside: consistent at every point an exception lands.
            heap[spot] = parent
            dues[spot] = parent_due
            heap[parent_spot] = entry
            dues[parent_spot] = due
            parent.spot = spot
            entry.spot = parent_spot
            spot = parent_spot

    def _sift_down(self, entry: Entry) -> None:
        heap, dues = self._expiry, self._dues
        size = len(heap)
        spot = entry.spot
        due = dues[spot]
        while True:
            # The earliest due of the (up to four) children, compared one by one: a
            # slice and min() cost more than the comparisons they replace.
            child_spot = 4 * spot + 1
            if child_spot + 3 < size:
                child_due = dues[child_spot]
                other = dues[child_spot + 1]
                if other < child_due:
                    child_due = other
                    best = child_spot + 1
                else:
                    best = child_spot
                other = dues[child_spot + 2]
                if other < child_due:
                    child_due = other
                    best = child_spot + 2
                other = dues[child_spot + 3]
                if other < child_due:
                    child_due = other
                    best = child_spot + 3
                child_spot = best
            elif child_spot < size:  # the last parent, with fewer than four
                child_due = dues[child_spot]
                for other_spot in range(child_spot + 1, size):
                    if dues[other_spot] < child_due:
                        child_spot = other_spot
                        child_due = dues[other_spot]
            else:
                break
            if due <= child_due:
                break
            child = heap[child_spot]
            # A swap with no call inside: consistent at every point an exception lands.
            heap[spot] = child
            dues[spot] = child_due
            heap[child_spot] = entry
            dues[child_spot] = due
            child.spot = spot
            entry.spot = child_spot
            spot = child_spot
