"""A cache whose entries live in Redis (work in progress)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._core.errors import ConfigurationError
from .._core.host import Host
from .config import CacheConfig
from .policy import Cache

if TYPE_CHECKING:
    from .._redis.backend import RedisBackend


class RedisCache(Cache):
    """Placeholder until the Redis cache lands."""

    def __init__(self, name: str, config: CacheConfig, host: Host, backend: RedisBackend) -> None:
        raise ConfigurationError("caches on Redis are not available yet")
