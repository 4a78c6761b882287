"""Reconfiguring a policy whose state lives on Redis: the fleet shares one configuration.

Two registries on two backends of one server stand for two processes (each backend has
its own connections and its own view); one test runs a real second process.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import queue
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from interrupts import hammered
from redis_server import RedisServer

import hazina
from hazina.redis import RedisBackend

#: Short, so a process checks the stored configuration within a test's patience.
SYNC = 0.05
TIMEOUT = 10.0


@pytest.fixture
def fleet(redis_url: str) -> Iterator[Callable[[], hazina.Registry]]:
    """Registries that stand for processes of one fleet (each on a backend of its own)."""
    backends: list[RedisBackend] = []

    def process() -> hazina.Registry:
        backend = RedisBackend.from_url(redis_url, sync_interval=SYNC)
        backends.append(backend)
        return hazina.Registry(backend=backend)

    yield process
    for backend in backends:
        backend._client.close()  # type: ignore[union-attr]


def adopted(policy: Any, param: str, value: object, poke: Callable[[], object]) -> bool:
    """Call ``poke`` (a call of the policy) until its configuration reads ``value``."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if getattr(policy.config, param) == value:
            return True
        poke()
        time.sleep(SYNC / 2)
    return False


def test_a_limit_changed_in_one_process_is_the_limit_of_every_process(
    fleet: Callable[[], hazina.Registry],
) -> None:
    """The other process adopts the stored limit at its next check, and both apply it."""
    one = fleet().rate_limiter("search", rate=10, per=3600)
    other = fleet().rate_limiter("search", rate=10, per=3600)
    assert [one.try_acquire(), other.try_acquire()] == [True, True]
    one.reconfigure(rate=3)
    assert adopted(other, "burst", 3.0, lambda: other.try_acquire(key="poke"))
    # The 8 tokens left in the shared bucket are capped at the new burst of 3.
    granted = [limiter.try_acquire() for limiter in (one, other, one, other, one, other)]
    assert granted == [True] * 3 + [False] * 3
    assert one.config == other.config


def test_a_breaker_keeps_its_shared_state_and_takes_the_new_open_period(
    fleet: Callable[[], hazina.Registry],
) -> None:
    """An open breaker stays open across a reconfigure; every process reads the new open_for."""
    one = fleet().circuit_breaker("db", failure_threshold=1, open_for=60)
    other = fleet().circuit_breaker("db", failure_threshold=1, open_for=60)
    one.force_open()
    one.reconfigure(open_for=5)
    assert adopted(other, "open_for", 5, lambda: other.state)
    assert other.state is hazina.CircuitState.FORCED_OPEN
    assert one.state is hazina.CircuitState.FORCED_OPEN


def test_a_cache_ttl_changed_in_one_process_applies_to_what_the_other_stores(
    fleet: Callable[[], hazina.Registry],
) -> None:
    """The other process stores its entries with the new ttl once it has adopted it."""
    one = fleet().cache("users", ttl=60)
    other = fleet().cache("users", ttl=60)
    one.reconfigure(ttl=300)
    assert adopted(other, "ttl", 300, lambda: other.get("poke"))
    other.set("ada", "Ada")
    assert one.get("ada") == "Ada"


def test_a_process_started_after_a_reconfigure_runs_the_stored_configuration(
    fleet: Callable[[], hazina.Registry],
) -> None:
    """The stored change wins over a new process's code values, and its decorators with
    those code values still get the policy."""
    fleet().rate_limiter("api", limits="10/minute").reconfigure(limits="3/minute")
    late = fleet()
    limiter = late.rate_limiter("api", limits="10/minute")
    assert [str(limit) for limit in limiter.config.limits] == ["3/60s"]
    assert late.rate_limiter("api", limits="10/minute") is limiter

    @hazina.rate_limited("api", limits="10/minute", registry=late)
    def call() -> int:
        return 1

    assert call.policy is limiter


def test_code_that_differs_from_a_code_configuration_is_still_refused(
    fleet: Callable[[], hazina.Registry],
) -> None:
    """Without a reconfigure, a process whose code disagrees fails at creation, as before."""
    fleet().rate_limiter("strict", rate=2, per=60)
    with pytest.raises(hazina.ConfigurationError, match="different configuration"):
        fleet().rate_limiter("strict", rate=3, per=60)


def test_configure_shares_its_values_like_a_reconfigure(
    fleet: Callable[[], hazina.Registry],
) -> None:
    """registry.configure() on an existing Redis policy stores the change for the fleet."""
    first, second = fleet(), fleet()
    first.circuit_breaker("pay", failure_threshold=3)
    other = second.circuit_breaker("pay", failure_threshold=3)
    first.configure({"circuit_breaker": {"pay": {"failure_threshold": 7}}})
    assert adopted(other, "failure_threshold", 7, lambda: other.state)


def test_a_reconfigure_while_redis_is_down_changes_nothing(own_redis: RedisServer) -> None:
    """The change cannot reach the fleet, so it is refused here too: BackendUnavailable."""
    backend = RedisBackend.from_url(own_redis.url, timeout=0.2, retry_interval=0.01)
    limiter = hazina.Registry(backend=backend).rate_limiter("down", rate=2, per=60)
    own_redis.kill()
    with pytest.raises(hazina.BackendUnavailable):
        limiter.reconfigure(rate=9)
    assert limiter.config.limits[0].rate == 2


def test_a_value_that_cannot_travel_as_json_is_refused_before_anything_changes(
    fleet: Callable[[], hazina.Registry],
) -> None:
    """A Limit object has no form other processes could rebuild: say so, change nothing."""
    limiter = fleet().rate_limiter("objects", rate=2, per=60)
    with pytest.raises(hazina.ConfigurationError, match=r"limits=.*cannot be shared"):
        limiter.reconfigure(limits=[hazina.Limit(5, 60)])
    assert limiter.config.limits[0].rate == 2


def test_another_algorithm_starts_every_bucket_full(
    fleet: Callable[[], hazina.Registry],
) -> None:
    """Buckets of one algorithm are never read as another's: the new shape starts full."""
    limiter = fleet().rate_limiter("shape", rate=2, per=3600)
    assert [limiter.try_acquire() for _ in range(3)] == [True, True, False]
    limiter.reconfigure(algorithm="gcra")
    assert [limiter.try_acquire() for _ in range(3)] == [True, True, False]


def test_calls_during_reconfigures_send_one_whole_configuration(
    fleet: Callable[[], hazina.Registry],
) -> None:
    """Eight threads calling while the algorithm flips back and forth: every call gets an
    answer (a command mixing two shapes would fail in the script), none is lost."""
    registry = fleet()
    limiter = registry.rate_limiter("flip", rate=1_000_000, per=1, algorithm="sliding_window")
    with hammered(lambda: (limiter.try_acquire(), limiter.try_acquire(key="user")), 8) as calls:
        for algorithm in ["token_bucket", "sliding_window", "gcra"] * 5:
            limiter.reconfigure(algorithm=algorithm)
            time.sleep(0.005)
    stats = limiter.stats()
    assert stats.backend_errors == 0
    assert stats.allowed == 2 * calls.calls > 0  # every call counted once, none refused
    assert stats.rejected == 0


def _watch(url: str, ready: Any, results: Any) -> None:
    backend = RedisBackend.from_url(url, sync_interval=SYNC)
    limiter = hazina.Registry(backend=backend).rate_limiter("fleet-wide", rate=2, per=3600)
    ready.set()
    deadline = time.monotonic() + TIMEOUT
    while limiter.config.limits[0].rate == 2 and time.monotonic() < deadline:
        limiter.try_acquire(key="poke")
        time.sleep(SYNC / 2)
    results.put(limiter.config.limits[0].rate)


def test_another_real_process_adopts_the_change(redis_url: str) -> None:
    """A separate process running the code's values adopts what this one stored."""
    context = multiprocessing.get_context("spawn")
    ready, results = context.Event(), context.Queue()
    worker = context.Process(target=_watch, args=(redis_url, ready, results))
    worker.start()
    try:
        assert ready.wait(TIMEOUT)
        backend = RedisBackend.from_url(redis_url, sync_interval=SYNC)
        limiter = hazina.Registry(backend=backend).rate_limiter("fleet-wide", rate=2, per=3600)
        limiter.reconfigure(rate=7)
        assert results.get(timeout=TIMEOUT) == 7
    except queue.Empty:
        pytest.fail(f"the other process did not adopt the change (exit code {worker.exitcode})")
    finally:
        worker.join(TIMEOUT)
    assert worker.exitcode == 0


def test_values_configured_before_creation_are_stored_for_the_fleet(
    fleet: Callable[[], hazina.Registry],
) -> None:
    """A process whose configure() gave values before its code created the policy stores
    them, like a reconfigure: the processes already running adopt them."""
    running = fleet().rate_limiter("held", rate=2, per=60)
    starting = fleet()
    starting.configure({"rate_limiter": {"held": {"rate": 4}}})
    created = starting.rate_limiter("held", rate=2, per=60)
    assert created.config.limits[0].rate == 4
    assert adopted(running, "rate", 4, lambda: running.try_acquire(key="poke"))


def test_every_key_of_a_keyed_breaker_takes_the_new_configuration(
    fleet: Callable[[], hazina.Registry],
) -> None:
    """Keys this process already holds follow a reconfigure as new keys do."""
    registry = fleet()
    breaker = registry.circuit_breaker("per-host", failure_threshold=3, key=lambda host: host)

    @hazina.circuit_breaker("per-host", registry=registry)
    def fetch(host: str) -> None:
        raise ConnectionError(host)

    with pytest.raises(ConnectionError):
        fetch("a")  # key "a" is held from here on
    breaker.reconfigure(failure_threshold=1)
    for host in ("a", "b"):
        with pytest.raises(ConnectionError):
            fetch(host)
        assert breaker.state_of(host) is hazina.CircuitState.OPEN


def test_an_async_process_adopts_the_change(fleet: Callable[[], hazina.Registry]) -> None:
    """A process whose calls are all async checks and adopts the same way."""
    one = fleet().cache("pages", ttl=60)
    elsewhere = fleet()
    other = elsewhere.cache("pages", ttl=60)

    @hazina.cached("pages", registry=elsewhere)
    async def page(number: int) -> int:
        return number

    async def poke_until_adopted() -> None:
        deadline = time.monotonic() + TIMEOUT
        while other.config.ttl != 120 and time.monotonic() < deadline:
            assert await page(1) == 1
            await asyncio.sleep(SYNC / 2)

    one.reconfigure(ttl=120)
    asyncio.run(poke_until_adopted())
    assert other.config.ttl == 120


def test_a_stored_configuration_this_process_cannot_build_acts_as_down_logged_once(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Parameters this process rejects (stored by another version of hazina, say): the
    policy follows its on_backend_error and says why once at ERROR, until a sound
    configuration is stored."""
    import redis

    backend = RedisBackend.from_url(redis_url, sync_interval=SYNC)
    limiter = hazina.Registry(backend=backend).rate_limiter(
        "future", rate=1, per=3600, on_backend_error="allow"
    )
    config_key = "hazina:{rate_limiter:future}:config"
    with redis.Redis.from_url(redis_url) as client:
        params = '{"rate":-1,"per":3600}'
        client.hset(config_key, mapping={"version": 99, "config": params, "params": params})
    with caplog.at_level(logging.ERROR, logger="hazina.redis"):
        deadline = time.monotonic() + TIMEOUT
        while not caplog.records and time.monotonic() < deadline:
            limiter.try_acquire(key="poke")  # a call runs the due check
            time.sleep(SYNC / 5)
        # "allow": as if Redis were down (the shared bucket holds one token), however
        # many checks come meanwhile.
        for _ in range(20):
            assert limiter.try_acquire()
            time.sleep(SYNC / 5)
    refusals = [r for r in caplog.records if "cannot adopt" in r.getMessage()]
    assert len(refusals) == 1
    assert "rate" in refusals[0].getMessage()
    # A sound configuration stored over it (here, by this process) shares state again.
    limiter.reconfigure(rate=2)
    assert [limiter.try_acquire() for _ in range(3)] == [True, True, False]
