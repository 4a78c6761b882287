"""The bulkhead: at most so many calls at once, threads and tasks counted together."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Hashable
from time import monotonic
from typing import Any

from .._core.deadline import remaining
from .._core.errors import BulkheadFull
from .._core.forks import fresh_lock, reset_after_fork
from .._core.host import Host
from .._core.policy import Policy
from .._core.switches import DISABLED, WAITS
from .compartments import Compartment, Compartments, Waiter
from .config import BulkheadConfig
from .drivers import async_driver, sync_driver
from .records import BulkheadRejected, BulkheadStats


class Counts:
    """A bulkhead's counters, only ever changed under its lock."""

    __slots__ = ("active", "admitted", "peak", "rejected", "wait_time")

    def __init__(self) -> None:
        self.active: int = 0  # over every key; calls without a key use their compartment's
        self.zero(0)

    def zero(self, active: int) -> None:
        self.admitted: int = 0
        self.rejected: int = 0
        self.wait_time: float = 0.0
        self.peak: int = active


#: What :meth:`Bulkhead._queue` returns as the wait of a dry run's would-be refusal.
DRY_RUN_REFUSAL = -1.0


def _wake_task(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Bulkhead(Policy[BulkheadConfig, BulkheadStats]):
    """A named bulkhead; get one from ``registry.bulkhead(name, max_concurrent=...)``.

    One limit for the threads and the tasks of every event loop together; waiters are
    served first come, first served. ``max_wait`` runs on real time whatever the
    registry's clock.
    """

    kind = "bulkhead"
    config_class = BulkheadConfig

    def __init__(self, name: str, config: BulkheadConfig, host: Host) -> None:
        super().__init__(name, config, host)
        assert config.max_concurrent is not None  # the configuration refuses None
        self.limit: int = config.max_concurrent
        self.lock: threading.Lock = threading.Lock()
        # Mutated in place, never replaced: the drivers hold them.
        self.counts: Counts = Counts()
        self.shared: Compartment = Compartment()
        self.compartments: Compartments = Compartments(config.max_keys)
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        fresh_lock(self.lock)
        # The parent's other threads do not exist here: their queued waiters and the
        # slots they held would be gone for good. All slots are free again (a call the
        # forking thread itself was making then ends one below zero: one extra slot).
        self.shared.queue.clear()
        self.shared.active = 0
        self.compartments.entries.clear()
        self.counts.active = 0

    def _apply_config(self, config: BulkheadConfig) -> None:
        # Running calls are never interrupted; waiters are admitted only within the new
        # limit (at once if it grew, as running calls finish if it shrank).
        assert config.max_concurrent is not None  # the configuration refuses None
        with self.lock:
            self.limit = config.max_concurrent
            self.compartments.max_keys = config.max_keys
            for compartment in (self.shared, *self.compartments.entries.values()):
                queue = compartment.queue
                while queue and compartment.active < self.limit:
                    if self._grant(queue.popleft()):
                        self._count_granted(compartment)
            self.config = config

    def _count_granted(self, compartment: Compartment) -> None:
        compartment.active += 1
        if compartment is not self.shared:
            self.counts.active += 1
        peak = compartment.active if compartment is self.shared else self.counts.active
        if peak > self.counts.peak:
            self.counts.peak = peak

    def reset(self) -> None:
        """Counters to zero; running and queued calls are kept (they are still there)."""
        with self.lock:
            active = self.shared.active if self.config.key is None else self.counts.active
            self.counts.zero(active)
            self.compartments.clear()

    def stats(self) -> BulkheadStats:
        with self.lock:
            counts = self.counts
            if self.config.key is None:
                active, queued = self.shared.active, len(self.shared.queue)
            else:
                active = counts.active
                queued = sum(len(entry.queue) for entry in self.compartments.entries.values())
            return BulkheadStats(
                admitted=counts.admitted,
                rejected=counts.rejected,
                active=active,
                queued=queued,
                peak_active=counts.peak,
                wait_time=counts.wait_time,
            )

    # -- drivers -------------------------------------------------------------------

    def _sync_driver(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return sync_driver(self, fn)

    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return async_driver(self, fn)

    # -- keyed calls -----------------------------------------------------------------

    def admit_key(self, key: Hashable) -> tuple[Compartment, bool]:
        """The compartment of ``key``, and whether the call took one of its slots now."""
        with self.lock:
            compartment = self._obtain(key)
            if compartment.active < self.limit and not compartment.queue:
                self._take(compartment)
                return compartment, True
            return compartment, False

    def leave(self, compartment: Compartment) -> None:
        """A call that held a slot of ``compartment`` is over."""
        with self.lock:
            self.free(compartment)

    # -- under the lock ----------------------------------------------------------------

    def _obtain(self, key: Hashable) -> Compartment:
        try:
            return self.compartments.obtain(key)
        except TypeError as error:
            raise TypeError(
                f"bulkhead {self.name!r}: the key {key!r} is not hashable; "
                f"make the key function return a hashable value"
            ) from error

    def _take(self, compartment: Compartment) -> None:
        counts = self.counts
        compartment.active += 1
        counts.admitted += 1
        if compartment is self.shared:
            if compartment.active > counts.peak:
                counts.peak = compartment.active
        else:
            counts.active += 1
            if counts.active > counts.peak:
                counts.peak = counts.active

    def free(self, compartment: Compartment) -> None:
        """Hand a freed slot of ``compartment`` to its first waiter, or give it back.

        Call with the lock held.
        """
        queue = compartment.queue
        # Above the limit (it shrank while these calls ran), a freed slot is not handed on.
        while queue and compartment.active <= self.limit:
            if self._grant(queue.popleft()):
                return  # the slot changed hands: `active` stays as it is
        compartment.active -= 1
        if compartment is not self.shared:
            self.counts.active -= 1

    def _grant(self, waiter: Waiter) -> bool:
        waiter.granted = True
        waiter.waited = monotonic() - waiter.since
        if waiter.latch is not None:
            waiter.latch.release()
        else:
            future, loop = waiter.future, waiter.loop
            assert future is not None
            assert loop is not None
            if waiter.thread == threading.get_ident():
                _wake_task(future)
            else:
                try:
                    loop.call_soon_threadsafe(_wake_task, future)
                except RuntimeError:
                    # Its loop is closed: that waiter will never run; try the next one.
                    waiter.granted = False
                    return False
        self.counts.admitted += 1
        self.counts.wait_time += waiter.waited
        return True

    def _queue(
        self, compartment: Compartment | None, key: Hashable
    ) -> tuple[Compartment, Waiter | None, float | None]:
        """Admit now (no waiter), or queue a waiter with how long it may wait.

        Returns the compartment and ``None, None`` if admitted now, ``None, 0.0`` if
        refused at once. A keyed compartment (``None``: not looked up yet) is looked up
        again: between the caller's
        first look and this one its calls may have ended and an idle compartment may
        have been dropped, and a slot of a dropped one would be a slot too many. Call
        with the lock held.
        """
        if compartment is not self.shared:
            compartment = self._obtain(key)
        if compartment.active < self.limit and not compartment.queue:
            self._take(compartment)
            return compartment, None, None
        if DISABLED.on:  # hazina.testing.disabled(): room is made, beyond the limit
            self._take(compartment)
            return compartment, None, None
        config = self.config
        if len(compartment.queue) >= config.max_queue or WAITS.instant:
            if config.dry_run:  # counted and reported as refused, and run at once
                self._take(compartment)
                return compartment, None, DRY_RUN_REFUSAL
            return compartment, None, 0.0
        if config.dry_run:  # it would have waited in line: it runs at once
            self._take(compartment)
            return compartment, None, None
        limit = config.max_wait
        left = remaining()  # only read on the way to a wait
        if left is not None and (limit is None or left < limit):
            limit = left
        if limit is not None and limit <= 0:
            return compartment, None, 0.0
        waiter = Waiter(monotonic())
        compartment.queue.append(waiter)
        return compartment, waiter, limit

    def _leave_queue(self, compartment: Compartment, waiter: Waiter, *, cancelled: bool) -> bool:
        """A waiter stops waiting (its time ran out, or it was cancelled).

        Returns whether it holds a slot after all (granted at the last moment, and not
        cancelled). Call with the lock held.
        """
        if waiter.granted:
            if not cancelled:
                return True
            # Granted, but the caller is gone: it counts as neither; pass the slot on.
            self.counts.admitted -= 1
            self.counts.wait_time -= waiter.waited
            self.free(compartment)
            return False
        compartment.queue.remove(waiter)
        if not cancelled:
            self.counts.rejected += 1
        return False

    # -- waiting: threads and tasks -------------------------------------------------------

    def refuse(self, key: Hashable, waited: float = 0.0) -> BulkheadFull:
        """Count (under the lock) and report a refusal; the error to raise."""
        with self.lock:
            self.counts.rejected += 1
        return self._refusal(key, waited)

    def _refusal(self, key: Hashable, waited: float) -> BulkheadFull:
        self.emit(BulkheadRejected(self.name, key, waited))
        return BulkheadFull(self.name, key)

    def _refused_in_dry_run(self, key: Hashable) -> None:
        self.emit(BulkheadRejected(self.name, key, 0.0, dry_run=True))

    def enter_slow_sync(self, compartment: Compartment | None, key: Hashable) -> Compartment:
        """Take a slot, waiting in line for one if allowed, or raise; the compartment
        whose slot the call holds (see :meth:`_queue`)."""
        with self.lock:
            compartment, waiter, limit = self._queue(compartment, key)
            if waiter is None:
                if limit is None:
                    return compartment
                self.counts.rejected += 1
            else:
                # Set before the lock is let go: a slot may be granted from then on.
                latch = waiter.latch = threading.Lock()
                latch.acquire()
        if waiter is None:
            if limit == DRY_RUN_REFUSAL:
                self._refused_in_dry_run(key)
                return compartment
            raise self._refusal(key, 0.0)
        try:
            got = latch.acquire(True, -1 if limit is None else limit)
        except BaseException:
            with self.lock:
                self._leave_queue(compartment, waiter, cancelled=True)
            raise
        if got:
            return compartment
        with self.lock:
            if self._leave_queue(compartment, waiter, cancelled=False):
                return compartment
        raise self._refusal(key, monotonic() - waiter.since)

    async def enter_slow_async(self, compartment: Compartment | None, key: Hashable) -> Compartment:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self.lock:
            compartment, waiter, limit = self._queue(compartment, key)
            if waiter is None:
                if limit is None:
                    return compartment
                self.counts.rejected += 1
            else:
                waiter.future, waiter.loop = future, loop
                waiter.thread = threading.get_ident()
        if waiter is None:
            if limit == DRY_RUN_REFUSAL:
                self._refused_in_dry_run(key)
                return compartment
            raise self._refusal(key, 0.0)
        try:
            if limit is None:
                await future
            else:
                async with asyncio.timeout(limit):
                    await future
        except TimeoutError:
            with self.lock:
                if self._leave_queue(compartment, waiter, cancelled=False):
                    return compartment
            raise self._refusal(key, monotonic() - waiter.since) from None
        except BaseException:
            with self.lock:
                self._leave_queue(compartment, waiter, cancelled=True)
            raise
        return compartment
