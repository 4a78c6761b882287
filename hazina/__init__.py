"""hazina: resilience for calls to unreliable things, as decorators for sync and async code."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._breaker.config import CircuitBreakerConfig
from ._breaker.decorator import circuit_breaker
from ._breaker.policy import CircuitBreaker
from ._breaker.records import CallRejected, CircuitBreakerStats, CircuitState, CircuitStateChanged
from ._bulkhead.config import BulkheadConfig
from ._bulkhead.decorator import bulkhead
from ._bulkhead.policy import Bulkhead
from ._bulkhead.records import BulkheadRejected, BulkheadStats
from ._cache.config import CacheConfig
from ._cache.decorator import CachedFunction, CachedMethod, cached
from ._cache.policy import Cache
from ._cache.records import CacheEvicted, CacheStats
from ._chaos.config import ChaosConfig
from ._chaos.decorator import chaos
from ._chaos.policy import Chaos
from ._chaos.records import ChaosInjected, ChaosStats
from ._core.clock import Clock, SystemClock
from ._core.conditions import Condition, when
from ._core.deadline import remaining
from ._core.decorate import Decorated
from ._core.errors import (
    BackendUnavailable,
    BulkheadFull,
    CircuitOpenError,
    ConfigurationError,
    HazinaError,
    RateLimitExceeded,
    TimeoutExceeded,
)
from ._core.policy import PolicyReconfigured
from ._core.registry import Registry, registry
from ._fallback.config import FallbackConfig
from ._fallback.decorator import fallback
from ._fallback.policy import Fallback
from ._fallback.records import FallbackStats, FallbackUsed
from ._health.config import HealthCheckConfig
from ._health.decorator import health_check
from ._health.policy import HealthCheck
from ._health.records import (
    HealthCheckStats,
    HealthEntry,
    HealthReport,
    HealthResult,
    HealthStatus,
    HealthStatusChanged,
)
from ._hedge.config import HedgeConfig
from ._hedge.decorator import hedge
from ._hedge.policy import Hedge
from ._hedge.records import HedgeStarted, HedgeStats
from ._ratelimit.config import RateLimiterConfig
from ._ratelimit.decorator import rate_limited
from ._ratelimit.limit import Limit
from ._ratelimit.policy import RateLimiter
from ._ratelimit.records import (
    LimitStatus,
    RateLimitDelayed,
    RateLimiterStats,
    RateLimitRejected,
    RateLimitStatus,
)
from ._retry.block import Attempt, Retrying
from ._retry.config import RetryConfig
from ._retry.decorator import retry, retrying
from ._retry.policy import Retry
from ._retry.records import RetryGaveUp, RetryScheduled, RetryStats
from ._retry_budget.config import RetryBudgetConfig
from ._retry_budget.policy import RetryBudget
from ._retry_budget.records import RetryBudgetStats
from ._timeout.config import TimeoutConfig
from ._timeout.decorator import timeout
from ._timeout.policy import Timeout
from ._timeout.records import CallTimedOut, TimeoutStats

try:
    __version__ = version("hazina")
except PackageNotFoundError:  # pragma: no cover - run from a tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Attempt",
    "BackendUnavailable",
    "Bulkhead",
    "BulkheadConfig",
    "BulkheadFull",
    "BulkheadRejected",
    "BulkheadStats",
    "Cache",
    "CacheConfig",
    "CacheEvicted",
    "CacheStats",
    "CachedFunction",
    "CachedMethod",
    "CallRejected",
    "CallTimedOut",
    "Chaos",
    "ChaosConfig",
    "ChaosInjected",
    "ChaosStats",
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
    "Fallback",
    "FallbackConfig",
    "FallbackStats",
    "FallbackUsed",
    "HazinaError",
    "HealthCheck",
    "HealthCheckConfig",
    "HealthCheckStats",
    "HealthEntry",
    "HealthReport",
    "HealthResult",
    "HealthStatus",
    "HealthStatusChanged",
    "Hedge",
    "HedgeConfig",
    "HedgeStarted",
    "HedgeStats",
    "Limit",
    "LimitStatus",
    "PolicyReconfigured",
    "RateLimitDelayed",
    "RateLimitExceeded",
    "RateLimitRejected",
    "RateLimitStatus",
    "RateLimiter",
    "RateLimiterConfig",
    "RateLimiterStats",
    "Registry",
    "Retry",
    "RetryBudget",
    "RetryBudgetConfig",
    "RetryBudgetStats",
    "RetryConfig",
    "RetryGaveUp",
    "RetryScheduled",
    "RetryStats",
    "Retrying",
    "SystemClock",
    "Timeout",
    "TimeoutConfig",
    "TimeoutExceeded",
    "TimeoutStats",
    "bulkhead",
    "cached",
    "chaos",
    "circuit_breaker",
    "fallback",
    "health_check",
    "hedge",
    "rate_limited",
    "registry",
    "remaining",
    "retry",
    "retrying",
    "timeout",
    "when",
]
