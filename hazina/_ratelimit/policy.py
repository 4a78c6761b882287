"""The rate limiter: admit calls within their limits, refuse or delay the rest."""

from __future__ import annotations

import math
import threading
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, ClassVar

import attrs

from .._core.deadline import would_pass_deadline
from .._core.errors import RateLimitExceeded, safe_repr
from .._core.forks import fresh_lock, reset_after_fork
from .._core.host import Host
from .._core.keytable import KeyTable
from .._core.policy import Policy
from .._core.switches import DISABLED, WAITS
from .._core.validation import MAX_SECONDS, is_finite_number
from .config import RateLimiterConfig
from .drivers import fast_async_driver, fast_sync_driver
from .meters import ALGORITHMS, TOLERANCE, Meter
from .records import (
    LimitStatus,
    RateLimitDelayed,
    RateLimiterStats,
    RateLimitRejected,
    RateLimitStatus,
)

#: One key's states, one per limit, in the order of ``config.limits``.
Entry = tuple[Any, ...]
#: What the key table holds for a key: with one limit (the usual case) its state alone,
#: which saves a tuple per key; with several, the :data:`Entry`.
Stored = Any


class Counts:
    """A limiter's counters, only ever changed under its lock (which every decision holds)."""

    __slots__ = ("admitted", "rejected", "seen", "wait_time", "waited")

    def __init__(self) -> None:
        #: The latest clock reading a decision took: one below it means the clock
        #: stepped back (see RateLimiter.rebase). Kept by zero(): it is no counter.
        self.seen: float = -math.inf
        self.zero()

    def zero(self) -> None:
        self.admitted: int = 0
        self.rejected: int = 0
        self.waited: int = 0
        self.wait_time: float = 0.0


@attrs.define
class _Reservation:
    """Tokens taken ahead for one waiting call, to give back if it never runs."""

    key: Hashable
    cost: float
    entry: Entry
    at: float
    wait: float
    generation: int
    #: Each limit's state as the reservation left it (see Meter.mark).
    marks: tuple[object, ...]


class RateLimiter(Policy[RateLimiterConfig, RateLimiterStats]):
    """A named rate limiter; get one from ``registry.rate_limiter(name, ...)``.

    Calls without a key share one state; each key gets its own, up to ``max_keys``.
    """

    kind = "rate_limiter"
    config_class = RateLimiterConfig
    #: Whether the drivers may inline an in-memory decision (a shared backend's may not).
    inline_drivers: ClassVar[bool] = True
    exclusive: ClassVar[tuple[tuple[frozenset[str], ...], ...]] = (
        (frozenset({"limits"}), frozenset({"rate", "per", "burst"})),
    )

    def __init__(self, name: str, config: RateLimiterConfig, host: Host) -> None:
        super().__init__(name, config, host)
        meter_class = ALGORITHMS[config.algorithm]
        self.meters: tuple[Meter[Any], ...] = tuple(meter_class(limit) for limit in config.limits)
        # With one limit (the usual case) the decisions skip the loops over limits.
        self._meter: Meter[Any] | None = self.meters[0] if len(self.meters) == 1 else None
        self._capacity = config.capacity
        self._may_wait = config.wait
        self._max_wait = config.max_wait
        self._dry_run = config.dry_run
        # Re-entrant for its owner check only (see drivers): nothing takes it twice.
        self.lock: threading.RLock = threading.RLock()
        # Mutated in place, never replaced: the drivers hold it.
        self.counts: Counts = Counts()
        self.shared_entry: Entry = self._fresh_entry()
        self.keys: KeyTable[Stored] = KeyTable(
            config.max_keys, lambda _key: self._fresh_stored(), self._full_test()
        )
        self._generation = 0
        self._fresh_state()
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        # Reservations of the parent's other threads stay taken: they never run here,
        # and keeping their tokens never over-admits.
        fresh_lock(self.lock)

    def _apply_config(self, config: RateLimiterConfig) -> None:
        # Each key keeps the tokens it has left, capped at the new burst, while the
        # algorithm and the number of limits stay; otherwise every key starts full.
        meter_class = ALGORITHMS[config.algorithm]
        unchanged = (config.algorithm, config.limits) == (self.config.algorithm, self.config.limits)
        meters: tuple[Meter[Any], ...] = (
            self.meters if unchanged else tuple(meter_class(limit) for limit in config.limits)
        )
        with self.lock:
            now = self.clock.now()
            same_shape = config.algorithm == self.config.algorithm and len(meters) == len(
                self.meters
            )
            # Read through the old meters' layout, before `_meter` changes.
            entries = [self.shared_entry, *map(self.entry_of, self.keys.values())]
            old_meters = self.meters
            self.meters = meters
            self._meter = meters[0] if len(meters) == 1 else None
            self._capacity = config.capacity
            self._may_wait = config.wait
            self._max_wait = config.max_wait
            self._dry_run = config.dry_run
            self.keys.max_keys = config.max_keys
            self.keys.is_full = self._full_test()
            if unchanged:
                pass  # the same limits: the drivers keep what they hold
            elif same_shape:
                for entry in entries:
                    for old, new, state in zip(old_meters, meters, entry, strict=True):
                        new.carry(old, state, now)
            else:
                # The drivers are rebuilt after this, so these may be new objects.
                self.shared_entry = self._fresh_entry()
                self.keys = KeyTable(
                    config.max_keys, lambda _key: self._fresh_stored(), self._full_test()
                )
                self._generation += 1
            self.config = config

    def _fresh_entry(self) -> Entry:
        if self._meter is not None:
            return (self._meter.fresh(),)
        return tuple(meter.fresh() for meter in self.meters)

    def _fresh_stored(self) -> Stored:
        if self._meter is not None:
            return self._meter.fresh()
        return tuple(meter.fresh() for meter in self.meters)

    def _full_test(self) -> Callable[[Stored, float], bool]:
        # With one limit the meter's own test, called straight from the key table.
        return self._meter.is_full if self._meter is not None else self._stored_is_full

    def _stored_is_full(self, stored: Stored, now: float) -> bool:
        if self._meter is not None:
            return self._meter.is_full(stored, now)
        return all(
            meter.is_full(state, now) for meter, state in zip(self.meters, stored, strict=True)
        )

    def entry_of(self, stored: Stored) -> Entry:
        """The :data:`Entry` of what the key table holds for a key."""
        return (stored,) if self._meter is not None else stored

    def _fresh_state(self) -> None:
        # Mutated in place, never replaced: the drivers hold these objects.
        for meter, state in zip(self.meters, self.shared_entry, strict=True):
            meter.clear(state)
        self.keys.clear()
        self.counts.zero()
        # Reservations from before a reset are not given back into the fresh state.
        self._generation += 1

    # -- public API -----------------------------------------------------------------

    def acquire(self, key: Hashable = None, cost: float = 1) -> None:
        """Take ``cost`` tokens for ``key``, or raise (or, with ``wait=True``, block first).

        Raises:
            RateLimitExceeded: Over the limit, and not waiting (or the wait would
                exceed ``max_wait``).
            ValueError: ``cost`` is negative or above the capacity.
        """
        self.acquire_slow_sync(key, self._checked_cost(cost))

    async def aacquire(self, key: Hashable = None, cost: float = 1) -> None:
        """:meth:`acquire` for async code: waits by awaiting, never by blocking."""
        await self.acquire_slow_async(key, self._checked_cost(cost))

    def try_acquire(self, key: Hashable = None, cost: float = 1) -> bool:
        """Take ``cost`` tokens for ``key`` if they are there now; never waits.

        Returns ``False`` (counted as a rejection, with its event) if they are not;
        a dry-run limiter counts and reports the rejection, and returns ``True``.
        """
        cost = self._checked_cost(cost)
        verdict = self._reserve(key, cost, may_wait=False)
        if verdict is None:
            return True
        if DISABLED.on:
            self._pass_through(verdict)
            return True
        assert not isinstance(verdict, _Reservation)
        # No error object: a refused try_acquire only returns False (and formats nothing).
        return self._reported_refusal(key, cost, verdict)

    def status(self, key: Hashable = None) -> RateLimitStatus:
        """Where ``key`` stands now; looking does not take tokens or touch its recency."""
        probe = min(1.0, self._capacity)
        with self.lock:
            now = self._locked_now()
            if key is None:
                entry = self.shared_entry
            else:
                stored = self.keys.get(key)
                entry = self._fresh_entry() if stored is None else self.entry_of(stored)
            limits = tuple(
                LimitStatus(
                    meter.limit,
                    round(meter.remaining(state, now), 9),
                    round(meter.wait(state, now, probe), 9),
                    round(meter.full_in(state, now), 9),
                )
                for meter, state in zip(self.meters, entry, strict=True)
            )
        return RateLimitStatus.of(key, limits)

    def stats(self) -> RateLimiterStats:
        with self.lock:
            counts = self.counts
            return RateLimiterStats(
                allowed=counts.admitted,
                rejected=counts.rejected,
                waited=counts.waited,
                wait_time=counts.wait_time,
                tracked_keys=len(self.keys),
                evicted_keys=self.keys.evicted,
            )

    def reset(self) -> None:
        """Every key full again, counters at zero; configuration kept."""
        with self.lock:
            self._fresh_state()

    # -- decisions (under the lock) -------------------------------------------------

    def _checked_cost(self, cost: object) -> float:
        """``cost`` if it can ever be admitted; otherwise a clear error."""
        if (type(cost) is int or type(cost) is float) and 0 <= cost <= self._capacity:
            return cost
        if not is_finite_number(cost):
            raise TypeError(
                f"rate_limiter {self.name!r}: cost must be a finite number, got {cost!r}"
            )
        if cost < 0:
            raise ValueError(f"rate_limiter {self.name!r}: cost must not be negative, got {cost!r}")
        if cost > self._capacity:
            raise ValueError(
                f"rate_limiter {self.name!r}: cost {cost!r} is above the capacity "
                f"{self._capacity:g}; no call that costly can ever be admitted"
            )
        return cost

    def _reserve(self, key: Hashable, cost: float, may_wait: bool) -> float | _Reservation | None:
        """Admit now (``None``), refuse (the ``retry_after``) or reserve for a waiter."""
        if not cost:
            self._admitted_free()
            return None
        meter = self._meter
        # `with`, not acquire()/try: nothing can slip in between taking the lock and
        # the block that releases it, so an exception from a signal handler can land
        # anywhere here without leaving the lock taken.
        with self.lock:
            now = self._locked_now()
            if key is None:
                entry = self.shared_entry
            else:
                try:
                    entry = self.entry_of(self.keys.obtain(key, now))
                except TypeError as error:
                    raise TypeError(
                        f"rate_limiter {self.name!r}: the key {safe_repr(key)} is not hashable; "
                        f"make the key function return a hashable value"
                    ) from error
            if meter is not None:
                wait = meter.admit(entry[0], now, cost)
            else:
                # Every limit is asked before any is charged: a refusal takes from none.
                wait = 0.0
                for each, state in zip(self.meters, entry, strict=True):
                    needed = each.wait(state, now, cost)
                    if needed > wait:
                        wait = needed
                if not wait:
                    for each, state in zip(self.meters, entry, strict=True):
                        each.take(state, now, cost, now)
            if not wait:
                self.counts.admitted += 1
                return None
            if (
                not may_wait
                or (self._max_wait is not None and wait > self._max_wait + TOLERANCE)
                # Behind a long enough queue, beyond what any sleep accepts.
                or wait > MAX_SECONDS
                # Read only here, on the way to a wait: admitted calls never look.
                or would_pass_deadline(wait)
            ):
                self.counts.rejected += 1
                return wait
            # Taken now for a call that runs later, so whoever comes next queues behind.
            at = now + wait
            marks = []
            for each, state in zip(self.meters, entry, strict=True):
                each.take(state, now, cost, at)
                marks.append(each.mark(state))
            return _Reservation(key, cost, entry, at, wait, self._generation, tuple(marks))

    def _give_back(self, reservation: _Reservation) -> None:
        with self.lock:
            if reservation.generation == self._generation:
                now = self._locked_now()
                meters = zip(self.meters, reservation.entry, reservation.marks, strict=True)
                for meter, state, mark in meters:
                    if meter.mark(state) == mark:
                        meter.give_back(state, now, reservation.cost, reservation.at)

    def _locked_now(self) -> float:
        """The clock, read under the lock; a step back counts as no time passing."""
        now = self.clock.now()
        if now < self.counts.seen:
            self.rebase(now)
        self.counts.seen = now
        return now

    def rebase(self, now: float) -> None:
        """Under the lock: the clock reads ``now``, below the latest reading. Every state
        moves back by the step, so each key stands as it did at that reading: leaving a
        freezegun block must not leave a bucket drained for decades."""
        step = now - self.counts.seen
        entries = [self.shared_entry, *map(self.entry_of, self.keys.values())]
        for meter, index in zip(self.meters, range(len(self.meters)), strict=True):
            for entry in entries:
                meter.shift(entry[index], step)
        self.counts.seen = now

    def _admitted_free(self) -> None:
        with self.lock:  # free calls never wait, not even behind others
            self.counts.admitted += 1

    def _waited_out(self, wait: float) -> None:
        with self.lock:
            counts = self.counts
            counts.admitted += 1
            counts.waited += 1
            counts.wait_time += wait

    def _pass_through(self, verdict: float | _Reservation) -> None:
        """Under ``hazina.testing.disabled()``: admit now a call judged to wait or be refused."""
        if isinstance(verdict, _Reservation):
            self._give_back(verdict)
        with self.lock:
            if not isinstance(verdict, _Reservation):
                self.counts.rejected -= 1  # counted by the decision it overrides
            self.counts.admitted += 1

    def _refuse(self, key: Hashable, cost: float, retry_after: float) -> RateLimitExceeded | None:
        """Report a refusal (counted already); the error to raise, or ``None`` in a dry run,
        where the call goes ahead and counts as admitted too."""
        if self._reported_refusal(key, cost, retry_after):
            return None
        return RateLimitExceeded(self.name, key, float(retry_after))

    def _reported_refusal(self, key: Hashable, cost: float, retry_after: float) -> bool:
        """Emit a refusal (counted already); whether a dry run lets the call go ahead."""
        retry_after = float(retry_after)  # a clock may count in whole numbers
        self.emit(RateLimitRejected(self.name, key, cost, retry_after, dry_run=self._dry_run))
        if self._dry_run:
            self._admitted_free()
            return True
        return False

    # -- acquiring: the sync and async drivers of one decision ----------------------

    def acquire_slow_sync(self, key: Hashable, cost: float) -> None:
        verdict = self._reserve(key, cost, self._may_wait)
        if verdict is None:
            return
        if DISABLED.on:
            return self._pass_through(verdict)
        if not isinstance(verdict, _Reservation):
            error = self._refuse(key, cost, verdict)
            if error is None:
                return
            raise error
        self.emit(RateLimitDelayed(self.name, key, cost, verdict.wait, dry_run=self._dry_run))
        if self._dry_run:
            # The tokens stay reserved, as for a real waiter: whoever comes next is
            # judged as if this call had waited.
            self._waited_out(verdict.wait)
            return
        try:
            if not WAITS.instant:
                self.clock.sleep(verdict.wait)
        except BaseException:
            self._give_back(verdict)
            raise
        self._waited_out(verdict.wait)

    async def acquire_slow_async(self, key: Hashable, cost: float) -> None:
        verdict = self._reserve(key, cost, self._may_wait)
        if verdict is None:
            return
        if DISABLED.on:
            return self._pass_through(verdict)
        if not isinstance(verdict, _Reservation):
            error = self._refuse(key, cost, verdict)
            if error is None:
                return
            raise error
        self.emit(RateLimitDelayed(self.name, key, cost, verdict.wait, dry_run=self._dry_run))
        if self._dry_run:
            # The tokens stay reserved, as for a real waiter: whoever comes next is
            # judged as if this call had waited.
            self._waited_out(verdict.wait)
            return
        try:
            if not WAITS.instant:
                await self.clock.asleep(verdict.wait)
        except BaseException:
            # Cancelled while queued: the call never runs, so it takes nothing.
            self._give_back(verdict)
            raise
        self._waited_out(verdict.wait)

    # -- drivers ----------------------------------------------------------------------

    def _sync_driver(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        fast = fast_sync_driver(self, fn)
        if fast is not None:
            return fast
        acquire, checked = self.acquire_slow_sync, self._checked_cost
        key_of, cost = self.config.key, self.config.cost

        def call_rate_limited(*args: Any, **kwargs: Any) -> Any:
            acquire(
                None if key_of is None else key_of(*args, **kwargs),
                checked(cost(*args, **kwargs)) if callable(cost) else cost,
            )
            return fn(*args, **kwargs)

        return call_rate_limited

    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        fast = fast_async_driver(self, fn)
        if fast is not None:
            return fast
        acquire, checked = self.acquire_slow_async, self._checked_cost
        key_of, cost = self.config.key, self.config.cost

        async def call_rate_limited(*args: Any, **kwargs: Any) -> Any:
            await acquire(
                None if key_of is None else key_of(*args, **kwargs),
                checked(cost(*args, **kwargs)) if callable(cost) else cost,
            )
            return await fn(*args, **kwargs)

        return call_rate_limited
