"""Running health checks: concurrently, within their timeouts, cancellable, thread-safe.

These are about real concurrency (threads, tasks, the event loop's timer), so the
fake clock does not apply: the timeout scenarios use a 0.1 s timeout and assert that
the report came back long before the slow check would have finished. Every check that
blocks waits on an event the test sets afterwards, so nothing outlives its test, and
every wait has a generous limit (``LIMIT``) that turns a hang into a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import CheckHealth
from interrupts import fork_children

import hazina
from hazina import HealthStatus

HEALTHY, DEGRADED, UNHEALTHY = HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY

#: Real seconds a helper may take before the test calls it stuck.
LIMIT = 10.0
#: How long the slow checks below would take if nobody cut them off.
SLOW = 2.0


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event that blocked sync checks wait on; set when the test ends, freeing them."""
    event = threading.Event()
    yield event
    event.set()


def timed(check_health: CheckHealth, **kwargs: Any) -> tuple[hazina.HealthReport, float]:
    """The report, and the real seconds it took to come back."""
    started = time.perf_counter()
    report = check_health(**kwargs)
    return report, time.perf_counter() - started


# -- timeouts --------------------------------------------------------------------------


def test_a_slow_sync_check_times_out_without_holding_the_report(
    registry: hazina.Registry, check_health: CheckHealth, release: threading.Event
) -> None:
    """Ported: a 2 s sync check with a 0.1 s timeout is unhealthy, and the report is quick."""

    def slow() -> bool:
        release.wait(SLOW)
        return True

    registry.health_check("slow", slow, timeout=0.1)
    registry.health_check("fast", lambda: True)

    report, took = timed(check_health)

    assert took < SLOW / 2
    assert report.status is UNHEALTHY
    slow_entry = report.entries["slow"]
    assert (slow_entry.status, slow_entry.description) == (UNHEALTHY, "timed out after 0.1s")
    assert slow_entry.error is None
    assert 0.1 <= slow_entry.duration < SLOW / 2
    assert report.entries["fast"].status is HEALTHY
    stats = registry.stats()["health_check"]["slow"]
    assert (stats.runs, stats.failures, stats.timeouts) == (1, 1, 1)


def test_a_slow_async_check_times_out_and_is_cancelled(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """Ported: a 2 s async check with a 0.1 s timeout is unhealthy, quickly, and cancelled."""
    cancelled = threading.Event()

    async def slow() -> bool:
        try:
            await asyncio.sleep(SLOW)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return True

    registry.health_check("slow", slow, timeout=0.1)

    report, took = timed(check_health)

    assert took < SLOW / 2
    assert report.entries["slow"].description == "timed out after 0.1s"
    assert report.status is UNHEALTHY
    assert cancelled.wait(LIMIT)


def test_an_async_check_that_ignores_cancellation_does_not_hold_the_report(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """A check that swallows its cancellation at the timeout is still reported on time."""
    swallowed = threading.Event()

    async def stubborn() -> bool:
        try:
            await asyncio.sleep(SLOW)
        except asyncio.CancelledError:
            swallowed.set()
        # Ignores the first cancellation; stops at the next one (the loop's cleanup).
        await asyncio.sleep(SLOW)
        return True

    registry.health_check("stubborn", stubborn, timeout=0.1)

    report, took = timed(check_health)

    assert took < SLOW / 2
    assert report.entries["stubborn"].description == "timed out after 0.1s"
    assert swallowed.is_set()


def test_a_timeout_raised_by_the_check_itself_is_an_error_not_a_timeout(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """A TimeoutError the check raises is its own failure: described by it, not counted as
    a timeout."""

    async def check() -> bool:
        raise TimeoutError("upstream took too long")

    registry.health_check("db", check, timeout=5)

    entry = check_health().entries["db"]

    assert entry.description == "upstream took too long"
    assert isinstance(entry.error, TimeoutError)
    assert registry.stats()["health_check"]["db"].timeouts == 0


def test_a_hung_sync_check_occupies_one_thread_however_often_it_runs(
    registry: hazina.Registry, check_health: CheckHealth, release: threading.Event
) -> None:
    """Later runs join the hung check's thread instead of starting more; once it
    returns, the check reports normally again."""
    calls = 0

    def hung() -> bool:
        nonlocal calls
        calls += 1
        release.wait(LIMIT)
        return True

    registry.health_check("hung", hung, timeout=0.1)

    for _ in range(2):
        assert check_health().entries["hung"].description == "timed out after 0.1s"
    assert calls == 1

    release.set()
    # The thread's own run finishes now; a run joining it or starting anew is healthy.
    deadline = time.monotonic() + LIMIT
    while (entry := check_health().entries["hung"]).status is not HEALTHY:
        assert time.monotonic() < deadline, entry
    assert registry.stats()["health_check"]["hung"].timeouts == 2


def test_the_timeout_covers_an_awaitable_a_sync_check_returned(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """The awaitable a sync check hands back is awaited within the same timeout."""

    async def slow_ping() -> bool:
        await asyncio.sleep(SLOW)
        return True

    registry.health_check("redis", lambda: slow_ping(), timeout=0.1)

    report, took = timed(check_health)

    assert took < SLOW / 2
    assert report.entries["redis"].description == "timed out after 0.1s"


# -- concurrency -----------------------------------------------------------------------


def test_async_checks_run_concurrently(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """Ported: two async checks that each wait for the other both complete."""
    first_started, second_started = asyncio.Event(), asyncio.Event()

    async def first() -> bool:
        first_started.set()
        await second_started.wait()
        return True

    async def second() -> bool:
        second_started.set()
        await first_started.wait()
        return True

    registry.health_check("first", first, timeout=LIMIT)
    registry.health_check("second", second, timeout=LIMIT)

    report = check_health()

    assert report.status is HEALTHY


def test_sync_checks_run_concurrently_in_threads(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """Two sync checks that each wait for the other at a barrier both complete."""
    barrier = threading.Barrier(2, timeout=LIMIT)
    threads: set[int] = set()

    def meet() -> bool:
        threads.add(threading.get_ident())
        barrier.wait()
        return True

    registry.health_check("first", meet, timeout=LIMIT)
    registry.health_check("second", lambda: meet(), timeout=LIMIT)

    report = check_health()

    assert report.status is HEALTHY
    assert len(threads) == 2
    assert threading.get_ident() not in threads


def test_sync_and_async_checks_mix_in_one_report(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """A sync and an async check that each wait for the other both complete, in one report."""
    sync_started = threading.Event()
    async_started = threading.Event()

    def sync_check() -> hazina.HealthResult:
        sync_started.set()
        assert async_started.wait(LIMIT)
        return hazina.HealthResult(DEGRADED, "sync side")

    async def async_check() -> bool:
        async_started.set()
        return await asyncio.to_thread(sync_started.wait, LIMIT)

    registry.health_check("sync", sync_check, timeout=LIMIT)
    registry.health_check("async", async_check, timeout=LIMIT)

    report = check_health()

    assert report.status is DEGRADED
    assert report.entries["sync"].description == "sync side"
    assert report.entries["async"].status is HEALTHY


def test_a_sync_check_sees_the_callers_context_variables(registry: hazina.Registry) -> None:
    """Context variables set by the caller are visible in a sync check's thread."""
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    seen: list[str] = []

    def check() -> bool:
        seen.append(request_id.get("unset"))
        return True

    registry.health_check("db", check)

    async def from_a_coroutine() -> None:
        request_id.set("async-caller")
        await registry.check_health()

    def from_plain_code() -> None:
        request_id.set("sync-caller")
        registry.check_health_sync()

    asyncio.run(from_a_coroutine())
    contextvars.copy_context().run(from_plain_code)

    assert seen == ["async-caller", "sync-caller"]


def test_reports_from_many_threads_count_every_run(registry: hazina.Registry) -> None:
    """check_health_sync from several threads at once loses and doubles no run."""
    threads, reports_each = 8, 25
    registry.health_check("sync", lambda: True)

    async def async_check() -> bool:
        await asyncio.sleep(0)
        return False

    registry.health_check("async", async_check, critical=False)
    start = threading.Barrier(threads, timeout=LIMIT)
    statuses: list[HealthStatus] = []

    def worker() -> None:
        start.wait()
        for _ in range(reports_each):
            statuses.append(registry.check_health_sync().status)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(LIMIT)

    assert statuses == [DEGRADED] * threads * reports_each
    stats = registry.stats()["health_check"]
    assert stats["sync"].runs == threads * reports_each
    assert stats["async"].runs == stats["async"].failures == threads * reports_each


@pytest.mark.asyncio
async def test_concurrent_async_reports_count_every_run(registry: hazina.Registry) -> None:
    """Many check_health() calls at once on one loop each get a whole report."""
    registry.health_check("sync", lambda: True)

    async def async_check() -> bool:
        await asyncio.sleep(0)
        return True

    registry.health_check("async", async_check)

    reports = await asyncio.gather(*(registry.check_health() for _ in range(50)))

    assert {report.status for report in reports} == {HEALTHY}
    assert all(len(report.entries) == 2 for report in reports)
    assert registry.stats()["health_check"]["async"].runs == 50
    assert registry.stats()["health_check"]["sync"].runs == 50


# -- cancellation ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_cancelling_the_caller_cancels_async_checks(registry: hazina.Registry) -> None:
    """Ported: cancelling the task awaiting check_health cancels the running checks."""
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def slow() -> bool:
        started.set()
        try:
            await asyncio.sleep(SLOW)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return True

    registry.health_check("slow", slow, timeout=LIMIT)
    caller = asyncio.create_task(registry.check_health())
    await asyncio.wait_for(started.wait(), LIMIT)

    caller.cancel()

    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.wait_for(cancelled.wait(), LIMIT)
    # A cancelled run is no run: nothing to count, no status to announce.
    assert registry.stats()["health_check"]["slow"].runs == 0


@pytest.mark.asyncio
async def test_cancelling_the_caller_does_not_wait_for_a_sync_check(
    registry: hazina.Registry, release: threading.Event
) -> None:
    """A caller cancelled while a sync check blocks in its thread is released at once."""
    started = threading.Event()

    def blocked() -> bool:
        started.set()
        release.wait(LIMIT)
        return True

    registry.health_check("blocked", blocked, timeout=LIMIT)
    caller = asyncio.create_task(registry.check_health())
    assert await asyncio.to_thread(started.wait, LIMIT)

    began = time.perf_counter()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller

    assert time.perf_counter() - began < SLOW / 2
    assert registry.stats()["health_check"]["blocked"].runs == 0


@pytest.mark.asyncio
async def test_a_timeout_around_check_health_cancels_the_checks(
    registry: hazina.Registry,
) -> None:
    """asyncio.timeout around check_health cuts it off and cancels the checks in it."""
    cancelled = asyncio.Event()

    async def slow() -> bool:
        try:
            await asyncio.sleep(SLOW)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return True

    registry.health_check("slow", slow, timeout=LIMIT)

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await registry.check_health()

    await asyncio.wait_for(cancelled.wait(), LIMIT)


@pytest.mark.asyncio
async def test_an_async_check_that_ignores_cancellation_runs_once_however_often_it_is_reported(
    registry: hazina.Registry,
) -> None:
    """Regression (issue 10): each report started one more task of a check that ignores its
    cancellation; later reports now join the one still running, as sync checks join their
    thread."""
    runs = 0
    finish = asyncio.Event()

    async def stubborn() -> bool:
        nonlocal runs
        runs += 1
        while not finish.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await finish.wait()
        return True

    registry.health_check("stubborn", stubborn, timeout=0.05)

    for _ in range(4):
        report = await registry.check_health()
        assert report.entries["stubborn"].description == "timed out after 0.05s"
    finish.set()
    report = await registry.check_health()

    assert runs == 2  # the first task, and a fresh one once it had finished
    assert report.entries["stubborn"].status is HEALTHY


@pytest.mark.asyncio
async def test_a_cancelled_async_check_that_stops_is_run_again_by_the_next_report(
    registry: hazina.Registry,
) -> None:
    """A check that obeys its cancellation is not joined by the report right after: that
    report runs it afresh."""
    runs = 0
    slow = True

    async def check() -> bool:
        nonlocal runs
        runs += 1
        if slow:
            await asyncio.sleep(SLOW)
        return True

    registry.health_check("check", check, timeout=0.05)
    await registry.check_health()
    slow = False

    report = await registry.check_health()

    assert report.entries["check"].status is HEALTHY
    assert runs == 2


@pytest.mark.parametrize("stop", [SystemExit(3), KeyboardInterrupt()], ids=["exit", "ctrl-c"])
@pytest.mark.parametrize("how", ["async", "sync", "sync returning a coroutine"])
def test_a_check_raising_systemexit_is_recorded_then_reraised(
    registry: hazina.Registry, check_health: CheckHealth, stop: BaseException, how: str
) -> None:
    """Regression (issue 10): an async check raising SystemExit or KeyboardInterrupt broke out
    of the report half-way; now every check runs and is recorded (that one as unhealthy)
    before the exception goes on to stop the program, as it would anywhere else."""

    def stopping() -> bool:
        raise stop

    async def astopping() -> bool:
        raise stop

    async def fine() -> bool:
        await asyncio.sleep(0.01)
        return True

    def returning() -> Any:
        return astopping()

    checks = {"async": astopping, "sync": stopping, "sync returning a coroutine": returning}
    registry.health_check("stopping", checks[how])
    registry.health_check("fine", fine)

    with pytest.raises(type(stop)):
        check_health()

    stats = registry.stats()["health_check"]
    assert stats["stopping"].runs == 1
    assert stats["stopping"].status is UNHEALTHY
    assert stats["fine"].runs == 1
    assert stats["fine"].status is HEALTHY


def test_a_child_forked_while_a_sync_check_hangs_runs_the_check_itself(
    registry: hazina.Registry, release: threading.Event
) -> None:
    """Regression (issue 10): a child forked while a sync check hung in its thread joined
    that run, whose thread the child does not have, and reported it timed out for ever;
    now the child runs the check afresh."""
    parent = os.getpid()

    def hung_in_the_parent() -> bool:
        if os.getpid() == parent:
            release.wait(LIMIT)
        return True

    registry.health_check("hung", hung_in_the_parent, timeout=0.2)
    assert registry.check_health_sync().entries["hung"].status is UNHEALTHY

    def use() -> None:
        assert registry.check_health_sync().entries["hung"].status is HEALTHY

    assert fork_children(use, children=3) == []
