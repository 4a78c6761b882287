"""A scripted dependency for hedging tests: attempt ``n`` behaves as the script says."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs

#: Seen by attempts: what the caller's context held when the attempt started.
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

#: How long a held attempt waits to be released (or cancelled) before it gives up.
HOLD_LIMIT = 5.0


@attrs.frozen
class Return:
    """Return ``value``, after ``after`` seconds."""

    value: object
    after: float = 0.0


@attrs.frozen
class Raise:
    """Raise ``error``, after ``after`` seconds."""

    error: BaseException
    after: float = 0.0


@attrs.frozen
class Hold:
    """Run until released (sync) or cancelled (async), then return ``value``."""

    value: object = "released"


Step = Return | Raise | Hold


@attrs.define
class Attempt:
    """What one attempt did."""

    number: int
    request_id: str
    thread: str
    cancelled: bool = False
    ended: bool = False


class Dependency:
    """Attempt ``n`` (from 0, in the order they start) follows ``script[n]``."""

    def __init__(self, *script: Step) -> None:
        self.script = script
        self.attempts: list[Attempt] = []
        self.release = threading.Event()
        self._lock = threading.Lock()

    def _start(self) -> tuple[Attempt, Step]:
        with self._lock:
            number = len(self.attempts)
            attempt = Attempt(number, REQUEST_ID.get(), threading.current_thread().name)
            self.attempts.append(attempt)
        # A late attempt the script does not cover holds, as a real straggler would.
        step = self.script[number] if number < len(self.script) else Hold()
        REQUEST_ID.set(f"changed by attempt {number}")
        return attempt, step

    def sync(self) -> Callable[..., Any]:
        """The dependency as a ``def``."""

        def call(*args: Any, **kwargs: Any) -> Any:
            attempt, step = self._start()
            try:
                if isinstance(step, Hold):
                    self.release.wait(HOLD_LIMIT)
                    return step.value
                time.sleep(step.after)
                if isinstance(step, Raise):
                    raise step.error
                return step.value
            finally:
                attempt.ended = True

        return call

    def asynchronous(self) -> Callable[..., Any]:
        """The dependency as an ``async def``."""

        async def call(*args: Any, **kwargs: Any) -> Any:
            attempt, step = self._start()
            try:
                if isinstance(step, Hold):
                    await asyncio.sleep(HOLD_LIMIT)
                    return step.value
                await asyncio.sleep(step.after)
                if isinstance(step, Raise):
                    raise step.error
                return step.value
            except asyncio.CancelledError:
                attempt.cancelled = True
                raise
            finally:
                attempt.ended = True

        return call

    def running(self) -> list[int]:
        """The attempts that have not ended."""
        return [attempt.number for attempt in self.attempts if not attempt.ended]

    def wait_until_ended(self, limit: float = HOLD_LIMIT) -> None:
        """Release held attempts and wait (on real time) until every attempt has ended."""
        self.release.set()
        deadline = time.monotonic() + limit
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert self.running() == []


def fresh_ids() -> Iterator[str]:
    """Distinct request ids."""
    n = 0
    while True:
        n += 1
        yield f"request-{n}"
