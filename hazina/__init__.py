"""hazina: resilience for calls to unreliable things, as decorators for sync and async code."""

from __future__ import annotations

from ._breaker.decorator import circuit_breaker, retry
from ._breaker.policy import (
    CallRejected,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerStats,
    CircuitState,
    CircuitStateChanged,
)
from ._cache.config import CacheConfig, CacheEvicted, CacheStats
from ._cache.decorator import CachedFunction, CachedMethod, cached
from ._cache.policy import Cache
from ._core.clock import Clock, SystemClock
from ._core.conditions import Condition, when
from ._core.decorate import Decorated
from ._core.errors import CircuitOpenError, ConfigurationError, HazinaError, RateLimitExceeded
from ._core.registry import Registry, registry
from ._health.decorator import health_check
from ._health.policy import HealthCheck, HealthCheckConfig
from ._health.records import (
    HealthCheckStats,
    HealthEntry,
    HealthReport,
    HealthResult,
    HealthStatus,
    HealthStatusChanged,
)
from ._ratelimit.config import RateLimiterConfig
from ._ratelimit.decorator import rate_limited
from ._ratelimit.limit import Limit
from ._ratelimit.policy import (
    LimitStatus,
    RateLimitDelayed,
    RateLimiter,
    RateLimiterStats,
    RateLimitRejected,
    RateLimitStatus,
)
from ._retry.policy import Retry, RetryConfig, RetryGaveUp, RetryScheduled, RetryStats

__all__ = [
    "Cache",
    "CacheConfig",
    "CacheEvicted",
    "CacheStats",
    "CachedFunction",
    "CachedMethod",
    "CallRejected",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerStats",
    "CircuitOpenError",
    "CircuitState",
    "CircuitStateChanged",
    "Clock",
    "Condition",
    "ConfigurationError",
    "Decorated",
    "HazinaError",
    "HealthCheck",
    "HealthCheckConfig",
    "HealthCheckStats",
    "HealthEntry",
    "HealthReport",
    "HealthResult",
    "HealthStatus",
    "HealthStatusChanged",
    "Limit",
    "LimitStatus",
    "RateLimitDelayed",
    "RateLimitExceeded",
    "RateLimitRejected",
    "RateLimitStatus",
    "RateLimiter",
    "RateLimiterConfig",
    "RateLimiterStats",
    "Registry",
    "Retry",
    "RetryConfig",
    "RetryGaveUp",
    "RetryScheduled",
    "RetryStats",
    "SystemClock",
    "cached",
    "circuit_breaker",
    "health_check",
    "rate_limited",
    "registry",
    "retry",
    "when",
]
