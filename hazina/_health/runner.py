"""Running health checks: all at once, each within its timeout, none holding the report back."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from time import perf_counter

from .drivers import abandoned, run_check
from .policy import HealthCheck, overall
from .records import HealthReport

#: Seconds check_health_sync gives cancelled async checks to finish before closing its loop.
CLEANUP_GRACE = 1.0


async def run_checks(checks: Sequence[HealthCheck]) -> HealthReport:
    """Run ``checks`` concurrently and report on all of them."""
    started = perf_counter()
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(run_check(check), name=f"hazina-health:{check.name}")
            for check in checks
        ]
    outcomes = [(check, task.result()) for check, task in zip(checks, tasks, strict=True)]
    report = HealthReport(
        status=overall(outcomes),
        duration=perf_counter() - started,
        entries={check.name: entry for check, entry in outcomes},
    )
    for _, entry in outcomes:
        # Ctrl-C or sys.exit() inside a check still stops the program, as anywhere
        # else; only once every check's outcome is recorded in its stats.
        if isinstance(entry.error, KeyboardInterrupt | SystemExit):
            raise entry.error
    return report


def run_checks_sync(checks: Sequence[HealthCheck]) -> HealthReport:
    """:func:`run_checks` from plain code, on an event loop of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "check_health_sync() was called from inside a running event loop, which it "
            "would block; use `await registry.check_health()` there instead"
        )
    # Not asyncio.run(): it would wait without limit for a check that ignores its
    # cancellation, and for the default executor's threads.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(run_checks(checks))
    finally:
        try:
            _finish_leftovers(loop)
        finally:
            loop.close()


def _finish_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    leftovers = asyncio.all_tasks(loop)
    for task in leftovers:
        task.cancel()
    if leftovers:
        # Bounded: a check that ignores its cancellation must not hold the caller.
        _, stuck = loop.run_until_complete(asyncio.wait(leftovers, timeout=CLEANUP_GRACE))
        # Their loop is closing: holding them would keep them (and it) alive forever.
        abandoned.difference_update(stuck)
    loop.run_until_complete(loop.shutdown_asyncgens())
