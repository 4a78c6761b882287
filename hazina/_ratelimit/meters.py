"""The three ways to meter one limit for one key: token bucket, GCRA, sliding window.

Each meter is sans-I/O and lock-free: the rate limiter calls it under its own lock with
the time it read. Time is computed, never waited for: every state refills lazily from
the clock reading it is handed, so no background thread or timer exists.

Reservations keep waiters in arrival order. A caller allowed to wait takes its tokens
at once, even ones that are not there yet: the token bucket's balance goes negative,
GCRA's schedule runs further ahead, the sliding window logs the call at the future time
it will run. Whoever comes next sees that debt and queues behind it. A waiter that gives
up (a cancelled task) hands its reservation back with :meth:`Meter.give_back`.
"""

from __future__ import annotations

import abc
import math
from collections import deque
from typing import Generic, TypeVar

from .limit import Limit

#: Seconds by which a call may be early and still be admitted. Float arithmetic on
#: clock readings loses a few ulps, so a caller that waits exactly ``retry_after``
#: could otherwise be refused again by a rounding error.
TOLERANCE = 1e-7
#: The same guard on sums of costs (the sliding window's tokens, not its times).
TOKEN_SLACK = 1e-9

StateT = TypeVar("StateT")


class Meter(abc.ABC, Generic[StateT]):
    """One limit's arithmetic over one key's state; states are mutated in place."""

    #: The largest cost this meter can ever admit.
    capacity: float

    def __init__(self, limit: Limit) -> None:
        self.limit = limit

    @abc.abstractmethod
    def fresh(self) -> StateT:
        """A state with nothing taken: a call of up to ``capacity`` is admitted at once."""

    @abc.abstractmethod
    def clear(self, state: StateT) -> None:
        """Make ``state`` fresh again, in place."""

    def carry(self, old: Meter[StateT], state: StateT, now: float) -> None:
        """Rewrite ``state``, kept by ``old``, for this meter (a reconfigured limit).

        By default the state means the same under both (a sliding window's log).
        """

    @abc.abstractmethod
    def wait(self, state: StateT, now: float, cost: float) -> float:
        """Seconds from ``now`` until ``cost`` can be taken, behind every reservation."""

    @abc.abstractmethod
    def take(self, state: StateT, now: float, cost: float, at: float) -> None:
        """Take ``cost`` for a call that runs at ``at`` (``now + wait``)."""

    def admit(self, state: StateT, now: float, cost: float) -> float:
        """Take ``cost`` if it can be taken now and return 0; else take nothing and
        return :meth:`wait`. One call instead of two on the common path."""
        wait = self.wait(state, now, cost)
        if not wait:
            self.take(state, now, cost, now)
        return wait

    @abc.abstractmethod
    def give_back(self, state: StateT, now: float, cost: float, at: float) -> None:
        """Undo :meth:`take` for a call that will not run after all."""

    @abc.abstractmethod
    def shift(self, state: StateT, step: float) -> None:
        """Move ``state``'s times by ``step`` seconds: the clock stepped back by ``-step``."""

    def mark(self, state: StateT) -> object:
        """What ``state`` looks like right after a reservation.

        A cancelled waiter may give its tokens back only while the state still looks
        like this: once a later caller has reserved behind it, that caller's turn was
        computed with these tokens taken, and handing them out again would admit two
        calls in one slot. Keeping them wastes the slot but never over-admits.
        """
        return None

    @abc.abstractmethod
    def remaining(self, state: StateT, now: float) -> float:
        """Tokens a call could take now (0 while waiters are queued)."""

    @abc.abstractmethod
    def full_in(self, state: StateT, now: float) -> float:
        """Seconds until the state is fresh again if nothing more is taken."""

    @abc.abstractmethod
    def is_full(self, state: StateT, now: float) -> bool:
        """Whether ``state`` is as good as fresh: forgetting it loses nothing."""


class Balance:
    """A token bucket's state: ``tokens`` as of clock reading ``stamp``."""

    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class TokenBucket(Meter[Balance]):
    """``burst`` tokens at most, refilled continuously at ``rate / per`` a second."""

    def __init__(self, limit: Limit) -> None:
        super().__init__(limit)
        self.capacity = self.burst = float(limit.burst)
        self.per_second = limit.rate / limit.per
        #: Tokens that arrive within TOLERANCE: a call short by no more is admitted.
        self.slack = self.per_second * TOLERANCE

    def fresh(self) -> Balance:
        # Stamped at the beginning of time, the bucket reads full at any clock reading.
        return Balance(self.burst, -math.inf)

    def clear(self, state: Balance) -> None:
        state.tokens, state.stamp = self.burst, -math.inf

    def carry(self, old: Meter[Balance], state: Balance, now: float) -> None:
        # The tokens left are kept, capped at the new burst; they refill at the new rate.
        tokens = old._tokens(state, now) if isinstance(old, TokenBucket) else self.burst
        state.tokens, state.stamp = min(tokens, self.burst), now

    def _tokens(self, state: Balance, now: float) -> float:
        tokens = state.tokens + (now - state.stamp) * self.per_second
        return tokens if tokens < self.burst else self.burst

    def wait(self, state: Balance, now: float, cost: float) -> float:
        missing = cost - self._tokens(state, now)
        return 0.0 if missing <= self.slack else missing / self.per_second

    def take(self, state: Balance, now: float, cost: float, at: float) -> None:
        # A reservation for later simply leaves the balance negative until refilled.
        state.tokens = self._tokens(state, now) - cost
        state.stamp = now

    def admit(self, state: Balance, now: float, cost: float) -> float:
        tokens = self._tokens(state, now)
        if tokens + self.slack >= cost:
            state.tokens = tokens - cost
            state.stamp = now
            return 0.0
        return (cost - tokens) / self.per_second

    def give_back(self, state: Balance, now: float, cost: float, at: float) -> None:
        state.tokens = min(self._tokens(state, now) + cost, self.burst)
        state.stamp = now

    def mark(self, state: Balance) -> object:
        return (state.tokens, state.stamp)

    def shift(self, state: Balance, step: float) -> None:
        state.stamp += step

    def remaining(self, state: Balance, now: float) -> float:
        return max(0.0, self._tokens(state, now))

    def full_in(self, state: Balance, now: float) -> float:
        return max(0.0, (self.burst - self._tokens(state, now)) / self.per_second)

    def is_full(self, state: Balance, now: float) -> bool:
        # _tokens() inlined (its cap at burst changes no answer): a new key at the bound
        # asks this of a few keys, and a call is most of its cost.
        return state.tokens + (now - state.stamp) * self.per_second >= self.burst - self.slack


class Schedule:
    """GCRA's state: the theoretical arrival time of the next call."""

    __slots__ = ("tat",)

    def __init__(self, tat: float) -> None:
        self.tat = tat


class Gcra(Meter[Schedule]):
    """The generic cell rate algorithm: one timestamp per key.

    Each token is an ``interval`` of the schedule; a call is admitted while the
    schedule, advanced by its cost, runs no more than ``burst`` intervals ahead of
    now. It admits exactly what the token bucket admits.
    """

    def __init__(self, limit: Limit) -> None:
        super().__init__(limit)
        self.capacity = self.burst = float(limit.burst)
        self.interval = limit.per / limit.rate
        self.span = self.burst * self.interval

    def fresh(self) -> Schedule:
        return Schedule(-math.inf)

    def clear(self, state: Schedule) -> None:
        state.tat = -math.inf

    def carry(self, old: Meter[Schedule], state: Schedule, now: float) -> None:
        # As the token bucket: the tokens left, capped at the new burst, are kept.
        left = min(old.remaining(state, now), self.burst)
        used = self.burst - left
        state.tat = now + used * self.interval if used > 0 else -math.inf

    def wait(self, state: Schedule, now: float, cost: float) -> float:
        tat = state.tat if state.tat > now else now
        late = tat + cost * self.interval - self.span - now
        return late if late > TOLERANCE else 0.0

    def take(self, state: Schedule, now: float, cost: float, at: float) -> None:
        state.tat = (state.tat if state.tat > now else now) + cost * self.interval

    def admit(self, state: Schedule, now: float, cost: float) -> float:
        tat = (state.tat if state.tat > now else now) + cost * self.interval
        late = tat - self.span - now
        if late > TOLERANCE:
            return late
        state.tat = tat
        return 0.0

    def give_back(self, state: Schedule, now: float, cost: float, at: float) -> None:
        # If that takes the schedule into the past, it simply reads full.
        state.tat -= cost * self.interval

    def mark(self, state: Schedule) -> object:
        return state.tat

    def shift(self, state: Schedule, step: float) -> None:
        state.tat += step

    def remaining(self, state: Schedule, now: float) -> float:
        ahead = state.tat - now if state.tat > now else 0.0
        return max(0.0, self.burst - ahead / self.interval)

    def full_in(self, state: Schedule, now: float) -> float:
        return state.tat - now if state.tat > now else 0.0

    def is_full(self, state: Schedule, now: float) -> bool:
        return state.tat <= now + TOLERANCE


class Log:
    """The sliding window's state: when each call in the window ran and what it cost.

    One deque holds both, alternating: ``time, cost, time, cost, ...``, oldest first.
    A call is logged with one ``extend`` and forgotten with two ``del calls[0]``, and
    no point between those lets a signal handler's exception in, so the times and
    costs never fall out of step (two deques could be left one item apart).
    """

    __slots__ = ("calls", "total")

    def __init__(self) -> None:
        self.calls: deque[float] = deque()
        self.total = 0.0


class SlidingWindow(Meter[Log]):
    """No more than ``rate`` in any ``per`` seconds, counted exactly from a log of calls.

    Memory per key grows with the calls inside one window: at most ``rate`` entries
    of two deque slots and one float (about 40 bytes each) besides the key's own.
    A call logged at ``t`` counts in the window until ``t + per``.
    """

    def __init__(self, limit: Limit) -> None:
        super().__init__(limit)
        self.capacity = self.rate = float(limit.rate)
        self.window = limit.per

    def fresh(self) -> Log:
        return Log()

    def clear(self, state: Log) -> None:
        state.calls.clear()
        state.total = 0.0

    def expire(self, state: Log, now: float) -> None:
        """Forget the calls that have left the window by ``now``."""
        calls = state.calls
        horizon = now - self.window + TOLERANCE
        while calls and calls[0] <= horizon:
            # Subtracted first and deleted with no call in between: see Log.
            state.total -= calls[1]
            del calls[0]
            del calls[0]
        if not calls:
            state.total = 0.0  # drop what float sums of fractional costs left behind

    def wait(self, state: Log, now: float, cost: float) -> float:
        self.expire(state, now)
        calls = state.calls
        # Reservations are logged at the future time they run; a new call goes after them.
        start = calls[-2] if calls and calls[-2] > now else now
        excess = state.total + cost - self.rate
        if excess <= TOKEN_SLACK:
            return start - now
        freed = 0.0
        for index in range(0, len(calls), 2):
            freed += calls[index + 1]
            if freed >= excess - TOKEN_SLACK:
                return max(start, calls[index] + self.window) - now
        raise ValueError(f"cost {cost!r} is above the capacity {self.capacity!r}")

    def take(self, state: Log, now: float, cost: float, at: float) -> None:
        state.total += cost
        state.calls += (at, cost)

    def give_back(self, state: Log, now: float, cost: float, at: float) -> None:
        calls = state.calls
        for index in range(len(calls) - 2, -1, -2):
            if calls[index] == at and calls[index + 1] == cost:
                state.total -= cost
                del calls[index]
                del calls[index]
                return
        # Not found: it already left the window (or the limiter was reset).

    def shift(self, state: Log, step: float) -> None:
        calls = state.calls
        for index in range(0, len(calls), 2):
            calls[index] += step

    def remaining(self, state: Log, now: float) -> float:
        self.expire(state, now)
        return max(0.0, self.rate - state.total)

    def full_in(self, state: Log, now: float) -> float:
        self.expire(state, now)
        calls = state.calls
        return max(0.0, calls[-2] + self.window - now) if calls else 0.0

    def is_full(self, state: Log, now: float) -> bool:
        self.expire(state, now)
        return not state.calls


#: The meter class for each ``algorithm=`` name.
ALGORITHMS: dict[str, type[Meter[Balance]] | type[Meter[Schedule]] | type[Meter[Log]]] = {
    "token_bucket": TokenBucket,
    "gcra": Gcra,
    "sliding_window": SlidingWindow,
}
