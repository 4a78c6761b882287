"""What the ASGI and WSGI rate-limit middlewares share: the limiter, and the answers."""

from __future__ import annotations

from .._core.errors import ConfigurationError
from .._core.registry import Registry, registry_or_default
from .._ratelimit.policy import RateLimiter
from .._ratelimit.records import RateLimitStatus
from .fields import limit_field, policy_field, policy_names, refused_field
from .retry_after import retry_after_header

#: The body of a refused request.
TOO_MANY = b'{"detail": "too many requests"}'
#: The body of a request shed because a bulkhead or a breaker refused it.
UNAVAILABLE = b'{"detail": "service unavailable"}'


def resolve_limiter(limiter: str | RateLimiter, registry: Registry | None) -> RateLimiter:
    """``limiter`` itself, or the registry's limiter of that name (created from
    ``registry.configure()`` values if only they name it)."""
    if isinstance(limiter, RateLimiter):
        return limiter
    if not isinstance(limiter, str):
        raise ConfigurationError(
            f"RateLimitMiddleware: limiter must be a RateLimiter or its name, got {limiter!r}"
        )
    return registry_or_default(registry).rate_limiter(limiter)


class Answers:
    """A limiter's header values: its policy, and each request's standing."""

    __slots__ = ("_config", "limiter", "names", "policy", "policy_item")

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self._config: object = None
        self.names: tuple[str, ...] = ()
        self.policy = ""
        #: The ``RateLimit-Policy`` header as ASGI sends it, encoded once.
        self.policy_item = (b"", b"")
        self.refresh()

    def refresh(self) -> None:
        """Follow the limiter's configuration, which ``reconfigure()`` may have swapped."""
        config = self.limiter.config
        if config is not self._config:
            self.names = policy_names(self.limiter.name, len(config.limits))
            self.policy = policy_field(self.names, config.limits)
            self.policy_item = (b"ratelimit-policy", self.policy.encode("latin-1"))
            self._config = config

    def admitted_asgi(self, status: RateLimitStatus | None) -> list[tuple[bytes, bytes]]:
        """:meth:`admitted`, as ASGI header items."""
        self.refresh()
        if status is None:
            return [self.policy_item]
        return [
            self.policy_item,
            (b"ratelimit", limit_field(self.names, status).encode("latin-1")),
        ]

    def admitted(self, status: RateLimitStatus | None) -> list[tuple[str, str]]:
        self.refresh()
        if status is None:
            return [("ratelimit-policy", self.policy)]
        return [("ratelimit-policy", self.policy), ("ratelimit", limit_field(self.names, status))]

    def refused(self, retry_after: float) -> list[tuple[str, str]]:
        self.refresh()
        return [
            ("content-type", "application/json"),
            ("content-length", str(len(TOO_MANY))),
            ("retry-after", retry_after_header(retry_after)),
            ("ratelimit-policy", self.policy),
            ("ratelimit", refused_field(self.names, retry_after)),
        ]


def unavailable_headers(retry_after: float | None) -> list[tuple[str, str]]:
    """Headers of a 503 answered for a bulkhead or breaker that refused."""
    return [
        ("content-type", "application/json"),
        ("content-length", str(len(UNAVAILABLE))),
        ("retry-after", retry_after_header(retry_after)),
    ]
