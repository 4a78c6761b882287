"""Commands sent on the client's own connections: packed as redis-py packs them, or called."""

from __future__ import annotations

from typing import Any

import pytest
import redis

import hazina
from hazina._redis.wire import Packer
from hazina.redis import RedisBackend


@pytest.mark.parametrize(
    "command",
    [
        ("EVALSHA", "ab" * 20, 1, "hazina:{rate_limiter:x}:s", b"admit", b"", b"1.0"),
        ("SET", "ключ:ユーザー", "значение", "PX", 1500),
        ("EVALSHA", "ab" * 20, 0, 0.1, 1e300, -5, b"\x00\r\n\xff" * 1000),
    ],
)
def test_packed_commands_are_what_redis_py_would_send(command: tuple[Any, ...]) -> None:
    """Byte for byte the RESP redis-py writes for the same arguments and encoding."""
    pool = redis.ConnectionPool()
    make: Any = redis.Connection
    connection = make()
    expected = b"".join(connection.pack_command(*command))
    assert Packer(pool).pack(command) == expected


def _limited(client: redis.Redis, name: str, key: str | None = None) -> list[bool]:
    registry = hazina.Registry(backend=RedisBackend(client=client))
    limiter = registry.rate_limiter(name, rate=1, per=3600, burst=2)
    return [limiter.try_acquire(key) for _ in range(3)]


def test_a_client_subclass_is_called_through_its_own_execute_command(redis_url: str) -> None:
    """A subclass may instrument execute_command: hazina's commands go through it."""
    seen: list[Any] = []

    class Recording(redis.Redis):
        def execute_command(self, *args: Any, **options: Any) -> Any:
            seen.append(args[0])
            call: Any = super().execute_command
            return call(*args, **options)

    registry = hazina.Registry(backend=RedisBackend(client=Recording.from_url(redis_url)))
    limiter = registry.rate_limiter("subclassed", rate=1, per=3600, burst=2)
    assert limiter.try_acquire("warm-up")
    seen.clear()
    assert [limiter.try_acquire("caller") for _ in range(3)] == [True, True, False]
    assert seen == ["EVALSHA"] * 3


def test_a_single_connection_client_keeps_its_one_connection(redis_url: str) -> None:
    """A single-connection client is used as it is (its lock, its connection)."""
    client = redis.Redis.from_url(redis_url, single_connection_client=True)
    assert _limited(client, "single") == [True, True, False]
    assert client.connection is not None


def test_non_ascii_names_and_keys_reach_redis_intact(redis_url: str) -> None:
    """Names and keys are encoded as the client's connections encode them."""
    client = redis.Redis.from_url(redis_url)
    assert _limited(client, "лимит", key="ユーザー") == [True, True, False]
    assert _limited(client, "лимит", key="другой") == [True, True, False]
    found: Any = client.keys("*")
    names = [name.decode() for name in found]
    assert any("лимит" in name for name in names), names
