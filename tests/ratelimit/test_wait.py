"""Waiting for a rate limit (``wait=True``): exact waits, ``max_wait``, arrival order, give-backs.

Sequential scenarios run sync and async through ``flavor`` on the fake clock, whose
sleeps move time. Scenarios with several waiters at once are inherently sync (threads)
or async (tasks); they use :class:`ManualClock`, on which a sleeper stays asleep until
the test moves time past its deadline.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import pytest

import hazina
from hazina.testing import FakeClock

if TYPE_CHECKING:
    from conftest import Flavor

Algorithm = Literal["token_bucket", "gcra", "sliding_window"]

#: Real seconds a helper thread may take before the test calls it stuck.
TIMEOUT = 10.0


class ManualClock:
    """Time moves only when the test says; sleeping threads block and sleeping tasks wait."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._changed = threading.Condition()
        self._tasks: list[tuple[float, asyncio.Future[None]]] = []
        self.sleeping = 0

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        with self._changed:
            deadline = self._now + seconds
            self.sleeping += 1
            self._changed.notify_all()
            try:
                assert self._changed.wait_for(lambda: self._now >= deadline, TIMEOUT)
            finally:
                self.sleeping -= 1

    async def asleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        waiter = (self._now + seconds, future)
        self._tasks.append(waiter)
        self.sleeping += 1
        try:
            await future
        finally:
            self.sleeping -= 1
            self._tasks.remove(waiter)

    def advance(self, seconds: float) -> None:
        """Move time on and wake every sleeper whose deadline it reaches."""
        with self._changed:
            self._now += seconds
            self._changed.notify_all()
        for deadline, future in self._tasks:
            if deadline <= self._now and not future.done():
                future.set_result(None)

    def wait_for_sleepers(self, count: int) -> None:
        """Block until ``count`` threads are asleep on this clock."""
        with self._changed:
            assert self._changed.wait_for(lambda: self.sleeping == count, TIMEOUT)


class StillClock(FakeClock):
    """A fake clock on which sleeping takes no time, so waiters pile up as if concurrent."""

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


class Interrupted(BaseException):
    """Raised by :class:`InterruptingClock` in the middle of a wait."""


class InterruptingClock(FakeClock):
    """A fake clock whose sleeps are interrupted (as by Ctrl-C, or a task's cancellation)."""

    def sleep(self, seconds: float) -> None:
        raise Interrupted

    async def asleep(self, seconds: float) -> None:
        raise Interrupted


class HeldClock(FakeClock):
    """A fake clock on which a sleeping task stays queued until cancelled; it records
    the clock reading at which each sleeper was due to run."""

    __slots__ = ("due",)

    def __init__(self, start: float = 1000.0) -> None:
        super().__init__(start)
        self.due: list[float] = []

    async def asleep(self, seconds: float) -> None:
        self.due.append(self.now() + seconds)
        await asyncio.Event().wait()


def limited(
    flavor: Flavor,
    registry: hazina.Registry,
    body: Callable[..., Any] = lambda *args, **kwargs: "ok",
    name: str = "api",
    **config: Any,
) -> Any:
    """``body`` as a sync or async operation under the rate limiter ``name``."""
    decorate: Any = hazina.rate_limited(name, registry=registry, **config)
    return decorate(flavor.define(body))


def take(flavor: Flavor, limiter: hazina.RateLimiter, key: object = None, cost: float = 1) -> None:
    """``limiter.acquire`` for the sync flavor, ``await limiter.aacquire`` for the async one."""
    flavor.call(limiter.aacquire if flavor.is_async else limiter.acquire, key, cost)


# -- one waiter at a time ------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["token_bucket", "gcra", "sliding_window"])
def test_waits_exactly_until_admitted_then_runs(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, algorithm: Algorithm
) -> None:
    """Over the limit, a waiting call sleeps exactly until its token is due, then runs."""
    runs: list[float] = []
    fn = limited(
        flavor,
        registry,
        lambda: runs.append(clock.now()),
        rate=2,
        per=10,
        wait=True,
        algorithm=algorithm,
    )
    flavor.call(fn)
    flavor.call(fn)

    flavor.call(fn)

    expected = 10 if algorithm == "sliding_window" else 5
    assert clock.sleeps == [pytest.approx(expected)]
    assert runs == [1000, 1000, pytest.approx(1000 + expected)]


def test_waiting_is_counted_and_reported(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """Each wait shows in ``waited`` and ``wait_time`` and as a RateLimitDelayed event."""
    fn = limited(flavor, registry, rate=1, per=2, wait=True, key=lambda user: user)
    flavor.call(fn, "alice")
    flavor.call(fn, "alice")
    flavor.call(fn, "alice")

    stats = fn.policy.stats()
    assert (stats.allowed, stats.waited, stats.rejected) == (3, 2, 0)
    assert stats.wait_time == pytest.approx(4)
    assert events == [
        hazina.RateLimitDelayed("api", "alice", 1, 2.0),
        hazina.RateLimitDelayed("api", "alice", 1, 2.0),
    ]


def test_acquire_waits_when_configured(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """``acquire`` / ``aacquire`` follow the limiter's ``wait`` setting, with the given cost."""
    limiter = registry.rate_limiter("api", rate=4, per=1, wait=True)
    take(flavor, limiter, "k", cost=4)

    take(flavor, limiter, "k", cost=2)

    assert clock.sleeps == [pytest.approx(0.5)]


def test_wait_beyond_max_wait_raises_at_once(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A call that would wait longer than ``max_wait`` is refused without sleeping at all."""
    fn = limited(flavor, registry, rate=1, per=10, wait=True, max_wait=5)
    flavor.call(fn)

    with pytest.raises(hazina.RateLimitExceeded) as caught:
        flavor.call(fn)

    assert caught.value.retry_after == pytest.approx(10)
    assert clock.sleeps == []
    assert fn.policy.stats().rejected == 1


def test_wait_within_max_wait_is_made(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A wait of exactly ``max_wait`` (or less) is waited out."""
    fn = limited(flavor, registry, rate=1, per=5, wait=True, max_wait=5)
    flavor.call(fn)

    assert flavor.call(fn) == "ok"
    assert clock.sleeps == [pytest.approx(5)]


def test_queued_waiters_push_back_later_callers(flavor: Flavor) -> None:
    """Each waiter reserves its token, so the next one queues behind it, and a caller who
    would wait past ``max_wait`` is told to come back after the whole queue."""
    clock = StillClock(1000.0)
    limiter = hazina.Registry(clock=clock).rate_limiter("api", rate=1, per=1, wait=True, max_wait=3)
    for _ in range(4):
        take(flavor, limiter)
    assert clock.sleeps == [pytest.approx(1), pytest.approx(2), pytest.approx(3)]
    assert limiter.try_acquire() is False

    with pytest.raises(hazina.RateLimitExceeded) as caught:
        take(flavor, limiter)

    assert caught.value.retry_after == pytest.approx(4)
    assert limiter.status().next_token_in == pytest.approx(4)


def test_interrupted_waiter_takes_no_tokens(flavor: Flavor) -> None:
    """A waiter interrupted while waiting (Ctrl-C, cancellation) hands its tokens back."""
    clock = InterruptingClock(1000.0)
    limiter = hazina.Registry(clock=clock).rate_limiter("api", rate=1, per=10, wait=True)
    take(flavor, limiter)

    with pytest.raises(Interrupted):
        take(flavor, limiter)

    assert limiter.status().next_token_in == pytest.approx(10)
    assert limiter.stats().waited == 0


def test_interrupted_sliding_window_waiter_frees_its_slot(flavor: Flavor) -> None:
    """The sliding window forgets the future slot an interrupted waiter had reserved."""
    clock = InterruptingClock(1000.0)
    registry = hazina.Registry(clock=clock)
    limiter = registry.rate_limiter("api", rate=1, per=10, wait=True, algorithm="sliding_window")
    take(flavor, limiter)

    with pytest.raises(Interrupted):
        take(flavor, limiter)

    status = limiter.status()
    assert (status.next_token_in, status.full_in) == (10, 10)


def test_one_key_waiting_does_not_hold_up_another(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Waiting is per key: another key's call is admitted at once."""
    limiter = registry.rate_limiter("api", rate=1, per=10, wait=True, key=lambda user: user)
    take(flavor, limiter, "alice")
    take(flavor, limiter, "alice")
    assert clock.sleeps == [pytest.approx(10)]

    take(flavor, limiter, "bob")
    assert clock.sleeps == [pytest.approx(10)]


@pytest.mark.parametrize("algorithm", ["token_bucket", "gcra", "sliding_window"])
def test_a_waiter_refused_by_the_second_limit_over_max_wait_takes_from_none(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, algorithm: Algorithm
) -> None:
    """With wait=True, a call whose wait on the second limit exceeds max_wait is refused and
    leaves both limits as they were."""
    limiter = registry.rate_limiter(
        "api", limits=["5/second", "6/minute"], algorithm=algorithm, wait=True, max_wait=2
    )
    for _ in range(5):
        take(flavor, limiter)
    clock.advance(1)
    take(flavor, limiter)
    before = limiter.status()

    with pytest.raises(hazina.RateLimitExceeded) as caught:
        take(flavor, limiter)

    assert caught.value.retry_after > 2
    assert limiter.status() == before
    assert limiter.stats().waited == 0
    assert clock.sleeps == []


# -- several waiters at once ---------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["token_bucket", "gcra", "sliding_window"])
@pytest.mark.parametrize("key", [None, lambda name: "shared"], ids=["unkeyed", "keyed"])
def test_waiting_tasks_are_served_in_arrival_order(
    registry: hazina.Registry,
    clock: FakeClock,
    algorithm: Algorithm,
    key: Callable[[str], str] | None,
) -> None:
    """Tasks queued on an empty limit run in the order they arrived, one interval apart,
    even though each wake-up could otherwise let a later task grab the token first."""
    order: list[str] = []

    @hazina.rate_limited(
        "api", registry=registry, rate=1, per=1, wait=True, algorithm=algorithm, key=key
    )
    async def call(name: str) -> None:
        order.append(name)

    async def scenario() -> None:
        await call("first")
        await asyncio.gather(*(call(name) for name in ("a", "b", "c", "d")))

    asyncio.run(scenario())

    assert order == ["first", "a", "b", "c", "d"]
    assert clock.sleeps == [pytest.approx(1)] * 4
    assert call.policy.stats().waited == 4


def test_waiting_threads_are_served_in_arrival_order() -> None:
    """Threads queued on an empty bucket each get the next token in turn: the second waits
    behind the first, and a newcomer cannot jump the queue."""
    clock = ManualClock()
    limiter = hazina.Registry(clock=clock).rate_limiter("api", rate=1, per=1, wait=True)
    limiter.acquire()
    admitted: list[str] = []

    def waiter(name: str) -> None:
        limiter.acquire()
        admitted.append(name)

    first = threading.Thread(target=waiter, args=("first",))
    first.start()
    clock.wait_for_sleepers(1)
    second = threading.Thread(target=waiter, args=("second",))
    second.start()
    clock.wait_for_sleepers(2)
    assert limiter.try_acquire() is False  # the newcomer is behind both

    clock.advance(1)
    first.join(TIMEOUT)
    assert admitted == ["first"]
    assert limiter.try_acquire() is False  # the next token is the second waiter's

    clock.advance(1)
    second.join(TIMEOUT)
    assert admitted == ["first", "second"]
    assert limiter.stats().waited == 2


def test_cancelled_waiting_task_takes_no_tokens() -> None:
    """A task cancelled while queued gives its reservation back: the next caller waits as if
    it had never queued, and stats do not count it."""
    clock = ManualClock()
    limiter = hazina.Registry(clock=clock).rate_limiter("api", rate=1, per=1, wait=True)

    async def scenario() -> None:
        await limiter.aacquire()
        queued = asyncio.create_task(limiter.aacquire())
        await asyncio.sleep(0)  # the task runs up to its wait
        assert clock.sleeping == 1
        assert limiter.status().next_token_in == pytest.approx(2)

        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued

        assert limiter.status().next_token_in == pytest.approx(1)
        clock.advance(1)
        assert limiter.try_acquire() is True

    asyncio.run(scenario())
    assert limiter.stats() == hazina.RateLimiterStats(2, 0, 0, 0.0, 0, 0)


@pytest.mark.parametrize("algorithm", ["token_bucket", "gcra", "sliding_window"])
def test_a_cancelled_waiter_gives_back_to_every_limit(algorithm: Algorithm) -> None:
    """A waiter queued under two limits and then cancelled leaves both limits as before."""
    clock = HeldClock()
    limiter = hazina.Registry(clock=clock).rate_limiter(
        "api", limits=["2/second", "3/minute"], algorithm=algorithm, wait=True
    )

    async def scenario() -> None:
        await limiter.aacquire()
        await limiter.aacquire()
        before = limiter.status()
        queued = asyncio.create_task(limiter.aacquire())
        await asyncio.sleep(0)
        assert limiter.status() != before
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert limiter.status() == before

    asyncio.run(scenario())
    assert len(clock.due) == 1
    assert limiter.stats().waited == 0


@pytest.mark.parametrize("algorithm", ["token_bucket", "gcra", "sliding_window"])
def test_cancelled_waiter_no_longer_lets_a_newcomer_into_the_next_waiters_slot(
    algorithm: Algorithm,
) -> None:
    """Regression (rate limiter review): with burst 1, cancelling the first of two queued
    waiters handed its slot to a newcomer scheduled at the same instant as the second; no two
    may be that close."""
    clock = HeldClock()
    limiter = hazina.Registry(clock=clock).rate_limiter(
        "api", rate=1, per=1, wait=True, algorithm=algorithm
    )

    async def scenario() -> None:
        await limiter.aacquire()
        first = asyncio.create_task(limiter.aacquire())
        await asyncio.sleep(0)
        second = asyncio.create_task(limiter.aacquire())
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        newcomer = asyncio.create_task(limiter.aacquire())
        await asyncio.sleep(0)
        second.cancel()
        newcomer.cancel()
        await asyncio.gather(second, newcomer, return_exceptions=True)

    asyncio.run(scenario())

    # Due times of: the cancelled waiter, the second waiter, the newcomer.
    assert len(clock.due) == 3
    _, second_due, newcomer_due = clock.due
    assert abs(newcomer_due - second_due) >= 1 - 1e-6
