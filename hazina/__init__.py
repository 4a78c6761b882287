"""hazina: resilience for calls to unreliable things, as decorators for sync and async code."""

from __future__ import annotations

from ._breaker import (
    CallRejected,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerStats,
    CircuitState,
    CircuitStateChanged,
)
from ._cache import Cache
from ._cache_config import CacheConfig, CacheEvicted, CacheStats
from ._cache_decorator import CachedFunction, CachedMethod, cached
from ._clock import Clock, SystemClock
from ._conditions import Condition, when
from ._decorate import Decorated
from ._decorators import circuit_breaker, retry
from ._errors import CircuitOpenError, ConfigurationError, HazinaError, RateLimitExceeded
from ._health import (
    HealthCheckStats,
    HealthEntry,
    HealthReport,
    HealthResult,
    HealthStatus,
    HealthStatusChanged,
)
from ._health_check import HealthCheck, HealthCheckConfig
from ._health_decorator import health_check
from ._ratelimit import (
    LimitStatus,
    RateLimitDelayed,
    RateLimiter,
    RateLimiterStats,
    RateLimitRejected,
    RateLimitStatus,
)
from ._ratelimit_config import RateLimiterConfig
from ._ratelimit_decorator import rate_limited
from ._ratelimit_limit import Limit
from ._registry import Registry, registry
from ._retry import Retry, RetryConfig, RetryGaveUp, RetryScheduled, RetryStats

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
