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
from ._clock import Clock, SystemClock
from ._conditions import Condition, when
from ._decorate import Decorated
from ._decorators import circuit_breaker, retry
from ._errors import CircuitOpenError, ConfigurationError, HazinaError, RateLimitExceeded
from ._registry import Registry, registry
from ._retry import Retry, RetryConfig, RetryGaveUp, RetryScheduled, RetryStats

__all__ = [
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
    "RateLimitExceeded",
    "Registry",
    "Retry",
    "RetryConfig",
    "RetryGaveUp",
    "RetryScheduled",
    "RetryStats",
    "SystemClock",
    "circuit_breaker",
    "registry",
    "retry",
    "when",
]
