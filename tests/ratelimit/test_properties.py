"""Properties over any sequence of calls and clock moves, for every algorithm (hypothesis).

Time moves in whole milliseconds; waits the limiter asks for move it by exact amounts.
Windows are checked over ``[t, t + per)`` from every admission ``t``, shortened by a
microsecond: admissions may come up to 100 ns early (the limiter's float tolerance).
"""

from __future__ import annotations

from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hazina
from hazina.testing import FakeClock

ALGORITHMS: list[Algorithm] = ["token_bucket", "gcra", "sliding_window"]
SLACK = 1e-6

Algorithm = Literal["token_bucket", "gcra", "sliding_window"]


@st.composite
def limits(draw: st.DrawFn, algorithm: Algorithm) -> list[hazina.Limit]:
    """One or two limits with small rates, periods of 1 ms to 5 s and bursts of rate or more."""
    chosen = []
    for _ in range(draw(st.integers(1, 2))):
        rate = draw(st.integers(1, 8))
        per = draw(st.integers(1, 5000)) / 1000
        extra = 0 if algorithm == "sliding_window" else draw(st.integers(0, 5))
        chosen.append(hazina.Limit(rate, per, burst=rate + extra))
    return chosen


#: One step: move the clock this many ms, then ask for this cost, trying or waiting.
steps = st.lists(
    st.tuples(st.integers(0, 6000), st.integers(1, 13), st.sampled_from(["try", "wait"])),
    max_size=60,
)


def window_peak(admissions: list[tuple[float, float]], per: float) -> float:
    """The most cost admitted in any window ``[t, t + per)`` that starts at an admission."""
    return max(
        (
            sum(cost for when, cost in admissions if start <= when < start + per - SLACK)
            for start, _ in admissions
        ),
        default=0.0,
    )


def run(
    algorithm: Algorithm,
    chosen: list[hazina.Limit],
    plan: list[tuple[int, int, str]],
    **config: Any,
) -> tuple[hazina.RateLimiter, FakeClock, list[tuple[float, float]]]:
    """Play ``plan`` against a fresh limiter; the admissions as (time, cost)."""
    clock = FakeClock(1000.0)
    limiter = hazina.Registry(clock=clock).rate_limiter(
        "api", limits=chosen, algorithm=algorithm, **config
    )
    capacity = limiter.config.capacity
    admissions: list[tuple[float, float]] = []
    for millis, cost, mode in plan:
        clock.advance(millis / 1000)
        cost = min(cost, int(capacity))
        if mode == "try":
            admitted = limiter.try_acquire(cost=cost)
        else:
            try:
                limiter.acquire(cost=cost)  # waits, if the limiter is configured to
            except hazina.RateLimitExceeded:
                admitted = False
            else:
                admitted = True
        if admitted:
            admissions.append((clock.now(), cost))
    return limiter, clock, admissions


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(max_examples=150, deadline=None)
@given(data=st.data(), plan=steps)
def test_no_window_admits_more_than_burst_plus_rate(
    algorithm: Algorithm, data: st.DataObject, plan: list[tuple[int, int, str]]
) -> None:
    """No window of length ``per`` admits more than ``burst + rate`` tokens' worth of cost
    (the sliding window: no more than ``rate``), for each limit, waiting or not."""
    chosen = data.draw(limits(algorithm))

    _, _, admissions = run(algorithm, chosen, plan, wait=True)

    for limit in chosen:
        bound = limit.rate if algorithm == "sliding_window" else limit.burst + limit.rate
        assert window_peak(admissions, limit.per) <= bound + 1e-9


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(max_examples=150, deadline=None)
@given(data=st.data(), plan=steps)
def test_retry_after_is_exact(
    algorithm: Algorithm, data: st.DataObject, plan: list[tuple[int, int, str]]
) -> None:
    """After any history, a refused call is still refused a millisecond before its
    ``retry_after`` and admitted at it."""
    chosen = data.draw(limits(algorithm))
    limiter, clock, _ = run(algorithm, chosen, plan)
    cost = min(data.draw(st.integers(1, 13)), int(limiter.config.capacity))

    try:
        limiter.acquire(cost=cost)
    except hazina.RateLimitExceeded as refused:
        retry_after = refused.retry_after
    else:
        return
    assert retry_after > 0
    if retry_after > 2e-3:
        clock.advance(retry_after - 1e-3)
        assert not limiter.try_acquire(cost=cost)
        clock.advance(1e-3)
    else:
        clock.advance(retry_after)
    assert limiter.try_acquire(cost=cost)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), plan=steps)
def test_gcra_and_token_bucket_agree(data: st.DataObject, plan: list[tuple[int, int, str]]) -> None:
    """GCRA admits exactly the calls the token bucket admits, at the same times."""
    chosen = data.draw(limits("gcra"))

    _, _, bucket = run("token_bucket", chosen, plan, wait=True)
    _, _, gcra = run("gcra", chosen, plan, wait=True)

    assert [cost for _, cost in gcra] == [cost for _, cost in bucket]
    assert [when for when, _ in gcra] == pytest.approx([when for when, _ in bucket])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(max_examples=100, deadline=None)
@given(data=st.data(), plan=steps)
def test_status_agrees_with_admission(
    algorithm: Algorithm, data: st.DataObject, plan: list[tuple[int, int, str]]
) -> None:
    """Whatever happened before, a call of cost 1 is admitted exactly when ``status`` says
    none has to wait, and ``remaining`` never exceeds the capacity."""
    chosen = data.draw(limits(algorithm))
    limiter, _, _ = run(algorithm, chosen, plan)

    status = limiter.status()

    assert 0 <= status.remaining <= limiter.config.capacity
    assert limiter.try_acquire() == (status.next_token_in == 0)
