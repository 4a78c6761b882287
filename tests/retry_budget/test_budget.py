"""Retry budgets: retries of every policy sharing one add at most ``ratio`` of the first
attempts of the last ``window`` seconds plus a reserve, exactly, under threads and tasks.

Time only moves on the fake clock; scenarios run sync and async through ``flavor``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from interrupts import fork_children, hammered

import hazina
from hazina.testing import FakeClock, instant_waits

if TYPE_CHECKING:
    from conftest import Flavor, SteppingClock


def succeed() -> str:
    return "ok"


def fail() -> str:
    raise ConnectionError("down")


@pytest.fixture(autouse=True)
def no_waits() -> Iterator[None]:
    """Retries here wait nothing (initial=0 as well), so only the budget decides."""
    with instant_waits():
        yield


def under_retry(
    flavor: Flavor,
    registry: hazina.Registry,
    body: Callable[[], Any],
    name: str = "dep",
    budget: str = "shared",
    **config: Any,
) -> Any:
    """``body`` under the retry policy ``name`` that draws on ``budget``."""
    config = {"attempts": 2, "initial": 0, "jitter": None, **config}
    decorate: Any = hazina.retry(name, registry=registry, budget=budget, **config)
    return decorate(flavor.define(body))


def call_failing(flavor: Flavor, fn: Any, times: int) -> list[BaseException]:
    """Call an always-failing ``fn`` ``times`` times; the errors it raised."""
    errors: list[BaseException] = []
    for _ in range(times):
        with pytest.raises(ConnectionError) as raised:
            flavor.call(fn)
        errors.append(raised.value)
    return errors


def spent(error: BaseException) -> bool:
    """Whether the give-up note on ``error`` says the budget was spent."""
    return any("retry budget 'shared' spent" in note for note in getattr(error, "__notes__", []))


def test_retries_are_capped_at_the_ratio_of_first_attempts(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """With no reserve, each retry needs two first attempts in the window (ratio 0.5)."""
    registry.retry_budget("shared", ratio=0.5, min_per_second=0)
    good = under_retry(flavor, registry, succeed, name="good")
    bad = under_retry(flavor, registry, fail, name="bad")
    for _ in range(4):
        flavor.call(good)

    # Failing calls bring first attempts too: the 5th finds 4 retries and 9 attempts
    # (room for 4.5), the 6th 10 (room for 5), the 7th 5 retries and 11 attempts.
    errors = call_failing(flavor, bad, 7)

    assert [spent(error) for error in errors] == [False] * 4 + [True, False, True]
    assert registry.retry_budget("shared").stats() == hazina.RetryBudgetStats(
        attempts=11, retries=5, refused=2
    )


def test_a_refused_retry_gives_up_like_any_other(
    flavor: Flavor, registry: hazina.Registry, events: list[object]
) -> None:
    """The error of the first attempt is raised with the note, a give-up is counted and
    a RetryGaveUp emitted, and the function runs only once."""
    registry.retry_budget("shared", ratio=0, min_per_second=0)
    calls: list[int] = []

    def body() -> str:
        calls.append(1)
        raise ConnectionError("down")

    fn = under_retry(flavor, registry, body, attempts=5)
    [error] = call_failing(flavor, fn, 1)

    assert calls == [1]
    assert error.__notes__ == [
        "hazina: retry 'dep' gave up after 1 attempt in 0.000s (retry budget 'shared' spent)"
    ]
    assert fn.policy.stats().give_ups == 1
    assert [type(event) for event in events] == [hazina.RetryGaveUp]


def test_a_refused_retry_on_a_result_returns_that_result(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """With on_result, a retry the budget refuses returns the rejected result."""
    registry.retry_budget("shared", ratio=0, min_per_second=0)
    fn = under_retry(flavor, registry, lambda: "busy", on_result=lambda result: result == "busy")

    assert flavor.call(fn) == "busy"
    assert registry.retry_budget("shared").stats().refused == 1


def test_the_reserve_allows_min_per_second_times_window_retries(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """min_per_second=0.5 over a 10 s window reserves 5 retries that need no first attempts."""
    registry.retry_budget("shared", ratio=0, min_per_second=0.5, window=10)
    fn = under_retry(flavor, registry, fail)

    errors = call_failing(flavor, fn, 8)

    assert [spent(error) for error in errors] == [False] * 5 + [True] * 3


def test_the_budget_is_shared_by_two_retry_policies(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """One policy's first attempts fund the other's retries, and the retries of both draw
    on one allowance."""
    registry.retry_budget("shared", ratio=0.2, min_per_second=0)
    orders = under_retry(flavor, registry, succeed, name="orders")
    payments = under_retry(flavor, registry, fail, name="payments")
    search = under_retry(flavor, registry, fail, name="search")
    for _ in range(13):
        flavor.call(orders)

    # 15 first attempts in all allow 3 retries: two go to payments, one to search.
    payment_errors = call_failing(flavor, payments, 2)
    search_errors = call_failing(flavor, search, 1)
    late_payment_errors = call_failing(flavor, payments, 1)  # 17 first attempts: 3.4

    assert [spent(e) for e in payment_errors + search_errors] == [False, False, False]
    assert [spent(e) for e in late_payment_errors] == [True]
    assert payments.policy.stats().retries == 2
    assert search.policy.stats().retries == 1
    assert registry.retry_budget("shared").stats() == hazina.RetryBudgetStats(
        attempts=17, retries=3, refused=1
    )


def test_first_attempts_and_retries_leave_the_window(
    flavor: Flavor, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Once the window has passed, old first attempts buy nothing and old retries cost nothing."""
    registry.retry_budget("shared", ratio=0.5, min_per_second=0, window=10)
    good = under_retry(flavor, registry, succeed, name="good")
    bad = under_retry(flavor, registry, fail, name="bad")
    for _ in range(3):
        flavor.call(good)
    assert [spent(e) for e in call_failing(flavor, bad, 4)] == [False] * 3 + [True]

    clock.advance(11)

    # Counting the old window, the next call would find 4 retries against 8 attempts and
    # retry; counting only the new one, it finds 1 attempt (room for 0.5) and gives up,
    # and the call after it finds 2 attempts and no retries yet.
    assert [spent(e) for e in call_failing(flavor, bad, 2)] == [True, False]


def test_the_window_slides_in_tenths(registry: hazina.Registry, clock: FakeClock) -> None:
    """A first attempt stops counting once the window, in tenths of it, has passed it."""
    early = registry.retry_budget("early", ratio=1, min_per_second=0, window=10)
    late = registry.retry_budget("late", ratio=1, min_per_second=0, window=10)
    for budget in (early, late):
        budget.deposit(1000.0)
        budget.deposit(1005.0)

    assert [early.withdraw(1009.5) for _ in range(3)] == [True, True, False]
    assert [late.withdraw(1010.5) for _ in range(2)] == [True, False]


def test_a_spent_budget_is_not_stuck_when_the_clock_steps_back(
    flavor: Flavor, stepping_clock: SteppingClock
) -> None:
    """Regression: a clock stepping back (freezegun's freeze_time ending) left the window
    where it was, ahead of the clock, so a budget spent before the step refused every
    retry until the clock caught up again (here 11 days); a step back now counts as no
    time passing, and the window slides on from there."""
    registry = hazina.Registry(clock=stepping_clock)
    registry.retry_budget("shared", ratio=0, min_per_second=1, window=10)
    fn = under_retry(flavor, registry, fail)
    assert [spent(e) for e in call_failing(flavor, fn, 11)] == [False] * 10 + [True]

    stepping_clock.step_back(1e6)
    assert [spent(e) for e in call_failing(flavor, fn, 1)] == [True]  # no time passed
    stepping_clock.advance(10)
    assert [spent(e) for e in call_failing(flavor, fn, 11)] == [False] * 10 + [True]


def test_a_missing_budget_is_created_with_defaults(registry: hazina.Registry) -> None:
    """@retry(budget=name) creates the budget with defaults when it does not exist."""
    fn = hazina.retry("dep", registry=registry, budget="fresh")(succeed)
    fn()

    budget = registry.get("retry_budget", "fresh")
    assert isinstance(budget, hazina.RetryBudget)
    assert budget.config == hazina.RetryBudgetConfig(ratio=0.2, min_per_second=10, window=10)
    assert registry.stats()["retry_budget"]["fresh"] == hazina.RetryBudgetStats(
        attempts=1, retries=0, refused=0
    )
    assert registry.snapshot()["retry_budget"]["fresh"] == {
        "attempts": 1,
        "retries": 0,
        "refused": 0,
    }


def test_the_budget_follows_the_factory_rules(registry: hazina.Registry) -> None:
    """The same name gives the same budget; a different configuration is refused; a
    timedelta window equals its seconds."""
    budget = registry.retry_budget("shared", window=datetime.timedelta(seconds=30))

    assert registry.retry_budget("shared") is budget
    assert registry.retry_budget("shared", window=30) is budget
    with pytest.raises(hazina.ConfigurationError, match=r"retry_budget 'shared'.*ratio"):
        registry.retry_budget("shared", ratio=0.5)


def test_the_block_form_draws_on_the_budget(registry: hazina.Registry) -> None:
    """retrying(..., budget=) counts its first attempt and asks before each retry."""
    registry.retry_budget("shared", ratio=0, min_per_second=0)

    def block() -> None:
        for attempt in hazina.retrying("dep", registry=registry, budget="shared", initial=0):
            with attempt:
                raise ConnectionError("down")

    with pytest.raises(ConnectionError) as raised:
        block()

    assert spent(raised.value)
    assert registry.retry_budget("shared").stats() == hazina.RetryBudgetStats(
        attempts=1, retries=0, refused=1
    )


def test_reset_empties_the_window_and_the_counters(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """After reset() the stats are zero and earlier first attempts fund nothing."""
    budget = registry.retry_budget("shared", ratio=1, min_per_second=0)
    good = under_retry(flavor, registry, succeed, name="good")
    bad = under_retry(flavor, registry, fail, name="bad")
    for _ in range(5):
        flavor.call(good)

    registry.reset()

    assert budget.stats() == hazina.RetryBudgetStats(attempts=0, retries=0, refused=0)
    assert [spent(e) for e in call_failing(flavor, bad, 2)] == [False, False]


@pytest.mark.parametrize(
    ("config", "param"),
    [
        ({"ratio": -0.1}, "ratio"),
        ({"ratio": float("nan")}, "ratio"),
        ({"ratio": "0.2"}, "ratio"),
        ({"ratio": True}, "ratio"),
        ({"min_per_second": -1}, "min_per_second"),
        ({"min_per_second": float("inf")}, "min_per_second"),
        ({"window": 0}, "window"),
        ({"window": -5}, "window"),
        ({"window": datetime.timedelta(0)}, "window"),
        # Regression: passed, then the first retry failed with OverflowError (its tenths
        # of a window numbered beyond float range) or ZeroDivisionError (a tenth of 0).
        ({"window": 1e-310}, "window"),
        ({"window": 5e-324}, "window"),
        ({"window": 1e-9}, "window"),
        ({"window": None}, "window"),
        ({"windows": 5}, "windows"),
    ],
)
def test_bad_configuration_is_refused(
    registry: hazina.Registry, config: dict[str, Any], param: str
) -> None:
    """Each bad value is a ConfigurationError naming the budget and the parameter."""
    with pytest.raises(hazina.ConfigurationError, match=rf"retry_budget 'shared'.*{param}"):
        registry.retry_budget("shared", **config)


def test_a_budget_wraps_no_calls(registry: hazina.Registry) -> None:
    """A budget is no decorator: asking it for drivers says how to use it instead."""
    budget = registry.retry_budget("shared")
    with pytest.raises(TypeError, match="budget="):
        budget._sync_driver(succeed)


# -- concurrency ----------------------------------------------------------------------------


def test_threads_never_overdraw_or_lose_a_count(registry: hazina.Registry) -> None:
    """8 threads failing at once get exactly the reserve in retries; every first attempt
    and every refusal is counted."""
    registry.retry_budget("shared", ratio=0, min_per_second=30, window=10)  # 300 retries
    fn = hazina.retry("dep", registry=registry, budget="shared", attempts=2, initial=0)(fail)
    per_thread = 250
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(per_thread):
            with contextlib.suppress(ConnectionError):
                fn()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert registry.retry_budget("shared").stats() == hazina.RetryBudgetStats(
        attempts=8 * per_thread, retries=300, refused=8 * per_thread - 300
    )
    assert fn.policy.stats().retries == 300


def test_threads_count_every_first_attempt_of_successes(registry: hazina.Registry) -> None:
    """The lock-free count of first attempts loses nothing under 8 threads."""
    budget = registry.retry_budget("shared")
    fn = hazina.retry("dep", registry=registry, budget="shared")(succeed)
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(20_000):
            fn()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert budget.stats().attempts == 160_000


def test_tasks_never_overdraw(registry: hazina.Registry, clock: FakeClock) -> None:
    """1,000 tasks whose attempts interleave get exactly the allowance."""
    registry.retry_budget("shared", ratio=0.5, min_per_second=0)

    async def body() -> str:
        await asyncio.sleep(0)
        raise ConnectionError("down")

    fn = hazina.retry("dep", registry=registry, budget="shared", attempts=3, initial=0)(body)

    async def main() -> list[BaseException | str]:
        return await asyncio.gather(*(fn() for _ in range(1000)), return_exceptions=True)

    outcomes = asyncio.run(main())

    # All 1,000 first attempts are in before any fails (each suspends first): they buy
    # 500 retries; the other 500 calls are refused at once, the 500 retried ones after
    # their second failure.
    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes)
    assert registry.retry_budget("shared").stats() == hazina.RetryBudgetStats(
        attempts=1000, retries=500, refused=1000
    )


def test_a_child_forked_while_threads_use_the_budget_can_use_it() -> None:
    """A child forked while another thread held the budget's lock can still retry."""
    registry = hazina.Registry()
    calls = 0

    @hazina.retry("forked", registry=registry, attempts=2, initial=0, jitter=None, budget="b")
    def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise ConnectionError
        return 1

    def work() -> None:
        with contextlib.suppress(ConnectionError):
            flaky()
        registry.stats()

    def use() -> None:
        with contextlib.suppress(ConnectionError):  # the budget may be spent: no hang
            flaky()
        registry.stats()

    with instant_waits(), hammered(work):
        assert fork_children(use) == []
