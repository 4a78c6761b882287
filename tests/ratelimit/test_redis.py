"""The rate limiter on Redis: one limit for every process, exact, and safe when Redis fails."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import queue
import time
from typing import Any, Literal

import pytest
from redis_server import RedisServer

import hazina
from hazina.redis import RedisBackend
from hazina.testing import FakeClock

TIMEOUT = 30


def _registry(url: str, clock: FakeClock | None = None, **backend: Any) -> hazina.Registry:
    chosen: Literal["redis", "registry"] = "registry" if clock is not None else "redis"
    return hazina.Registry(clock=clock, backend=RedisBackend.from_url(url, clock=chosen, **backend))


def test_two_registries_on_one_redis_share_one_limit(redis_url: str) -> None:
    """Two registries (stand-ins for two processes) draw from one shared bucket."""
    first, second = _registry(redis_url), _registry(redis_url)
    one = first.rate_limiter("search", rate=5, per=60)
    other = second.rate_limiter("search", rate=5, per=60)
    admitted = [one.try_acquire() for _ in range(3)] + [other.try_acquire() for _ in range(4)]
    assert admitted == [True] * 5 + [False] * 2


def _take_all(url: str, start: Any, results: Any) -> None:
    limiter = _registry(url).rate_limiter("fleet", rate=100, per=3600)
    start.wait(TIMEOUT)
    admitted = sum(limiter.try_acquire() for _ in range(60))
    results.put(admitted)


def test_eight_processes_on_a_limit_of_100_admit_exactly_100(redis_url: str) -> None:
    """Eight processes racing 60 calls each through one limit of 100 admit exactly 100."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    workers = [
        context.Process(target=_take_all, args=(redis_url, start, results)) for _ in range(8)
    ]
    for worker in workers:
        worker.start()
    start.set()
    counts = _gather(results, workers)
    assert sum(counts) == 100


def _gather(results: Any, workers: list[Any]) -> list[int]:
    """Every worker's result; a worker that dies fails the test within a second."""
    counts: list[int] = []
    deadline = time.monotonic() + TIMEOUT
    while len(counts) < len(workers):
        try:
            counts.append(results.get(timeout=0.5))
        except queue.Empty:
            dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
            assert not dead, f"a worker died with exit code {dead[0]}"
            assert time.monotonic() < deadline, "the workers did not finish in time"
    for worker in workers:
        worker.join(TIMEOUT)
        assert worker.exitcode == 0
    return counts


def test_per_key_limits_are_apart_and_keys_of_every_type_stay_apart(redis_url: str) -> None:
    """Each key has its own bucket; 1, 1.0, True, "1" and hostile strings never share one."""
    limiter = _registry(redis_url).rate_limiter("per-user", rate=1, per=3600)
    keys: list[Any] = [1, 1.0, True, "1", b"1", (1,), None, "a:b", "{x}", "*", "}", "k" * 10_000]
    assert all(limiter.try_acquire(key) for key in keys)
    assert not any(limiter.try_acquire(key) for key in keys)


def test_a_key_that_cannot_be_shared_is_a_type_error_naming_the_limiter(redis_url: str) -> None:
    """A key Redis cannot hold faithfully (a list, an object) raises TypeError naming the policy."""
    limiter = _registry(redis_url).rate_limiter("typed", rate=1, per=1)
    with pytest.raises(TypeError, match="'typed'"):
        limiter.try_acquire(["a"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'typed'"):
        limiter.try_acquire(object())


def test_refusal_carries_the_retry_after_and_time_refills_the_bucket(redis_url: str) -> None:
    """A refusal says when to retry (from the shared state); at that time a call is admitted."""
    clock = FakeClock(100.0)
    limiter = _registry(redis_url, clock).rate_limiter("timed", rate=2, per=1, burst=2)
    limiter.acquire()
    limiter.acquire()
    with pytest.raises(hazina.RateLimitExceeded) as refused:
        limiter.acquire()
    assert refused.value.retry_after == pytest.approx(0.5)
    clock.advance(0.5)
    limiter.acquire()
    assert limiter.stats().allowed == 3
    assert limiter.stats().rejected == 1


def test_waiters_reserve_on_arrival_across_registries(redis_url: str) -> None:
    """With wait=True, callers in two registries queue behind each other's reservations."""
    clock = FakeClock(0.0)
    first, second = _registry(redis_url, clock), _registry(redis_url, clock)
    config: dict[str, Any] = {"rate": 1, "per": 1, "burst": 1, "wait": True}
    one = first.rate_limiter("queue", **config)
    other = second.rate_limiter("queue", **config)
    one.acquire()  # admitted at once
    other.acquire()  # reserved for t=1; the fake clock's sleep moves time there
    assert clock.now() == pytest.approx(1.0)
    one.acquire()  # behind that reservation: t=2
    assert clock.now() == pytest.approx(2.0)
    assert other.stats().waited == 1
    assert other.stats().wait_time == pytest.approx(1.0)


def test_status_reads_the_shared_state(redis_url: str) -> None:
    """status() in one registry shows what calls through another took."""
    clock = FakeClock(0.0)
    first, second = _registry(redis_url, clock), _registry(redis_url, clock)
    first.rate_limiter("seen", rate=10, per=10).acquire(cost=4)
    status = second.rate_limiter("seen", rate=10, per=10).status()
    assert status.remaining == pytest.approx(6)
    assert status.full_in == pytest.approx(4)


def test_async_calls_share_the_limit_with_sync_ones(redis_url: str) -> None:
    """An async decorated function and a sync one on one limit are counted together."""
    registry = _registry(redis_url)

    @hazina.rate_limited("mixed", registry=registry, rate=3, per=3600)
    async def fetch() -> str:
        return "ok"

    @hazina.rate_limited("mixed", registry=registry, rate=3, per=3600)
    def fetch_sync() -> str:
        return "ok"

    async def main() -> list[str]:
        return list(await asyncio.gather(fetch(), fetch()))

    assert asyncio.run(main()) == ["ok", "ok"]
    assert fetch_sync() == "ok"
    with pytest.raises(hazina.RateLimitExceeded):
        fetch_sync()


def test_one_name_with_another_configuration_on_one_redis_is_refused(redis_url: str) -> None:
    """A second process asking for the same limiter with another rate gets a clear error."""
    _registry(redis_url).rate_limiter("shared", rate=5, per=1)
    with pytest.raises(hazina.ConfigurationError, match=r"'shared'.*rate"):
        _registry(redis_url).rate_limiter("shared", rate=6, per=1)


def test_backend_memory_keeps_one_limiter_in_process(redis_url: str) -> None:
    """backend="memory" opts one limiter out of its registry's Redis backend."""
    first, second = _registry(redis_url), _registry(redis_url)
    one = first.rate_limiter("local-only", backend="memory", rate=1, per=3600)
    other = second.rate_limiter("local-only", backend="memory", rate=1, per=3600)
    assert one.try_acquire()
    assert other.try_acquire()


# -- when Redis fails ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["local", "allow", "deny"])
def test_a_dead_server_follows_on_backend_error(
    own_redis: RedisServer,
    mode: Literal["local", "allow", "deny"],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With the server killed, each mode does what it says, no call hangs, and the outage
    is logged once."""
    registry = _registry(own_redis.url, timeout=0.2, retry_interval=60)
    limiter = registry.rate_limiter("guarded", rate=2, per=3600, on_backend_error=mode)
    assert limiter.try_acquire()
    own_redis.kill()
    outcomes: list[str] = []
    refusals: list[hazina.RateLimitExceeded] = []
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="hazina.redis"):
        for _ in range(4):
            try:
                limiter.acquire()
            except hazina.RateLimitExceeded as refused:
                outcomes.append("refused")
                refusals.append(refused)
            else:
                outcomes.append("admitted")
    assert time.monotonic() - started < 2
    expected = {
        "local": ["admitted", "admitted", "refused", "refused"],  # a local bucket of 2
        "allow": ["admitted"] * 4,
        "deny": ["refused"] * 4,
    }[mode]
    assert outcomes == expected
    if mode == "deny":
        assert all(refused.__cause__ is not None for refused in refusals)
        assert all(0 < refused.retry_after <= 60 for refused in refusals)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].hazina_policies == ["rate_limiter:guarded"]  # type: ignore[attr-defined]
    assert limiter.stats().backend_errors == 1


def test_a_restarted_server_is_used_again_and_the_script_reloaded(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """After a restart (which forgets scripts), the limiter goes back to the shared state."""
    registry = _registry(own_redis.url, timeout=0.2, retry_interval=0.05)
    limiter = registry.rate_limiter("phoenix", rate=1, per=3600)
    assert limiter.try_acquire()
    own_redis.kill()
    assert limiter.try_acquire()  # the local stand-in has its own, fresh bucket
    own_redis.start()
    time.sleep(0.1)  # the backend's retry interval
    with caplog.at_level(logging.INFO, logger="hazina.redis"):
        assert limiter.try_acquire()  # Redis forgot everything with the restart
        assert not limiter.try_acquire()  # and counts again, fleet-wide
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_script_flush_mid_run_is_survived(redis_url: str) -> None:
    """SCRIPT FLUSH makes Redis forget the script; the next decision reloads it."""
    import redis

    limiter = _registry(redis_url).rate_limiter("flushed", rate=2, per=3600)
    assert limiter.try_acquire()
    with redis.Redis.from_url(redis_url) as client:
        client.script_flush()
    assert limiter.try_acquire()
    assert not limiter.try_acquire()
    assert limiter.stats().backend_errors == 0


def test_a_paused_server_never_blocks_a_call_much_longer_than_the_timeout(
    own_redis: RedisServer,
) -> None:
    """With the server frozen (SIGSTOP), a call waits at most about `timeout`, then the
    limiter runs locally; later calls do not wait at all until the retry interval ends."""
    registry = _registry(own_redis.url, timeout=0.2, retry_interval=60)
    limiter = registry.rate_limiter("frozen", rate=5, per=3600)
    assert limiter.try_acquire()
    own_redis.pause()
    try:
        started = time.monotonic()
        assert limiter.try_acquire()
        first = time.monotonic() - started
        started = time.monotonic()
        assert limiter.try_acquire()
        second = time.monotonic() - started
    finally:
        own_redis.resume()
    assert first < 0.2 + 0.3
    assert second < 0.05


def test_async_calls_against_a_paused_server_give_up_after_the_timeout(
    own_redis: RedisServer,
) -> None:
    """The asyncio client is bounded by the same timeout."""
    registry = _registry(own_redis.url, timeout=0.2, retry_interval=60)
    limiter = registry.rate_limiter("frozen-async", rate=5, per=3600, on_backend_error="deny")

    async def main() -> float:
        await limiter.aacquire()
        own_redis.pause()
        started = time.monotonic()
        with pytest.raises(hazina.RateLimitExceeded):
            await limiter.aacquire()
        return time.monotonic() - started

    try:
        took = asyncio.run(main())
    finally:
        own_redis.resume()
    assert took < 0.2 + 0.3


def test_an_unreachable_url_is_a_fallback_not_a_hang() -> None:
    """A URL where nothing listens fails fast into the configured fallback."""
    registry = hazina.Registry(backend=RedisBackend.from_url("redis://127.0.0.1:1/0", timeout=0.2))
    started = time.monotonic()
    limiter = registry.rate_limiter("nowhere", rate=1, per=3600, on_backend_error="allow")
    assert limiter.try_acquire()
    assert limiter.try_acquire()
    assert time.monotonic() - started < 1
