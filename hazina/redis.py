"""Fleet-wide state on Redis for circuit breakers, caches and rate limiters.

Install with ``pip install 'hazina[redis]'``::

    from hazina.redis import RedisBackend

    backend = RedisBackend.from_url("redis://localhost:6379/0")
    registry = hazina.Registry(backend=backend)      # every breaker, cache and limiter
    @hazina.rate_limited("search", rate=100, per=1, backend=backend)   # or one policy
"""

from __future__ import annotations

from ._redis.backend import RedisBackend

__all__ = ["RedisBackend"]
