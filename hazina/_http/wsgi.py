"""The WSGI rate-limit middleware: refuse requests over a limit with 429."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from .._core.errors import RateLimitExceeded
from .._core.registry import Registry
from .._ratelimit.policy import RateLimiter
from .limiting import TOO_MANY, Answers, resolve_limiter


def remote_addr(environ: WSGIEnvironment) -> Hashable:
    """The client's address from the WSGI environ (``None`` when the server gives none)."""
    return environ.get("REMOTE_ADDR") or None


class RateLimitMiddleware:
    """Answer requests over ``limiter``'s limit with 429, ``Retry-After`` and the IETF
    ``RateLimit-Policy`` and ``RateLimit`` fields; admitted responses carry them too.

    Args:
        app: The WSGI application to protect.
        limiter: A :class:`~hazina.RateLimiter`, or the name of one in ``registry``.
        key: A function of the WSGI environ giving the key to limit by (default: the
            client's address, ``REMOTE_ADDR``).
        registry: Where to find ``limiter`` by name (default ``hazina.registry``).

    With ``wait=True`` on the limiter, a request over the limit waits (blocking its
    worker thread) up to ``max_wait`` before it is refused.
    """

    def __init__(
        self,
        app: WSGIApplication,
        limiter: str | RateLimiter,
        *,
        key: Callable[[WSGIEnvironment], Hashable] = remote_addr,
        registry: Registry | None = None,
    ) -> None:
        self.app: WSGIApplication = app
        self.limiter: RateLimiter = resolve_limiter(limiter, registry)
        self.key: Callable[[WSGIEnvironment], Hashable] = key
        self._answers = Answers(self.limiter)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        limiter = self.limiter
        key = self.key(environ)
        try:
            limiter.acquire(key)
        except RateLimitExceeded as refused:
            start_response("429 Too Many Requests", self._answers.refused(refused.retry_after))
            return [TOO_MANY]
        extra = self._answers.admitted(limiter.status(key))

        def start_with_fields(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            return start_response(status, [*headers, *extra], exc_info)

        return self.app(environ, start_with_fields)
