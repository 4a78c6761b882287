"""Properties over any sequence of calls and clock moves, for every algorithm (hypothesis).

Time moves in whole milliseconds; waits the limiter asks for move it by exact amounts.
Windows are checked over ``[t, t + per)`` from every admission ``t``, shortened by a
microsecond: admissions may come up to 100 ns early (the limiter's float tolerance).

Every property runs in memory and against the Lua scripts on a real Redis (the scripts
take the registry's fake clock, ``clock="registry"``), and a last property plays the
same calls against both and wants the same admissions.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis_server import RedisServer

import hazina
from hazina.redis import RedisBackend
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


#: Where a property runs: in memory, or on the Lua scripts.
WHERE = ["memory", "redis"]
_backends: dict[str, RedisBackend] = {}
_names = itertools.count()


@pytest.fixture(params=WHERE, scope="session")
def backend(request: pytest.FixtureRequest) -> RedisBackend | None:
    """``None`` for the in-memory limiter, or a Redis backend on the session's server."""
    if request.param == "memory":
        return None
    server: RedisServer = request.getfixturevalue("redis_server")
    if server.url not in _backends:
        _backends[server.url] = RedisBackend.from_url(server.url, clock="registry")
    return _backends[server.url]


def run(
    algorithm: Algorithm,
    chosen: list[hazina.Limit],
    plan: list[tuple[int, int, str]],
    backend: RedisBackend | None = None,
    **config: Any,
) -> tuple[hazina.RateLimiter, FakeClock, list[tuple[float, float]]]:
    """Play ``plan`` against a fresh limiter; the admissions as (time, cost)."""
    clock = FakeClock(1000.0)
    # A fresh name per run: on Redis, every example starts from empty state.
    limiter = hazina.Registry(clock=clock, backend=backend).rate_limiter(
        f"api-{next(_names)}", limits=chosen, algorithm=algorithm, **config
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
    algorithm: Algorithm,
    backend: RedisBackend | None,
    data: st.DataObject,
    plan: list[tuple[int, int, str]],
) -> None:
    """No window of length ``per`` admits more than ``burst + rate`` tokens' worth of cost
    (the sliding window: no more than ``rate``), for each limit, waiting or not."""
    chosen = data.draw(limits(algorithm))

    _, _, admissions = run(algorithm, chosen, plan, backend, wait=True)

    for limit in chosen:
        bound = limit.rate if algorithm == "sliding_window" else limit.burst + limit.rate
        assert window_peak(admissions, limit.per) <= bound + 1e-9


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(max_examples=150, deadline=None)
@given(data=st.data(), plan=steps)
def test_retry_after_is_exact(
    algorithm: Algorithm,
    backend: RedisBackend | None,
    data: st.DataObject,
    plan: list[tuple[int, int, str]],
) -> None:
    """After any history, a refused call is still refused a millisecond before its
    ``retry_after`` and admitted at it."""
    chosen = data.draw(limits(algorithm))
    limiter, clock, _ = run(algorithm, chosen, plan, backend)
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
def test_gcra_and_token_bucket_agree(
    backend: RedisBackend | None, data: st.DataObject, plan: list[tuple[int, int, str]]
) -> None:
    """GCRA admits exactly the calls the token bucket admits, at the same times."""
    chosen = data.draw(limits("gcra"))

    _, _, bucket = run("token_bucket", chosen, plan, backend, wait=True)
    _, _, gcra = run("gcra", chosen, plan, backend, wait=True)

    assert [cost for _, cost in gcra] == [cost for _, cost in bucket]
    assert [when for when, _ in gcra] == pytest.approx([when for when, _ in bucket])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(max_examples=100, deadline=None)
@given(data=st.data(), plan=steps)
def test_status_agrees_with_admission(
    algorithm: Algorithm,
    backend: RedisBackend | None,
    data: st.DataObject,
    plan: list[tuple[int, int, str]],
) -> None:
    """Whatever happened before, a call of cost 1 is admitted exactly when ``status`` says
    none has to wait, and ``remaining`` never exceeds the capacity."""
    chosen = data.draw(limits(algorithm))
    limiter, _, _ = run(algorithm, chosen, plan, backend)

    status = limiter.status()

    assert 0 <= status.remaining <= limiter.config.capacity
    assert limiter.try_acquire() == (status.next_token_in == 0)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(max_examples=100, deadline=None)
@given(data=st.data(), plan=steps, wait=st.booleans())
def test_the_lua_scripts_admit_what_memory_admits(
    algorithm: Algorithm,
    redis_server: RedisServer,
    data: st.DataObject,
    plan: list[tuple[int, int, str]],
    wait: bool,
) -> None:
    """The same calls at the same times are admitted alike, at the same times, by the
    in-memory limiter and by its Lua twin on Redis."""
    chosen = data.draw(limits(algorithm))
    if redis_server.url not in _backends:
        _backends[redis_server.url] = RedisBackend.from_url(redis_server.url, clock="registry")

    _, _, in_memory = run(algorithm, chosen, plan, wait=wait)
    _, _, on_redis = run(algorithm, chosen, plan, _backends[redis_server.url], wait=wait)

    assert [cost for _, cost in on_redis] == [cost for _, cost in in_memory]
    assert [when for when, _ in on_redis] == pytest.approx([when for when, _ in in_memory])
