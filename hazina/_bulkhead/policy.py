"""The bulkhead: at most so many calls at once, threads and tasks counted together."""

from __future__ import annotations

import asyncio
import math
import threading
from _thread import allocate_lock
from collections.abc import Awaitable, Callable, Hashable
from time import monotonic
from typing import Any

from .._core.deadline import remaining
from .._core.errors import BulkheadFull, safe_repr
from .._core.forks import fresh_lock, reset_after_fork
from .._core.host import Host
from .._core.policy import Policy
from .._core.switches import DISABLED, WAITS
from .._core.validation import MAX_SECONDS
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


#: What :meth:`Bulkhead._queue` returns for a caller it did not queue.
NOW = -2.0
#: What :meth:`Bulkhead._queue` returns for a dry run's would-be refusal (let through).
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
        # Re-entrant only so that the drivers can ask whether this thread holds it.
        self.lock: threading.RLock = threading.RLock()
        self.lock_owned: Callable[[], bool] = self.lock._is_owned  # type: ignore[attr-defined]
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
        woken = []
        with self.lock:
            self.limit = config.max_concurrent
            self.compartments.max_keys = config.max_keys
            for compartment in (self.shared, *self.compartments.entries.values()):
                queue = compartment.queue
                while queue and compartment.active < self.limit:
                    self._take(compartment)
                    waiter = queue.popleft()
                    waiter.granted = True
                    woken.append(waiter)
            self.config = config
        for waiter in woken:
            self.wake(waiter)

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
        """A call that held a slot of ``compartment`` is over: the slot goes to the first
        waiter, or back. (The drivers do the same inline: see :mod:`.drivers`.)"""
        waiter: Waiter | None = None
        interrupted: BaseException | None = None
        held = True
        while held:
            try:
                with self.lock:
                    queue = compartment.queue
                    # Above the limit (it shrank while calls ran), no slot is handed on.
                    if queue and compartment.active <= self.limit:
                        waiter = queue[0]
                        del queue[0]
                        waiter.granted = True
                        self.counts.admitted += 1
                    else:
                        compartment.active -= 1
                        if compartment is not self.shared:
                            self.counts.active -= 1
                    held = False
            except BaseException as error:  # in the wait for the lock, or just after
                interrupted = error
        if waiter is not None:
            try:
                self.wake(waiter)
            except BaseException as error:
                interrupted = error
                self.wake(waiter)
        if interrupted is not None:
            raise interrupted

    def wake(self, waiter: Waiter) -> None:
        """Tell ``waiter`` that the slot it was handed is its own.

        Calling it twice is harmless, so a wake-up that an exception interrupted midway
        can be done again.
        """
        latch = waiter.latch
        if latch is not None:
            try:  # noqa: SIM105 - contextlib.suppress would be one more call to interrupt
                latch.release()
            except RuntimeError:
                pass  # woken already
            return
        future, loop = waiter.future, waiter.loop
        assert future is not None
        assert loop is not None
        if waiter.thread == threading.get_ident():
            _wake_task(future)
            return
        try:
            loop.call_soon_threadsafe(_wake_task, future)
        except RuntimeError:
            # Its loop is closed: that waiter will never run, nor count; the slot goes on.
            assert waiter.compartment is not None
            with self.lock:
                self.counts.admitted -= 1
            self.leave(waiter.compartment)

    # -- under the lock ----------------------------------------------------------------

    def _obtain(self, key: Hashable) -> Compartment:
        try:
            return self.compartments.obtain(key)
        except TypeError as error:
            raise TypeError(
                f"bulkhead {self.name!r}: the key {safe_repr(key)} is not hashable; "
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

    def _queue(self, compartment: Compartment | None, key: Hashable, waiter: Waiter) -> float:
        """Admit ``waiter``'s call now, refuse it, or queue it; call with the lock held.

        Returns how long the waiter may wait in line (``inf``: no limit), or :data:`NOW`
        when it is not queued: then ``waiter.granted`` says whether it holds a slot (and
        :data:`DRY_RUN_REFUSAL` that a dry run let through a call it would refuse). A
        refusal is counted here. A keyed compartment (``None``: not looked up yet) is
        looked up again: between the caller's first look and this one its calls may
        have ended and an idle compartment may have been dropped, and a slot of a
        dropped one would be a slot too many.

        Every change to the state is followed by its record in ``waiter`` with no call
        in between, so an exception landing anywhere leaves ``waiter`` telling the truth.
        """
        if compartment is not self.shared:
            compartment = self._obtain(key)
        waiter.compartment = compartment
        if compartment.active < self.limit and not compartment.queue:
            self._take(compartment)
            waiter.granted = True
            return NOW
        if DISABLED.on:  # hazina.testing.disabled(): room is made, beyond the limit
            self._take(compartment)
            waiter.granted = True
            return NOW
        config = self.config
        if len(compartment.queue) >= config.max_queue or WAITS.instant:
            self.counts.rejected += 1
            if config.dry_run:  # counted and reported as refused, and run at once
                self._take(compartment)
                waiter.granted = True
                return DRY_RUN_REFUSAL
            return NOW
        if config.dry_run:  # it would have waited in line: it runs at once
            self._take(compartment)
            waiter.granted = True
            return NOW
        limit = math.inf if config.max_wait is None else config.max_wait
        left = remaining()  # only read on the way to a wait
        if left is not None and left < limit:
            limit = left
        if limit <= 0:
            self.counts.rejected += 1
            return NOW
        compartment.queue.append(waiter)
        return limit

    def _withdraw(self, waiter: Waiter) -> None:
        """The caller of ``waiter`` is gone (cancelled, interrupted, or its refusal is
        on its way) before its call ran: whatever it holds is let go, and a slot it was
        granted counts as neither admitted nor refused."""
        compartment = waiter.compartment
        if compartment is None:
            return
        with self.lock:
            if not waiter.granted:
                try:  # noqa: SIM105 - not queued, or queued and given up already
                    compartment.queue.remove(waiter)
                except ValueError:
                    pass
                return
            waiter.granted = False
            self.counts.admitted -= 1
            self.counts.wait_time -= waiter.waited
        self.leave(compartment)

    def _timed_out(self, waiter: Waiter) -> bool:
        """A waiter's time ran out: whether it got a slot at the last moment after all
        (else it leaves the queue, refused). Call with the lock held."""
        if waiter.granted:
            return True
        assert waiter.compartment is not None
        waiter.compartment.queue.remove(waiter)
        self.counts.rejected += 1
        return False

    def _waited(self, waiter: Waiter) -> None:
        """Count the wait of a waiter that got its slot."""
        waited = monotonic() - waiter.since
        with self.lock:
            self.counts.wait_time += waited
            waiter.waited = waited

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
        whose slot the call holds (see :meth:`_queue`). Whatever ends it, it returns
        holding a slot or raises holding none."""
        waiter = Waiter(monotonic())
        latch = waiter.latch = allocate_lock()
        latch.acquire()
        try:
            with self.lock:
                limit = self._queue(compartment, key, waiter)
            if limit < 0:  # not queued
                if not waiter.granted:
                    raise self._refusal(key, 0.0)
                if limit == DRY_RUN_REFUSAL:
                    self._refused_in_dry_run(key)
            elif latch.acquire(True, -1 if limit > MAX_SECONDS else limit):
                self._waited(waiter)
            else:
                with self.lock:
                    granted = self._timed_out(waiter)
                if not granted:
                    raise self._refusal(key, monotonic() - waiter.since)
                self._waited(waiter)
        except BaseException:
            self._withdraw(waiter)
            raise
        assert waiter.compartment is not None
        return waiter.compartment

    async def enter_slow_async(self, compartment: Compartment | None, key: Hashable) -> Compartment:
        loop = asyncio.get_running_loop()
        waiter = Waiter(monotonic())
        future = waiter.future = loop.create_future()
        waiter.loop, waiter.thread = loop, threading.get_ident()
        try:
            with self.lock:
                limit = self._queue(compartment, key, waiter)
            if limit < 0:  # not queued
                if not waiter.granted:
                    raise self._refusal(key, 0.0)
                if limit == DRY_RUN_REFUSAL:
                    self._refused_in_dry_run(key)
            else:
                try:
                    async with asyncio.timeout(None if limit > MAX_SECONDS else limit):
                        await future
                except TimeoutError:
                    with self.lock:
                        granted = self._timed_out(waiter)
                    if not granted:
                        raise self._refusal(key, monotonic() - waiter.since) from None
                self._waited(waiter)
        except BaseException:
            self._withdraw(waiter)
            raise
        assert waiter.compartment is not None
        return waiter.compartment
