"""The sliding windows a circuit breaker judges rates over.

Every completed call (success, failure or slow call; not an ignored one) draws the
next index from the breaker's shared, lock-free completion counter. Successes stop
there: that is the whole hot path. Failures and slow calls, rare and taken under the
breaker's lock, are recorded here with their index (count window) or their second
(time window), so each record is O(1) and a plain success touches nothing here.
"""

from __future__ import annotations

import math
from collections import deque


class CountWindow:
    """The last ``size`` completed calls."""

    __slots__ = ("_base", "_failures", "_size", "_slow")

    #: A count window never needs the hot path to note the time.
    bucket_start: float = -math.inf
    bucket_end: float = math.inf

    def __init__(self, size: int) -> None:
        self._size = size
        self._base = 0
        self._failures: deque[int] = deque()
        self._slow: deque[int] = deque()

    def clear(self, completions: int) -> None:
        """Forget everything; calls from index ``completions`` on count."""
        self._base = completions
        self._failures.clear()
        self._slow.clear()

    def note_time(self, now: float, completions: int) -> None:
        """Count windows do not care about time."""

    def shift(self, now: float, seen: float) -> None:
        """Count windows do not care about time."""

    def record(self, index: int, now: float, *, failure: bool, slow: bool) -> None:
        """Record the call that completed with ``index``."""
        if failure:
            self._failures.append(index)
        if slow:
            self._slow.append(index)

    def counts(self, completions: int, now: float) -> tuple[int, int, int]:
        """``(calls, failures, slow calls)`` among the last ``size`` completions."""
        oldest = max(self._base, completions - self._size)
        for recorded in (self._failures, self._slow):
            while recorded and recorded[0] < oldest:
                recorded.popleft()
        return completions - oldest, len(self._failures), len(self._slow)


class TimeWindow:
    """The calls completed in the last ``size`` seconds, in one-second buckets.

    Calls per bucket are not counted one by one: at the first completion of each new
    second the breaker notes how many completions there were so far (a mark), and the
    calls inside the window are the completions since the oldest mark inside it.
    """

    __slots__ = (
        "_base",
        "_buckets",
        "_failures",
        "_marks",
        "_size",
        "_slow",
        "bucket_end",
        "bucket_start",
    )

    #: The current one-second bucket: a success within it needs no lock (a reading
    #: before its start means the clock stepped back, which the lock's path handles).
    bucket_start: float
    bucket_end: float

    def __init__(self, size: int) -> None:
        self._size = size
        self._base = 0
        # (second, completions before that second's first completion)
        self._marks: deque[tuple[int, int]] = deque()
        # [second, failures, slow calls]
        self._buckets: deque[list[int]] = deque()
        # Running totals over _buckets, so reading the window is O(1) too.
        self._failures = 0
        self._slow = 0
        #: The current second; the hot path compares against it.
        self.bucket_start = self.bucket_end = -math.inf

    def clear(self, completions: int) -> None:
        """Forget everything; calls from index ``completions`` on count."""
        self._base = completions
        self._marks.clear()
        self._buckets.clear()
        self._failures = self._slow = 0
        self.bucket_start = self.bucket_end = -math.inf

    def note_time(self, now: float, completions: int) -> None:
        """Open the bucket for ``now``'s second if it is not open yet."""
        if now < self.bucket_end:
            return
        second = math.floor(now)
        self._marks.append((second, completions))
        # Floats, so the hot path compares float with float (an int costs a conversion).
        self.bucket_start = float(second)
        self.bucket_end = self.bucket_start + 1.0
        self._expire(second)

    def shift(self, now: float, seen: float) -> None:
        """Move every second back by the clock's step from ``seen`` to ``now``."""
        step = math.floor(now) - math.floor(seen)
        self._marks = deque((second + step, count) for second, count in self._marks)
        for bucket in self._buckets:
            bucket[0] += step
        self.bucket_start += step
        self.bucket_end += step

    def record(self, index: int, now: float, *, failure: bool, slow: bool) -> None:
        """Record the call that completed at ``now``."""
        second = math.floor(now)
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0])
        bucket = self._buckets[-1]
        bucket[1] += failure
        bucket[2] += slow
        self._failures += failure
        self._slow += slow

    def counts(self, completions: int, now: float) -> tuple[int, int, int]:
        """``(calls, failures, slow calls)`` completed within the window ending ``now``."""
        self._expire(math.floor(now))
        if not self._marks:
            return 0, 0, 0
        start = max(self._marks[0][1], self._base)
        return completions - start, self._failures, self._slow

    def _expire(self, second: int) -> None:
        first_inside = second - self._size + 1
        while self._marks and self._marks[0][0] < first_inside:
            self._marks.popleft()
        while self._buckets and self._buckets[0][0] < first_inside:
            _, failures, slow = self._buckets.popleft()
            self._failures -= failures
            self._slow -= slow
