"""Clocks: the system clock reads time at call time; the fake one moves only when told."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import freezegun
import pytest
from conftest import Flavor

import hazina
from hazina.testing import FakeClock, instant_waits

# -- SystemClock -------------------------------------------------------------------------


def test_system_clock_reads_time_monotonic_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """SystemClock().now() looks time.monotonic up on every read, so a patch made later is seen."""
    clock = hazina.SystemClock()
    monkeypatch.setattr(time, "monotonic", lambda: 1234.5)

    assert clock.now() == 1234.5


def test_freezegun_moves_the_system_clock() -> None:
    """Under freezegun, SystemClock().now() stands still and frozen.tick(5) moves it by 5."""
    clock = hazina.SystemClock()  # made before freezing, as the default clock is

    with freezegun.freeze_time("2024-01-01 12:00:00") as frozen:
        before = clock.now()
        assert clock.now() == before
        frozen.tick(5)
        assert clock.now() - before == pytest.approx(5.0)
        assert hazina.SystemClock().now() - before == pytest.approx(5.0)


def test_freezegun_drives_a_breaker_on_the_default_clock() -> None:
    """A breaker on a registry with the default clock reopens for probes when freezegun ticks."""
    registry = hazina.Registry()

    with freezegun.freeze_time("2024-01-01 12:00:00") as frozen:

        @hazina.circuit_breaker("payments", registry=registry, failure_threshold=1, open_for=30)
        def call() -> None:
            raise ConnectionError("down")

        with pytest.raises(ConnectionError):
            call()
        assert call.policy.state == "open"
        frozen.tick(29)
        assert call.policy.state == "open"
        frozen.tick(1)
        assert call.policy.state == "half_open"


def test_system_clock_sleep_uses_time_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """SystemClock().sleep() blocks through time.sleep, looked up at call time."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)

    hazina.SystemClock().sleep(0.25)

    assert slept == [0.25]


def test_system_clock_asleep_suspends_the_task() -> None:
    """SystemClock().asleep() is awaitable and lets other tasks run meanwhile."""
    order: list[str] = []

    async def other() -> None:
        order.append("other")

    async def main() -> None:
        task = asyncio.create_task(other())
        await hazina.SystemClock().asleep(0)
        order.append("after sleep")
        await task

    asyncio.run(main())

    assert order == ["other", "after sleep"]


def test_both_clocks_satisfy_the_clock_protocol() -> None:
    """SystemClock and FakeClock are hazina.Clock instances."""
    assert isinstance(hazina.SystemClock(), hazina.Clock)
    assert isinstance(FakeClock(), hazina.Clock)


def test_registry_uses_the_system_clock_by_default() -> None:
    """A Registry made without a clock reads the system clock."""
    assert isinstance(hazina.Registry().clock, hazina.SystemClock)


# -- FakeClock ---------------------------------------------------------------------------


def test_fake_clock_starts_where_told_and_stands_still() -> None:
    """A FakeClock reads its start (0 by default) until moved."""
    assert FakeClock().now() == 0.0
    clock = FakeClock(start=1000)

    assert clock.now() == 1000.0
    assert clock.now() == 1000.0


def test_fake_clock_advance_moves_time() -> None:
    """advance(seconds) moves the clock forward by exactly that much; zero is allowed."""
    clock = FakeClock(start=10)

    clock.advance(2.5)
    clock.advance(0)

    assert clock.now() == 12.5
    assert clock.sleeps == []


@pytest.mark.parametrize("seconds", [-1, -0.001])
def test_fake_clock_refuses_to_go_back(seconds: float) -> None:
    """advance() with a negative duration raises ValueError and leaves the time alone."""
    clock = FakeClock(start=10)

    with pytest.raises(ValueError, match="forward"):
        clock.advance(seconds)
    assert clock.now() == 10.0


def test_fake_clock_sleep_advances_and_records() -> None:
    """sleep() returns at once, having moved time and recorded the duration."""
    clock = FakeClock(start=0)

    clock.sleep(1.5)
    clock.sleep(2)

    assert clock.now() == 3.5
    assert clock.sleeps == [1.5, 2]


def test_fake_clock_asleep_advances_records_and_yields() -> None:
    """asleep() moves time, records the duration and is still a real suspension point."""
    clock = FakeClock(start=0)
    order: list[str] = []

    async def other() -> None:
        order.append("other")

    async def main() -> None:
        task = asyncio.create_task(other())
        await clock.asleep(4)
        order.append("after sleep")
        await task

    asyncio.run(main())

    assert clock.now() == 4.0
    assert clock.sleeps == [4]
    assert order == ["other", "after sleep"]


# -- instant_waits -----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def real_waits() -> Iterator[None]:
    """Each test starts with real waits and leaves the switch as it found it."""
    with instant_waits(False):
        yield


def waits_of_one_retry(flavor: Flavor, registry: hazina.Registry, clock: FakeClock) -> list[float]:
    """The sleeps a retry that fails once then succeeds makes on ``clock``."""
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("first attempt fails")
        return "ok"

    before = len(clock.sleeps)
    retried = hazina.retry(
        f"probe-{len(registry)}", registry=registry, attempts=2, initial=3, jitter=None
    )(flavor.define(flaky))
    assert flavor.call(retried) == "ok"
    return clock.sleeps[before:]


def test_retry_waits_on_the_clock_by_default(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Without instant waits, a retry sleeps on its registry's clock."""
    assert waits_of_one_retry(flavor, registry, clock) == [3.0]


def test_instant_waits_called_switches_on_until_switched_off(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """instant_waits() called plainly makes waits instant until instant_waits(False)."""
    instant_waits()

    assert waits_of_one_retry(flavor, registry, clock) == []
    assert waits_of_one_retry(flavor, registry, clock) == []

    instant_waits(False)

    assert waits_of_one_retry(flavor, registry, clock) == [3.0]


def test_instant_waits_as_a_context_manager_restores_on_exit(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Used with ``with``, instant_waits() is on inside the block and off again after it."""
    with instant_waits():
        assert waits_of_one_retry(flavor, registry, clock) == []

    assert waits_of_one_retry(flavor, registry, clock) == [3.0]


def test_instant_waits_context_manager_restores_the_previous_setting(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A nested instant_waits(False) block restores instant waits, not real ones, on exit."""
    instant_waits()
    with instant_waits(False):
        assert waits_of_one_retry(flavor, registry, clock) == [3.0]

    assert waits_of_one_retry(flavor, registry, clock) == []


def test_instant_waits_restores_even_when_the_block_raises(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Leaving the with-block by an exception still restores the previous setting."""
    with pytest.raises(RuntimeError), instant_waits():
        raise RuntimeError("boom")

    assert waits_of_one_retry(flavor, registry, clock) == [3.0]
