"""ASGI middlewares: refuse requests over a rate limit (429) or beyond capacity (503)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, MutableMapping
from typing import Any

from .._breaker.policy import CircuitBreaker
from .._bulkhead.policy import Bulkhead
from .._core.decorate import apply_policy
from .._core.errors import (
    BulkheadFull,
    CircuitOpenError,
    ConfigurationError,
    RateLimitExceeded,
)
from .._core.registry import Registry, registry_or_default
from .._ratelimit.policy import RateLimiter
from .limiting import TOO_MANY, UNAVAILABLE, Answers, resolve_limiter, unavailable_headers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def client_host(scope: Scope) -> Hashable:
    """The client's address from the ASGI scope (``None`` when the server knows none)."""
    client = scope.get("client")
    return client[0] if client else None


def _encoded(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]


async def _answer(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _encoded(headers)})
    await send({"type": "http.response.body", "body": body})


class RateLimitMiddleware:
    """Answer requests over ``limiter``'s limit with 429, ``Retry-After`` and the IETF
    ``RateLimit-Policy`` and ``RateLimit`` fields; admitted responses carry them too.

    Args:
        app: The ASGI application to protect.
        limiter: A :class:`~hazina.RateLimiter`, or the name of one in ``registry``.
        key: A function of the ASGI scope giving the key to limit by (default: the
            client's address; ``None`` where the server gives none, one shared limit).
        registry: Where to find ``limiter`` by name (default ``hazina.registry``).

    Only HTTP requests are limited; websocket and lifespan scopes pass through untouched.
    With a limiter on a shared backend, admitted responses carry ``RateLimit-Policy``
    only: reading the key's standing would block the event loop on a round trip.
    """

    def __init__(
        self,
        app: ASGIApp,
        limiter: str | RateLimiter,
        *,
        key: Callable[[Scope], Hashable] = client_host,
        registry: Registry | None = None,
    ) -> None:
        self.app: ASGIApp = app
        self.limiter: RateLimiter = resolve_limiter(limiter, registry)
        self.key: Callable[[Scope], Hashable] = key
        self._answers = Answers(self.limiter)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limiter = self.limiter
        key = self.key(scope)
        try:
            await limiter.aacquire(key)
        except RateLimitExceeded as refused:
            await _answer(send, 429, self._answers.refused(refused.retry_after), TOO_MANY)
            return
        status = limiter.status(key) if limiter.inline_drivers else None
        extra = self._answers.admitted_asgi(status)

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A copy: the app may reuse its message (and its list of headers).
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_fields)


class _ServerError(Exception):
    """The app answered 5xx: a failure for the breaker, though the response was sent."""


def _judged(app: ASGIApp) -> ASGIApp:
    """``app``, raising :class:`_ServerError` once it has answered 5xx."""

    async def judged(scope: Scope, receive: Receive, send: Send) -> None:
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await app(scope, receive, watch)
        if status >= 500:
            raise _ServerError

    return judged


class ShedLoadMiddleware:
    """Answer 503 with ``Retry-After`` when a bulkhead is full or a circuit breaker is open.

    The bulkhead bounds the requests in progress at once (queueing a few, as it is
    configured); the breaker opens after the app fails (raises, or answers 5xx) too
    often, and sheds requests until its next probe. A refusal by the bulkhead is no
    failure for the breaker: the bulkhead stands outside it.

    Args:
        app: The ASGI application to protect.
        bulkhead: A :class:`~hazina.Bulkhead`, or the name of one in ``registry``.
        circuit_breaker: A :class:`~hazina.CircuitBreaker`, or the name of one.
        registry: Where to find policies given by name (default ``hazina.registry``).

    Only HTTP requests are guarded; websocket and lifespan scopes pass through untouched.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        bulkhead: str | Bulkhead | None = None,
        circuit_breaker: str | CircuitBreaker | None = None,
        registry: Registry | None = None,
    ) -> None:
        if bulkhead is None and circuit_breaker is None:
            raise ConfigurationError(
                "ShedLoadMiddleware: give a bulkhead=, a circuit_breaker= or both"
            )
        self.app: ASGIApp = app
        self.circuit_breaker: CircuitBreaker | None = None
        self.bulkhead: Bulkhead | None = None
        call: Callable[..., Awaitable[None]] = _judged(app)
        if circuit_breaker is not None:
            if not isinstance(circuit_breaker, CircuitBreaker):
                circuit_breaker = registry_or_default(registry).circuit_breaker(circuit_breaker)
            self.circuit_breaker = circuit_breaker
            call = apply_policy(circuit_breaker, call)
        if bulkhead is not None:
            if not isinstance(bulkhead, Bulkhead):
                bulkhead = registry_or_default(registry).bulkhead(bulkhead)
            self.bulkhead = bulkhead
            # Outside the breaker: a full bulkhead says nothing about the app's health.
            call = apply_policy(bulkhead, call)
        self._call = call

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self._call(scope, receive, tracked)
        except _ServerError:
            return
        except (CircuitOpenError, BulkheadFull) as refused:
            # A refusal raised by the app itself, after it began answering, is its own.
            if started:
                raise
            wait = getattr(refused, "retry_after", None)
            await _answer(send, 503, unavailable_headers(wait), UNAVAILABLE)
