"""The timeout: stop waiting for a call at its deadline."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from .._core.counters import Counter, new_counter, read_counter
from .._core.deadline import Deadline
from .._core.errors import TimeoutExceeded
from .._core.forks import fresh_lock, reset_after_fork
from .._core.host import Host
from .._core.policy import Policy
from .config import TimeoutConfig
from .drivers import async_driver, sync_driver
from .records import CallTimedOut, TimeoutStats
from .watch import Watches
from .workers import WORKERS, Job, WorkerPool


class Timeout(Policy[TimeoutConfig, TimeoutStats]):
    """A named timeout; get one from ``registry.timeout(name, seconds=...)``.

    Its deadline runs on real time whatever the registry's clock.
    """

    kind = "timeout"
    config_class = TimeoutConfig

    def __init__(self, name: str, config: TimeoutConfig, host: Host) -> None:
        super().__init__(name, config, host)
        assert config.seconds is not None  # the configuration refuses None
        self.seconds: float = float(config.seconds)
        self.pool: WorkerPool = WORKERS
        self.watches: Watches = Watches()
        self._lock = threading.Lock()
        reset_after_fork(self)
        # Every call draws one: the hot path's only write.
        self.calls: Counter = new_counter()
        #: Abandoned sync calls whose worker still runs them (not reset: they still run).
        self.running_abandoned: int = 0
        self._fresh_state()
        _TIMEOUTS.add(self)

    def _apply_config(self, config: TimeoutConfig) -> None:
        # Counters are kept; calls already running keep the deadline they started with.
        assert config.seconds is not None  # the configuration refuses None
        with self._lock:
            if float(config.seconds) != self.seconds:
                # One watch's deadlines come due in the order its calls start only while
                # they all last as long: calls with the new length queue apart.
                self.watches = Watches()
            self.seconds = float(config.seconds)
            self.config = config

    def _after_fork_in_child(self) -> None:
        fresh_lock(self._lock)

    def _fresh_state(self) -> None:
        self._calls_base = read_counter(self.calls)
        self._timeouts = 0
        self._abandoned = 0

    def reset(self) -> None:
        with self._lock:
            self._fresh_state()

    def stats(self) -> TimeoutStats:
        with self._lock:
            return TimeoutStats(
                calls=read_counter(self.calls) - self._calls_base,
                timeouts=self._timeouts,
                abandoned=self._abandoned,
            )

    # -- drivers -------------------------------------------------------------------

    def _sync_driver(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return sync_driver(self, fn)

    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return async_driver(self, fn)

    # -- the rare paths --------------------------------------------------------------

    def timed_out(self, *, abandoned: bool = False, refused: bool = False) -> TimeoutExceeded:
        """Count a timeout, emit its event; the error to raise."""
        with self._lock:
            self._timeouts += 1
        event = CallTimedOut(self.name, self.seconds, abandoned, refused)
        self.emit(event)
        return TimeoutExceeded(self.name, self.seconds)

    def refuse(self) -> TimeoutExceeded:
        """A sync call refused while ``max_abandoned`` abandoned calls still run."""
        return self.timed_out(refused=True)

    def overran(self, job: Job, deadline: Deadline, *, interrupted: bool = False) -> Any:
        """The caller's wait for ``job`` ended without its outcome: abandon it, or take it.

        The worker may finish at this very moment; whoever claims the job first decides.
        """
        with self._lock:
            try:
                # No call between taking the claim and counting the call as abandoned: an
                # exception landing in between (a signal handler's) would let the worker
                # count its end without its start, and max_abandoned let one more through.
                del job.claim[0]
            except IndexError:
                claimed = False
            else:
                claimed = True
                self._abandoned += 1
                self.running_abandoned += 1
        if not claimed:
            # The worker finished first: the outcome is there, or a moment away.
            if interrupted:
                return None
            job.done.acquire()
            return job.outcome()
        if interrupted:
            # Not a timeout (the caller was interrupted, e.g. by Ctrl-C), but the call
            # is left running all the same.
            return None
        deadline.expired = True
        raise self.timed_out(abandoned=True)

    def abandoned_call_ended(self) -> None:
        """An abandoned call's worker is done with it."""
        with self._lock:
            self.running_abandoned -= 1


_TIMEOUTS: weakref.WeakSet[Timeout] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The abandoned calls ran in the parent's threads, which a forked child does not
    # have: none of them runs here.
    for timeout in list(_TIMEOUTS):
        timeout._lock = threading.Lock()
        timeout.running_abandoned = 0


os.register_at_fork(after_in_child=_after_fork_in_child)
