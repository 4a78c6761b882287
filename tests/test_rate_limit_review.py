"""Adversarial review of the rate limiter: give-backs behind a queue, eviction, several limits."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal

import pytest

import hazina
from hazina.testing import FakeClock

if TYPE_CHECKING:
    from conftest import Flavor

Algorithm = Literal["token_bucket", "gcra", "sliding_window"]


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


def take(flavor: Flavor, limiter: hazina.RateLimiter, key: object = None, cost: float = 1) -> None:
    """``limiter.acquire`` for the sync flavor, ``await limiter.aacquire`` for the async one."""
    flavor.call(limiter.aacquire if flavor.is_async else limiter.acquire, key, cost)


@pytest.mark.parametrize("algorithm", ["token_bucket", "gcra", "sliding_window"])
def test_cancelling_a_waiter_with_others_queued_behind_never_exceeds_the_burst(
    algorithm: Algorithm,
) -> None:
    """Regression: with burst 1, cancelling the first of two queued waiters handed its slot
    to a newcomer scheduled at the same instant as the second; no two may be that close."""
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


def test_a_full_bucket_is_evicted_before_a_draining_least_recently_used_one(
    registry: hazina.Registry, clock: FakeClock
) -> None:
    """Regression: between sweeps a full bucket among the oldest few goes before the least
    recently used one that is still draining (which used to go, handing its key a full one)."""
    limiter = registry.rate_limiter("api", rate=1, per=1, burst=10, max_keys=4)
    limiter.acquire("a", cost=10)
    limiter.acquire("b", cost=10)
    limiter.acquire("c", cost=1)  # full again after 1 s
    limiter.acquire("d", cost=10)
    limiter.acquire("e", cost=10)  # nothing is full yet: "a" (least recent) goes
    clock.advance(1)

    limiter.acquire("f")  # "c" is full now; "b" still lacks 9 tokens

    assert limiter.status("b").remaining == pytest.approx(1)
    assert limiter.try_acquire("b", cost=5) is False


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
