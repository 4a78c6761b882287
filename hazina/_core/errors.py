"""The exceptions hazina raises."""

from __future__ import annotations

from collections.abc import Hashable


def safe_repr(value: object) -> str:
    """``repr(value)``, or a stand-in if that raises: an error message must not fail."""
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__qualname__} object (its repr() raised)>"


class HazinaError(Exception):
    """Base class of every error hazina raises on its own account."""


class ConfigurationError(HazinaError, ValueError):
    """A policy was given a configuration it cannot work with.

    Raised at decoration (or factory) time, naming the policy, the parameter and the
    offending value, so the mistake surfaces at import rather than at 3 a.m.
    """

    #: The parameter at fault, when one is.
    param: str | None = None


class CircuitOpenError(HazinaError):
    """A circuit breaker refused the call.

    Args:
        name: The breaker that refused.
        retry_after: Seconds until the breaker admits a probe, or ``None`` while it is
            forced open and nobody can say.
        key: The key whose breaker is open (``None`` for a breaker without ``key=``).
    """

    def __init__(self, name: str, retry_after: float | None, key: Hashable = None) -> None:
        self.name = name
        self.retry_after = retry_after
        self.key = key
        when = "forced open" if retry_after is None else f"retry after {retry_after:.3f}s"
        who = "" if key is None else f" for key {key!r}"
        super().__init__(f"circuit breaker {name!r} is open{who} ({when})")

    def __reduce__(
        self,
    ) -> tuple[type[CircuitOpenError], tuple[str, float | None, Hashable]]:
        return (type(self), (self.name, self.retry_after, self.key))


class RateLimitExceeded(HazinaError):
    """A rate limiter refused the call.

    Args:
        name: The limiter that refused.
        key: The key whose limit was reached (``None`` for a global limit).
        retry_after: Seconds until enough capacity is back for the call.
    """

    def __init__(self, name: str, key: Hashable, retry_after: float) -> None:
        self.name = name
        self.key = key
        self.retry_after = retry_after
        who = "" if key is None else f" for key {safe_repr(key)}"
        super().__init__(f"rate limit {name!r} exceeded{who} (retry after {retry_after:.3f}s)")

    def __reduce__(self) -> tuple[type[RateLimitExceeded], tuple[str, Hashable, float]]:
        return (type(self), (self.name, self.key, self.retry_after))


class BackendUnavailable(HazinaError):
    """A policy's shared backend (Redis) did not answer, and the policy was told to deny.

    Raised by caches with ``on_backend_error="deny"`` (limiters raise
    :class:`RateLimitExceeded` and breakers :class:`CircuitOpenError` instead). The
    backend's own error is ``__cause__``.

    Args:
        name: The policy whose call was refused.
        retry_after: Seconds until the backend is tried again.
    """

    def __init__(self, name: str, retry_after: float) -> None:
        self.name = name
        self.retry_after = retry_after
        super().__init__(
            f"the backend of {name!r} is unavailable (tried again in {retry_after:.3f}s)"
        )

    def __reduce__(self) -> tuple[type[BackendUnavailable], tuple[str, float]]:
        return (type(self), (self.name, self.retry_after))


class TimeoutExceeded(HazinaError, TimeoutError):
    """A call ran past the deadline of a ``@timeout``, or was refused for its sake.

    Args:
        name: The timeout policy.
        seconds: Its limit.
    """

    def __init__(self, name: str, seconds: float) -> None:
        self.name = name
        self.seconds = seconds
        super().__init__(f"timeout {name!r}: the call did not finish within {seconds:g}s")

    def __reduce__(self) -> tuple[type[TimeoutExceeded], tuple[str, float]]:
        return (type(self), (self.name, self.seconds))


class BulkheadFull(HazinaError):
    """A bulkhead had no free slot and no room (or no time) left to wait for one.

    Args:
        name: The bulkhead that refused.
        key: The key whose bulkhead was full (``None`` without ``key=``).
        retry_after: Always ``None``: when a slot frees up depends on the running calls.
    """

    def __init__(self, name: str, key: Hashable = None, retry_after: float | None = None) -> None:
        self.name = name
        self.key = key
        self.retry_after = retry_after
        who = "" if key is None else f" for key {safe_repr(key)}"
        super().__init__(f"bulkhead {name!r} is full{who}")

    def __reduce__(self) -> tuple[type[BulkheadFull], tuple[str, Hashable, float | None]]:
        return (type(self), (self.name, self.key, self.retry_after))
