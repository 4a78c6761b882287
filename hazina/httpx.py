"""httpx transports that retry, break circuits per host and rate-limit (``hazina[httpx]``).

::

    client = httpx.Client(transport=hazina.httpx.Transport("github"))
"""

from __future__ import annotations

from collections.abc import Collection
from types import TracebackType

import httpx

from ._breaker.config import CircuitBreakerOptions
from ._core.registry import Registry
from ._core.validation import Duration
from ._http.client import (
    FAILURE_STATUSES,
    IDEMPOTENT_METHODS,
    RETRY_STATUSES,
    Protection,
    Retryable,
    async_sender,
    sync_sender,
)
from ._http.retry_after import parse_retry_after
from ._ratelimit.config import RateLimiterOptions
from ._retry.config import RetryOptions

__all__ = [
    "FAILURE_STATUSES",
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "AsyncTransport",
    "Transport",
    "parse_retry_after",
]

# Defaults shared by both transports (never mutated: the policies copy them).
_ON: RetryOptions = {}
_BREAKER_ON: CircuitBreakerOptions = {}


class Transport(httpx.BaseTransport):
    """An httpx transport that sends each request under hazina policies named ``name``.

    Registers a retry, a circuit breaker and (with ``rate_limit``) a rate limiter, all
    called ``name``. A request takes one limiter token (``RateLimitExceeded`` if
    refused), then runs attempts under the retry; each attempt runs under the breaker
    (one state per host with ``per_host``).

    Args:
        name: The name of the policies.
        retry: Keyword arguments of :func:`hazina.retry` (``None``: no retries). The
            transport sets ``on`` and ``retry_after`` itself.
        circuit_breaker: Keyword arguments of :func:`hazina.circuit_breaker` (``None``:
            no breaker).
        rate_limit: Keyword arguments of :func:`hazina.rate_limited` (``None``: none).
        timeout: Seconds (or a ``timedelta``) for each attempt, as a hazina timeout
            inside the breaker.
        per_host: One breaker state per host name.
        retry_methods: Methods retried when the request may have reached the server
            (statuses in ``retry_statuses``, read errors, read timeouts), if its body
            can be sent again (not a generator or a file upload). Errors before it can
            have (connect errors and timeouts, pool timeouts) are retried for any method.
        retry_statuses: Statuses to retry, waiting at least their ``Retry-After`` (in
            seconds or an HTTP date); a ``Retry-After`` above the retry's ``max_delay``
            gives up at once, and the response is returned.
        failure_statuses: Statuses the breaker counts as failures.
        registry: Where the policies live (default ``hazina.registry``).
        transport: The transport that sends (default ``httpx.HTTPTransport()``).

    The final response is returned as the inner transport gave it, still streaming;
    one that is retried is read to the end and closed first, so its connection goes back
    to the pool. An open breaker raises :class:`~hazina.CircuitOpenError`.
    """

    def __init__(
        self,
        name: str,
        *,
        retry: RetryOptions | None = _ON,
        circuit_breaker: CircuitBreakerOptions | None = _BREAKER_ON,
        rate_limit: RateLimiterOptions | None = None,
        timeout: Duration | None = None,
        per_host: bool = True,
        retry_methods: Collection[str] = IDEMPOTENT_METHODS,
        retry_statuses: Collection[int] = RETRY_STATUSES,
        failure_statuses: Collection[int] = FAILURE_STATUSES,
        registry: Registry | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._protection = Protection(
            name,
            retry=retry,
            circuit_breaker=circuit_breaker,
            rate_limit=rate_limit,
            timeout=timeout,
            per_host=per_host,
            retry_methods=retry_methods,
            retry_statuses=retry_statuses,
            failure_statuses=failure_statuses,
            registry=registry,
        )
        #: The transport that sends (its connection pool is this transport's).
        self.transport: httpx.BaseTransport = (
            httpx.HTTPTransport() if transport is None else transport
        )
        self._send = sync_sender(self._protection, self.transport.handle_request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response: httpx.Response = self._send(request)
        except Retryable as gave_up:
            outcome = gave_up
        else:
            return response
        # Out of the except block, so an error raised here does not chain to its wrapper.
        return outcome.outcome()

    def close(self) -> None:
        self.transport.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self.close()


class AsyncTransport(httpx.AsyncBaseTransport):
    """:class:`Transport` for ``httpx.AsyncClient``; the same arguments, with
    ``transport`` an async one (default ``httpx.AsyncHTTPTransport()``)."""

    def __init__(
        self,
        name: str,
        *,
        retry: RetryOptions | None = _ON,
        circuit_breaker: CircuitBreakerOptions | None = _BREAKER_ON,
        rate_limit: RateLimiterOptions | None = None,
        timeout: Duration | None = None,
        per_host: bool = True,
        retry_methods: Collection[str] = IDEMPOTENT_METHODS,
        retry_statuses: Collection[int] = RETRY_STATUSES,
        failure_statuses: Collection[int] = FAILURE_STATUSES,
        registry: Registry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._protection = Protection(
            name,
            retry=retry,
            circuit_breaker=circuit_breaker,
            rate_limit=rate_limit,
            timeout=timeout,
            per_host=per_host,
            retry_methods=retry_methods,
            retry_statuses=retry_statuses,
            failure_statuses=failure_statuses,
            registry=registry,
        )
        #: The transport that sends (its connection pool is this transport's).
        self.transport: httpx.AsyncBaseTransport = (
            httpx.AsyncHTTPTransport() if transport is None else transport
        )
        self._send = async_sender(self._protection, self.transport.handle_async_request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response: httpx.Response = await self._send(request)
        except Retryable as gave_up:
            outcome = gave_up
        else:
            return response
        # Out of the except block, so an error raised here does not chain to its wrapper.
        return outcome.outcome()

    async def aclose(self) -> None:
        await self.transport.aclose()
