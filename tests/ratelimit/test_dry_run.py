"""A dry-run rate limiter: every decision made, counted and reported; no call refused or delayed."""

from __future__ import annotations

import pytest
from conftest import Flavor

import hazina
from hazina import ConfigurationError, RateLimitDelayed, RateLimitRejected
from hazina.testing import FakeClock


def test_refusals_are_counted_and_reported_but_every_call_runs(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """Over the limit, a dry-run limiter emits the refusal and lets the call run."""
    runs: list[str] = []

    def fetch(user: str) -> str:
        runs.append(user)
        return user

    fn = hazina.rate_limited("api", registry=registry, rate=2, key=lambda user: user, dry_run=True)(
        flavor.define(fetch)
    )
    for _ in range(5):
        assert flavor.call(fn, "ann") == "ann"
    assert runs == ["ann"] * 5
    stats = fn.policy.stats()
    assert (stats.allowed, stats.rejected) == (5, 3)
    assert events == [RateLimitRejected("api", "ann", 1, 0.5, dry_run=True)] * 3


def test_a_refused_call_takes_no_tokens(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """The limiter's state is what a real one's would be: refused calls take nothing."""

    def fetch() -> None:
        return None

    fn = hazina.rate_limited("api", registry=registry, rate=1, dry_run=True)(flavor.define(fetch))
    for _ in range(3):
        flavor.call(fn)
    clock.advance(1)
    assert fn.policy.status().remaining == pytest.approx(1.0)
    flavor.call(fn)
    assert fn.policy.stats().rejected == 2


def test_waits_are_counted_and_reported_but_never_slept(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, events: list[object]
) -> None:
    """With wait=True, a dry run reports the wait it would make and runs the call at once."""

    def fetch() -> str:
        return "done"

    fn = hazina.rate_limited("api", registry=registry, rate=1, wait=True, dry_run=True)(
        flavor.define(fetch)
    )
    start = clock.now()
    for _ in range(3):
        assert flavor.call(fn) == "done"
    assert clock.now() == start
    stats = fn.policy.stats()
    assert (stats.allowed, stats.waited, stats.wait_time, stats.rejected) == (3, 2, 3.0, 0)
    assert events == [
        RateLimitDelayed("api", None, 1, 1.0, dry_run=True),
        RateLimitDelayed("api", None, 1, 2.0, dry_run=True),
    ]


def test_acquire_and_try_acquire_admit_in_a_dry_run(registry: hazina.Registry) -> None:
    """acquire() never raises and try_acquire() answers True; both count the refusal."""
    limiter = registry.rate_limiter("api", rate=1, dry_run=True)
    limiter.acquire()
    limiter.acquire()
    assert limiter.try_acquire() is True
    stats = limiter.stats()
    assert (stats.allowed, stats.rejected) == (3, 2)


def test_a_real_limiters_events_say_dry_run_false(
    registry: hazina.Registry, events: list[object]
) -> None:
    """Without dry_run, refusals are real and their events say dry_run=False."""
    limiter = registry.rate_limiter("api", rate=1)
    limiter.acquire()
    assert limiter.try_acquire() is False
    with pytest.raises(hazina.RateLimitExceeded):
        limiter.acquire()
    assert [event.dry_run for event in events] == [False, False]  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", [1, "yes", None])
def test_dry_run_must_be_a_bool(registry: hazina.Registry, value: object) -> None:
    """dry_run takes True or False only, named in the error with the policy."""
    with pytest.raises(ConfigurationError, match=r"'api'.*dry_run.*True or False"):
        registry.rate_limiter("api", rate=1, dry_run=value)  # type: ignore[arg-type]
