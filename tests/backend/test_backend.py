"""The Redis backend itself: its options, key names, shared configuration and pipelining."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import warnings
from typing import Any

import attrs
import pytest
import redis
from redis_server import RedisServer

import hazina
from hazina._redis.keys import KeyNames, encode
from hazina.redis import RedisBackend


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": 0}, "timeout must be a number of seconds above 0"),
        ({"retry_interval": -1}, "retry_interval must be"),
        ({"sync_interval": float("nan")}, "sync_interval must be"),
        ({"clock": "wall"}, "clock must be 'redis' or 'registry'"),
        ({"prefix": "my{app}"}, "contains '{' or '}'"),
        ({"prefix": ""}, "prefix must be a non-empty string"),
    ],
)
def test_bad_backend_options_are_configuration_errors(
    options: dict[str, Any], message: str
) -> None:
    """Each bad option is refused when the backend is made, naming it."""
    with pytest.raises(hazina.ConfigurationError, match=message):
        RedisBackend.from_url("redis://127.0.0.1:1/0", **options)


@pytest.mark.parametrize("param", ["timeout", "retry_interval", "sync_interval"])
def test_backend_durations_beyond_the_longest_wait_are_refused(param: str) -> None:
    """Regression (issue 10): a finite but absurd duration (1e300 s) was accepted and failed
    at the first command; it is refused when the backend is made, like every duration."""
    options: dict[str, Any] = {param: 1e300}
    with pytest.raises(hazina.ConfigurationError, match=f"{param} must be"):
        RedisBackend.from_url("redis://127.0.0.1:1/0", **options)


def test_a_backend_needs_a_client() -> None:
    """RedisBackend() without clients says how to make one."""
    with pytest.raises(hazina.ConfigurationError, match="from_url"):
        RedisBackend()


def test_a_policy_name_with_braces_is_refused_on_redis(redis_url: str) -> None:
    """A name with { or } would move the Cluster hash tag: a ConfigurationError on Redis."""
    registry = hazina.Registry(backend=RedisBackend.from_url(redis_url))
    with pytest.raises(hazina.ConfigurationError, match=r"'a\{b\}'"):
        registry.rate_limiter("a{b}", rate=1, per=1)


def test_kinds_without_shared_state_stay_in_memory(redis_url: str) -> None:
    """Under a registry with a backend, retries stay in memory; backend= on them is refused."""
    backend = RedisBackend.from_url(redis_url)
    registry = hazina.Registry(backend=backend)
    assert type(registry.retry("calls")) is hazina.Retry
    decorate = hazina.retry("other", registry=registry, backend=backend)  # type: ignore[call-overload]
    with pytest.raises(hazina.ConfigurationError, match="unknown parameter 'backend'"):
        decorate(lambda: None)


def test_one_name_on_two_backends_is_refused(redis_url: str) -> None:
    """Asking for an existing policy with another backend= is an error, not a silent swap."""
    registry = hazina.Registry()
    registry.rate_limiter("api", rate=1, per=1)
    with pytest.raises(hazina.ConfigurationError, match="another backend"):
        registry.rate_limiter("api", backend=RedisBackend.from_url(redis_url), rate=1, per=1)


def test_user_keys_are_encoded_without_ambiguity() -> None:
    """1, 1.0, True, "1" and b"1" differ, and tuples cannot be read two ways."""
    values: list[Any] = [1, 1.0, True, "1", b"1", None, (1,), ((1,),), ("a", "b"), ("ab",)]
    assert len({encode(value) for value in values}) == len(values)
    with pytest.raises(TypeError, match="list"):
        encode([1])


def test_every_key_name_stays_inside_its_prefix_and_hash_tag() -> None:
    """Whatever the user key, the name is prefix:{kind:name:<hex digest>}:suffix."""
    names = KeyNames("app", "cache", "users")
    for hostile in ["}", "{", "*", ":x:", "a" * 10_000, ("}", "{")]:
        key = names.of(hostile, "v")
        assert key.startswith("app:{cache:users:")
        tag = key[key.index("{") + 1 : key.index("}")]
        assert tag.count("{") == 0
        assert len(key) < 100


def test_the_configuration_key_is_renewed(redis_url: str) -> None:
    """A process renews its policy's stored configuration in a round trip of its own,
    and stores it again if it is gone."""
    backend = RedisBackend.from_url(redis_url, sync_interval=0.001)
    limiter = hazina.Registry(backend=backend).rate_limiter("renewed", rate=5, per=60)
    config_key = "hazina:{rate_limiter:renewed}:config"
    with redis.Redis.from_url(redis_url) as client:
        client.delete(config_key)
        time.sleep(0.01)  # past the (shortened) sync interval
        assert limiter.try_acquire()
        assert client.pttl(config_key) > 0


def test_a_mismatch_found_after_an_outage_acts_as_if_redis_were_down(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Created while Redis was down, a policy checks its configuration at the first answer;
    another configuration stored meanwhile makes it run on its on_backend_error."""
    own_redis.kill()
    backend = RedisBackend.from_url(own_redis.url, timeout=0.2, retry_interval=0.01)
    limiter = hazina.Registry(backend=backend).rate_limiter(
        "late", rate=1, per=3600, on_backend_error="allow"
    )
    own_redis.start()
    hazina.Registry(backend=RedisBackend.from_url(own_redis.url)).rate_limiter(
        "late", rate=2, per=3600
    )
    with caplog.at_level(logging.ERROR, logger="hazina.redis"):
        assert all(limiter.try_acquire() for _ in range(5))  # "allow": as if Redis were down
    assert any("different configuration" in r.getMessage() for r in caplog.records)


def test_concurrent_tasks_get_their_own_answers_through_the_pipeline(redis_url: str) -> None:
    """64 tasks deciding at once on a limit of 20: exactly 20 admitted, each answer its own."""
    limiter = hazina.Registry(backend=RedisBackend.from_url(redis_url)).rate_limiter(
        "burst", rate=20, per=3600
    )

    async def decide() -> bool:
        try:
            await limiter.aacquire()
        except hazina.RateLimitExceeded:
            return False
        return True

    async def main() -> list[bool]:
        return list(await asyncio.gather(*(decide() for _ in range(64))))

    assert sum(asyncio.run(main())) == 20
    assert limiter.stats().allowed == 20
    assert limiter.stats().rejected == 44


# -- reading stats: one round trip per backend --------------------------------------


class _Counting(redis.Redis):
    """A client that counts its pipelines and the EVALSHA commands it sends alone."""

    pipelines = 0
    alone = 0

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        type(self).pipelines += 1
        make: Any = super().pipeline
        return make(*args, **kwargs)

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if args[0] == "EVALSHA":
            type(self).alone += 1
        call: Any = super().execute_command
        return call(*args, **options)


def test_registry_stats_read_every_redis_breaker_in_one_round_trip(redis_url: str) -> None:
    """A scrape of many Redis breakers is one pipelined round trip, with the same stats
    each breaker reads alone, even when their configuration checks are due."""
    client = _Counting.from_url(redis_url)
    registry = hazina.Registry(backend=RedisBackend(client=client, sync_interval=0.001))
    breakers = [registry.circuit_breaker(f"db-{index}", failure_threshold=1) for index in range(6)]
    for breaker in breakers[:2]:
        with contextlib.suppress(ConnectionError), breaker:
            raise ConnectionError  # opens it
    time.sleep(0.01)  # every breaker's configuration check is due
    _Counting.pipelines = _Counting.alone = 0

    stats = registry.stats()["circuit_breaker"]

    assert (_Counting.pipelines, _Counting.alone) == (1, 0)
    assert [stats[f"db-{index}"].state for index in range(6)] == ["open"] * 2 + ["closed"] * 4
    alone = breakers[0].stats()
    assert attrs.evolve(stats["db-0"], retry_after=None) == attrs.evolve(alone, retry_after=None)
    assert stats["db-0"].retry_after == pytest.approx(alone.retry_after, abs=0.5)
    assert stats["db-0"].failures == 1


def test_registry_stats_make_no_round_trip_while_redis_is_down(own_redis: RedisServer) -> None:
    """While the backend is down a scrape answers from what each process saw, at once."""
    client = _Counting.from_url(own_redis.url, socket_timeout=0.25, socket_connect_timeout=0.25)
    registry = hazina.Registry(backend=RedisBackend(client=client, retry_interval=60))
    breaker = registry.circuit_breaker("db")
    assert registry.stats()["circuit_breaker"]["db"].state == "closed"
    own_redis.kill()
    with contextlib.suppress(hazina.BackendUnavailable, ConnectionError), breaker:
        pass  # the failed round trip starts the outage
    _Counting.pipelines = _Counting.alone = 0

    started = time.monotonic()
    stats = registry.stats()["circuit_breaker"]["db"]

    assert time.monotonic() - started < 0.2
    assert (_Counting.pipelines, _Counting.alone) == (0, 0)
    assert stats.state == "closed"


# -- closing -----------------------------------------------------------------------------


def test_a_backend_dropped_while_its_event_loop_runs_still_closes_its_connection(
    redis_url: str,
) -> None:
    """Regression: the asyncio client a backend makes is closed by an async generator that
    the loop finalizes when it shuts down. A backend dropped while the loop still ran took
    that generator with it: its close became a task the shutdown did not wait for, and
    the connection stayed half closed (redis-py warned of it when it was collected, in
    whichever test was running then). The loop's shutdown now closes it."""

    async def call_and_drop() -> None:
        limiter = hazina.Registry(backend=RedisBackend.from_url(redis_url)).rate_limiter(
            "dropped", rate=10, per=60
        )
        await limiter.aacquire()

    with asyncio.Runner() as runner:
        runner.run(call_and_drop())
        gc.collect()  # the backend, its registry and its limiter are garbage now

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert unclosed == []
