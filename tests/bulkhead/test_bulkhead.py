"""@bulkhead: at most ``max_concurrent`` calls at once, a bounded FIFO queue, keys.

Calls that must stay inside the bulkhead wait on an event (threads) or a future
(tasks) that the test releases; nothing sleeps to wait for a slot.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

import hazina
from hazina.testing import instant_waits

if TYPE_CHECKING:
    from conftest import Flavor


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Blocked sync calls wait on this; set at the end so no thread outlives the test."""
    event = threading.Event()
    yield event
    event.set()


def wait_until(condition: Any, seconds: float = 2.0) -> None:
    """Poll ``condition`` (a few ms at a time) until it holds, or fail."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.001)


def test_an_admitted_call_returns_its_result(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """A call with a free slot runs at once and is counted as admitted."""
    fn = hazina.bulkhead("b", registry=registry, max_concurrent=2)(flavor.define(lambda x: x + 1))
    assert flavor.call(fn, 1) == 2
    assert fn.policy is registry.bulkhead("b")
    assert registry.stats()["bulkhead"]["b"] == hazina.BulkheadStats(
        admitted=1, rejected=0, active=0, queued=0, peak_active=1, wait_time=0.0
    )
    assert events == []


def test_an_error_frees_the_slot(flavor: Flavor, registry: hazina.Registry) -> None:
    """A call that raises gives its slot back; the error passes through unchanged."""

    def fail() -> None:
        raise ValueError("bad")

    fn = hazina.bulkhead("b", registry=registry, max_concurrent=1)(flavor.define(fail))
    for _ in range(3):
        with pytest.raises(ValueError, match="bad"):
            flavor.call(fn)
    assert fn.policy.stats().active == 0
    assert fn.policy.stats().admitted == 3


def test_a_full_bulkhead_without_a_queue_refuses_at_once(
    registry: hazina.Registry, events: list[object], release: threading.Event
) -> None:
    """With every slot taken and ``max_queue=0`` a call raises BulkheadFull without waiting."""

    @hazina.bulkhead("b", registry=registry, max_concurrent=1)
    def hold() -> None:
        release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    wait_until(lambda: registry.bulkhead("b").stats().active == 1)
    with pytest.raises(hazina.BulkheadFull) as raised:
        hold()
    assert (raised.value.name, raised.value.key, raised.value.retry_after) == ("b", None, None)
    assert events == [hazina.BulkheadRejected("b", None, 0.0)]
    release.set()
    holder.join()
    stats = registry.bulkhead("b").stats()
    assert (stats.admitted, stats.rejected, stats.active, stats.peak_active) == (1, 1, 0, 1)


def test_a_waiter_gets_the_slot_a_finishing_call_frees(release: threading.Event) -> None:
    """A queued thread runs as soon as the running call ends; its wait counts in wait_time."""
    registry = hazina.Registry()
    order: list[str] = []

    @hazina.bulkhead("b", registry=registry, max_concurrent=1, max_queue=1)
    def work(name: str) -> None:
        order.append(name)
        if name == "first":
            release.wait(10)

    first = threading.Thread(target=work, args=("first",))
    first.start()
    wait_until(lambda: order == ["first"])
    second = threading.Thread(target=work, args=("second",))
    second.start()
    wait_until(lambda: registry.bulkhead("b").stats().queued == 1)
    time.sleep(0.01)
    release.set()
    first.join()
    second.join()
    stats = registry.bulkhead("b").stats()
    assert order == ["first", "second"]
    assert (stats.admitted, stats.rejected, stats.queued, stats.peak_active) == (2, 0, 0, 1)
    assert stats.wait_time >= 0.01


def test_the_queue_is_bounded_by_max_queue(release: threading.Event) -> None:
    """Beyond ``max_queue`` waiting callers, the next is refused at once."""
    registry = hazina.Registry()

    @hazina.bulkhead("b", registry=registry, max_concurrent=1, max_queue=2)
    def hold() -> None:
        release.wait(10)

    threads = [threading.Thread(target=hold) for _ in range(3)]
    for queued, thread in enumerate(threads):
        thread.start()
        wait_until(lambda n=queued: registry.bulkhead("b").stats().queued == n)
    started = time.monotonic()
    with pytest.raises(hazina.BulkheadFull):
        hold()
    assert time.monotonic() - started < 0.5
    release.set()
    for thread in threads:
        thread.join()
    stats = registry.bulkhead("b").stats()
    assert (stats.admitted, stats.rejected) == (3, 1)


@pytest.mark.asyncio
async def test_tasks_are_served_first_come_first_served() -> None:
    """Waiting tasks get slots in the order they arrived, none jumping the queue."""
    registry = hazina.Registry()
    gate = asyncio.Event()
    started: list[int] = []

    @hazina.bulkhead("b", registry=registry, max_concurrent=2, max_queue=100)
    async def work(n: int) -> None:
        started.append(n)
        await gate.wait()

    tasks = []
    for n in range(20):
        tasks.append(asyncio.create_task(work(n)))
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert started == [0, 1]
    gate.set()
    await asyncio.gather(*tasks)
    assert started == list(range(20))
    assert registry.bulkhead("b").stats().peak_active == 2


def test_a_waiter_gives_up_after_max_wait(
    flavor: Flavor, release: threading.Event, events: list[object], registry: hazina.Registry
) -> None:
    """A caller still queued after ``max_wait`` (real seconds) raises BulkheadFull."""
    bulkhead = registry.bulkhead("b", max_concurrent=1, max_queue=5, max_wait=0.03)
    holder = threading.Thread(target=hazina.bulkhead("b", registry=registry)(release.wait))
    holder.start()
    wait_until(lambda: bulkhead.stats().active == 1)
    fn = hazina.bulkhead("b", registry=registry)(flavor.define(lambda: "ran"))
    started = time.monotonic()
    with pytest.raises(hazina.BulkheadFull):
        flavor.call(fn)
    waited = time.monotonic() - started
    assert 0.025 <= waited < 0.5
    release.set()
    holder.join()
    stats = bulkhead.stats()
    assert (stats.admitted, stats.rejected, stats.queued, stats.active) == (1, 1, 0, 0)
    assert len(events) == 1
    rejected = events[0]
    assert isinstance(rejected, hazina.BulkheadRejected)
    assert rejected.waited >= 0.025


def test_under_instant_waits_a_waiter_gives_up_at_once(
    flavor: Flavor, registry: hazina.Registry, release: threading.Event
) -> None:
    """With instant_waits() on, a call that finds no free slot is refused without queueing."""
    bulkhead = registry.bulkhead("b", max_concurrent=1, max_queue=5)
    holder = threading.Thread(target=hazina.bulkhead("b", registry=registry)(release.wait))
    holder.start()
    wait_until(lambda: bulkhead.stats().active == 1)
    fn = hazina.bulkhead("b", registry=registry)(flavor.define(lambda: "ran"))
    with instant_waits(), pytest.raises(hazina.BulkheadFull):
        flavor.call(fn)
    release.set()
    holder.join()
    assert bulkhead.stats().rejected == 1


def test_a_waiter_gives_up_when_the_enclosing_deadline_would_pass(
    release: threading.Event,
) -> None:
    """Under a @timeout, a caller queued without ``max_wait`` is refused at the deadline."""
    registry = hazina.Registry()
    bulkhead = registry.bulkhead("b", max_concurrent=1, max_queue=5)
    holder = threading.Thread(target=hazina.bulkhead("b", registry=registry)(release.wait))
    holder.start()
    wait_until(lambda: bulkhead.stats().active == 1)
    inner = hazina.bulkhead("b", registry=registry)(lambda: "ran")
    fn = hazina.timeout("t", registry=registry, seconds=0.3)(inner)
    started = time.monotonic()
    with pytest.raises((hazina.BulkheadFull, hazina.TimeoutExceeded)):
        fn()
    assert time.monotonic() - started < 1
    wait_until(lambda: registry.timeout("t").running_abandoned == 0)
    release.set()
    holder.join()
    stats = bulkhead.stats()
    assert (stats.rejected, stats.queued, stats.active) == (1, 0, 0)


def test_threads_and_tasks_share_one_limit(release: threading.Event) -> None:
    """A thread holding the only slot keeps a task waiting; its end lets the task in."""
    registry = hazina.Registry()
    bulkhead = registry.bulkhead("b", max_concurrent=1, max_queue=1)
    holder = threading.Thread(target=hazina.bulkhead("b", registry=registry)(release.wait))
    holder.start()
    wait_until(lambda: bulkhead.stats().active == 1)

    @hazina.bulkhead("b", registry=registry)
    async def task_work() -> str:
        return "task ran"

    async def main() -> str:
        waiting = asyncio.create_task(task_work())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        assert bulkhead.stats().queued == 1
        # Freed by the holder's thread: the grant crosses to this loop thread-safely.
        release.set()
        return await asyncio.wait_for(waiting, 2)

    assert asyncio.run(main()) == "task ran"
    holder.join()
    assert bulkhead.stats().admitted == 2


# -- keys -----------------------------------------------------------------------------


def test_each_key_has_its_own_slots(registry: hazina.Registry, release: threading.Event) -> None:
    """One key full does not stop another; the error names the key that was full."""

    @hazina.bulkhead("b", registry=registry, max_concurrent=1, key=lambda tenant: tenant)
    def work(tenant: str) -> str:
        if tenant == "busy":
            release.wait(10)
        return tenant

    holder = threading.Thread(target=work, args=("busy",))
    holder.start()
    wait_until(lambda: registry.bulkhead("b").stats().active == 1)
    assert work("other") == "other"
    with pytest.raises(hazina.BulkheadFull) as raised:
        work("busy")
    assert raised.value.key == "busy"
    release.set()
    holder.join()
    stats = registry.bulkhead("b").stats()
    assert (stats.admitted, stats.rejected, stats.active, stats.peak_active) == (2, 1, 0, 2)


def test_idle_keys_are_forgotten_past_max_keys(flavor: Flavor, registry: hazina.Registry) -> None:
    """Past ``max_keys`` the idle keys go, so memory stays bounded under many keys."""
    fn = hazina.bulkhead("b", registry=registry, max_concurrent=1, max_keys=10, key=lambda k: k)(
        flavor.define(lambda k: k)
    )
    for key in range(100):
        assert flavor.call(fn, key) == key
    assert len(registry.bulkhead("b").compartments.entries) <= 10
    assert registry.bulkhead("b").stats().admitted == 100


def test_a_busy_key_is_never_forgotten(registry: hazina.Registry, release: threading.Event) -> None:
    """A key with a running call keeps its count however many other keys come and go."""

    @hazina.bulkhead("b", registry=registry, max_concurrent=1, max_keys=2, key=lambda k: k)
    def work(key: int) -> int:
        if key == 0:
            release.wait(10)
        return key

    holder = threading.Thread(target=work, args=(0,))
    holder.start()
    wait_until(lambda: registry.bulkhead("b").stats().active == 1)
    for key in range(1, 50):
        work(key)
    with pytest.raises(hazina.BulkheadFull):
        work(0)
    release.set()
    holder.join()


def test_an_unhashable_key_is_a_type_error_naming_the_bulkhead(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A key function returning a list fails with a TypeError that says which bulkhead."""
    unhashable: Any = lambda k: [k]  # noqa: E731 - typed Any: the mistake under test
    fn = hazina.bulkhead("b", registry=registry, max_concurrent=1, key=unhashable)(
        flavor.define(lambda k: k)
    )
    with pytest.raises(TypeError, match="bulkhead 'b': the key \\[1\\] is not hashable"):
        flavor.call(fn, 1)


class BadRepr:
    """A key whose ``repr()`` raises; unhashable if ``hashable`` is false."""

    def __init__(self, hashable: bool = True) -> None:
        self.hashable = hashable

    def __hash__(self) -> int:
        if not self.hashable:
            raise TypeError("unhashable")
        return 1

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_a_refusal_for_a_key_whose_repr_raises_is_still_a_refusal(
    registry: hazina.Registry, release: threading.Event
) -> None:
    """Regression: refusing a key whose ``repr()`` raises raised that error instead of
    ``BulkheadFull`` (and an unhashable one, instead of the TypeError naming the
    bulkhead); the message now stands in for the repr."""
    key = BadRepr()

    @hazina.bulkhead("b", registry=registry, max_concurrent=1, key=lambda k: k)
    def hold(k: object) -> None:
        release.wait(10)

    holder = threading.Thread(target=hold, args=(key,))
    holder.start()
    wait_until(lambda: registry.bulkhead("b").stats().active == 1)
    with pytest.raises(hazina.BulkheadFull, match=r"repr\(\) raised") as raised:
        hold(key)
    assert raised.value.key is key
    with pytest.raises(TypeError, match=r"bulkhead .b.: the key .*repr\(\) raised"):
        hold(BadRepr(hashable=False))
    release.set()
    holder.join()


def test_reset_zeroes_the_counters_and_keeps_running_calls(release: threading.Event) -> None:
    """After reset() the counters restart, but a call still running still holds its slot."""
    registry = hazina.Registry()
    bulkhead = registry.bulkhead("b", max_concurrent=1)
    holder = threading.Thread(target=hazina.bulkhead("b", registry=registry)(release.wait))
    holder.start()
    wait_until(lambda: bulkhead.stats().active == 1)
    registry.reset()
    assert bulkhead.stats() == hazina.BulkheadStats(
        admitted=0, rejected=0, active=1, queued=0, peak_active=1, wait_time=0.0
    )
    with pytest.raises(hazina.BulkheadFull):
        hazina.bulkhead("b", registry=registry)(lambda: None)()
    release.set()
    holder.join()
    assert bulkhead.stats().active == 0


def test_a_refusal_is_logged_at_debug_only(
    caplog: pytest.LogCaptureFixture, release: threading.Event
) -> None:
    """A refusal is a per-call event: logged at DEBUG on hazina.bulkhead with its key."""
    registry = hazina.Registry()

    @hazina.bulkhead("b", registry=registry, max_concurrent=1, key=lambda k: k)
    def hold(key: str) -> None:
        release.wait(10)

    holder = threading.Thread(target=hold, args=("k",))
    holder.start()
    wait_until(lambda: registry.bulkhead("b").stats().active == 1)
    with (
        caplog.at_level(logging.DEBUG, logger="hazina.bulkhead"),
        pytest.raises(hazina.BulkheadFull),
    ):
        hold("k")
    release.set()
    holder.join()
    [record] = [r for r in caplog.records if r.name == "hazina.bulkhead"]
    assert record.levelno == logging.DEBUG
    assert (record.hazina_name, record.hazina_key) == ("b", "k")  # type: ignore[attr-defined]


def test_a_dry_run_bulkhead_counts_and_reports_refusals_but_runs_every_call(
    registry: hazina.Registry,
) -> None:
    """dry_run=True: a call that finds no free slot (and no room to queue) is counted as
    rejected and reported with dry_run=True, then runs at once, beyond the limit."""
    events: list[object] = []
    registry.subscribe(events.append)
    release = threading.Event()
    inside = threading.Barrier(3)

    @hazina.bulkhead("dry", registry=registry, max_concurrent=1, dry_run=True)
    def hold() -> str:
        inside.wait(5)
        release.wait(5)
        return "ok"

    threads = [threading.Thread(target=hold) for _ in range(3)]
    for thread in threads:
        thread.start()
    wait_until(lambda: registry.bulkhead("dry").stats().active == 3)
    release.set()
    for thread in threads:
        thread.join(5)
    stats = registry.bulkhead("dry").stats()
    assert (stats.admitted, stats.rejected, stats.peak_active) == (3, 2, 3)
    refusals = [event for event in events if isinstance(event, hazina.BulkheadRejected)]
    assert len(refusals) == 2
    assert all(event.dry_run for event in refusals)
