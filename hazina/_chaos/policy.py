"""The chaos policy: inject errors, delays and results into calls, to prove the others work."""

from __future__ import annotations

import random
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from .._core.forks import fresh_lock, reset_after_fork
from .._core.host import Host
from .._core.policy import Policy
from .config import NOT_GIVEN, ChaosConfig
from .deadline import time_left
from .drivers import async_driver, sync_driver
from .records import ChaosInjected, ChaosStats

#: What :meth:`Chaos.decide` returns for a call left alone: no delay, no error, no result.
LEFT_ALONE: tuple[float, BaseException | None, Any] = (0.0, None, NOT_GIVEN)


def _notes_of(error: object) -> tuple[str, ...] | None:
    """The notes an exception instance was configured with (``None``: it had none)."""
    notes = getattr(error, "__notes__", None) if isinstance(error, BaseException) else None
    return None if notes is None else tuple(notes)


class Chaos(Policy[ChaosConfig, ChaosStats]):
    """A named fault injector; get one from ``registry.chaos(name, ...)``.

    ``enable()`` / ``disable()`` switch it at run time; disabled, a call costs one
    attribute read more than the function itself.
    """

    kind = "chaos"
    config_class = ChaosConfig

    def __init__(self, name: str, config: ChaosConfig, host: Host) -> None:
        super().__init__(name, config, host)
        #: Read by the drivers on every call; flipped by enable() and disable().
        self.enabled: bool = config.enabled
        self._lock = threading.Lock()
        self._random = random.Random(config.seed)
        self._notes = _notes_of(config.error)
        self._fresh_state()
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        fresh_lock(self._lock)
        if self.config.seed is None:
            # Each child draws its own faults, as the standard library's random does;
            # copied with its state, the generator would give every child the same ones.
            self._random = random.Random()

    def _fresh_state(self) -> None:
        self._calls = 0
        self._errors = 0
        self._latency = 0
        self._results = 0

    def _apply_config(self, config: ChaosConfig) -> None:
        with self._lock:
            if config.seed != self.config.seed:
                self._random = random.Random(config.seed)
            self._notes = _notes_of(config.error)
            self.config = config

    def reconfigure(self, **changes: Any) -> None:
        """As for every policy; ``enabled=`` also switches it, as enable()/disable() do."""
        super().reconfigure(**changes)
        if "enabled" in changes:
            self.enabled = self.config.enabled

    def enable(self) -> None:
        """Start injecting faults, from the next call."""
        self.enabled = True

    def disable(self) -> None:
        """Stop injecting faults: calls go straight through, from the next call."""
        self.enabled = False

    def reset(self) -> None:
        """Counters at zero, and the random sequence back to its seed's start."""
        with self._lock:
            self._fresh_state()
            self._random = random.Random(self.config.seed)

    def stats(self) -> ChaosStats:
        with self._lock:
            return ChaosStats(
                calls=self._calls,
                errors_injected=self._errors,
                latency_injected=self._latency,
                results_injected=self._results,
            )

    def decide(self) -> tuple[float, BaseException | None, Any]:
        """Draw this call's faults: the delay before it, then the error or result instead."""
        events: list[ChaosInjected] = []
        with self._lock:
            config = self.config
            draw = self._random.random
            # Three draws every call, whatever the rates, so a seed replays the same faults.
            late, failing, answering = draw(), draw(), draw()
            self._calls += 1
            delay = config.latency if late < config.latency_rate and config.latency > 0 else 0.0
            error: BaseException | None = None
            result: Any = NOT_GIVEN
            if delay:
                self._latency += 1
                events.append(ChaosInjected(self.name, "latency", delay))
            if failing < config.error_rate:
                self._errors += 1
                given = config.error
                assert given is not None  # the configuration refuses error_rate > 0 without
                error = given() if isinstance(given, type) else self._as_given(given)
                events.append(ChaosInjected(self.name, "error"))
            elif answering < config.result_rate:
                self._results += 1
                result = config.result
                events.append(ChaosInjected(self.name, "result"))
        if not events:
            return LEFT_ALONE
        for event in events:
            self.emit(event)  # logged at DEBUG on hazina.chaos, as per-call events are
        return delay, error, result

    def _as_given(self, error: BaseException) -> BaseException:
        """The configured instance, as it was given: raising it again would otherwise
        keep the traceback of every earlier raise (every frame in it alive) and every
        note added on the way (a retry's on giving up), without bound."""
        error.__traceback__ = None
        if self._notes is None:
            if hasattr(error, "__notes__"):
                del error.__notes__
        else:
            error.__notes__ = list(self._notes)
        return error

    def pause(self, delay: float) -> float:
        """How long an injected delay may sleep: cut short at an enclosing deadline."""
        left = time_left()
        return delay if left is None else max(0.0, min(delay, left))

    def _sync_driver(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return sync_driver(self, fn)

    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return async_driver(self, fn)
