"""How many first attempts and retries a budget saw in its last window.

The window is cut into :data:`BUCKETS` buckets. At the start of a bucket the first call
to arrive leaves a *mark*: the running totals at that moment. The counts in the window
are then the totals now less those of the oldest mark still inside it. Between two
marks nothing was counted except inside the earlier mark's own bucket, so the mark at
or after the window's start is exact to the bucket.
"""

from __future__ import annotations

import collections
import math

import attrs

#: Buckets per window: the window slides in steps of a tenth of its length.
BUCKETS = 10


@attrs.frozen
class Mark:
    """The running totals when bucket number ``bucket`` saw its first call."""

    bucket: int
    attempts: int
    retries: int


class Marks:
    """The marks of the last :data:`BUCKETS` buckets; callers hold the budget's lock."""

    __slots__ = ("_marks", "width")

    def __init__(self, window: float) -> None:
        self.width = window / BUCKETS
        self._marks: collections.deque[Mark] = collections.deque(maxlen=BUCKETS)

    def bucket(self, now: float) -> int:
        """The number of the bucket holding ``now`` (whole numbers: no float drift)."""
        return math.floor(now / self.width)

    def leave(self, bucket: int, attempts: int, retries: int) -> float:
        """Mark ``bucket`` unless it already is; the time the next bucket starts."""
        if not self._marks or self._marks[-1].bucket < bucket:
            self._marks.append(Mark(bucket, attempts, retries))
        return (self._marks[-1].bucket + 1) * self.width

    def oldest_in_window(self, now: float) -> Mark:
        """The first mark of the window that ends with the bucket holding ``now``."""
        first = self.bucket(now) - (BUCKETS - 1)
        for mark in self._marks:
            if mark.bucket >= first:
                return mark
        raise LookupError("no mark in the window; leave one for now first")

    def clear(self) -> None:
        self._marks.clear()
