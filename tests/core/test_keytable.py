"""The bounded key table behind keyed limiters and breakers: how much one new key pays."""

from __future__ import annotations

from collections.abc import Hashable

import pytest

from hazina._core.keytable import (
    NEAR_OLDEST,
    ONE_SHARD_UP_TO,
    SECOND_CHANCES,
    SHARD_KEYS,
    KeyTable,
)


class Counted:
    """A table whose states are never full and always busy, counting every look."""

    def __init__(self, max_keys: int, touched: bool = False) -> None:
        self.looks = 0
        self.table: KeyTable[Hashable] = KeyTable(
            max_keys,
            lambda key: key,
            self.is_full,
            self.touched if touched else None,
        )

    def is_full(self, entry: Hashable, now: float) -> bool:
        self.looks += 1
        return False

    def touched(self, entry: Hashable) -> bool:
        self.looks += 1
        return True

    def most_looks_per_new_key(self, first: int, count: int) -> int:
        most = 0
        for key in range(first, first + count):
            before = self.looks
            self.table.obtain(key, 0.0)
            most = max(most, self.looks - before)
        return most


@pytest.mark.parametrize("max_keys", [100, 10_000, 200_000])
def test_a_new_key_at_the_bound_looks_at_a_few_states_whatever_the_table_size(
    max_keys: int,
) -> None:
    """However big the table, a new key at the bound asks about at most NEAR_OLDEST states
    (none of them full) before one goes, and the table keeps exactly max_keys keys."""
    counted = Counted(max_keys)
    counted.most_looks_per_new_key(0, max_keys)

    assert counted.most_looks_per_new_key(max_keys, 3000) == NEAR_OLDEST
    assert len(counted.table) == max_keys
    assert counted.table.evicted == 3000


def test_a_table_of_busy_keys_gives_a_bounded_number_of_second_chances() -> None:
    """Where every key was used since last asked, one new key moves at most SECOND_CHANCES
    of them to the end (and looks at NEAR_OLDEST states) before one goes anyway; in a
    sharded table, whose shards hold fewer keys than that, at most its shard's keys."""
    one_shard = Counted(ONE_SHARD_UP_TO, touched=True)
    one_shard.most_looks_per_new_key(0, ONE_SHARD_UP_TO)
    sharded = Counted(100_000, touched=True)
    sharded.most_looks_per_new_key(0, 100_000)

    assert one_shard.most_looks_per_new_key(ONE_SHARD_UP_TO, 3000) == (SECOND_CHANCES + NEAR_OLDEST)
    biggest_shard = max(map(len, sharded.table.shards))
    assert sharded.most_looks_per_new_key(100_000, 3000) <= biggest_shard + NEAR_OLDEST


def test_no_dict_of_a_big_table_holds_much_more_than_a_shard() -> None:
    """Regression (issue 10): a table of 100,000 keys was one dict, which CPython rebuilds
    in one call (14 ms) when deletions have filled it; now every dict the table changes
    holds about SHARD_KEYS keys, so a rebuild touches a few dozen."""
    counted = Counted(100_000)
    counted.most_looks_per_new_key(0, 300_000)

    sizes = [len(shard) for shard in counted.table.shards]
    assert sum(sizes) == len(counted.table) == 100_000
    assert max(sizes) <= 2 * SHARD_KEYS


def test_a_small_table_is_one_dict_in_least_recently_used_order() -> None:
    """A table of ONE_SHARD_UP_TO keys or fewer is one ordered dict: the key used
    longest ago goes first, exactly."""
    counted = Counted(ONE_SHARD_UP_TO)
    for key in range(ONE_SHARD_UP_TO):
        counted.table.obtain(key, 0.0)
    counted.table.obtain(0, 0.0)  # used again: 1 is now the least recent

    counted.table.obtain("new", 0.0)

    assert len(counted.table.shards) == 1
    assert 1 not in counted.table.entries
    assert 0 in counted.table.entries


def test_keys_that_all_hash_alike_still_keep_the_bound() -> None:
    """Keys crowding one shard are evicted from it, and a new key whose shard is empty
    evicts from another: the table never holds more than max_keys keys."""
    max_keys = 2 * ONE_SHARD_UP_TO
    counted = Counted(max_keys)
    shards = len(counted.table.shards)
    assert shards > 1
    crowd = [key * shards for key in range(max_keys)]  # small ints hash to themselves
    for key in crowd:
        counted.table.obtain(key, 0.0)

    counted.table.obtain(1, 0.0)  # its shard is empty: one of the crowd goes
    counted.table.obtain(max_keys * shards, 0.0)  # one more in the crowded shard

    assert len(counted.table) == max_keys
    assert counted.table.evicted == 2
    assert counted.table.get(1) == 1
    assert counted.table.get(crowd[0]) is None  # the least recently used of the crowd
