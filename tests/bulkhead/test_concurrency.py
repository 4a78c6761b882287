"""Exact under real threads and tasks; a cancelled waiter takes no slot and frees its place.

The thread scenarios shrink the switch interval so threads interleave inside the
bulkhead's bookkeeping as often as they can.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from interrupts import fork_children, hammered, lock_is_free, signal_storm

import hazina

THREADS = 8


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Make the interpreter switch threads as often as it can during the test."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


class Gauge:
    """Counts the calls inside at once, and the most there ever were."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inside = 0
        self.most = 0
        self.ran = 0

    def enter(self) -> None:
        with self._lock:
            self.inside += 1
            self.ran += 1
            self.most = max(self.most, self.inside)

    def leave(self) -> None:
        with self._lock:
            self.inside -= 1


@pytest.mark.usefixtures("busy_switching")
@pytest.mark.parametrize("max_queue", [0, 4])
def test_eight_threads_never_exceed_the_limit_and_every_call_is_counted_once(
    max_queue: int,
) -> None:
    """8 threads x 300 calls: never more than 3 inside; admitted + rejected == calls."""
    registry = hazina.Registry()
    gauge = Gauge()

    @hazina.bulkhead("b", registry=registry, max_concurrent=3, max_queue=max_queue)
    def work() -> None:
        gauge.enter()
        time.sleep(0)
        gauge.leave()

    start = threading.Barrier(THREADS)
    refused = [0] * THREADS

    def run(index: int) -> None:
        start.wait()
        for _ in range(300):
            try:
                work()
            except hazina.BulkheadFull:
                refused[index] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = registry.bulkhead("b").stats()
    assert gauge.most <= 3
    assert stats.peak_active == gauge.most
    assert stats.admitted == gauge.ran
    assert stats.rejected == sum(refused)
    assert stats.admitted + stats.rejected == THREADS * 300
    assert (stats.active, stats.queued) == (0, 0)


@pytest.mark.asyncio
async def test_a_thousand_tasks_run_at_most_the_limit_at_once() -> None:
    """1,000 tasks queue for 10 slots: all run, never more than 10 at once, FIFO kept."""
    registry = hazina.Registry()
    gauge = Gauge()
    order: list[int] = []

    @hazina.bulkhead("b", registry=registry, max_concurrent=10, max_queue=1000)
    async def work(n: int) -> int:
        gauge.enter()
        order.append(n)
        await asyncio.sleep(0)
        gauge.leave()
        return n

    results = await asyncio.gather(*(work(n) for n in range(1000)))
    assert results == list(range(1000))
    assert order == list(range(1000))
    stats = registry.bulkhead("b").stats()
    assert gauge.most == stats.peak_active == 10
    assert (stats.admitted, stats.rejected, stats.active, stats.queued) == (1000, 0, 0, 0)


@pytest.mark.usefixtures("busy_switching")
def test_threads_and_tasks_together_never_exceed_the_limit() -> None:
    """4 threads and 2 event loops of 200 tasks each share 3 slots: never more inside."""
    registry = hazina.Registry()
    gauge = Gauge()
    bulkhead = registry.bulkhead("b", max_concurrent=3, max_queue=10_000)

    @hazina.bulkhead("b", registry=registry)
    def sync_work() -> None:
        gauge.enter()
        time.sleep(0)
        gauge.leave()

    @hazina.bulkhead("b", registry=registry)
    async def async_work() -> None:
        gauge.enter()
        await asyncio.sleep(0)
        gauge.leave()

    def threads_body() -> None:
        for _ in range(100):
            sync_work()

    def loop_body() -> None:
        async def main() -> None:
            await asyncio.gather(*(async_work() for _ in range(200)))

        asyncio.run(main())

    workers = [threading.Thread(target=threads_body) for _ in range(4)]
    workers += [threading.Thread(target=loop_body) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(20)
        assert not worker.is_alive()
    stats = bulkhead.stats()
    assert gauge.most <= 3
    assert gauge.ran == stats.admitted == 800
    assert (stats.active, stats.queued, stats.rejected) == (0, 0, 0)


@pytest.mark.asyncio
async def test_a_cancelled_waiter_takes_no_slot_and_frees_its_place() -> None:
    """Cancel a queued task: the queue has room again and the next caller is served."""
    registry = hazina.Registry()
    gate = asyncio.Event()

    @hazina.bulkhead("b", registry=registry, max_concurrent=1, max_queue=1)
    async def work(n: int) -> int:
        await gate.wait()
        return n

    holder = asyncio.create_task(work(0))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(work(1))
    await asyncio.sleep(0)
    with pytest.raises(hazina.BulkheadFull):
        await work(2)  # the queue's one place is taken
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert registry.bulkhead("b").stats().queued == 0
    third = asyncio.create_task(work(3))  # takes the freed place
    await asyncio.sleep(0)
    gate.set()
    assert await holder == 0
    assert await third == 3
    stats = registry.bulkhead("b").stats()
    assert (stats.admitted, stats.rejected, stats.active, stats.queued) == (2, 1, 0, 0)


@pytest.mark.asyncio
async def test_a_waiter_cancelled_just_after_its_grant_passes_the_slot_on() -> None:
    """A task granted a slot but cancelled before it ran counts in neither and hands it on."""
    registry = hazina.Registry()
    gate = asyncio.Event()
    ran: list[int] = []

    @hazina.bulkhead("b", registry=registry, max_concurrent=1, max_queue=5)
    async def work(n: int) -> None:
        ran.append(n)
        await gate.wait()

    async def hold_then_cancel() -> None:
        await work(0)  # its exit grants the slot to task 1 ...
        granted.cancel()  # ... cancelled in the same step, before it gets to run

    holder = asyncio.create_task(hold_then_cancel())
    await asyncio.sleep(0)
    granted = asyncio.create_task(work(1))
    after = asyncio.create_task(work(2))
    await asyncio.sleep(0)
    gate.set()
    await holder
    await asyncio.gather(granted, after, return_exceptions=True)
    assert granted.cancelled()
    assert ran == [0, 2]
    stats = registry.bulkhead("b").stats()
    assert (stats.admitted, stats.active, stats.queued) == (2, 0, 0)


@pytest.mark.asyncio
async def test_cancellation_at_random_points_leaves_no_slot_behind() -> None:
    """500 tasks, a third cancelled at random moments, some waiters timing out: afterwards
    no slot is held, nobody is queued, and admitted counts exactly the calls that ran."""
    registry = hazina.Registry()
    rng = random.Random(11)
    loop = asyncio.get_running_loop()
    gauge = Gauge()

    @hazina.bulkhead("b", registry=registry, max_concurrent=4, max_queue=300, max_wait=0.02)
    async def work(delay: float) -> None:
        gauge.enter()
        try:
            await asyncio.sleep(delay)
        finally:
            gauge.leave()

    tasks = [asyncio.create_task(work(rng.uniform(0, 0.002))) for _ in range(500)]
    for task in tasks:
        if rng.random() < 0.33:
            loop.call_later(rng.uniform(0, 0.03), task.cancel)
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    refused = sum(isinstance(outcome, hazina.BulkheadFull) for outcome in outcomes)
    stats = registry.bulkhead("b").stats()
    assert gauge.most <= 4
    assert stats.admitted == gauge.ran
    assert stats.rejected == refused
    assert (stats.active, stats.queued) == (0, 0)
    assert any(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)


@pytest.mark.usefixtures("busy_switching")
def test_threads_timing_out_in_the_queue_leave_no_slot_behind() -> None:
    """8 threads whose waits run out at random against quick calls: counts add up, no slot held."""
    registry = hazina.Registry()
    gauge = Gauge()
    rng = random.Random(5)

    @hazina.bulkhead("b", registry=registry, max_concurrent=2, max_queue=8, max_wait=0.001)
    def work(delay: float) -> None:
        gauge.enter()
        time.sleep(delay)
        gauge.leave()

    refused = [0] * THREADS

    def run(index: int, delays: list[float]) -> None:
        for delay in delays:
            try:
                work(delay)
            except hazina.BulkheadFull:
                refused[index] += 1

    threads = [
        threading.Thread(target=run, args=(i, [rng.uniform(0, 0.002) for _ in range(40)]))
        for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = registry.bulkhead("b").stats()
    assert gauge.most <= 2
    assert stats.admitted == gauge.ran
    assert stats.rejected == sum(refused) > 0
    assert stats.admitted + stats.rejected == THREADS * 40
    assert (stats.active, stats.queued) == (0, 0)


@pytest.mark.usefixtures("busy_switching")
def test_keys_forgotten_and_made_again_under_threads_never_exceed_their_limit() -> None:
    """With ``max_keys=1`` keys are dropped and made again all the time; still no key ever
    runs more than its limit at once, and every call is counted once."""
    registry = hazina.Registry()
    gauges = {key: Gauge() for key in range(4)}

    @hazina.bulkhead(
        "b", registry=registry, max_concurrent=1, max_queue=8, max_keys=1, key=lambda k: k
    )
    def work(key: int) -> None:
        gauges[key].enter()
        time.sleep(0)
        gauges[key].leave()

    def run(index: int) -> None:
        for n in range(300):
            work((index + n) % 4)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = registry.bulkhead("b").stats()
    assert max(gauge.most for gauge in gauges.values()) == 1
    assert stats.admitted == sum(gauge.ran for gauge in gauges.values()) == THREADS * 300
    assert (stats.rejected, stats.active, stats.queued) == (0, 0, 0)


def test_regression_a_waiter_whose_key_was_dropped_meanwhile_takes_no_extra_slot() -> None:
    """Regression: a caller that found its key full, then (before it queued) saw the key's
    calls end and the idle key dropped for another, took a slot of the dropped
    compartment, so the key's next caller, given a fresh one, ran beside it. The
    interleaving is forced through the policy's own steps, in the order threads can
    take them."""
    registry = hazina.Registry()
    bulkhead = registry.bulkhead("b", max_concurrent=1, max_queue=1, max_keys=1, key=lambda k: k)
    running, admitted = bulkhead.admit_key("a")
    assert admitted
    seen, admitted = bulkhead.admit_key("a")  # full: this caller will queue...
    assert not admitted
    bulkhead.leave(running)  # ...but first the running call ends,
    other, admitted = bulkhead.admit_key("b")  # and a new key pushes the idle "a" out.
    assert admitted
    held = bulkhead.enter_slow_sync(seen, "a")  # now the first caller takes a slot
    assert bulkhead.admit_key("a")[1] is False  # and the next one must not get another
    bulkhead.leave(held)
    bulkhead.leave(other)
    assert bulkhead.stats().active == 0


def test_a_child_forked_while_threads_use_the_bulkhead_can_use_it() -> None:
    """A child forked while other threads held the bulkhead's lock, its slots or places
    in its queue starts with the lock free and every slot free: those threads do not
    exist in the child, and their slots would otherwise be lost for good."""
    registry = hazina.Registry()

    @hazina.bulkhead("forked", registry=registry, max_concurrent=4, max_queue=8, max_wait=0.01)
    def dependency() -> int:
        time.sleep(0.0005)  # hold the slot a moment, so forks see slots taken
        return 1

    def work() -> None:
        with contextlib.suppress(hazina.BulkheadFull):
            dependency()
        dependency.policy.stats()

    def use() -> None:
        assert dependency.policy.stats().active == 0
        assert dependency() == 1

    with hammered(work):
        assert fork_children(use) == []


@pytest.mark.parametrize("keyed", [False, True])
def test_exceptions_from_a_signal_storm_never_leave_a_slot_taken_or_the_lock_held(
    keyed: bool,
) -> None:
    """Regression: an exception from a signal handler (Ctrl-C, a SIGALRM timeout) landing
    right after the lock was taken left it taken for good, and one landing between
    queueing and setting up the wait left a waiter in line that no thread waited on.
    Thousands of them, landing anywhere while calls take a slot, wait in line, are
    refused or hand their slot to another thread's waiter, leave the lock free, every
    slot free and nobody queued."""
    registry = hazina.Registry()
    options: dict[str, Any] = {"max_concurrent": 1, "max_queue": 1, "max_wait": 1e-4}
    if keyed:
        options["key"] = lambda n: n % 3

    @hazina.bulkhead("storm", registry=registry, **options)
    def inner(n: int) -> int:
        return n

    @hazina.bulkhead("storm", registry=registry)
    def outer(n: int) -> int:
        # The one slot is this call's: the inner call waits in line, then is refused.
        with contextlib.suppress(hazina.BulkheadFull):
            inner(n)
        return n

    stop = threading.Event()

    def beside() -> None:
        # Another thread queues too, so the storm's calls also hand their slot on.
        while not stop.is_set():
            with contextlib.suppress(hazina.BulkheadFull):
                inner(0)

    def call(i: int) -> None:
        with contextlib.suppress(hazina.BulkheadFull):  # the other thread's turn
            outer(i) if i % 2 else inner(i)

    thread = threading.Thread(target=beside, daemon=True)
    thread.start()
    try:
        signal_storm(call)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive(), "the other thread is stuck in the bulkhead"
    bulkhead = inner.policy
    assert lock_is_free(bulkhead.lock)
    stats = bulkhead.stats()
    assert (stats.active, stats.queued) == (0, 0)
    # Admitted (the slot is free again), and the inner call refused (there is one only).
    assert outer(3) == 3
    after = bulkhead.stats()
    assert (after.admitted - stats.admitted, after.rejected - stats.rejected) == (1, 1)
    assert (after.active, after.queued) == (0, 0)
