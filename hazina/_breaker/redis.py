"""A circuit breaker whose state lives in Redis (work in progress)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._core.errors import ConfigurationError
from .._core.host import Host
from .config import CircuitBreakerConfig
from .policy import CircuitBreaker

if TYPE_CHECKING:
    from .._redis.backend import RedisBackend


class RedisCircuitBreaker(CircuitBreaker):
    """Placeholder until the Redis breaker lands."""

    def __init__(
        self, name: str, config: CircuitBreakerConfig, host: Host, backend: RedisBackend
    ) -> None:
        raise ConfigurationError("circuit breakers on Redis are not available yet")
