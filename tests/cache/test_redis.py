"""The cache on Redis: one cache for every process, loads once, strict about what it stores."""

from __future__ import annotations

import asyncio
import enum
import math
import multiprocessing
import pickle
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from conftest import Flavor
from redis_server import RedisServer

import hazina
from hazina.redis import RedisBackend
from hazina.testing import FakeClock


def _registry(url: str, clock: FakeClock | None = None, **backend: Any) -> hazina.Registry:
    # A generous command timeout unless a test sets its own: on a loaded machine the
    # default 0.25 s can pass for an outage and send calls down the stand-in's path.
    backend.setdefault("timeout", 2.0)
    made = RedisBackend.from_url(url, clock="registry" if clock is not None else "redis", **backend)
    return hazina.Registry(clock=clock, backend=made)


def _counting(flavor: Flavor, result: Callable[..., Any] = lambda *args, **kw: list(args)) -> Any:
    """A function for ``flavor`` that records its calls and returns ``result(*args, **kw)``."""
    calls: list[tuple[Any, ...]] = []

    def body(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return result(*args, **kwargs)

    fn = flavor.define(body)
    fn.calls = calls  # type: ignore[attr-defined]
    return fn


# -- sharing and semantics -------------------------------------------------------------------


def test_a_value_cached_by_one_process_is_a_hit_in_another(redis_url: str, flavor: Flavor) -> None:
    """Two registries on one Redis (stand-ins for two processes) share entries."""
    first, second = _counting(flavor), _counting(flavor)
    one = hazina.cached("users", registry=_registry(redis_url), ttl=60)(first)
    other = hazina.cached("users", registry=_registry(redis_url), ttl=60)(second)
    assert flavor.call(one, 7) == [7]
    assert flavor.call(other, 7) == [7]
    assert first.calls == [(7,)]
    assert second.calls == []
    assert one.policy.stats().misses == 1
    assert other.policy.stats().hits == 1


def test_none_is_cached_and_exceptions_are_not(redis_url: str, flavor: Flavor) -> None:
    """None is a value like any other; a raising call is run again next time."""
    outcomes: list[Any] = [ValueError("boom"), None]

    def body(x: int) -> Any:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    fn = hazina.cached("n", registry=_registry(redis_url), ttl=60)(flavor.define(body))
    with pytest.raises(ValueError, match="boom"):
        flavor.call(fn, 1)
    assert flavor.call(fn, 1) is None
    assert flavor.call(fn, 1) is None  # cached: outcomes would be empty otherwise
    stats = fn.policy.stats()
    assert (stats.loads, stats.load_errors, stats.hits) == (2, 1, 1)


def test_entries_expire_on_the_script_clock(
    redis_url: str, clock: FakeClock, flavor: Flavor
) -> None:
    """An entry is served until its ttl on the registry's clock has passed, then reloaded."""
    fn = _counting(flavor)
    cached = hazina.cached("ttl", registry=_registry(redis_url, clock), ttl=10)(fn)
    flavor.call(cached, 1)
    clock.advance(9.9)
    flavor.call(cached, 1)
    clock.advance(0.2)
    flavor.call(cached, 1)
    assert fn.calls == [(1,), (1,)]
    assert cached.policy.stats().expirations == 1


def test_sliding_entries_live_while_read_but_never_past_ttl(
    redis_url: str, clock: FakeClock, flavor: Flavor
) -> None:
    """Each read pushes a sliding entry's deadline back, up to its ttl."""
    fn = _counting(flavor)
    cached = hazina.cached("sl", registry=_registry(redis_url, clock), ttl=5, sliding=2)(fn)
    flavor.call(cached, 1)
    for _ in range(2):
        clock.advance(1.5)
        flavor.call(cached, 1)
    assert fn.calls == [(1,)]
    clock.advance(1.5)  # 4.5 s in, read 1.5 s ago: still fresh
    flavor.call(cached, 1)
    clock.advance(0.6)  # past the ttl of 5 s although read 0.6 s ago
    flavor.call(cached, 1)
    clock.advance(2.1)  # not read for longer than the sliding window
    flavor.call(cached, 1)
    assert fn.calls == [(1,)] * 3


def test_the_redis_ttl_collects_what_expired(redis_url: str) -> None:
    """Every entry key has a Redis TTL no longer than the entry's life (no sleeping needed)."""
    cache = _registry(redis_url).cache("gc", ttl=3)
    cache.set("k", "v")
    client = redis.Redis.from_url(redis_url)
    ttls = [client.pttl(name) for name in client.keys("*gc:*}:v:*")]
    assert len(ttls) == 1
    assert 0 < ttls[0] <= 3000
    assert all(client.pttl(name) > 0 for name in client.keys("*"))


def test_expires_at_is_an_absolute_time(redis_url: str, clock: FakeClock) -> None:
    """An entry stored with expires_at is gone once that wall-clock time has come."""
    cache = _registry(redis_url, clock).cache(
        "at", expires_at=datetime.now(UTC) + timedelta(seconds=30)
    )
    cache.set("k", "v")
    clock.advance(29)
    assert cache.get("k") == "v"
    clock.advance(2)
    assert cache.get("k") is None
    assert cache.set("late", "v", expires_at=time.time() - 1) is False


def test_get_set_delete_and_contains(redis_url: str) -> None:
    """The policy's entry API works as in memory, on shared entries."""
    cache = _registry(redis_url).cache("api", ttl=60)
    other = _registry(redis_url).cache("api", ttl=60)
    assert cache.get("k", "none") == "none"
    assert cache.set("k", {"a": [1, 2.5, None, True]}) is True
    assert "k" in other
    assert other.get("k") == {"a": [1, 2.5, None, True]}
    assert other.delete("k") is True
    assert cache.delete("k") is False
    assert "k" not in cache


def test_get_or_set_loads_once_and_shares(redis_url: str, flavor: Flavor) -> None:
    """get_or_set (aget_or_set) stores the factory's value for every process."""
    cache = _registry(redis_url).cache("gos", ttl=60)
    calls: list[int] = []

    def body() -> int:
        calls.append(1)
        return 42

    factory = flavor.define(body)
    get_or_set = cache.aget_or_set if flavor.is_async else cache.get_or_set
    assert flavor.call(get_or_set, "k", factory) == 42
    assert flavor.call(get_or_set, "k", factory) == 42
    assert calls == [1]
    assert _registry(redis_url).cache("gos", ttl=60).get("k") == 42


def test_cache_invalidate_and_clear(redis_url: str, flavor: Flavor) -> None:
    """cache_invalidate drops one call's entry, cache_clear every entry, fleet-wide."""
    fn = _counting(flavor)
    cached = hazina.cached("inv", registry=_registry(redis_url), ttl=60)(fn)
    flavor.call(cached, 1, y=2)
    flavor.call(cached, 3)
    assert cached.cache_invalidate(1, y=2) is True
    assert cached.cache_invalidate(1, y=2) is False
    flavor.call(cached, 1, y=2)
    flavor.call(cached, 3)
    assert fn.calls == [(1,), (3,), (1,)]
    cached.cache_clear()
    flavor.call(cached, 3)
    assert fn.calls[-1] == (3,)
    assert len(fn.calls) == 4


def test_clear_reaches_other_processes_within_sync_interval(
    redis_url: str, clock: FakeClock
) -> None:
    """Another process serves its last generation for at most sync_interval after a clear."""
    one = _registry(redis_url, clock, sync_interval=1.0).cache("clr", ttl=60)
    other = _registry(redis_url, clock, sync_interval=1.0).cache("clr", ttl=60)
    one.set("k", "v")
    assert other.get("k") == "v"
    one.clear()
    assert one.get("k") is None
    clock.advance(1.0)
    assert other.get("k") is None


def test_clear_is_one_write_whatever_the_size(redis_url: str) -> None:
    """Clearing touches no entry: it replaces the generation in the policy-wide key."""
    cache = _registry(redis_url).cache("o1", ttl=60)
    for index in range(50):
        cache.set(index, index)
    client = redis.Redis.from_url(redis_url)
    before = client.info("commandstats").get("cmdstat_del", {}).get("calls", 0)
    cache.clear()
    assert client.info("commandstats").get("cmdstat_del", {}).get("calls", 0) == before
    assert all(cache.get(index) is None for index in range(50))


# -- keys -------------------------------------------------------------------------------------


def test_one_one_point_oh_and_true_are_different_entries(redis_url: str) -> None:
    """Redis keys keep 1, 1.0 and True apart (Python hashes them alike)."""
    cache = _registry(redis_url).cache("types", ttl=60)
    for key in (1, 1.0, True):
        cache.set(key, repr(key))
    assert [cache.get(key) for key in (1, 1.0, True)] == ["1", "1.0", "True"]


HOSTILE = ["a:b", "{x}", "}", "{", "*", "hazina:{cache:h}:v", "\x00", "a" * 10_000, ("a", "b:c")]


def test_hostile_keys_never_collide_or_escape_the_prefix(redis_url: str) -> None:
    """Keys full of separators, braces, globs or 10 kB stay apart, under the prefix."""
    cache = _registry(redis_url).cache("h", ttl=60)
    for index, key in enumerate(HOSTILE):
        cache.set(key, index)
    assert [cache.get(key) for key in HOSTILE] == list(range(len(HOSTILE)))
    names: list[bytes] = redis.Redis.from_url(redis_url).keys("*")  # type: ignore[assignment]
    assert all(name.startswith(b"hazina:{cache:h") for name in names)
    assert max(len(name) for name in names) < 100


def test_keyword_call_keys_cannot_be_forged_by_plain_keys(redis_url: str) -> None:
    """f(1, y=2) and get((1, ("y", 2))) never meet, as the keyword marker is private."""
    registry = _registry(redis_url)
    cached = hazina.cached("kw", registry=registry, ttl=60)(lambda x, y=0: [x, y])
    cached(1, y=2)
    assert cached.policy.get((1, ("y", 2))) is None
    assert cached.policy.get((1,)) is None
    cached(5)
    assert cached.policy.get((5,)) == [5, 0]


@pytest.mark.parametrize("key", [object(), [1], frozenset({1}), 1j, (1, [2])])
def test_unsupported_key_types_raise_type_error_naming_the_cache(redis_url: str, key: Any) -> None:
    """A key Redis cannot encode canonically is a TypeError that names the cache."""
    cache = _registry(redis_url).cache("badkey", ttl=60)
    for operation in (cache.get, cache.delete, lambda k: cache.set(k, 1)):
        with pytest.raises(TypeError, match="'badkey'"):
            operation(key)


def test_unsupported_call_arguments_raise_type_error_naming_the_cache(
    redis_url: str, flavor: Flavor
) -> None:
    """A call whose arguments cannot be encoded is refused before the function runs."""
    fn = _counting(flavor)
    cached = hazina.cached("badarg", registry=_registry(redis_url), ttl=60)(fn)
    with pytest.raises(TypeError, match="'badarg'"):
        flavor.call(cached, {"a": 1})
    assert fn.calls == []


# -- serializers ------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"


class Text(str):
    pass


REFUSED = [
    (1, 2),
    {1, 2},
    {1: "a"},
    {"a": (1,)},
    math.nan,
    math.inf,
    -math.inf,
    Color.RED,
    Text("x"),
    b"bytes",
    [datetime(2020, 1, 1)],
]


@pytest.mark.parametrize("value", REFUSED, ids=repr)
def test_json_refuses_what_would_not_load_back_equal(
    redis_url: str, flavor: Flavor, value: Any
) -> None:
    """The strict JSON serializer refuses the value with a TypeError naming the cache."""
    registry = _registry(redis_url)
    cache = registry.cache("strict", ttl=60)
    with pytest.raises(TypeError, match="'strict'"):
        cache.set("k", value)
    cached = hazina.cached("strict", registry=registry)(flavor.define(lambda: value))
    with pytest.raises(TypeError, match="'strict'"):
        flavor.call(cached)
    assert cache.get("k", "absent") == "absent"


def test_pickle_only_by_name_keeps_tuples_and_sets(redis_url: str) -> None:
    """serializer="pickle" stores what JSON refuses, and it loads back equal."""
    cache = _registry(redis_url).cache("pk", ttl=60, serializer="pickle")
    value = {(1, 2): {3, 4}, "e": Color.RED}
    cache.set("k", value)
    assert _registry(redis_url).cache("pk", ttl=60, serializer="pickle").get("k") == value


class Upper:
    """A serializer of the user's own: text stored upper-cased."""

    def dumps(self, value: Any) -> bytes:
        if not isinstance(value, str):
            raise ValueError("text only")
        return value.upper().encode()

    def loads(self, data: bytes) -> Any:
        return data.decode()


def test_a_serializer_of_ones_own_is_used_and_its_refusal_names_the_cache(redis_url: str) -> None:
    """Any object with dumps/loads serializes; what it refuses is a TypeError naming the cache."""
    cache = _registry(redis_url).cache("own", ttl=60, serializer=Upper())
    cache.set("k", "shout")
    assert cache.get("k") == "SHOUT"
    with pytest.raises(TypeError, match=r"'own'.*text only"):
        cache.set("k", 1)


def test_a_stored_value_that_cannot_be_read_is_a_miss_and_is_replaced(redis_url: str) -> None:
    """A value written by another serializer is loaded anew, not returned as garbage."""
    pickled = _registry(redis_url).cache("mixed", ttl=60, serializer="pickle")
    pickled.set("k", "x")
    client = redis.Redis.from_url(redis_url)
    (name,) = client.keys("*mixed:*}:v:*")
    client.hset(name, "v", b"not json {")
    assert pickled.get_or_set("k", lambda: "fresh") == "fresh"
    assert pickled.get("k") == "fresh"
    assert pickle.loads(client.hget(name, "v")) == "fresh"  # type: ignore[arg-type]


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "expiry"),
        ({"sliding": 5}, "expiry"),
        ({"ttl": 5, "max_size": 10}, "max_size"),
        ({"ttl": 5, "priority": "high"}, "priority"),
    ],
)
def test_what_redis_cannot_honour_is_a_configuration_error(
    redis_url: str, options: dict[str, Any], message: str
) -> None:
    """No expiry, max_size or priority on Redis: refused at creation, naming the cache."""
    with pytest.raises(hazina.ConfigurationError, match=f"'conf'.*{message}"):
        _registry(redis_url).cache("conf", **options)


def test_a_per_entry_priority_is_a_configuration_error(redis_url: str) -> None:
    """set(priority=...) would be silently ignored on Redis, so it is refused."""
    cache = _registry(redis_url).cache("prio", ttl=60)
    with pytest.raises(hazina.ConfigurationError, match="'prio'"):
        cache.set("k", 1, priority="high")


def test_two_processes_must_agree_on_the_serializer(redis_url: str) -> None:
    """A process reading entries with another serializer is refused at creation."""
    _registry(redis_url).cache("agree", ttl=60)
    with pytest.raises(hazina.ConfigurationError, match="pickle"):
        _registry(redis_url).cache("agree", ttl=60, serializer="pickle")


# -- one load for the fleet -------------------------------------------------------------------


def test_threads_of_one_process_missing_a_key_load_it_once(redis_url: str) -> None:
    """Concurrent misses in one process share one load and one lease."""
    calls: list[int] = []
    gate = threading.Event()

    def slow(x: int) -> int:
        calls.append(x)
        gate.wait(5)
        return x * 2

    cached = hazina.cached("threads", registry=_registry(redis_url), ttl=60)(slow)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(cached(4))) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    gate.set()
    for thread in threads:
        thread.join(5)
    assert results == [8] * 8
    assert calls == [4]
    stats = cached.policy.stats()
    assert stats.loads == 1
    assert stats.coalesced == 7


def test_tasks_of_one_process_missing_a_key_load_it_once(redis_url: str) -> None:
    """Concurrent misses of tasks share one load."""
    calls: list[int] = []

    async def slow(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0.1)
        return x * 2

    cached = hazina.cached("tasks", registry=_registry(redis_url), ttl=60)(slow)

    async def main() -> list[int]:
        return await asyncio.gather(*(cached(4) for _ in range(8)))

    assert asyncio.run(main()) == [8] * 8
    assert calls == [4]


def _loads(url: str) -> int:
    """How many loads the fleet's workers counted in Redis."""
    return int(redis.Redis.from_url(url).get("loads"))  # type: ignore[arg-type]


def _fleet_worker(url: str, lease: float, sleep_for: float, fail: bool, out: Any) -> None:
    client = redis.Redis.from_url(url)
    registry = hazina.Registry(backend=RedisBackend.from_url(url))

    @hazina.cached("fleet", registry=registry, ttl=60, lease=lease)
    def expensive(x: int) -> int:
        client.incr("loads")
        time.sleep(sleep_for)
        if fail and client.incr("failures") == 1:
            raise RuntimeError("first load fails")
        return x * 2

    while not client.exists("go"):
        time.sleep(0.001)
    started = time.monotonic()
    try:
        out.put((expensive(21), time.monotonic() - started))
    except Exception as error:  # reported to the test, which decides
        out.put((repr(error), time.monotonic() - started))


def _run_fleet(
    url: str, processes: int, *, lease: float = 10.0, sleep_for: float = 0.3, fail: bool = False
) -> list[tuple[Any, float]]:
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    workers = [
        context.Process(target=_fleet_worker, args=(url, lease, sleep_for, fail, out))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    time.sleep(0.3)  # every worker is polling for "go"
    redis.Redis.from_url(url).set("go", 1)
    results = [out.get(timeout=15) for _ in workers]
    for worker in workers:
        worker.join(5)
        assert worker.exitcode == 0
    return results


def test_eight_processes_missing_one_key_load_it_once(redis_url: str) -> None:
    """One process loads; the seven others wait for its value instead of loading."""
    results = _run_fleet(redis_url, 8)
    assert [value for value, _ in results] == [42] * 8
    assert _loads(redis_url) == 1


def test_a_failed_load_lets_a_waiting_process_load_at_once(redis_url: str) -> None:
    """A load that raises gives its lease back: a waiter loads without waiting the lease out."""
    results = _run_fleet(redis_url, 3, lease=10.0, sleep_for=0.2, fail=True)
    values = sorted(str(value) for value, _ in results)
    assert values.count("42") == 2
    assert "first load fails" in values[2]
    assert max(elapsed for _, elapsed in results) < 3
    assert _loads(redis_url) == 2


def test_waiters_load_themselves_once_the_lease_runs_out(redis_url: str) -> None:
    """A load slower than the lease does not hold the other processes past the lease."""
    results = _run_fleet(redis_url, 2, lease=0.2, sleep_for=1.0)
    assert [value for value, _ in results] == [42, 42]
    # The waiter loaded after the lease (0.2 s), not after the first load (1 s) ended.
    assert _loads(redis_url) == 2
    assert max(elapsed for _, elapsed in results) < 1.7


def test_an_enclosing_asyncio_timeout_ends_a_fleet_wait(redis_url: str) -> None:
    """A task waiting for another process's load stops at its own deadline, not the lease."""
    other = _registry(redis_url).cache("deadline", ttl=60, lease=30)
    mine = _registry(redis_url).cache("deadline", ttl=60, lease=30)
    taken = threading.Event()

    def slow_load() -> int:
        taken.set()
        time.sleep(1.0)
        return 1

    loader = threading.Thread(target=lambda: other.get_or_set("k", slow_load))
    loader.start()
    taken.wait(5)

    async def never() -> int:
        raise AssertionError("the waiter must not load")

    async def wait_briefly() -> None:
        async with asyncio.timeout(0.2):
            await mine.aget_or_set("k", never)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(wait_briefly())
    assert time.monotonic() - started < 0.6
    loader.join(5)
    assert mine.get("k") == 1


# -- when Redis fails -------------------------------------------------------------------------


def _fault_registry(server: RedisServer) -> hazina.Registry:
    return _registry(server.url, timeout=0.2, retry_interval=0.1)


def test_local_serves_from_memory_during_an_outage_and_drops_it_after(
    own_redis: RedisServer, flavor: Flavor
) -> None:
    """on_backend_error="local": the in-memory stand-in serves while Redis is down."""
    fn = _counting(flavor)
    cached = hazina.cached("local", registry=_fault_registry(own_redis), ttl=60)(fn)
    flavor.call(cached, 1)
    own_redis.kill()
    assert flavor.call(cached, 1) == [1]  # loaded into memory
    assert flavor.call(cached, 1) == [1]  # served from memory
    assert len(fn.calls) == 2
    assert cached.policy.stats().backend_errors >= 1
    own_redis.start()
    time.sleep(0.15)  # past retry_interval
    assert flavor.call(cached, 1) == [1]  # Redis was emptied by the restart: a load
    assert cached.policy.stats().size == 0  # the stand-in was dropped
    assert flavor.call(cached, 1) == [1]
    assert len(fn.calls) == 3


def test_allow_calls_through_and_stores_nothing(own_redis: RedisServer, flavor: Flavor) -> None:
    """on_backend_error="allow": each call runs the function while Redis is down."""
    fn = _counting(flavor)
    registry = _fault_registry(own_redis)
    cached = hazina.cached("allow", registry=registry, ttl=60, on_backend_error="allow")(fn)
    own_redis.kill()
    for _ in range(3):
        assert flavor.call(cached, 1) == [1]
    assert len(fn.calls) == 3
    assert cached.policy.get(1, "d") == "d"
    assert cached.policy.set(1, 2) is False


def test_deny_raises_backend_unavailable_from_the_redis_error(
    own_redis: RedisServer, flavor: Flavor
) -> None:
    """on_backend_error="deny": BackendUnavailable, caused by Redis's error, nothing run."""
    fn = _counting(flavor)
    registry = _fault_registry(own_redis)
    cached = hazina.cached("deny", registry=registry, ttl=60, on_backend_error="deny")(fn)
    own_redis.kill()
    with pytest.raises(hazina.BackendUnavailable) as raised:
        flavor.call(cached, 1)
    assert raised.value.name == "deny"
    assert 0 <= raised.value.retry_after <= 0.1
    assert isinstance(raised.value.__cause__, redis.RedisError | OSError)
    with pytest.raises(hazina.BackendUnavailable):  # marked down: refused without a try
        cached.policy.get(1)
    assert fn.calls == []


def test_a_frozen_redis_never_holds_a_call_past_the_timeout(
    own_redis: RedisServer, flavor: Flavor
) -> None:
    """A server that accepts and never answers costs one timeout, then the stand-in serves."""
    fn = _counting(flavor)
    cached = hazina.cached("frozen", registry=_fault_registry(own_redis), ttl=60)(fn)
    flavor.call(cached, 1)
    own_redis.pause()
    try:
        started = time.monotonic()
        for _ in range(5):
            assert flavor.call(cached, 1) == [1]
        assert time.monotonic() - started < 1.0
    finally:
        own_redis.resume()


def test_a_redis_killed_during_a_load_still_answers_the_caller(
    own_redis: RedisServer, flavor: Flavor
) -> None:
    """The function ran: its value reaches the caller although storing it failed."""

    def body(x: int) -> int:
        own_redis.kill()
        return x + 1

    cached = hazina.cached("mid", registry=_fault_registry(own_redis), ttl=60)(flavor.define(body))
    assert flavor.call(cached, 1) == 2
    assert cached.policy.stats().backend_errors == 1


def test_script_flush_mid_run_is_invisible(own_redis: RedisServer, flavor: Flavor) -> None:
    """Redis forgetting the scripts (SCRIPT FLUSH, a failover) costs a reload, not an error."""
    fn = _counting(flavor)
    cached = hazina.cached("flush", registry=_fault_registry(own_redis), ttl=60)(fn)
    flavor.call(cached, 1)
    redis.Redis.from_url(own_redis.url).script_flush()
    assert flavor.call(cached, 1) == [1]
    assert len(fn.calls) == 1
    assert cached.policy.stats().backend_errors == 0


# -- refresh_after and stale_if_error, fleet-wide -----------------------------------------------


class _Numbered:
    """Answers "v1", "v2", ... in call order; raises ``failing`` when set; waits at ``gate``."""

    def __init__(self) -> None:
        self.runs = 0
        self.failing: Exception | None = None
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, *args: Any) -> str:
        self.runs += 1
        run = self.runs
        assert self.gate.wait(5), "the gate was never opened"
        if self.failing is not None:
            raise self.failing
        return f"v{run}"


def _settle(flavor: Flavor) -> None:
    """Let every background refresh finish (threads joined, or the loop's tasks run)."""
    if flavor.is_async:

        async def drain() -> None:
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            await asyncio.wait_for(asyncio.gather(*others, return_exceptions=True), 5)

        flavor.call(drain)
        return
    for thread in threading.enumerate():
        if thread.name.startswith("hazina-cache-refresh"):
            thread.join(5)


def test_an_old_entry_is_refreshed_once_for_the_fleet(
    redis_url: str, clock: FakeClock, flavor: Flavor
) -> None:
    """Hits on an old entry in two processes start one refresh between them; both see it."""
    source = _Numbered()
    one = hazina.cached("ra", registry=_registry(redis_url, clock), ttl=60, refresh_after=10)(
        flavor.define(source)
    )
    other = hazina.cached("ra", registry=_registry(redis_url, clock), ttl=60, refresh_after=10)(
        flavor.define(source)
    )
    assert flavor.call(one, 1) == "v1"
    clock.advance(11)

    if not flavor.is_async:
        source.gate.clear()  # the refresh waits, so the other process's hits find it running
    assert flavor.call(one, 1) == "v1"
    # An async refresh may finish during any later call (its task runs on that loop).
    answers = {flavor.call(fn, 1) for fn in (other, one, other, one)}
    assert answers == {"v1"} if not flavor.is_async else answers <= {"v1", "v2"}
    source.gate.set()
    _settle(flavor)

    assert flavor.call(other, 1) == "v2"
    assert source.runs == 2
    assert one.policy.stats().refreshes + other.policy.stats().refreshes == 1


def test_a_clear_during_a_fleet_refresh_keeps_its_value_out(
    redis_url: str, clock: FakeClock
) -> None:
    """A refresh finishing after cache_clear() stores nothing anywhere the fleet reads."""
    source = _Numbered()
    fn = hazina.cached("rc", registry=_registry(redis_url, clock), ttl=60, refresh_after=10)(source)
    fn(1)
    clock.advance(11)
    source.gate.clear()
    assert fn(1) == "v1"
    fn.cache_clear()
    source.gate.set()
    _settle(Flavor(False, None))
    assert 1 not in fn.policy
    assert fn(1) == "v3"


def test_a_failed_fleet_refresh_is_counted_and_frees_the_lease(
    redis_url: str, clock: FakeClock
) -> None:
    """A refresh that raises counts in load_errors; the next waits refresh_after, then runs."""
    source = _Numbered()
    fn = hazina.cached("rf", registry=_registry(redis_url, clock), ttl=60, refresh_after=10)(source)
    fn(1)
    clock.advance(11)
    source.failing = ValueError("down")
    assert fn(1) == "v1"
    _settle(Flavor(False, None))
    source.failing = None
    clock.advance(9)
    assert fn(1) == "v1"  # too soon after the failure: no refresh
    _settle(Flavor(False, None))
    assert source.runs == 2
    clock.advance(1)
    assert fn(1) == "v1"
    _settle(Flavor(False, None))
    assert fn(1) == "v3"
    stats = fn.policy.stats()
    assert (stats.refreshes, stats.load_errors) == (2, 1)


def test_a_stale_entry_answers_failed_loads_across_the_fleet(
    redis_url: str, clock: FakeClock, flavor: Flavor
) -> None:
    """Past its ttl an entry stays in Redis for stale_if_error more, served when loads fail."""
    source = _Numbered()
    one = hazina.cached(
        "stale-fleet", registry=_registry(redis_url, clock), ttl=10, stale_if_error=30
    )(flavor.define(source))
    other = hazina.cached(
        "stale-fleet", registry=_registry(redis_url, clock), ttl=10, stale_if_error=30
    )(flavor.define(source))
    assert flavor.call(one, 1) == "v1"
    client = redis.Redis.from_url(redis_url)
    [entry] = [k for k in client.keys("*cache:stale-fleet:*") if b"}:v:" in k]
    assert 39_000 < client.pttl(entry) <= 40_000  # ttl + stale_if_error

    source.failing = ConnectionError("down")
    clock.advance(15)
    assert 1 not in one.policy
    assert flavor.call(other, 1) == "v1"
    clock.advance(24.9)
    assert flavor.call(one, 1) == "v1"
    clock.advance(0.1)  # 40 s: never past stale_if_error
    with pytest.raises(ConnectionError):
        flavor.call(one, 1)
    assert one.policy.stats().stale_served == 1
    assert other.policy.stats().stale_served == 1


def test_a_successful_load_after_expiry_replaces_the_kept_entry(
    redis_url: str, clock: FakeClock
) -> None:
    """An expired, kept entry does not stop a fresh load from being stored."""
    source = _Numbered()
    fn = hazina.cached("sr", registry=_registry(redis_url, clock), ttl=10, stale_if_error=30)(
        source
    )
    fn(1)
    clock.advance(11)
    assert fn(1) == "v2"
    assert fn(1) == "v2"
    assert source.runs == 2


def test_threads_waiting_on_a_failed_fleet_load_each_get_the_stale_value(
    redis_url: str, clock: FakeClock
) -> None:
    """Callers of one process joined to a load that fails are answered from the kept entry."""
    source = _Numbered()
    fn = hazina.cached("sw", registry=_registry(redis_url, clock), ttl=10, stale_if_error=30)(
        source
    )
    fn(1)
    clock.advance(11)
    source.failing = ConnectionError("down")
    source.gate.clear()
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(fn(1))) for _ in range(6)]
    # The leader first, held inside the load, so that the others all find its flight
    # (started together, a late one could take the fleet lease over after the failure).
    threads[0].start()
    deadline = time.monotonic() + 5
    while source.runs < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    for thread in threads[1:]:
        thread.start()
    while fn.policy.stats().coalesced < 5 and time.monotonic() < deadline:
        time.sleep(0.001)
    source.gate.set()
    for thread in threads:
        thread.join(5)
    assert results == ["v1"] * 6
    stats = fn.policy.stats()
    assert (stats.stale_served, stats.load_errors, stats.coalesced) == (6, 1, 5)


def test_tasks_waiting_on_a_failed_fleet_load_each_get_the_stale_value(
    redis_url: str, clock: FakeClock
) -> None:
    """Tasks joined to a load that fails are answered from the kept entry too."""
    runs = 0

    async def load(key: int) -> str:
        nonlocal runs
        runs += 1
        if runs > 1:
            await asyncio.sleep(0.05)
            raise ConnectionError("down")
        return "v1"

    fn = hazina.cached("sta", registry=_registry(redis_url, clock), ttl=10, stale_if_error=30)(load)

    async def main() -> list[str]:
        await fn(1)
        clock.advance(11)
        return await asyncio.gather(*(fn(1) for _ in range(6)))

    assert asyncio.run(main()) == ["v1"] * 6
    assert runs == 2
    assert fn.policy.stats().stale_served == 6
