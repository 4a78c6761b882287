"""The rate limiter's hot paths: an admitted call with one limit and a constant cost.

This is :meth:`Meter.wait` plus :meth:`Meter.take` written out inline for the token
bucket and GCRA, so an admitted call costs one lock round trip, one clock read (kept as
the latest, and compared with the one before: see :meth:`RateLimiter.rebase`) and a few
float operations, with no Python call and nothing allocated but floats. Anything else
(not enough tokens, a new key, several limits, a cost computed per call, the sliding
window) goes through :meth:`RateLimiter._acquire_sync` / ``_acquire_async``, which
decide again from scratch.

Why a lock at all: a bucket update reads and then writes its state. On CPython 3.11
with the GIL the few lines below happen to contain no point where the interpreter
switches threads, but the general path does (its loops over limits, the sliding
window's log, the key table's eviction, a waiter's decision and then its reservation),
and the inline path must not slip in between; without a GIL (free-threaded builds)
nothing is atomic at all. Measured on CPython 3.11: about 250 ns per admitted call
with the lock, 180 ns without.

Exceptions from signal handlers (Ctrl-C, a SIGALRM timeout) land between bytecodes, and
the lock must never be left taken. ``acquire()`` is called *inside* the ``try`` whose
``finally`` releases it: an exception landing right after it returns (the usual spot)
is then released like any other. The lock is re-entrant only for its ``release``
check: in the one case where ``acquire()`` itself raises (the main thread interrupted
while waiting for another thread's hold), the ``finally`` must not release that other
thread's hold, and an ``RLock`` refuses (``RuntimeError``) where a plain lock would
obey. A ``with`` block would be as safe and costs about 40 % more here. The writes
between the clock read and the release contain no call, so a signal never splits a
state update.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from time import monotonic
from typing import TYPE_CHECKING, Any

from .._core.clock import is_system_clock
from .meters import TOKEN_SLACK, TOLERANCE, Gcra, SlidingWindow, TokenBucket

if TYPE_CHECKING:
    from .policy import RateLimiter

AdmitNow = Callable[[Hashable], bool]


def fast_sync_driver(limiter: RateLimiter, fn: Callable[..., Any]) -> Callable[..., Any] | None:
    """An inline driver for ``fn`` if the limiter's configuration allows one, else ``None``."""
    config = limiter.config
    if not limiter.inline_drivers or len(limiter.meters) != 1 or callable(config.cost):
        return None
    meter = limiter.meters[0]
    if config.key is None and isinstance(meter, TokenBucket):
        return _bucket_sync(limiter, meter, fn)
    if config.key is None and isinstance(meter, Gcra):
        return _gcra_sync(limiter, meter, fn)
    return _admitting_sync(limiter, fn, config.key, _admit_now(limiter))


def fast_async_driver(
    limiter: RateLimiter, fn: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]] | None:
    """:func:`fast_sync_driver` for ``async def`` functions."""
    config = limiter.config
    if not limiter.inline_drivers or len(limiter.meters) != 1 or callable(config.cost):
        return None
    meter = limiter.meters[0]
    if config.key is None and isinstance(meter, TokenBucket):
        return _bucket_async(limiter, meter, fn)
    if config.key is None and isinstance(meter, Gcra):
        return _gcra_async(limiter, meter, fn)
    return _admitting_async(limiter, fn, config.key, _admit_now(limiter))


def _constant_cost(limiter: RateLimiter) -> float:
    # Kept as configured (an int stays an int), so events report the cost as given.
    cost = limiter.config.cost
    assert not callable(cost)
    return cost


# -- one shared state (no key) ------------------------------------------------------


def _bucket_sync(
    limiter: RateLimiter, meter: TokenBucket, fn: Callable[..., Any]
) -> Callable[..., Any]:
    acquire, release = limiter.lock.acquire, limiter.lock.release
    now_of, real_time = limiter.clock.now, is_system_clock(limiter.clock)
    rebase = limiter.rebase
    bucket, counts, slow = limiter.shared_entry[0], limiter.counts, limiter.acquire_slow_sync
    cost = _constant_cost(limiter)
    burst, per_second, charge = meter.burst, meter.per_second, float(cost)
    need = charge - meter.slack

    def call_rate_limited(*args: Any, **kwargs: Any) -> Any:
        try:
            acquire()
            now = monotonic() if real_time else now_of()
            if now < counts.seen:
                rebase(now)  # the clock stepped back: see RateLimiter.rebase
            counts.seen = now
            tokens = bucket.tokens + (now - bucket.stamp) * per_second
            if tokens >= need:
                bucket.tokens = (burst if tokens > burst else tokens) - charge
                bucket.stamp = now
                counts.admitted += 1
        finally:
            release()
        if tokens < need:
            slow(None, cost)
        return fn(*args, **kwargs)

    return call_rate_limited


def _bucket_async(
    limiter: RateLimiter, meter: TokenBucket, fn: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    acquire, release = limiter.lock.acquire, limiter.lock.release
    now_of, real_time = limiter.clock.now, is_system_clock(limiter.clock)
    rebase = limiter.rebase
    bucket, counts, slow = limiter.shared_entry[0], limiter.counts, limiter.acquire_slow_async
    cost = _constant_cost(limiter)
    burst, per_second, charge = meter.burst, meter.per_second, float(cost)
    need = charge - meter.slack

    async def call_rate_limited(*args: Any, **kwargs: Any) -> Any:
        try:
            acquire()
            now = monotonic() if real_time else now_of()
            if now < counts.seen:
                rebase(now)  # the clock stepped back: see RateLimiter.rebase
            counts.seen = now
            tokens = bucket.tokens + (now - bucket.stamp) * per_second
            if tokens >= need:
                bucket.tokens = (burst if tokens > burst else tokens) - charge
                bucket.stamp = now
                counts.admitted += 1
        finally:
            release()
        if tokens < need:
            await slow(None, cost)
        return await fn(*args, **kwargs)

    return call_rate_limited


def _gcra_sync(limiter: RateLimiter, meter: Gcra, fn: Callable[..., Any]) -> Callable[..., Any]:
    acquire, release = limiter.lock.acquire, limiter.lock.release
    now_of, real_time = limiter.clock.now, is_system_clock(limiter.clock)
    rebase = limiter.rebase
    schedule, counts, slow = limiter.shared_entry[0], limiter.counts, limiter.acquire_slow_sync
    cost = _constant_cost(limiter)
    step, reach = cost * meter.interval, meter.span + TOLERANCE

    def call_rate_limited(*args: Any, **kwargs: Any) -> Any:
        try:
            acquire()
            now = monotonic() if real_time else now_of()
            if now < counts.seen:
                rebase(now)  # the clock stepped back: see RateLimiter.rebase
            counts.seen = now
            tat = schedule.tat
            tat = (tat if tat > now else now) + step
            if tat - now <= reach:
                schedule.tat = tat
                counts.admitted += 1
        finally:
            release()
        if tat - now > reach:
            slow(None, cost)
        return fn(*args, **kwargs)

    return call_rate_limited


def _gcra_async(
    limiter: RateLimiter, meter: Gcra, fn: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    acquire, release = limiter.lock.acquire, limiter.lock.release
    now_of, real_time = limiter.clock.now, is_system_clock(limiter.clock)
    rebase = limiter.rebase
    schedule, counts, slow = limiter.shared_entry[0], limiter.counts, limiter.acquire_slow_async
    cost = _constant_cost(limiter)
    step, reach = cost * meter.interval, meter.span + TOLERANCE

    async def call_rate_limited(*args: Any, **kwargs: Any) -> Any:
        try:
            acquire()
            now = monotonic() if real_time else now_of()
            if now < counts.seen:
                rebase(now)  # the clock stepped back: see RateLimiter.rebase
            counts.seen = now
            tat = schedule.tat
            tat = (tat if tat > now else now) + step
            if tat - now <= reach:
                schedule.tat = tat
                counts.admitted += 1
        finally:
            release()
        if tat - now > reach:
            await slow(None, cost)
        return await fn(*args, **kwargs)

    return call_rate_limited


# -- through an "admit now" function: per key, and the sliding window ---------------------


def _admitting_sync(
    limiter: RateLimiter,
    fn: Callable[..., Any],
    key_of: Callable[..., Hashable] | None,
    admit: AdmitNow,
) -> Callable[..., Any]:
    slow, cost = limiter.acquire_slow_sync, _constant_cost(limiter)
    if key_of is None:

        def call_rate_limited(*args: Any, **kwargs: Any) -> Any:
            if not admit(None):
                slow(None, cost)
            return fn(*args, **kwargs)

        return call_rate_limited

    def call_rate_limited_per_key(*args: Any, **kwargs: Any) -> Any:
        key = key_of(*args, **kwargs)
        if not admit(key):
            slow(key, cost)
        return fn(*args, **kwargs)

    return call_rate_limited_per_key


def _admitting_async(
    limiter: RateLimiter,
    fn: Callable[..., Awaitable[Any]],
    key_of: Callable[..., Hashable] | None,
    admit: AdmitNow,
) -> Callable[..., Awaitable[Any]]:
    slow, cost = limiter.acquire_slow_async, _constant_cost(limiter)
    if key_of is None:

        async def call_rate_limited(*args: Any, **kwargs: Any) -> Any:
            if not admit(None):
                await slow(None, cost)
            return await fn(*args, **kwargs)

        return call_rate_limited

    async def call_rate_limited_per_key(*args: Any, **kwargs: Any) -> Any:
        key = key_of(*args, **kwargs)
        if not admit(key):
            await slow(key, cost)
        return await fn(*args, **kwargs)

    return call_rate_limited_per_key


def _admit_now(limiter: RateLimiter) -> AdmitNow:
    """A function that takes the constant cost for a key (``None`` without a key function)
    if it can be taken now.

    It answers ``False`` for a key not yet tracked, a refusal, or an unhashable key alike;
    the caller's slow path then decides again (and explains an unhashable key).
    """
    meter = limiter.meters[0]
    acquire, release = limiter.lock.acquire, limiter.lock.release
    now_of, real_time = limiter.clock.now, is_system_clock(limiter.clock)
    rebase = limiter.rebase
    counts = limiter.counts
    # A big key table is sharded (see KeyTable): a key's state is in its hash's shard.
    gets, moves, mask = limiter.keys.gets, limiter.keys.moves, limiter.keys.mask
    cost = _constant_cost(limiter)

    if isinstance(meter, SlidingWindow):
        keyed, shared = limiter.config.key is not None, limiter.shared_entry[0]
        charge = float(cost)
        span, room = meter.window - TOLERANCE, meter.rate - charge + TOKEN_SLACK

        def admit_window(key: Hashable) -> bool:
            try:
                acquire()
                if keyed:
                    shard = hash(key) & mask if mask else 0
                    log = gets[shard](key)
                    if log is None:
                        return False
                else:
                    log = shared
                now = monotonic() if real_time else now_of()
                if now < counts.seen:
                    rebase(now)  # the clock stepped back: see RateLimiter.rebase
                counts.seen = now
                calls = log.calls
                if calls and calls[0] <= now - span:
                    meter.expire(log, now)
                # Waiters hold slots in the future: a newcomer goes through the queue.
                if log.total > room or (calls and calls[-2] > now):
                    return False
                # No call between these three lines: a signal cannot split them.
                log.total += charge
                log.calls += (now, charge)
                counts.admitted += 1
                if keyed:
                    moves[shard](key)
            except TypeError:
                return False
            finally:
                release()
            return True

        return admit_window

    if isinstance(meter, TokenBucket):
        burst, per_second, charge = meter.burst, meter.per_second, float(cost)
        need = charge - meter.slack

        def admit_bucket(key: Hashable) -> bool:
            try:
                acquire()
                shard = hash(key) & mask if mask else 0
                bucket = gets[shard](key)
                if bucket is None:
                    return False
                now = monotonic() if real_time else now_of()
                if now < counts.seen:
                    rebase(now)  # the clock stepped back: see RateLimiter.rebase
                counts.seen = now
                tokens = bucket.tokens + (now - bucket.stamp) * per_second
                if tokens < need:
                    return False
                bucket.tokens = (burst if tokens > burst else tokens) - charge
                bucket.stamp = now
                counts.admitted += 1
                moves[shard](key)
            except TypeError:
                return False
            finally:
                release()
            return True

        return admit_bucket

    if isinstance(meter, Gcra):
        step, reach = cost * meter.interval, meter.span + TOLERANCE

        def admit_gcra(key: Hashable) -> bool:
            try:
                acquire()
                shard = hash(key) & mask if mask else 0
                schedule = gets[shard](key)
                if schedule is None:
                    return False
                now = monotonic() if real_time else now_of()
                if now < counts.seen:
                    rebase(now)  # the clock stepped back: see RateLimiter.rebase
                counts.seen = now
                tat = schedule.tat
                tat = (tat if tat > now else now) + step
                if tat - now > reach:
                    return False
                schedule.tat = tat
                counts.admitted += 1
                moves[shard](key)
            except TypeError:
                return False
            finally:
                release()
            return True

        return admit_gcra

    raise AssertionError(f"no inline path for {meter!r}")  # pragma: no cover
