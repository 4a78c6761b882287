"""Fallback: a matching error answered by a value or a handler; everything else untouched.

Every behavioural scenario runs sync and async through the ``flavor`` fixture.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

import hazina

if TYPE_CHECKING:
    from conftest import Flavor

FellBack = hazina.Decorated[..., Any, hazina.Fallback]


class Unavailable(Exception):
    """The dependency is down."""


class Interrupted(BaseException):
    """Not an ``Exception``: something a fallback must never answer."""


def failing(error: BaseException) -> Callable[..., Any]:
    """A body that raises ``error`` whatever it is given."""

    def body(*args: Any, **kwargs: Any) -> Any:
        raise error

    return body


def falling_back(
    flavor: Flavor,
    registry: hazina.Registry,
    body: Callable[..., Any],
    name: str = "fb",
    **config: Any,
) -> FellBack:
    """``body`` as a sync or async operation under the fallback policy ``name``."""
    decorate: Any = hazina.fallback(name, registry=registry, **config)
    decorated: FellBack = decorate(flavor.define(body))
    return decorated


# -- answering ---------------------------------------------------------------------------


def test_a_success_is_returned_as_it_is(flavor: Flavor, registry: hazina.Registry) -> None:
    """A call that succeeds returns its own result; the fallback is not used."""
    fn = falling_back(flavor, registry, lambda x: x * 2, value=0)

    assert flavor.call(fn, 21) == 42
    assert fn.policy.stats() == hazina.FallbackStats(calls=1, fallbacks=0)


def test_a_matching_error_returns_the_value(flavor: Flavor, registry: hazina.Registry) -> None:
    """A call that raises an error matching ``on`` returns ``value`` instead."""
    fn = falling_back(flavor, registry, failing(Unavailable()), value=[])

    assert flavor.call(fn) == []
    assert fn.policy.stats() == hazina.FallbackStats(calls=1, fallbacks=1)


def test_none_is_a_value(flavor: Flavor, registry: hazina.Registry) -> None:
    """``value=None`` is a fallback value like any other, not "no value"."""
    fn = falling_back(flavor, registry, failing(Unavailable()), value=None)

    assert flavor.call(fn) is None
    assert fn.policy.config.value is None


def test_the_handler_gets_the_error_and_the_arguments(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """``handler(error, *args, **kwargs)`` is called, and its result is the call's."""
    error = Unavailable("down")
    seen: list[tuple[Any, ...]] = []

    def handler(caught: BaseException, *args: Any, **kwargs: Any) -> str:
        seen.append((caught, args, kwargs))
        return "cached"

    fn = falling_back(flavor, registry, failing(error), handler=handler)

    assert flavor.call(fn, 1, 2, page=3) == "cached"
    assert seen == [(error, (1, 2), {"page": 3})]


def test_an_async_handler_is_awaited() -> None:
    """An ``async def`` handler's result, not its coroutine, is an async call's result."""
    registry = hazina.Registry()

    async def handler(error: BaseException, user: str) -> str:
        await asyncio.sleep(0)
        return f"guest instead of {user}"

    @hazina.fallback("fb", registry=registry, handler=handler)
    async def profile(user: str) -> str:
        raise Unavailable

    assert asyncio.run(profile("ann")) == "guest instead of ann"


def test_a_plain_handler_returning_a_coroutine_is_awaited_for_an_async_call() -> None:
    """A lambda that calls a coroutine function is awaited too: the caller wants a value."""
    registry = hazina.Registry()

    async def from_cache(user: str) -> str:
        return f"cached {user}"

    @hazina.fallback("fb", registry=registry, handler=lambda error, user: from_cache(user))
    async def profile(user: str) -> str:
        raise Unavailable

    assert asyncio.run(profile("ann")) == "cached ann"


def test_a_sync_handler_returning_a_coroutine_to_a_sync_call_is_a_type_error() -> None:
    """A sync call cannot await what its handler returned: ``TypeError`` naming the
    policy, and no "never awaited" warning left behind."""
    registry = hazina.Registry()

    async def from_cache() -> str:
        return "cached"

    @hazina.fallback("profile-fb", registry=registry, handler=lambda error: from_cache())
    def profile() -> str:
        raise Unavailable

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match="profile-fb"):
            profile()
        gc.collect()


def test_a_handler_error_propagates_chained_to_the_original(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """An error raised by the handler reaches the caller, its context the call's error."""
    original = Unavailable("down")

    def handler(error: BaseException) -> Any:
        raise LookupError("no cached copy either")

    fn = falling_back(flavor, registry, failing(original), handler=handler)

    with pytest.raises(LookupError) as caught:
        flavor.call(fn)
    assert caught.value.__context__ is original
    assert fn.policy.stats().fallbacks == 1


def test_methods_pass_self_to_the_handler(flavor: Flavor, registry: hazina.Registry) -> None:
    """For a method, the handler gets the instance among the call's arguments."""
    body = failing(Unavailable())

    class Client:
        def __init__(self, name: str) -> None:
            self.name = name

        get = hazina.fallback(
            "fb", registry=registry, handler=lambda error, client, key: f"{client.name}:{key}"
        )(flavor.define(body))

    assert flavor.call(Client("c").get, "k") == "c:k"


# -- which errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "on",
    [
        Unavailable,
        (KeyError, Unavailable),
        lambda error: "down" in str(error),
        hazina.when(KeyError) | hazina.when(Unavailable),
    ],
    ids=["type", "tuple", "predicate", "condition"],
)
def test_on_selects_the_errors_answered(flavor: Flavor, registry: hazina.Registry, on: Any) -> None:
    """``on`` takes types, tuples, predicates and conditions, as the breaker's
    ``failure_on`` does: a match is answered, anything else propagates uncounted."""
    answered = falling_back(flavor, registry, failing(Unavailable("down")), "a", value=0, on=on)
    passed = falling_back(flavor, registry, failing(ValueError("bad")), "b", value=0, on=on)

    assert flavor.call(answered) == 0
    with pytest.raises(ValueError, match="bad"):
        flavor.call(passed)
    assert passed.policy.stats() == hazina.FallbackStats(calls=1, fallbacks=0)


@pytest.mark.parametrize("error", [Interrupted(), KeyboardInterrupt(), SystemExit(3)])
def test_errors_that_are_not_exceptions_always_propagate(
    flavor: Flavor, registry: hazina.Registry, error: BaseException
) -> None:
    """Even with ``on=BaseException``, interrupts and exits are never swallowed."""
    fn = falling_back(flavor, registry, failing(error), value=0, on=BaseException)

    with pytest.raises(type(error)):
        flavor.call(fn)
    assert fn.policy.stats() == hazina.FallbackStats(calls=1, fallbacks=0)


def test_a_cancelled_call_stays_cancelled() -> None:
    """Cancelling a task inside a fallback-guarded call cancels it; no value comes back."""
    registry = hazina.Registry()
    started = asyncio.Event()

    @hazina.fallback("fb", registry=registry, value="fallback", on=BaseException)
    async def slow() -> str:
        started.set()
        await asyncio.sleep(10)
        return "done"

    async def main() -> None:
        task = asyncio.create_task(slow())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert slow.policy.stats() == hazina.FallbackStats(calls=1, fallbacks=0)


# -- stats, events, registry -------------------------------------------------------------


def test_events_and_stats(flavor: Flavor, registry: hazina.Registry, events: list[object]) -> None:
    """Each fallback used is one ``FallbackUsed`` event with the error, and one count."""
    error = Unavailable()
    fn = falling_back(flavor, registry, failing(error), value=0)

    flavor.call(fn)
    flavor.call(fn)

    assert events == [hazina.FallbackUsed("fb", error)] * 2
    assert registry.stats()["fallback"] == {"fb": hazina.FallbackStats(calls=2, fallbacks=2)}
    assert registry.snapshot()["fallback"] == {"fb": {"calls": 2, "fallbacks": 2}}
    registry.reset()
    assert fn.policy.stats() == hazina.FallbackStats(calls=0, fallbacks=0)


def test_counts_are_exact_under_threads() -> None:
    """8 threads calling at once lose no call and no fallback from the counts."""
    registry = hazina.Registry()

    @hazina.fallback("fb", registry=registry, value=-1)
    def half(n: int) -> int:
        if n % 2:
            raise Unavailable
        return n

    barrier = threading.Barrier(8)

    def work(_: int) -> int:
        barrier.wait()
        return sum(half(n) for n in range(2000))

    with ThreadPoolExecutor(8) as pool:
        totals = list(pool.map(work, range(8)))

    assert totals == [sum(range(0, 2000, 2)) - 1000] * 8
    assert half.policy.stats() == hazina.FallbackStats(calls=16000, fallbacks=8000)


def test_the_factory_and_decorator_share_the_policy(registry: hazina.Registry) -> None:
    """``registry.fallback(name)`` returns the decorator's policy; equal configs agree,
    a ``nan`` value included."""
    nan = float("nan")

    @hazina.fallback("fb", registry=registry, value=nan)
    def one() -> float:
        raise Unavailable

    @hazina.fallback("fb", registry=registry, value=nan)
    def two() -> float:
        raise Unavailable

    assert one.policy is two.policy is registry.fallback("fb")
    assert registry.get("fallback", "fb") is one.policy


# -- configuration errors ---------------------------------------------------------------


def handler(error: BaseException) -> int:
    return 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "value or handler must be given, exactly one of them, got neither"),
        ({"value": 1, "handler": handler}, "got both (value=1, handler=<function handler"),
        ({"value": None, "handler": handler}, "got both (value=None"),
        ({"handler": "cached"}, "handler must be a callable (error, *args, **kwargs) -> result"),
        ({"value": 0, "on": "Exception"}, "on must be an exception type, a tuple of"),
        ({"value": 0, "on": (KeyError, "x")}, "on must be an exception type"),
        ({"value": 0, "on": 3}, "got 3"),
        ({"value": 0, "fallback_on": KeyError}, "unknown parameter 'fallback_on'"),
    ],
    ids=["neither", "both", "both-none", "handler", "on-str", "on-tuple", "on-int", "unknown"],
)
def test_bad_configuration_is_refused_at_decoration(
    registry: hazina.Registry, config: dict[str, Any], message: str
) -> None:
    """Each bad value gives a ``ConfigurationError`` naming the policy and the value."""
    with pytest.raises(hazina.ConfigurationError) as caught:
        hazina.fallback("profile-fb", registry=registry, **config)(lambda: None)
    assert "fallback 'profile-fb'" in str(caught.value)
    assert message in str(caught.value)
    assert len(registry) == 0


async def async_handler(error: BaseException) -> int:
    return 0


def test_an_async_handler_on_a_sync_function_is_refused(registry: hazina.Registry) -> None:
    """A sync function cannot await an async handler: refused when decorated, methods
    wrapped in ``staticmethod`` included."""
    with pytest.raises(hazina.ConfigurationError, match=r"fallback 'fb': handler .* is async"):

        @hazina.fallback("fb", registry=registry, handler=async_handler)
        def plain() -> int:
            return 1

    with pytest.raises(hazina.ConfigurationError, match="is async"):

        class Service:
            @hazina.fallback("fb", registry=registry, handler=async_handler)
            @staticmethod
            def parse() -> int:
                return 1

    @hazina.fallback("fb", registry=registry, handler=async_handler)
    async def fine() -> int:
        raise Unavailable

    assert asyncio.run(fine()) == 0


def test_a_different_configuration_for_a_name_is_refused(registry: hazina.Registry) -> None:
    """A second decorator asking for the same name with another value is refused."""
    registry.fallback("fb", value=0)

    with pytest.raises(hazina.ConfigurationError, match="value=0 \\(asked for 1\\)"):
        registry.fallback("fb", value=1)


def test_a_fallback_used_is_logged_at_debug(
    flavor: Flavor, registry: hazina.Registry, caplog: pytest.LogCaptureFixture
) -> None:
    """Each fallback used is one DEBUG record on ``hazina.fallback`` naming the policy."""
    fn = falling_back(flavor, registry, failing(Unavailable("down")), name="profile", value=0)

    with caplog.at_level(logging.DEBUG, logger="hazina.fallback"):
        flavor.call(fn)

    (record,) = caplog.records
    assert record.levelno == logging.DEBUG
    assert record.hazina_name == "profile"  # type: ignore[attr-defined]
    assert "Unavailable('down')" in record.getMessage()
