"""Shared configuration on Redis at its edges: races between processes, a server that
loses its data, values that do not travel, stored configurations a process cannot run.

As in test_shared_config.py, registries on backends of their own stand for processes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from interrupts import hammered
from redis_server import RedisServer

import hazina
from hazina.redis import RedisBackend

SYNC = 0.05
TIMEOUT = 10.0


@pytest.fixture
def fleet(redis_url: str) -> Iterator[Callable[..., hazina.Registry]]:
    """Registries that stand for processes of one fleet (each on a backend of its own)."""
    backends: list[RedisBackend] = []

    def process(**options: Any) -> hazina.Registry:
        backend = RedisBackend.from_url(redis_url, **{"sync_interval": SYNC, **options})
        backends.append(backend)
        return hazina.Registry(backend=backend)

    yield process
    for backend in backends:
        backend._client.close()  # type: ignore[union-attr]


@pytest.fixture
def server(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client of the test's server, to look at or change what it holds."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def eventually(condition: Callable[[], bool], poke: Callable[[], object]) -> bool:
    """Call ``poke`` (a call of the policy) until ``condition`` holds."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return True
        poke()
        time.sleep(SYNC / 2)
    return condition()


def rate_of(limiter: Any) -> float:
    return float(limiter.config.limits[0].rate)


def config_key(server: redis.Redis, kind: str, name: str) -> bytes:
    keys = [key for key in server.scan_iter(f"*{kind}:{name}*") if key.endswith(b":config")]
    assert len(keys) == 1, keys
    return bytes(keys[0])


# -- races between processes ------------------------------------------------------------


def test_two_processes_reconfiguring_at_once_both_run_the_last_stored(
    fleet: Callable[..., hazina.Registry], server: redis.Redis
) -> None:
    """Each reconfigures from its own view at the same moment; whichever store lands last
    is what both run once they have checked."""
    one = fleet().rate_limiter("race", rate=10, per=3600)
    other = fleet().rate_limiter("race", rate=10, per=3600)
    start = threading.Barrier(2)

    def change(limiter: Any, rate: int) -> None:
        start.wait()
        limiter.reconfigure(rate=rate)

    threads = [
        threading.Thread(target=change, args=(one, 3)),
        threading.Thread(target=change, args=(other, 4)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    key = config_key(server, "rate_limiter", "race")
    last = 3.0 if b'"rate":3' in server.hget(key, "params") else 4.0  # type: ignore[operator]
    assert eventually(lambda: rate_of(one) == last, lambda: one.try_acquire(key="poke"))
    assert eventually(lambda: rate_of(other) == last, lambda: other.try_acquire(key="poke"))


# -- a server that loses its data -------------------------------------------------------


def test_a_change_stored_after_the_server_lost_its_data_still_reaches_the_fleet(
    fleet: Callable[..., hazina.Registry], server: redis.Redis
) -> None:
    """After a flush (a restart without persistence) the stored configuration starts
    again: a change stored then must not pass for the version the others already run."""
    one = fleet().rate_limiter("flushed", rate=10, per=3600)
    other = fleet().rate_limiter("flushed", rate=10, per=3600)
    assert [one.try_acquire(), other.try_acquire()] == [True, True]
    server.flushall()
    one.reconfigure(rate=3)
    assert eventually(lambda: rate_of(other) == 3, lambda: other.try_acquire(key="poke"))


def test_a_configuration_key_that_expired_is_stored_again_by_the_next_check(
    fleet: Callable[..., hazina.Registry], server: redis.Redis
) -> None:
    """A process that finds no stored configuration stores its own again (with the
    parameters of a reconfigure, so a process started later adopts them)."""
    one = fleet().rate_limiter("gone", rate=10, per=3600)
    one.reconfigure(rate=5)
    key = config_key(server, "rate_limiter", "gone")
    server.delete(key)
    assert eventually(lambda: server.exists(key) == 1, lambda: one.try_acquire(key="poke"))
    late = fleet().rate_limiter("gone", rate=10, per=3600)
    assert rate_of(late) == 5


# -- values that do not travel ----------------------------------------------------------


def test_a_limiter_made_with_limit_objects_cannot_store_a_change_the_fleet_cannot_rebuild(
    fleet: Callable[..., hazina.Registry],
) -> None:
    """Its limits have no JSON form: a change of another parameter would store parameters
    without limits, which no other process could run. Refused, naming the parameter."""
    one = fleet().rate_limiter("objects", limits=[hazina.Limit(5, 60)])
    other = fleet().rate_limiter("objects", limits="5/minute")
    with pytest.raises(hazina.ConfigurationError, match=r"limits=.*cannot be shared"):
        one.reconfigure(algorithm="gcra")
    assert one.config.algorithm == "token_bucket"
    one.reconfigure(on_backend_error="allow")  # stays here: nothing is stored
    # Given in a form that travels, the change is stored and adopted.
    one.reconfigure(limits="5/minute", algorithm="gcra")
    assert eventually(
        lambda: other.config.algorithm == "gcra", lambda: other.try_acquire(key="poke")
    )
    assert other.stats().backend_errors == 0


def test_a_duration_given_as_a_timedelta_or_a_float_is_the_same_configuration(
    fleet: Callable[..., hazina.Registry],
) -> None:
    """30, 30.0 and timedelta(seconds=30) configure one breaker in memory; processes
    that spell them differently share it too (JSON writes 30 and 30.0 apart)."""
    import datetime

    fleet().circuit_breaker("spelled", open_for=30, failure_threshold=2)
    fleet().circuit_breaker("spelled", open_for=30.0, failure_threshold=2)
    fleet().circuit_breaker("spelled", open_for=datetime.timedelta(seconds=30), failure_threshold=2)
    fleet().rate_limiter("spelled", limits=[hazina.Limit(5, 60)])
    fleet().rate_limiter("spelled", limits="5/minute")


def test_values_configured_beside_limit_objects_are_refused_at_creation(
    fleet: Callable[..., hazina.Registry],
) -> None:
    """configure() before creation stores the values for the fleet, as a reconfigure does:
    the code's Limit objects would be left out of them, so creation says so."""
    fleet().rate_limiter("objects", limits="5/minute")
    starting = fleet()
    starting.configure({"rate_limiter": {"objects": {"algorithm": "gcra"}}})
    with pytest.raises(hazina.ConfigurationError, match=r"limits=.*cannot be shared"):
        starting.rate_limiter("objects", limits=[hazina.Limit(5, 60)])


# -- stored configurations a process cannot run -----------------------------------------


def _store_foreign(server: redis.Redis, kind: str, name: str, params: str) -> None:
    """What a process of another version of hazina stores: parameters this one rejects."""
    key = config_key(server, kind, name)
    server.hset(key, mapping={"version": 99, "config": '{"foreign":1}', "params": params})


def test_a_stored_configuration_this_process_cannot_rebuild_acts_as_if_redis_were_down(
    fleet: Callable[..., hazina.Registry],
    server: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Calls go on under on_backend_error (here "deny": refused, never raising); the
    reason is logged at ERROR once, not at every check; a configuration it can run,
    stored later, heals it."""
    one = fleet().rate_limiter("foreign", rate=10, per=3600)
    other = fleet().rate_limiter("foreign", rate=10, per=3600, on_backend_error="deny")
    keys = iter(range(1_000_000))
    admitted: list[bool] = []
    _store_foreign(server, "rate_limiter", "foreign", '{"rate":10,"per":3600,"warp":9}')
    with caplog.at_level(logging.ERROR, logger="hazina.redis"):
        # Each call on a fresh key: only the refusal to share can deny it.
        assert eventually(
            lambda: admitted[-1:] == [False],
            lambda: admitted.append(other.try_acquire(key=next(keys))),
        )
        for _ in range(10):  # ten checks' worth of calls
            assert not other.try_acquire(key=next(keys))
            time.sleep(SYNC)
    refusals = [record for record in caplog.records if "cannot adopt" in record.getMessage()]
    assert len(refusals) == 1
    assert "warp" in refusals[0].getMessage()
    one.reconfigure(rate=4)
    assert eventually(
        lambda: admitted[-1:] == [True], lambda: admitted.append(other.try_acquire(key=next(keys)))
    )
    assert rate_of(other) == 4


def test_a_process_started_beside_a_configuration_it_cannot_rebuild_still_starts(
    fleet: Callable[..., hazina.Registry],
    server: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A rolling upgrade: the stored configuration comes from another version. A process
    starting now does not fail at creation; it acts as if Redis were down and says why."""
    fleet().rate_limiter("upgrade", rate=10, per=3600)
    _store_foreign(server, "rate_limiter", "upgrade", '{"rate":10,"per":3600,"warp":9}')
    with caplog.at_level(logging.ERROR, logger="hazina.redis"):
        late = fleet().rate_limiter("upgrade", rate=10, per=3600, on_backend_error="deny")
    assert any("warp" in record.getMessage() for record in caplog.records)
    with pytest.raises(hazina.RateLimitExceeded):
        late.acquire()
    assert late.stats().backend_errors == 0  # no round trip failed: it chose not to share


# -- kinds and clients ------------------------------------------------------------------


def test_after_a_change_of_serializer_entries_of_the_other_format_are_misses(
    fleet: Callable[..., hazina.Registry],
) -> None:
    """While one process writes pickle and the other, not yet adopted, writes JSON, each
    reads the other's entries as misses and loads them anew: no error, no wrong value."""
    one = fleet().cache("fmt", ttl=60)
    # A long sync_interval: this process keeps JSON for the whole test.
    other = fleet(sync_interval=3600).cache("fmt", ttl=60)
    other.set("ada", {"name": "Ada"})
    one.reconfigure(serializer="pickle")
    assert one.get("ada") is None  # written as JSON: a miss here now
    one.set("ada", {"name": "Ada", "by": "pickle"})
    assert other.config.serializer == "json"
    assert other.get("ada") is None  # written with pickle: a miss there
    other.set("ada", {"name": "Ada", "by": "json"})
    assert one.get("ada") is None
    assert one.stats().misses == 2
    assert one.stats().backend_errors == other.stats().backend_errors == 0


def test_an_async_only_backend_cannot_store_a_change_but_adopts_one(
    fleet: Callable[..., hazina.Registry], redis_url: str
) -> None:
    """reconfigure() is sync: with only an asyncio client it is refused, naming the
    backend, and nothing changes; a change stored by another process is still adopted."""
    import redis.asyncio

    async def scenario() -> float:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            backend = RedisBackend(async_client=client, sync_interval=SYNC)
            registry = hazina.Registry(backend=backend)
            limiter = registry.rate_limiter("async", rate=10, per=3600)
            retry = registry.retry("async", attempts=2)  # in memory
            with pytest.raises(hazina.ConfigurationError, match="only an asyncio client"):
                limiter.reconfigure(rate=3)
            # configure() finds it before it changes the entries before that one.
            with pytest.raises(hazina.ConfigurationError, match="only an asyncio client"):
                registry.configure(
                    {"retry": {"async": {"attempts": 5}}, "rate_limiter": {"async": {"rate": 3}}}
                )
            assert rate_of(limiter) == 10
            assert retry.config.attempts == 2
            limiter.reconfigure(on_backend_error="allow")  # stays here: nothing is stored
            assert limiter.config.on_backend_error == "allow"
            fleet().rate_limiter("async", rate=10, per=3600).reconfigure(rate=3)
            keys = iter(range(1_000_000))
            deadline = time.monotonic() + TIMEOUT
            while rate_of(limiter) != 3 and time.monotonic() < deadline:
                await limiter.aacquire(key=next(keys))
                await asyncio.sleep(SYNC / 2)
            return rate_of(limiter)
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == 3


def test_an_adoption_scheduled_before_a_reconfigure_here_does_not_undo_it(
    fleet: Callable[..., hazina.Registry], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check found another process's change and handed it to a thread; this process's
    own reconfigure, stored after it, runs before that thread does. The later change
    stands: the thread must not put the older one back."""
    import types

    import hazina._redis.link as link

    held: list[threading.Thread] = []

    class Late(threading.Thread):
        """An adopting thread the scheduler gets to only when the test says so."""

        def start(self) -> None:
            held.append(self)

    monkeypatch.setattr(link, "threading", types.SimpleNamespace(Thread=Late))
    one = fleet().rate_limiter("late", rate=10, per=3600)
    other = fleet().rate_limiter("late", rate=10, per=3600)
    one.reconfigure(rate=3)
    assert eventually(lambda: bool(held), lambda: other.try_acquire(key="poke"))
    other.reconfigure(rate=5)  # stored after one's: the fleet's configuration now
    monkeypatch.undo()  # adopting threads start at once again
    for thread in held:
        threading.Thread.start(thread)
        thread.join(TIMEOUT)
    assert rate_of(other) == 5
    assert eventually(lambda: rate_of(one) == 5, lambda: one.try_acquire(key="poke"))


def test_a_limit_spelled_as_rate_and_per_or_as_a_string_is_the_same_configuration(
    fleet: Callable[..., hazina.Registry],
) -> None:
    """rate=10, per=3600 and limits="10/hour" make equal configurations (one registry
    hands back the same limiter for both): processes that spell them differently share."""
    one = fleet().rate_limiter("spelled", rate=10, per=3600)
    other = fleet().rate_limiter("spelled", limits="10/hour")
    assert one.config == other.config
    assert [one.try_acquire(cost=6), other.try_acquire(cost=6)] == [True, False]


# -- what a process keeps of its own, and what it takes -----------------------------------


def test_limits_and_rate_per_replace_each_other_across_processes(
    fleet: Callable[..., hazina.Registry],
) -> None:
    """One spelling stored by a reconfigure replaces the other in every process, and a
    process's own local parameters and key function survive the adoption."""
    one = fleet().rate_limiter("alt", limits="10/hour", key=str)
    other = fleet().rate_limiter(
        "alt", limits="10/hour", on_backend_error="deny", key=lambda user: f"u-{user}"
    )
    one.reconfigure(rate=2, per=60)
    assert eventually(lambda: rate_of(other) == 2, lambda: other.try_acquire(key="poke"))
    assert [str(limit) for limit in other.config.limits] == ["2/60s"]
    assert other.config.on_backend_error == "deny"
    key = other.config.key
    assert key is not None
    assert key("ada") == "u-ada"
    one.reconfigure(limits="7/minute")
    assert eventually(lambda: rate_of(other) == 7, lambda: other.try_acquire(key="poke"))
    assert (other.config.rate, other.config.per) == (None, None)
    assert other.config.on_backend_error == "deny"


def test_a_keyed_breaker_that_adopts_a_change_applies_it_to_the_keys_it_holds(
    fleet: Callable[..., hazina.Registry],
) -> None:
    """As for a reconfigure of its own: a key already held here follows the adopted
    threshold."""
    one = fleet().circuit_breaker("hosts", failure_threshold=3, key=lambda host: host)
    elsewhere = fleet()
    other = elsewhere.circuit_breaker("hosts", failure_threshold=3, key=lambda host: host)

    @hazina.circuit_breaker("hosts", registry=elsewhere)
    def fetch(host: str) -> None:
        raise ConnectionError(host)

    with pytest.raises(ConnectionError):
        fetch("a")  # key "a" held here from now on
    one.reconfigure(failure_threshold=1)
    assert eventually(lambda: other.config.failure_threshold == 1, lambda: other.state_of("z"))
    with pytest.raises(ConnectionError):
        fetch("b")  # a fresh key's first failure, under the new threshold
    assert other.state_of("b") is hazina.CircuitState.OPEN
    with pytest.raises(ConnectionError):
        fetch("a")
    assert other.state_of("a") is hazina.CircuitState.OPEN


def test_a_keyed_bucket_is_shared_under_the_new_shape_once_both_run_it(
    fleet: Callable[..., hazina.Registry],
) -> None:
    """After a change of algorithm a key starts full, and the two processes drain one
    bucket again (not one each)."""
    one = fleet().rate_limiter("shape", rate=2, per=3600)
    other = fleet().rate_limiter("shape", rate=2, per=3600)
    assert [one.try_acquire(key="k"), other.try_acquire(key="k")] == [True, True]
    one.reconfigure(algorithm="gcra")
    assert eventually(
        lambda: other.config.algorithm == "gcra", lambda: other.try_acquire(key="poke")
    )
    assert [one.try_acquire(key="k"), other.try_acquire(key="k")] == [True, True]
    assert [one.try_acquire(key="k"), other.try_acquire(key="k")] == [False, False]


def test_registry_stats_read_while_a_change_is_adopted(
    fleet: Callable[..., hazina.Registry],
) -> None:
    """A scrape during adoptions answers for every policy and counts every call once."""
    one, running = fleet(), fleet()
    limiters = [one.rate_limiter(f"s{index}", rate=1000, per=3600) for index in range(4)]
    theirs = [running.rate_limiter(f"s{index}", rate=1000, per=3600) for index in range(4)]
    stop = threading.Event()
    errors: list[BaseException] = []
    scrapes: list[int] = []

    def scrape() -> None:
        try:
            while not stop.is_set():
                scrapes.append(len(running.stats()["rate_limiter"]))
        except BaseException as error:
            errors.append(error)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for rate in (500, 400):
            for limiter in limiters:
                limiter.reconfigure(rate=rate)
            for limiter in theirs:
                assert eventually(lambda: rate_of(limiter) == rate, limiter.try_acquire)  # noqa: B023
    finally:
        stop.set()
        scraper.join(TIMEOUT)
    assert errors == []
    assert set(scrapes) == {4}
    stats = running.stats()["rate_limiter"]
    calls = sum(stats[f"s{index}"].allowed + stats[f"s{index}"].rejected for index in range(4))
    assert calls > 0
    assert all(stats[f"s{index}"].backend_errors == 0 for index in range(4))


# -- a process that starts while Redis is down, or forks ----------------------------------


def test_a_policy_created_while_redis_was_down_adopts_a_change_stored_meanwhile(
    own_redis: RedisServer,
) -> None:
    """Its check waits for Redis's first answer; the change stored by then wins over its
    code, as it would have at creation."""

    def process() -> hazina.Registry:
        backend = RedisBackend.from_url(
            own_redis.url, timeout=0.2, retry_interval=0.01, sync_interval=SYNC
        )
        return hazina.Registry(backend=backend)

    running = process()
    running.rate_limiter("dark", rate=10, per=3600)
    own_redis.kill()
    starting = process().rate_limiter("dark", rate=10, per=3600, on_backend_error="allow")
    assert starting.try_acquire()  # allowed while Redis is down
    own_redis.start()  # empty: it kept nothing
    running.reconfigure("rate_limiter", "dark", rate=3)
    keys = iter(range(1_000_000))
    assert eventually(lambda: rate_of(starting) == 3, lambda: starting.try_acquire(key=next(keys)))


def _adopt_in_child(limiter: Any, forked: Any, results: Any) -> None:
    forked.set()
    keys = iter(range(1_000_000))
    deadline = time.monotonic() + TIMEOUT
    while rate_of(limiter) == 10 and time.monotonic() < deadline:
        limiter.try_acquire(key=next(keys))
        time.sleep(SYNC / 2)
    results.put(rate_of(limiter))


def test_a_forked_child_adopts_a_change_its_parent_stores(
    fleet: Callable[..., hazina.Registry],
) -> None:
    """The child inherits the policy (and its link's state) and checks on its own."""
    import multiprocessing

    limiter = fleet().rate_limiter("forked", rate=10, per=3600)
    assert limiter.try_acquire()
    context = multiprocessing.get_context("fork")
    forked, results = context.Event(), context.Queue()
    child = context.Process(target=_adopt_in_child, args=(limiter, forked, results))
    child.start()
    try:
        assert forked.wait(TIMEOUT)
        limiter.reconfigure(rate=3)
        assert results.get(timeout=TIMEOUT) == 3
    finally:
        child.join(TIMEOUT)
    assert child.exitcode == 0


def test_exception_types_stay_each_process_own_in_a_reconfigure(
    fleet: Callable[..., hazina.Registry],
) -> None:
    """failure_on given as a tuple of exception types is changed here and stays local
    (the docs: exception types stay each process's own), as a single type does."""
    one = fleet().circuit_breaker("errors", failure_threshold=1)
    other = fleet().circuit_breaker("errors", failure_threshold=1)
    one.reconfigure(failure_on=(TimeoutError, ConnectionError))
    one.reconfigure(ignore_on=KeyError)
    assert one.config.failure_on == (TimeoutError, ConnectionError)
    one.reconfigure(failure_threshold=2)
    assert eventually(lambda: other.config.failure_threshold == 2, lambda: other.state)
    assert other.config.failure_on is Exception
    assert other.config.ignore_on is None


def test_only_the_process_that_made_a_change_emits_it_and_a_repeat_stores_nothing_new(
    fleet: Callable[..., hazina.Registry], server: redis.Redis
) -> None:
    """The adopting process emits no PolicyReconfigured; the same change made again keeps
    the stored version, so the fleet has nothing new to adopt."""
    first, second = fleet(), fleet()
    one = first.rate_limiter("quiet", rate=10, per=3600)
    other = second.rate_limiter("quiet", rate=10, per=3600)
    here: list[object] = []
    there: list[object] = []
    first.subscribe(here.append)
    second.subscribe(there.append)
    one.reconfigure(rate=4)
    assert eventually(lambda: rate_of(other) == 4, lambda: other.try_acquire(key="poke"))
    key = config_key(server, "rate_limiter", "quiet")
    version = server.hget(key, "version")
    one.reconfigure(rate=4)
    assert server.hget(key, "version") == version
    reconfigured = [event for event in here if isinstance(event, hazina.PolicyReconfigured)]
    assert [event.changes for event in reconfigured] == [{"rate": 4}, {"rate": 4}]
    assert not [event for event in there if isinstance(event, hazina.PolicyReconfigured)]


@pytest.mark.parametrize(
    "params",
    ['{"limits":{"rate":5},"algorithm":"token_bucket"}', "[1, 2]", '{"max_keys":"many"}', "{"],
    ids=["limits-as-object", "not-a-mapping", "count-as-text", "not-json"],
)
def test_stored_parameters_of_any_shape_are_refused_not_raised(
    fleet: Callable[..., hazina.Registry],
    server: redis.Redis,
    caplog: pytest.LogCaptureFixture,
    params: str,
) -> None:
    """Whatever another version stored, the adopting process logs it at ERROR and acts as
    if Redis were down; no exception escapes into a thread or a call."""
    fleet().rate_limiter("shapes", rate=10, per=3600)
    other = fleet().rate_limiter("shapes", rate=10, per=3600, on_backend_error="deny")
    _store_foreign(server, "rate_limiter", "shapes", params)
    crashed: list[object] = []
    keys = iter(range(1_000_000))
    admitted: list[bool] = []
    previous_hook = threading.excepthook
    threading.excepthook = crashed.append
    try:
        with caplog.at_level(logging.ERROR, logger="hazina.redis"):
            assert eventually(
                lambda: admitted[-1:] == [False],
                lambda: admitted.append(other.try_acquire(key=next(keys))),
            )
    finally:
        threading.excepthook = previous_hook
    assert crashed == []
    assert any("cannot adopt" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("entry", "refusal"),
    [
        ({"cache": {"pages": {"max_size": 10}}}, "max_size does not apply on Redis"),
        ({"rate_limiter": {"objects": {"algorithm": "gcra"}}}, "limits=.*cannot be shared"),
    ],
    ids=["redis-cache-rule", "value-that-cannot-travel"],
)
def test_configure_checks_what_redis_refuses_before_changing_anything(
    fleet: Callable[..., hazina.Registry], entry: dict[str, Any], refusal: str
) -> None:
    """configure() checks every entry before it applies any: an entry a Redis policy
    refuses leaves the entries before it unchanged, here and in the fleet."""
    registry = fleet()
    first = registry.rate_limiter("first", rate=10, per=3600)
    registry.cache("pages", ttl=60)
    registry.rate_limiter("objects", limits=[hazina.Limit(5, 60)])
    mapping: dict[str, dict[str, Any]] = {"rate_limiter": {"first": {"rate": 5}}}
    for kind, entries in entry.items():
        mapping.setdefault(kind, {}).update(entries)  # after "first"
    with pytest.raises(hazina.ConfigurationError, match=refusal):
        registry.configure(mapping)
    assert rate_of(first) == 10
    assert rate_of(fleet().rate_limiter("first", rate=10, per=3600)) == 10


def test_during_an_outage_a_change_of_only_local_parameters_applies_here(
    own_redis: RedisServer,
) -> None:
    """on_backend_error is each process's own: switching it while Redis is down (when it
    matters) needs nothing stored, so it is not refused."""
    backend = RedisBackend.from_url(own_redis.url, timeout=0.2, retry_interval=0.01)
    limiter = hazina.Registry(backend=backend).rate_limiter(
        "outage", rate=2, per=60, on_backend_error="deny"
    )
    own_redis.kill()
    assert not limiter.try_acquire()
    limiter.reconfigure(on_backend_error="allow")
    assert limiter.try_acquire()
    with pytest.raises(hazina.BackendUnavailable):
        limiter.reconfigure(rate=9, on_backend_error="deny")  # rate travels: refused whole
    assert limiter.config.on_backend_error == "allow"


def test_configuring_only_local_parameters_does_not_make_the_code_values_the_fleet_s(
    fleet: Callable[..., hazina.Registry],
) -> None:
    """configure() of on_backend_error alone shares nothing: the code's values stay a code
    configuration, and a process whose code disagrees is refused as before."""
    starting = fleet()
    starting.configure({"rate_limiter": {"local": {"on_backend_error": "allow"}}})
    limiter = starting.rate_limiter("local", rate=10, per=3600)
    assert limiter.config.on_backend_error == "allow"
    with pytest.raises(hazina.ConfigurationError, match="different configuration"):
        fleet().rate_limiter("local", rate=20, per=3600)


def test_calls_on_eight_threads_while_changes_are_adopted_are_each_counted_once(
    fleet: Callable[..., hazina.Registry],
) -> None:
    """Adoption swaps the configuration on a thread of its own while this process calls:
    every call gets an answer under one whole configuration (a command mixing two shapes
    would fail in the script), none is lost or refused."""
    one = fleet().rate_limiter("adopting", rate=1_000_000, per=1, algorithm="sliding_window")
    other = fleet().rate_limiter("adopting", rate=1_000_000, per=1, algorithm="sliding_window")
    with hammered(lambda: (other.try_acquire(), other.try_acquire(key="user")), 8) as calls:
        for algorithm in ["token_bucket", "gcra", "sliding_window"] * 2:
            one.reconfigure(algorithm=algorithm)
            assert eventually(lambda: other.config.algorithm == algorithm, lambda: None)  # noqa: B023
    stats = other.stats()
    assert stats.backend_errors == 0
    assert stats.allowed == 2 * calls.calls > 0
    assert stats.rejected == 0


def test_several_limits_given_as_a_list_of_strings_travel(
    fleet: Callable[..., hazina.Registry],
) -> None:
    """A list of limit strings is JSON as it stands: the other process runs both limits,
    and a key's bucket under the new number of limits is shared by the two."""
    one = fleet().rate_limiter("several", limits="10/hour")
    other = fleet().rate_limiter("several", limits="10/hour")
    one.reconfigure(limits=["2/hour", "100/day"])
    assert eventually(lambda: len(other.config.limits) == 2, lambda: other.try_acquire(key="p"))
    assert other.config == one.config
    assert [one.try_acquire(key="k"), other.try_acquire(key="k"), one.try_acquire(key="k")] == [
        True,
        True,
        False,
    ]


def test_a_reconfigure_stored_while_a_check_is_on_the_wire_is_not_undone(
    fleet: Callable[..., hazina.Registry], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check's answer (another process's change) left Redis before this process's own
    reconfigure was stored: that answer is older, and adopting it would undo the change."""
    one = fleet().rate_limiter("wire", rate=10, per=3600)
    other = fleet().rate_limiter("wire", rate=10, per=3600)
    one.reconfigure(rate=3)
    backend = other.link.backend  # type: ignore[attr-defined]
    run = backend.run
    once: list[bool] = []

    def answer_then_reconfigure(script: Any, keys: Any, args: Any) -> Any:
        answer = run(script, keys, args)
        if args[0] == "check" and not once:
            once.append(True)
            other.reconfigure(rate=5)  # another thread's, while the answer travels
        return answer

    monkeypatch.setattr(backend, "run", answer_then_reconfigure)
    assert eventually(lambda: bool(once), lambda: other.try_acquire(key="poke"))
    monkeypatch.undo()
    time.sleep(SYNC)  # time for an adopting thread to have run
    assert rate_of(other) == 5
    assert eventually(lambda: rate_of(one) == 5, lambda: one.try_acquire(key="poke"))


def test_a_duration_changed_as_a_timedelta_travels_as_seconds(
    fleet: Callable[..., hazina.Registry],
) -> None:
    """The docs: timedeltas travel. The other process runs the same open period."""
    import datetime

    one = fleet().circuit_breaker("td", open_for=30)
    other = fleet().circuit_breaker("td", open_for=30)
    one.reconfigure(open_for=datetime.timedelta(minutes=2), half_open_timeout=7.5)
    assert eventually(lambda: other.config.open_for == 120, lambda: other.state)
    assert other.config == one.config


def test_a_parameter_the_stored_configuration_lacks_takes_its_default_not_the_code_s(
    fleet: Callable[..., hazina.Registry],
) -> None:
    """The stored configuration is whole: a process whose code adds burst= (which the
    stored parameters leave at its default) runs the stored one, burst and all."""
    one = fleet().rate_limiter("lacking", rate=10, per=3600)
    one.reconfigure(rate=4)
    late = fleet().rate_limiter("lacking", rate=10, per=3600, burst=20)
    assert late.config == one.config
    assert late.config.limits[0].burst == 4
