"""The recommended stack with a timeout: retry > circuit breaker > timeout > function.

Each attempt gets its own deadline (``@timeout`` under ``@retry``), a timed-out attempt is
retried like any transient error, and the breaker above the timeout counts it as the
failure it is.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import hazina


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end so the abandoned sync attempt's worker finishes."""
    event = threading.Event()
    yield event
    event.set()


def build(registry: hazina.Registry, fn: Any) -> Any:
    """``fn`` under retry > circuit breaker > timeout, written as the decorators would be."""
    timed = hazina.timeout("attempt", registry=registry, seconds=0.05)(fn)
    guarded = hazina.circuit_breaker("dependency", registry=registry, failure_threshold=5)(timed)
    return hazina.retry("calls", registry=registry, attempts=3, initial=0, jitter=None)(guarded)


def test_each_attempt_has_its_own_deadline_sync(release: threading.Event) -> None:
    """A hung first attempt times out, the breaker counts a failure, the retry succeeds."""
    registry = hazina.Registry()
    attempts = 0

    def call() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            release.wait(10)
        return "ok"

    fn = build(registry, call)
    started = time.monotonic()
    assert fn() == "ok"
    assert time.monotonic() - started < 1
    assert registry.timeout("attempt").stats() == hazina.TimeoutStats(
        calls=2, timeouts=1, abandoned=1
    )
    breaker = registry.circuit_breaker("dependency").stats()
    assert (breaker.failures, breaker.successes) == (1, 1)
    assert registry.retry("calls").stats().successes_after_retry == 1


@pytest.mark.asyncio
async def test_each_attempt_has_its_own_deadline_async() -> None:
    """The async stack behaves the same, the hung attempt cancelled rather than abandoned."""
    registry = hazina.Registry()
    attempts = 0

    async def call() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await asyncio.sleep(10)
        return "ok"

    fn = build(registry, call)
    assert await fn() == "ok"
    assert registry.timeout("attempt").stats() == hazina.TimeoutStats(
        calls=2, timeouts=1, abandoned=0
    )
    breaker = registry.circuit_breaker("dependency").stats()
    assert (breaker.failures, breaker.successes) == (1, 1)
