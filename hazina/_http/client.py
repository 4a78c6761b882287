"""The httpx transports' core: which policies guard a request, and one attempt at it.

A request takes one limiter token, then runs attempts under the retry; each attempt
runs under the (per-host) breaker and the per-attempt timeout. Statuses the breaker
should count as failures, and those to retry, travel as private exceptions through the
policies and are turned back into the response they carry here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from operator import attrgetter
from time import monotonic
from typing import Any, cast

import httpx

from .._breaker.policy import CircuitBreaker
from .._core.deadline import DEADLINE
from .._core.decorate import apply_policy, is_async_callable
from .._core.errors import ConfigurationError, TimeoutExceeded
from .._core.registry import Registry, registry_or_default
from .._core.validation import Duration
from .._ratelimit.policy import RateLimiter
from .._retry.policy import Retry
from .._timeout.policy import Timeout
from .retry_after import parse_retry_after

#: Methods retried by default when the request may have reached the server: those RFC
#: 9110 calls idempotent (section 9.2.2), so sending one twice does no more than once.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
RETRY_STATUSES = (429, 502, 503, 504)
FAILURE_STATUSES = range(500, 600)
#: Errors raised before the request can have reached the server: retried for any method.
NOT_SENT: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
#: Errors after which the server may have seen the request: retried for ``retry_methods``.
MAYBE_SENT: tuple[type[Exception], ...] = (
    TimeoutExceeded,
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)
#: Retry keywords the transport sets itself.
_OWN_RETRY_OPTIONS = frozenset({"on", "on_result", "retry_after"})


class Retryable(Exception):
    """An attempt's outcome to retry: a response with a retry status, or a transport error.

    Raised through the retry policy; when the retry gives up it reaches the transport,
    which returns the response or raises the error, as if no retry had been there.
    """

    def __init__(
        self,
        error: BaseException | None,
        response: httpx.Response | None = None,
        retry_after: float | None = None,
    ) -> None:
        # Events and logs of the retry show this: say what happened, not the wrapper.
        super().__init__(f"HTTP {response.status_code}" if response is not None else repr(error))
        self.error = error
        self.response = response
        self.retry_after = retry_after

    def outcome(self) -> httpx.Response:
        """The response to return, or raise the error (with the retry's notes on it)."""
        if self.error is None:
            assert self.response is not None
            return self.response
        for note in getattr(self, "__notes__", ()):
            self.error.add_note(note)
        raise self.error


class FailedStatus(Exception):
    """A response the breaker counts as a failure; the attempt still returns it."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def retry_after_of(outcome: object) -> float | None:
    """The retry's floor: a response's ``Retry-After``, or an error's ``retry_after``."""
    return getattr(outcome, "retry_after", None)


def replayable(request: httpx.Request) -> bool:
    """Whether the request's body can be sent again once it has been (bytes, JSON, form
    fields: yes; a generator or a file upload: no, so such a request is not retried
    after it may have been sent)."""
    return isinstance(request.stream, httpx.ByteStream)


#: The key of the per-host breaker: the request's host name (an attrgetter: no Python
#: frame per request).
host_of: Callable[[httpx.Request], str] = attrgetter("url.host")


class Protection:
    """The policies a transport named ``name`` registers, and how it classifies outcomes."""

    def __init__(
        self,
        name: str,
        *,
        retry: Mapping[str, Any] | None,
        circuit_breaker: Mapping[str, Any] | None,
        rate_limit: Mapping[str, Any] | None,
        timeout: Duration | None,
        per_host: bool,
        retry_methods: Collection[str],
        retry_statuses: Collection[int],
        failure_statuses: Collection[int],
        registry: Registry | None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"hazina.httpx transport: name must be a string, got {name!r}")
        if isinstance(retry_methods, str) or not all(isinstance(m, str) for m in retry_methods):
            raise ConfigurationError(
                f"transport {name!r}: retry_methods must be a collection of method names, "
                f"got {retry_methods!r}"
            )
        for label, statuses in (
            ("retry_statuses", retry_statuses),
            ("failure_statuses", failure_statuses),
        ):
            if not all(isinstance(s, int) and 100 <= s <= 599 for s in statuses):
                raise ConfigurationError(
                    f"transport {name!r}: {label} must hold HTTP statuses (100-599), "
                    f"got {statuses!r}"
                )
        own = _OWN_RETRY_OPTIONS & set(retry or ())
        if own:
            raise ConfigurationError(
                f"transport {name!r}: retry={{...}} may not set {sorted(own)}; the transport "
                f"decides what to retry (retry_statuses, retry_methods) and reads Retry-After"
            )
        if circuit_breaker is not None and "key" in circuit_breaker:
            raise ConfigurationError(
                f"transport {name!r}: circuit_breaker={{...}} may not set 'key'; per_host=True "
                f"keys the breaker by host"
            )
        registry = registry_or_default(registry)
        self.name = name
        self.retry: Retry | None = None
        if retry is not None:
            self.retry = registry.retry(name, **retry, on=Retryable, retry_after=retry_after_of)
        self.breaker: CircuitBreaker | None = None
        if circuit_breaker is not None:
            options: dict[str, Any] = dict(circuit_breaker)
            if per_host:
                options["key"] = host_of
            self.breaker = registry.circuit_breaker(name, **options)
        self.timeout: Timeout | None = None
        if timeout is not None:
            self.timeout = registry.timeout(name, seconds=timeout)
        self.limiter: RateLimiter | None = None
        if rate_limit is not None:
            self.limiter = registry.rate_limiter(name, **rate_limit)
        self.retry_methods: frozenset[str] = frozenset(method.upper() for method in retry_methods)
        self.retry_statuses: frozenset[int] = frozenset(retry_statuses)
        self.failure_statuses: frozenset[int] = frozenset(failure_statuses)

    def guard(self, attempt: Callable[..., Any]) -> Callable[..., Any]:
        """``attempt`` under the retry, and that under the limiter (one token per request)."""
        send = attempt if self.retry is None else apply_policy(self.retry, attempt)
        return send if self.limiter is None else apply_policy(self.limiter, send)

    def guard_once(self, send_once: Callable[..., Any]) -> Callable[..., Any]:
        """One attempt's send under the timeout, and that under the breaker (so a timed-out
        attempt is a breaker failure)."""
        if self.timeout is not None:
            if not is_async_callable(send_once):
                send_once = _closed_if_abandoned(send_once, self.timeout)
            send_once = apply_policy(self.timeout, send_once)
        return send_once if self.breaker is None else apply_policy(self.breaker, send_once)


def _closed_if_abandoned(
    send_once: Callable[[httpx.Request], httpx.Response], timeout: Timeout
) -> Callable[[httpx.Request], httpx.Response]:
    """``send_once`` closing a response that arrives after the attempt's deadline.

    A sync timeout stops waiting for the worker thread that sends, but cannot stop it: a
    response it gets after the caller left would never be closed, and its connection
    never go back to the pool. (An async attempt is cancelled instead, and httpx closes
    the connection it was using.)
    """
    get_deadline = DEADLINE.get

    def overdue() -> bool:
        deadline = get_deadline()
        return deadline is not None and (deadline.expired or monotonic() >= deadline.at)

    def send_within_deadline(request: httpx.Request) -> httpx.Response:
        try:
            response = send_once(request)
        except FailedStatus as failed:
            response = failed.response
            if not overdue():
                raise
        else:
            if not overdue():
                return response
        response.close()
        raise TimeoutExceeded(timeout.name, timeout.seconds)

    return send_within_deadline


# -- drivers: the sync and async senders are the same code (tests/test_layout.py) ----------


def read_raw_sync(response: httpx.Response, request: httpx.Request) -> httpx.Response:
    """``response`` with its body read and its connection given back: one to retry is
    finished with at once, and returned as it was if the retry gives up."""
    try:
        body = b"".join(cast(httpx.SyncByteStream, response.stream))
    finally:
        response.close()
    return _buffered(response, request, body)


async def read_raw_async(response: httpx.Response, request: httpx.Request) -> httpx.Response:
    try:
        body = b"".join([chunk async for chunk in cast(httpx.AsyncByteStream, response.stream)])
    finally:
        await response.aclose()
    return _buffered(response, request, body)


def _buffered(response: httpx.Response, request: httpx.Request, body: bytes) -> httpx.Response:
    # Raw bytes under the original headers: content-encoding is still the client's to undo.
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=httpx.ByteStream(body),
        request=request,
        extensions=response.extensions,
    )


def sync_sender(
    protection: Protection, send: Callable[[httpx.Request], httpx.Response]
) -> Callable[[httpx.Request], httpx.Response]:
    """A function sending a request through ``send`` under ``protection``'s policies.

    It raises :class:`Retryable` when the retry gave up: the caller turns that back into
    the response or error it carries (in its own frame, which is one fewer per request).
    """
    retrying = protection.retry is not None
    retry_methods = protection.retry_methods if retrying else frozenset()
    retry_statuses = protection.retry_statuses if retrying else frozenset()
    failure_statuses = protection.failure_statuses if protection.breaker else frozenset()

    def send_once(request: httpx.Request) -> httpx.Response:
        response = send(request)
        if response.status_code in failure_statuses:
            raise FailedStatus(response)
        return response

    guarded_once = protection.guard_once(send_once)

    def attempt(request: httpx.Request) -> httpx.Response:
        try:
            response: httpx.Response = guarded_once(request)
        except FailedStatus as failed:
            response = failed.response
        except NOT_SENT as error:
            if retrying:
                raise Retryable(error) from error
            raise
        except MAYBE_SENT as error:
            if request.method in retry_methods and replayable(request):
                raise Retryable(error) from error
            raise
        if (
            response.status_code in retry_statuses
            and request.method in retry_methods
            and replayable(request)
        ):
            wait = parse_retry_after(response.headers.get("retry-after"))
            raise Retryable(None, read_raw_sync(response, request), wait)
        return response

    return protection.guard(attempt)


def async_sender(
    protection: Protection, send: Callable[[httpx.Request], Awaitable[httpx.Response]]
) -> Callable[[httpx.Request], Awaitable[httpx.Response]]:
    """:func:`sync_sender` for async code."""
    retrying = protection.retry is not None
    retry_methods = protection.retry_methods if retrying else frozenset()
    retry_statuses = protection.retry_statuses if retrying else frozenset()
    failure_statuses = protection.failure_statuses if protection.breaker else frozenset()

    async def send_once(request: httpx.Request) -> httpx.Response:
        response = await send(request)
        if response.status_code in failure_statuses:
            raise FailedStatus(response)
        return response

    guarded_once = protection.guard_once(send_once)

    async def attempt(request: httpx.Request) -> httpx.Response:
        try:
            response: httpx.Response = await guarded_once(request)
        except FailedStatus as failed:
            response = failed.response
        except NOT_SENT as error:
            if retrying:
                raise Retryable(error) from error
            raise
        except MAYBE_SENT as error:
            if request.method in retry_methods and replayable(request):
                raise Retryable(error) from error
            raise
        if (
            response.status_code in retry_statuses
            and request.method in retry_methods
            and replayable(request)
        ):
            wait = parse_retry_after(response.headers.get("retry-after"))
            raise Retryable(None, await read_raw_async(response, request), wait)
        return response

    return protection.guard(attempt)
