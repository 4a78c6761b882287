"""The testing kit: disabled(), instant_waits() over every wait, and the pytest plugin."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import Flavor

import hazina
from hazina.testing import FakeClock, disabled, instant_waits


@pytest.fixture(autouse=True)
def switches_restored() -> Iterator[None]:
    """Each test leaves both switches off, whatever it did."""
    yield
    disabled(False)
    instant_waits(False)


def test_breakers_never_open_while_disabled(flavor: Flavor, registry: hazina.Registry) -> None:
    """Failures reach the caller as they are; the breaker neither opens nor rejects."""

    def body() -> None:
        raise ConnectionError

    fail = hazina.circuit_breaker("db", registry=registry, failure_threshold=1)(flavor.define(body))
    with disabled():
        for _ in range(5):
            with pytest.raises(ConnectionError):
                flavor.call(fail)
        assert registry.circuit_breaker("db").state == "closed"
    with pytest.raises(ConnectionError):
        flavor.call(fail)
    with pytest.raises(hazina.CircuitOpenError):
        flavor.call(fail)


def test_a_forced_open_breaker_admits_while_disabled(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """Even a breaker forced open lets calls through."""
    ok = hazina.circuit_breaker("db", registry=registry)(flavor.define(lambda: "ok"))
    registry.circuit_breaker("db").force_open()
    with disabled():
        assert flavor.call(ok) == "ok"
    with pytest.raises(hazina.CircuitOpenError):
        flavor.call(ok)


def test_limiters_always_admit_while_disabled(
    flavor: Flavor,
    registry: hazina.Registry,
    clock: FakeClock,
) -> None:
    """Over the limit, calls run at once (no wait, no refusal) and count as allowed."""
    refusing = hazina.rate_limited("api", registry=registry, rate=1, per=60)(
        flavor.define(lambda: "ok")
    )
    waiting = hazina.rate_limited("slow", registry=registry, rate=1, per=60, wait=True)(
        flavor.define(lambda: "ok")
    )
    started = clock.now()
    with disabled():
        for _ in range(3):
            assert flavor.call(refusing) == "ok"
            assert flavor.call(waiting) == "ok"
        assert registry.rate_limiter("api").try_acquire()
    assert clock.now() == started
    stats = registry.rate_limiter("api").stats()
    assert (stats.allowed, stats.rejected) == (4, 0)
    with pytest.raises(hazina.RateLimitExceeded):
        flavor.call(refusing)


def test_caches_always_load_while_disabled(flavor: Flavor, registry: hazina.Registry) -> None:
    """A cached function runs on every call while disabled, and hits again afterwards."""
    runs: list[int] = []

    def body(x: int) -> int:
        runs.append(x)
        return x * 2

    double = hazina.cached("double", registry=registry)(flavor.define(body))
    assert flavor.call(double, 1) == 2
    with disabled():
        assert flavor.call(double, 1) == 2
        assert flavor.call(double, 1) == 2
    assert flavor.call(double, 1) == 2
    assert runs == [1, 1, 1]


def test_retries_try_once_while_disabled(flavor: Flavor, registry: hazina.Registry) -> None:
    """The first attempt's error stands, unannotated, and no wait or retry happens."""
    attempts: list[int] = []

    def body() -> None:
        attempts.append(1)
        raise TimeoutError

    flaky = hazina.retry("flaky", registry=registry, attempts=5)(flavor.define(body))
    with disabled(), pytest.raises(TimeoutError) as raised:
        flavor.call(flaky)
    assert attempts == [1]
    assert not getattr(raised.value, "__notes__", [])
    assert registry.retry("flaky").stats().attempts == 1


def test_bulkheads_always_admit_while_disabled(registry: hazina.Registry) -> None:
    """A full bulkhead with no queue admits every call while disabled (threads held)."""
    release = threading.Event()
    inside = threading.Barrier(3)

    @hazina.bulkhead("pool", registry=registry, max_concurrent=1)
    def hold() -> str:
        inside.wait(5)
        release.wait(5)
        return "ok"

    with disabled(), ThreadPoolExecutor(3) as pool:
        results = [pool.submit(hold) for _ in range(3)]
        release.set()
        assert [result.result(5) for result in results] == ["ok"] * 3
    stats = registry.bulkhead("pool").stats()
    assert (stats.admitted, stats.rejected, stats.active) == (3, 0, 0)


def test_timeouts_and_hedges_do_nothing_while_disabled(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A timeout sets no deadline (the call runs in the caller's thread); a hedge makes one
    attempt whatever its delay."""
    threads: list[int] = []

    def body() -> float | None:
        threads.append(threading.get_ident())
        return hazina.remaining()

    timed = hazina.timeout("t", registry=registry, seconds=5)(flavor.define(body))
    hedged = hazina.hedge("h", registry=registry, delay=0)(flavor.define(body))
    with disabled():
        assert flavor.call(timed) is None
        assert flavor.call(hedged) is None
    assert threads == [threading.get_ident()] * 2
    assert registry.hedge("h").stats().hedges == 0


def test_disabled_called_plainly_stays_on_until_switched_off(registry: hazina.Registry) -> None:
    """disabled() switches for good; disabled(False) switches back."""
    breaker = registry.circuit_breaker("db")
    breaker.force_open()
    disabled()
    with breaker:
        pass
    disabled(False)
    with pytest.raises(hazina.CircuitOpenError), breaker:
        pass


def test_instant_waits_cover_limiter_waits(
    flavor: Flavor,
    registry: hazina.Registry,
    clock: FakeClock,
) -> None:
    """A limiter with wait=True does not sleep under instant_waits(), and counts the wait."""
    limited = hazina.rate_limited("api", registry=registry, rate=1, per=60, wait=True)(
        flavor.define(lambda: "ok")
    )
    started = clock.now()
    with instant_waits():
        assert flavor.call(limited) == "ok"
        assert flavor.call(limited) == "ok"
    assert clock.now() == started
    stats = registry.rate_limiter("api").stats()
    assert (stats.allowed, stats.waited, stats.wait_time) == (2, 1, 60)


# -- the pytest plugin, as a user's project loads it --------------------------------------

USER_TESTS = """
import pytest
import hazina
from hazina.testing import FakeClock, disabled

calls = []

@hazina.circuit_breaker("svc", failure_threshold=1)
def call_service():
    calls.append(1)
    raise ConnectionError

def test_isolated_registry_on_the_fake_clock(hazina_registry, hazina_clock):
    assert isinstance(hazina_clock, FakeClock)
    assert hazina_registry.clock is hazina_clock
    assert len(hazina_registry) == 0
    hazina_registry.circuit_breaker("mine")

def test_each_test_gets_a_fresh_registry(hazina_registry):
    assert len(hazina_registry) == 0

def test_events_of_both_registries(hazina_registry, hazina_events, hazina_reset):
    hazina_registry.circuit_breaker("mine").force_open()
    with pytest.raises(ConnectionError):
        call_service()
    assert [type(e).__name__ for e in hazina_events] == [
        "CircuitStateChanged", "CircuitStateChanged"]
    assert {e.name for e in hazina_events} == {"mine", "svc"}

def test_the_default_registry_was_reset(hazina_reset):
    assert call_service.policy.state == "closed"
    with pytest.raises(ConnectionError):
        call_service()
    assert call_service.policy.state == "open"

def test_then_it_is_closed_again():
    assert call_service.policy.state == "closed"

def test_disabled_for_code_decorated_at_import():
    with disabled():
        for _ in range(3):
            with pytest.raises(ConnectionError):
                call_service()
    assert call_service.policy.state == "closed"
"""


def test_the_plugin_serves_a_user_project_without_a_conftest(pytester: pytest.Pytester) -> None:
    """A project with no conftest gets the fixtures from the installed entry point."""
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=6)


def test_the_plugin_is_registered_by_its_entry_point() -> None:
    """pytest finds the plugin under the name hazina, as `-p no:hazina` expects."""
    from importlib.metadata import entry_points

    [plugin] = [point for point in entry_points(group="pytest11") if point.name == "hazina"]
    assert plugin.value == "hazina.pytest_plugin"


def test_the_docs_recipe_for_import_time_decorators_passes(pytester: pytest.Pytester) -> None:
    """The docs' example of testing functions decorated against hazina.registry runs
    as a user's test file and passes."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "testing.md").read_text()
    [recipe] = [
        block
        for block in re.findall(r"```python\n(.*?)```", page, re.S)
        if block.startswith("# app.py")
    ]
    pytester.makepyfile(test_app=recipe)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_disabled_covers_policies_on_redis(
    flavor: Flavor, redis_url: str, clock: FakeClock
) -> None:
    """Redis breakers, limiters and caches pass calls straight through too."""
    import redis
    import redis.asyncio

    from hazina.redis import RedisBackend

    client = redis.Redis.from_url(redis_url)
    async_client = redis.asyncio.Redis.from_url(redis_url) if flavor.is_async else None
    registry = hazina.Registry(
        clock=clock,
        backend=RedisBackend(client=client, async_client=async_client, clock="registry"),
    )
    runs: list[int] = []

    def body() -> int:
        runs.append(1)
        return len(runs)

    try:
        cached = hazina.cached("c", registry=registry, ttl=60)(flavor.define(body))
        limited = hazina.rate_limited("l", registry=registry, rate=1, per=60)(flavor.define(body))
        guarded = hazina.circuit_breaker("b", registry=registry)(flavor.define(body))
        registry.circuit_breaker("b").force_open()
        with disabled():
            assert [flavor.call(cached) for _ in range(2)] == [1, 2]
            assert [flavor.call(limited) for _ in range(2)] == [3, 4]
            assert flavor.call(guarded) == 5
        with pytest.raises(hazina.CircuitOpenError):
            flavor.call(guarded)
    finally:
        client.close()
        if async_client is not None:
            flavor.call(async_client.aclose)


def test_the_suite_fixtures_leave_the_plugin_names_alone() -> None:
    """Our own conftest defines none of the plugin's fixture names, so both coexist."""
    import conftest

    import hazina.pytest_plugin

    plugin = {name for name in vars(hazina.pytest_plugin) if name.startswith("hazina_")}
    assert plugin == {"hazina_clock", "hazina_events", "hazina_registry", "hazina_reset"}
    assert not plugin & set(vars(conftest))
