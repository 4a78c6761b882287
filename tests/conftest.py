"""Fixtures shared by the suite.

Every behavioural scenario runs twice, sync and async, through the ``flavor``
fixture: a test defines its operation once as a plain function body, ``flavor.define``
turns it into a ``def`` or an ``async def``, and ``flavor.call`` calls it (on one event
loop per test for the async flavor).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_server import RedisServer

import hazina
from hazina.testing import FakeClock

# pytester runs the pytest plugin as a user project would (tests/test_testing.py).
pytest_plugins = ("pytester",)


class Flavor:
    """Makes and calls an operation as sync or async code."""

    def __init__(self, is_async: bool, runner: asyncio.Runner | None) -> None:
        self.is_async = is_async
        self._runner = runner

    def __repr__(self) -> str:
        return "async" if self.is_async else "sync"

    def define(self, body: Callable[..., Any]) -> Callable[..., Any]:
        """A function with ``body``'s behaviour: ``def`` for sync, ``async def`` for async."""

        async def async_operation(*args: Any, **kwargs: Any) -> Any:
            return body(*args, **kwargs)

        def sync_operation(*args: Any, **kwargs: Any) -> Any:
            return body(*args, **kwargs)

        operation = async_operation if self.is_async else sync_operation
        operation.__name__ = operation.__qualname__ = getattr(body, "__name__", "operation")
        return operation

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` (awaiting it for the async flavor) and return its result."""
        if not self.is_async:
            return fn(*args, **kwargs)
        assert self._runner is not None

        async def run() -> Any:
            return await fn(*args, **kwargs)

        return self._runner.run(run())


@pytest.fixture(params=["sync", "async"])
def flavor(request: pytest.FixtureRequest) -> Iterator[Flavor]:
    """Run the test once with sync and once with async operations."""
    if request.param == "sync":
        yield Flavor(False, None)
        return
    with asyncio.Runner() as runner:
        yield Flavor(True, runner)


class SteppingClock(FakeClock):
    """A fake clock that can also step back, as freezegun's does when a block ends."""

    def step_back(self, seconds: float) -> None:
        """Move time backwards by ``seconds``."""
        self._now -= seconds


@pytest.fixture
def stepping_clock() -> SteppingClock:
    """A fake clock at 1000.0 that can step back."""
    return SteppingClock(start=1000.0)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that only moves when told (or when something sleeps on it)."""
    return FakeClock(start=1000.0)


@pytest.fixture
def registry(clock: FakeClock) -> hazina.Registry:
    """An isolated registry on the fake clock."""
    return hazina.Registry(clock=clock)


CheckHealth = Callable[..., hazina.HealthReport]


@pytest.fixture(params=["check_health_sync", "check_health"])
def check_health(
    request: pytest.FixtureRequest, registry: hazina.Registry
) -> Iterator[CheckHealth]:
    """Run the registry's health checks through one entry point, sync or async."""
    if request.param == "check_health_sync":
        yield registry.check_health_sync
        return
    with asyncio.Runner() as runner:

        def check_health_async(**kwargs: Any) -> hazina.HealthReport:
            return runner.run(registry.check_health(**kwargs))

        yield check_health_async


@pytest.fixture
def events(registry: hazina.Registry) -> list[object]:
    """Every event the registry emits, in order."""
    received: list[object] = []
    registry.subscribe(received.append)
    return received


@pytest.fixture
def every_kind() -> Callable[[hazina.Registry, str], None]:
    """Registers one policy of each kind under one name (for exporters' every-kind tests)."""

    def register(registry: hazina.Registry, name: str) -> None:
        registry.circuit_breaker(name)
        registry.retry(name)
        registry.cache(name)
        registry.rate_limiter(name, rate=1)
        registry.health_check(name, lambda: True)
        registry.retry_budget(name)
        registry.fallback(name, value=None)
        registry.hedge(name, delay=1)
        registry.timeout(name, seconds=1)
        registry.bulkhead(name, max_concurrent=1)
        registry.chaos(name)

    return register


# -- Redis --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session's shared-state tests."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, emptied before the test."""
    import redis

    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to kill, pause or restart."""
    server = RedisServer(tmp_path)
    yield server
    server.stop()
