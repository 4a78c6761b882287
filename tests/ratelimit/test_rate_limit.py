"""The rate limiter's contract, as behaviour: buckets, algorithms, limits, keys, costs, status.

Every scenario runs sync and async through the ``flavor`` fixture; time moves only on
the fake clock. Waiting, concurrency, the key bound and configuration errors have
files of their own in this folder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import freezegun
import pytest
from conftest import SteppingClock

import hazina
from hazina.testing import FakeClock

if TYPE_CHECKING:
    from conftest import Flavor

Limited = hazina.Decorated[..., Any, hazina.RateLimiter]
BUCKETS: list[Algorithm] = ["token_bucket", "gcra"]
ALGORITHMS: list[Algorithm] = ["token_bucket", "gcra", "sliding_window"]

Algorithm = Literal["token_bucket", "gcra", "sliding_window"]


def limited(
    flavor: Flavor,
    registry: hazina.Registry,
    body: Callable[..., Any] = lambda *args, **kwargs: "ok",
    name: str = "api",
    **config: Any,
) -> Limited:
    """``body`` as a sync or async operation under the rate limiter ``name``."""
    decorate: Any = hazina.rate_limited(name, registry=registry, **config)
    fn: Limited = decorate(flavor.define(body))
    return fn


def take(flavor: Flavor, limiter: hazina.RateLimiter, key: object = None, cost: float = 1) -> None:
    """``limiter.acquire`` for the sync flavor, ``await limiter.aacquire`` for the async one."""
    acquire = limiter.aacquire if flavor.is_async else limiter.acquire
    flavor.call(acquire, key, cost)


def refused(
    flavor: Flavor, fn: Callable[..., Any], *args: Any, **kwargs: Any
) -> hazina.RateLimitExceeded:
    """Call ``fn`` and return the ``RateLimitExceeded`` it must raise."""
    with pytest.raises(hazina.RateLimitExceeded) as caught:
        flavor.call(fn, *args, **kwargs)
    return caught.value


def admitted_count(flavor: Flavor, fn: Callable[..., Any], attempts: int, *args: Any) -> int:
    """How many of ``attempts`` calls of ``fn`` were admitted (the rest raised)."""
    admitted = 0
    for _ in range(attempts):
        try:
            flavor.call(fn, *args)
        except hazina.RateLimitExceeded:
            continue
        admitted += 1
    return admitted


# -- the token bucket: the ported contract scenario ------------------------------------


@pytest.mark.parametrize("algorithm", BUCKETS)
def test_limit_seven_refilling_three_per_period(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, algorithm: Algorithm
) -> None:
    """Burst 7, 3 per 10 s: 5 taken, 3 refused until exactly when 1 more token is in,
    5 available after one period, and never more than 7 however long it rests."""
    limiter = registry.rate_limiter("api", rate=3, per=10, burst=7, algorithm=algorithm)

    take(flavor, limiter, cost=5)
    assert limiter.status().remaining == pytest.approx(2)
    with pytest.raises(hazina.RateLimitExceeded) as caught:
        take(flavor, limiter, cost=3)
    assert caught.value.retry_after == pytest.approx(10 / 3)
    assert limiter.status().remaining == pytest.approx(2)  # the refusal took nothing

    clock.advance(10)
    assert limiter.status().remaining == pytest.approx(5)
    take(flavor, limiter, cost=5)
    with pytest.raises(hazina.RateLimitExceeded):
        take(flavor, limiter, cost=1)

    clock.advance(10_000)
    assert limiter.status().remaining == pytest.approx(7)
    take(flavor, limiter, cost=7)
    with pytest.raises(hazina.RateLimitExceeded):
        take(flavor, limiter, cost=1)


@pytest.mark.parametrize("algorithm", BUCKETS)
def test_decorated_calls_admit_the_burst_then_refuse(
    flavor: Flavor, registry: hazina.Registry, algorithm: Algorithm
) -> None:
    """A decorated function runs for the first ``burst`` calls and then raises without running."""
    runs: list[int] = []
    fn = limited(flavor, registry, runs.append, rate=2, per=60, burst=5, algorithm=algorithm)

    assert admitted_count(flavor, fn, 8, 1) == 5
    assert len(runs) == 5


@pytest.mark.parametrize("algorithm", BUCKETS)
def test_retry_after_is_when_the_missing_token_arrives(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, algorithm: Algorithm
) -> None:
    """``retry_after`` is exact: refused just before it, admitted at it."""
    fn = limited(flavor, registry, rate=4, per=2, burst=1, algorithm=algorithm)
    flavor.call(fn)

    error = refused(flavor, fn)
    assert error.retry_after == pytest.approx(0.5)
    assert error.name == "api"
    assert error.key is None

    clock.advance(0.49)
    assert refused(flavor, fn).retry_after == pytest.approx(0.01)
    clock.advance(0.01)
    assert flavor.call(fn) == "ok"


def test_refill_is_continuous_and_fractional(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Tokens refill continuously, so a third of a period brings back a third of the rate."""
    limiter = registry.rate_limiter("api", rate=3, per=1, burst=3)
    take(flavor, limiter, cost=3)

    clock.advance(1 / 9)
    assert limiter.status().remaining == pytest.approx(1 / 3)
    with pytest.raises(hazina.RateLimitExceeded):
        take(flavor, limiter, cost=1)
    clock.advance(2 / 9)
    take(flavor, limiter, cost=1)


def test_burst_defaults_to_rate(flavor: Flavor, registry: hazina.Registry) -> None:
    """Without ``burst`` the bucket holds ``rate`` tokens."""
    fn = limited(flavor, registry, rate=4, per=3600)

    assert admitted_count(flavor, fn, 6) == 4
    assert fn.policy.config.burst == 4


def test_per_defaults_to_one_second(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """``rate`` alone means that many per second."""
    fn = limited(flavor, registry, rate=2)
    assert admitted_count(flavor, fn, 3) == 2

    clock.advance(0.5)
    assert admitted_count(flavor, fn, 2) == 1


def test_gcra_admits_what_the_token_bucket_admits(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """GCRA and the token bucket are the same meter: one sequence, the same verdicts."""
    bucket = limited(flavor, registry, name="bucket", rate=3, per=2, burst=4)
    gcra = limited(flavor, registry, name="gcra", rate=3, per=2, burst=4, algorithm="gcra")
    steps = [0, 0, 0, 0, 0, 0.3, 0.4, 0.1, 1.5, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0]

    verdicts: dict[str, list[bool]] = {"bucket": [], "gcra": []}
    for step in steps:
        clock.advance(step)
        for name, fn in (("bucket", bucket), ("gcra", gcra)):
            verdicts[name].append(admitted_count(flavor, fn, 1) == 1)

    assert verdicts["bucket"] == verdicts["gcra"]
    assert verdicts["bucket"].count(True) == 11


# -- the sliding window -------------------------------------------------------------------


def test_sliding_window_admits_at_most_rate_in_any_window(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """No more than ``rate`` calls in any ``per`` seconds: a slot frees when its call leaves."""
    fn = limited(flavor, registry, rate=3, per=10, algorithm="sliding_window")
    flavor.call(fn)
    clock.advance(4)
    flavor.call(fn)
    flavor.call(fn)

    clock.advance(5.9)
    assert refused(flavor, fn).retry_after == pytest.approx(0.1)
    clock.advance(0.1)
    flavor.call(fn)  # the first call left the window
    assert refused(flavor, fn).retry_after == pytest.approx(4)


def test_sliding_window_has_no_double_burst_at_a_window_edge(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Where a token bucket admits a second burst as it refills, the sliding window does not."""
    bucket = limited(flavor, registry, name="bucket", rate=5, per=10)
    window = limited(flavor, registry, name="window", rate=5, per=10, algorithm="sliding_window")
    assert admitted_count(flavor, bucket, 5) == 5
    assert admitted_count(flavor, window, 5) == 5

    clock.advance(9.99)

    assert admitted_count(flavor, bucket, 5) == 4
    assert admitted_count(flavor, window, 5) == 0


def test_sliding_window_retry_after_counts_costs(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A costly call waits until enough earlier cost has left the window, oldest first."""
    limiter = registry.rate_limiter("api", rate=10, per=60, algorithm="sliding_window")
    take(flavor, limiter, cost=4)
    clock.advance(10)
    take(flavor, limiter, cost=3)
    clock.advance(10)
    take(flavor, limiter, cost=3)

    with pytest.raises(hazina.RateLimitExceeded) as caught:
        take(flavor, limiter, cost=6)
    # 4 leave at 60 s, 3 more at 70 s: only then is there room for 6.
    assert caught.value.retry_after == pytest.approx(50)
    assert limiter.status().remaining == 0


# -- several limits -------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_limit_must_admit_and_a_refusal_takes_from_none(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, algorithm: Algorithm
) -> None:
    """With 2/second and 5/minute, the per-second limit refuses first, then the per-minute
    one; refused calls leave both limits as they were."""
    fn = limited(flavor, registry, limits=["2/second", "5/minute"], algorithm=algorithm)

    assert admitted_count(flavor, fn, 3) == 2
    minute = fn.policy.status().limits[1]
    assert minute.remaining == pytest.approx(3)  # the refused third call took nothing

    clock.advance(1)
    assert admitted_count(flavor, fn, 3) == 2
    clock.advance(1)
    assert admitted_count(flavor, fn, 3) == 1
    status = fn.policy.status()
    assert status.remaining < 1
    assert status.remaining == status.limits[1].remaining  # the per-minute limit refused
    assert status.limits[0].remaining == pytest.approx(1)


def test_retry_after_is_the_largest_over_the_limits(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A call refused by two limits may retry when the slower one admits it."""
    fn = limited(flavor, registry, limits=[hazina.Limit(1, 1), hazina.Limit(1, 60)])
    flavor.call(fn)

    assert refused(flavor, fn).retry_after == pytest.approx(60)


def test_limits_accept_limit_objects_with_a_burst(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A ``Limit`` with its own burst lets that many through at once under a slower rate."""
    fn = limited(flavor, registry, limits=[hazina.Limit(1, 10, burst=3), "100/hour"])

    assert admitted_count(flavor, fn, 5) == 3
    clock.advance(10)
    assert admitted_count(flavor, fn, 5) == 1


# -- keys -----------------------------------------------------------------------------------


def test_each_key_has_its_own_limit(flavor: Flavor, registry: hazina.Registry) -> None:
    """One user exhausting their limit leaves other users' limits whole."""
    fn = limited(
        flavor, registry, lambda user, query: query, rate=2, per=60, key=lambda user, q: user
    )

    assert admitted_count(flavor, fn, 3, "alice", "q") == 2
    assert admitted_count(flavor, fn, 3, "bob", "q") == 2
    error = refused(flavor, fn, "alice", "q")
    assert error.key == "alice"
    assert fn.policy.stats().tracked_keys == 2


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_keyed_limits_refill_per_key(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, algorithm: Algorithm
) -> None:
    """A key's tokens come back on its own schedule, whatever the algorithm."""
    fn = limited(flavor, registry, rate=1, per=10, key=lambda user: user, algorithm=algorithm)
    flavor.call(fn, "alice")
    clock.advance(5)
    flavor.call(fn, "bob")

    clock.advance(5)
    assert flavor.call(fn, "alice") == "ok"
    assert refused(flavor, fn, "bob").retry_after == pytest.approx(5)


def test_key_receives_keyword_arguments(flavor: Flavor, registry: hazina.Registry) -> None:
    """The key function sees the call's arguments as given, keywords included."""
    fn = limited(flavor, registry, rate=1, per=60, key=lambda *, tenant: tenant)

    flavor.call(fn, tenant="a")
    flavor.call(fn, tenant="b")
    assert refused(flavor, fn, tenant="a").key == "a"


def test_key_function_of_a_method_receives_the_instance(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """On a method, the key function gets ``self`` first, like the method itself."""
    seen: list[object] = []

    def user_key(client: object, user: str) -> str:
        seen.append(client)
        return user

    class Client:
        fetch = limited(flavor, registry, lambda self, user: user, rate=1, per=60, key=user_key)

    first, second = Client(), Client()
    assert flavor.call(first.fetch, "alice") == "alice"
    assert flavor.call(second.fetch, "bob") == "bob"
    assert refused(flavor, second.fetch, "alice").key == "alice"  # shared across instances
    assert seen[:2] == [first, second]


def test_calls_whose_key_is_none_share_the_unkeyed_limit(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A key function answering ``None`` puts the call under the limit of unkeyed calls."""
    fn = limited(flavor, registry, rate=1, per=60, key=lambda user: user)
    flavor.call(fn, None)

    assert refused(flavor, fn, None).key is None
    with pytest.raises(hazina.RateLimitExceeded):
        take(flavor, fn.policy)
    assert fn.policy.stats().tracked_keys == 0


def test_unhashable_key_is_a_clear_type_error(flavor: Flavor, registry: hazina.Registry) -> None:
    """A key function returning an unhashable value raises TypeError naming the limiter."""
    fn = limited(flavor, registry, rate=1, per=60, key=lambda user: [user])

    with pytest.raises(TypeError, match=r"rate_limiter 'api'.*\['alice'\].*hashable"):
        flavor.call(fn, "alice")


# -- cost -----------------------------------------------------------------------------------


def test_constant_cost_takes_that_many_tokens(flavor: Flavor, registry: hazina.Registry) -> None:
    """With ``cost=2`` a bucket of 5 admits two calls."""
    fn = limited(flavor, registry, rate=5, per=60, cost=2)

    assert admitted_count(flavor, fn, 4) == 2
    assert fn.policy.status().remaining == pytest.approx(1)


def test_cost_function_of_the_arguments(flavor: Flavor, registry: hazina.Registry) -> None:
    """A cost function is given the call's arguments and charged what it returns."""
    fn = limited(flavor, registry, lambda batch: len(batch), rate=10, per=60, cost=len)

    assert flavor.call(fn, "abcdef") == 6
    assert refused(flavor, fn, "abcde").retry_after == pytest.approx(6)
    assert flavor.call(fn, "abcd") == 4


def test_cost_function_above_capacity_is_never_admitted(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A computed cost above the capacity raises ValueError naming limiter, cost and capacity,
    without running the function or taking tokens (regression: a peer admitted it)."""
    runs: list[int] = []
    fn = limited(flavor, registry, runs.append, rate=10, per=60, burst=5, cost=lambda n: n)

    with pytest.raises(ValueError, match=r"rate_limiter 'api'.*cost 6.*capacity 5"):
        flavor.call(fn, 6)
    assert runs == []
    assert fn.policy.status().remaining == 5


def test_cost_above_capacity_through_acquire(flavor: Flavor, registry: hazina.Registry) -> None:
    """``acquire`` refuses an impossible cost with ValueError rather than waiting forever."""
    limiter = registry.rate_limiter("api", rate=1, per=60, burst=3, wait=True)

    with pytest.raises(ValueError, match="capacity 3"):
        take(flavor, limiter, cost=4)


def test_zero_cost_is_always_admitted(flavor: Flavor, registry: hazina.Registry) -> None:
    """A call that costs nothing runs even when no token is left."""
    fn = limited(flavor, registry, rate=1, per=60, cost=lambda free: 0 if free else 1)
    flavor.call(fn, False)

    assert flavor.call(fn, True) == "ok"
    refused(flavor, fn, False)


def test_a_cost_of_zero_is_a_free_call_wherever_it_is_given(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """Regression (issue 10): ``cost=0`` was refused as a setting but admitted from
    ``acquire``, ``try_acquire`` and a cost function; one rule now: 0 is a free call,
    admitted even with no token left, counted in ``allowed``."""
    free = limited(flavor, registry, rate=1, per=60, cost=0)
    limiter = free.policy
    limiter.acquire()  # the only token

    assert flavor.call(free) == "ok"
    assert flavor.call(free) == "ok"
    take(flavor, limiter, cost=0)
    assert limiter.try_acquire(cost=0)
    assert limiter.stats().allowed == 5
    assert not limiter.try_acquire()


class BadRepr:
    """A hashable key whose ``repr()`` raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_a_refusal_for_a_key_whose_repr_raises_is_still_a_refusal(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """Regression (issue 10): refusing a key whose ``repr()`` raises raised that error instead
    of ``RateLimitExceeded``; the message now stands in for the repr."""
    key = BadRepr()
    fn = limited(flavor, registry, rate=1, per=60, key=lambda: key)
    flavor.call(fn)

    error = refused(flavor, fn)

    assert error.key is key
    assert "repr() raised" in str(error)


class StoppedClock(FakeClock):
    """A fake clock whose sleeps take no time at all, so waiters pile up in a queue."""

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def test_a_wait_beyond_the_longest_sleep_is_refused_not_slept(flavor: Flavor) -> None:
    """Regression (issue 10): behind a long enough queue of waiters a wait grew past what
    ``time.sleep`` accepts and failed with OverflowError; it is refused like any wait too
    long to make."""
    import threading

    registry = hazina.Registry(clock=StoppedClock())
    period = threading.TIMEOUT_MAX * 0.6
    limiter = registry.rate_limiter("api", rate=1, per=period, wait=True)
    take(flavor, limiter)
    take(flavor, limiter)  # queued one period ahead

    with pytest.raises(hazina.RateLimitExceeded) as caught:
        take(flavor, limiter)  # would wait two periods
    assert caught.value.retry_after == pytest.approx(2 * period)


def test_negative_or_non_numeric_cost_is_an_error(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A cost function returning a negative number or a non-number is a bug, reported as such."""
    fn = limited(flavor, registry, rate=5, per=60, cost=lambda cost: cost)

    with pytest.raises(ValueError, match="negative"):
        flavor.call(fn, -1)
    with pytest.raises(TypeError, match="cost must be a finite number"):
        flavor.call(fn, "3")
    with pytest.raises(TypeError, match="cost must be a finite number"):
        flavor.call(fn, True)


# -- status ----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_status_of_a_fresh_limiter(registry: hazina.Registry, algorithm: Algorithm) -> None:
    """A limiter nobody used is full: everything remains, nothing to wait for."""
    limiter = registry.rate_limiter("api", rate=4, per=2, algorithm=algorithm)

    status = limiter.status()

    assert status == hazina.RateLimitStatus(
        key=None,
        remaining=4,
        next_token_in=0,
        full_in=0,
        limits=(hazina.LimitStatus(hazina.Limit(4, 2), 4, 0, 0),),
    )


@pytest.mark.parametrize("algorithm", BUCKETS)
def test_status_tells_next_token_and_full_again(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock, algorithm: Algorithm
) -> None:
    """Empty: the next token is one interval away and the bucket full after ``burst`` of them."""
    limiter = registry.rate_limiter("api", rate=2, per=1, burst=4, algorithm=algorithm)
    take(flavor, limiter, cost=4)

    status = limiter.status()
    assert status.remaining == 0
    assert status.next_token_in == pytest.approx(0.5)
    assert status.full_in == pytest.approx(2)

    clock.advance(0.75)
    status = limiter.status()
    assert status.remaining == pytest.approx(1.5)
    assert status.next_token_in == 0
    assert status.full_in == pytest.approx(1.25)


def test_status_over_several_limits(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """``remaining`` is the smallest over the limits, the waits the largest; each limit shows."""
    limiter = registry.rate_limiter("api", limits=["10/second", "20/minute"])
    take(flavor, limiter, cost=10)

    status = limiter.status()

    assert status.remaining == 0
    assert [limit.remaining for limit in status.limits] == [0, 10]
    assert status.next_token_in == pytest.approx(0.1)
    assert status.full_in == pytest.approx(30)


def test_status_of_a_key_does_not_track_it(registry: hazina.Registry) -> None:
    """Asking about an unknown key reads a full bucket and does not start tracking it."""
    limiter = registry.rate_limiter("api", rate=3, per=60, key=lambda user: user)
    limiter.acquire("alice")

    assert limiter.status("bob").remaining == 3
    assert limiter.status("alice").remaining == 2
    assert limiter.status("alice").key == "alice"
    assert limiter.stats().tracked_keys == 1


def test_sliding_window_status(flavor: Flavor, registry: hazina.Registry, clock: FakeClock) -> None:
    """The window's next slot frees when its oldest call leaves; it is empty after the newest."""
    limiter = registry.rate_limiter("api", rate=2, per=10, algorithm="sliding_window")
    take(flavor, limiter)
    clock.advance(3)
    take(flavor, limiter)

    status = limiter.status()
    assert (status.remaining, status.next_token_in, status.full_in) == (0, 7, 10)


# -- policy API, stats and events ---------------------------------------------------------


def test_try_acquire_answers_without_raising(registry: hazina.Registry) -> None:
    """``try_acquire`` takes tokens when it can and says ``False`` (counted) when not."""
    limiter = registry.rate_limiter("api", rate=2, per=60)

    assert [limiter.try_acquire() for _ in range(3)] == [True, True, False]
    assert limiter.try_acquire("other-key")
    assert limiter.stats().rejected == 1


def test_try_acquire_never_waits(registry: hazina.Registry, clock: FakeClock) -> None:
    """Even a limiter configured to wait answers ``try_acquire`` at once."""
    limiter = registry.rate_limiter("api", rate=1, per=60, wait=True)
    limiter.acquire()

    assert limiter.try_acquire() is False
    assert clock.sleeps == []


def test_stats_count_allowed_and_rejected(flavor: Flavor, registry: hazina.Registry) -> None:
    """Admitted and refused calls are counted apart, whichever path took them."""
    fn = limited(flavor, registry, rate=3, per=60, key=lambda user: user)
    admitted_count(flavor, fn, 5, "alice")
    admitted_count(flavor, fn, 1, "bob")

    assert fn.policy.stats() == hazina.RateLimiterStats(
        allowed=4, rejected=2, waited=0, wait_time=0.0, tracked_keys=2, evicted_keys=0
    )


def test_stats_fields_are_the_documented_ones(registry: hazina.Registry) -> None:
    """The stats snapshot has exactly the fields DESIGN fixes, and shows in the registry."""
    limiter = registry.rate_limiter("api", rate=1)

    assert list(registry.snapshot()["rate_limiter"]["api"]) == [
        "allowed",
        "rejected",
        "waited",
        "wait_time",
        "tracked_keys",
        "evicted_keys",
        "backend_errors",
    ]
    assert registry.stats()["rate_limiter"]["api"] == limiter.stats()


def test_rejection_event(flavor: Flavor, registry: hazina.Registry, events: list[object]) -> None:
    """A refusal is reported with the limiter, the key, the cost and the retry_after."""
    fn = limited(flavor, registry, rate=1, per=4, key=lambda user: user, cost=1)
    flavor.call(fn, "alice")
    assert events == []

    refused(flavor, fn, "alice")

    assert events == [hazina.RateLimitRejected("api", "alice", 1, 4.0)]


def test_reset_refills_and_zeroes(flavor: Flavor, registry: hazina.Registry) -> None:
    """``reset`` makes every key full again and the counters zero; the config stays."""
    fn = limited(flavor, registry, rate=1, per=60, key=lambda user: user)
    flavor.call(fn, "alice")
    refused(flavor, fn, "alice")
    flavor.call(fn, None)

    registry.reset()

    assert fn.policy.stats() == hazina.RateLimiterStats(0, 0, 0, 0.0, 0, 0)
    assert flavor.call(fn, "alice") == "ok"
    assert flavor.call(fn, None) == "ok"
    assert fn.policy.config.rate == 1


# -- the registry -----------------------------------------------------------------------------


def test_factory_returns_the_same_limiter(registry: hazina.Registry) -> None:
    """Asking again by name, with or without the same configuration, gives one instance."""
    limiter = registry.rate_limiter("api", rate=10)

    assert registry.rate_limiter("api") is limiter
    assert registry.rate_limiter("api", rate=10, per=1, burst=10) is limiter
    assert registry.rate_limiter("api", limits=["10/second"]) is limiter
    assert registry.get("rate_limiter", "api") is limiter


def test_shared_name_shares_the_limit(flavor: Flavor, registry: hazina.Registry) -> None:
    """Two functions decorated with one name draw from one bucket."""
    first = limited(flavor, registry, rate=2, per=60)
    second = limited(flavor, registry)

    flavor.call(first)
    flavor.call(second)
    assert first.policy is second.policy
    refused(flavor, first)


def test_different_configuration_for_an_existing_name_is_refused(
    registry: hazina.Registry,
) -> None:
    """Reusing a name with another rate raises instead of silently ignoring it."""
    registry.rate_limiter("api", rate=10)

    with pytest.raises(hazina.ConfigurationError, match="'api' already exists"):
        registry.rate_limiter("api", rate=20)


def test_bare_decorator_needs_an_existing_limiter(registry: hazina.Registry) -> None:
    """``@rate_limited`` with no rate has nothing to go on: ConfigurationError, no default."""

    def operation() -> None:
        """A function to decorate."""

    with pytest.raises(hazina.ConfigurationError, match="no default"):
        hazina.rate_limited(registry=registry)(operation)
    assert len(registry) == 0


def test_retry_waits_out_a_rate_limit(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """A retry stacked over a rate limit waits the limiter's exact retry_after, then succeeds."""
    inner = limited(flavor, registry, rate=1, per=5)
    outer: Any = hazina.retry("r", registry=registry, attempts=2, initial=0.1, jitter=None)(inner)
    flavor.call(outer)

    assert flavor.call(outer) == "ok"
    assert clock.sleeps == [pytest.approx(5)]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_system_clock_follows_freezegun(flavor: Flavor, algorithm: Algorithm) -> None:
    """On the real clock (the default), time moved by freezegun refills the bucket."""
    with freezegun.freeze_time("2024-01-01") as frozen:
        fn = limited(flavor, hazina.Registry(), rate=1, per=10, algorithm=algorithm)
        flavor.call(fn)
        assert refused(flavor, fn).retry_after == pytest.approx(10)

        frozen.tick(10)

        assert flavor.call(fn) == "ok"


# -- the clock stepping back -------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("keyed", [False, True], ids=["shared", "keyed"])
def test_a_drained_limit_is_not_stuck_when_the_clock_steps_back(
    flavor: Flavor, stepping_clock: SteppingClock, algorithm: Algorithm, keyed: bool
) -> None:
    """Regression (issue 10): a clock stepping back (freezegun's freeze_time ending) left a
    drained bucket drained for as long as the step; a step back now counts as no time
    passing, so the limit refills from where it stood."""
    registry = hazina.Registry(clock=stepping_clock)
    config: dict[str, Any] = {"key": lambda: "user"} if keyed else {}
    fn = limited(flavor, registry, rate=2, per=10, algorithm=algorithm, **config)
    flavor.call(fn)
    stepping_clock.advance(2)
    flavor.call(fn)
    assert refused(flavor, fn).retry_after == pytest.approx(
        3 if algorithm != "sliding_window" else 8
    )

    stepping_clock.step_back(1e9)

    wait = refused(flavor, fn).retry_after
    assert wait == pytest.approx(3 if algorithm != "sliding_window" else 8)
    stepping_clock.advance(wait)
    assert flavor.call(fn) == "ok"


def test_a_limit_counts_the_time_before_the_step_back(
    flavor: Flavor, stepping_clock: SteppingClock
) -> None:
    """Time that passed before the clock stepped back still refilled the bucket: only the
    step itself counts as no time passing."""
    fn = limited(flavor, hazina.Registry(clock=stepping_clock), rate=1, per=10)
    flavor.call(fn)
    stepping_clock.advance(6)
    assert refused(flavor, fn).retry_after == pytest.approx(4)

    stepping_clock.step_back(1e9)

    assert refused(flavor, fn).retry_after == pytest.approx(4)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_leaving_freeze_time_leaves_no_limit_drained_for_decades(
    flavor: Flavor, algorithm: Algorithm
) -> None:
    """Regression (issue 10): on the real clock, a limit drained inside freezegun's
    freeze_time stayed drained for decades after the block (the monotonic clock stepped back
    from 2024 to the machine's uptime); now it refills as if the step took no time."""
    with freezegun.freeze_time("2024-01-01"):
        fn = limited(flavor, hazina.Registry(), rate=1, per=10, algorithm=algorithm)
        flavor.call(fn)

    retry_after = refused(flavor, fn).retry_after

    assert retry_after == pytest.approx(10, abs=1e-3)
