"""The decorator core every hazina decorator uses.

It classifies the target once, at decoration time, and returns the cheapest wrapper
that is still correct:

- a plain function (sync or ``async def``) gets a plain function from the policy's
  driver factory. Python's own descriptor protocol then binds it as a method exactly
  as it binds the original, and calling it costs one Python frame. wrapt's
  ``FunctionWrapper`` would cost 2-6x more per call on this path: its C ``__call__``
  probes ``wrapped.__self__`` on every call to an unbound function (an
  AttributeError raised and cleared each time), and method access builds a new
  ``BoundFunctionWrapper`` on every attribute read. See ``benchmarks/``.
- ``classmethod`` / ``staticmethod`` objects are unwrapped, their function decorated,
  and the result rewrapped in the same kind, so decorator order does not matter.
- anything else (a callable object, a builtin, ``functools.partial``, another library's
  descriptor) goes through ``wrapt.FunctionWrapper``, which binds exactly as the
  target itself would: a plain function wrapper would wrongly bind a callable object
  placed in a class body as if it were a method.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    Protocol,
    Self,
    TypeVar,
    overload,
)

import wrapt

from .errors import ConfigurationError, safe_repr

if TYPE_CHECKING:
    from .policy import Policy

P = ParamSpec("P")
Q = ParamSpec("Q")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
S = TypeVar("S")
T = TypeVar("T")
PolicyT = TypeVar("PolicyT", bound="Policy[Any, Any]")
PolicyT_co = TypeVar("PolicyT_co", bound="Policy[Any, Any]", covariant=True)


class Decorated(Protocol[P, R_co, PolicyT_co]):
    """A function decorated by hazina: same parameters and result, plus its ``policy``."""

    @property
    def policy(self) -> PolicyT_co:
        """The policy instance this function runs under."""
        ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Self: ...

    @overload
    def __get__(
        self: Decorated[Concatenate[S, Q], T, PolicyT_co],
        instance: S,
        owner: type[Any] | None = None,
    ) -> Decorated[Q, T, PolicyT_co]: ...


def _unwrapped(target: object) -> object:
    """What ``target`` calls in the end: partials undone, classmethods opened."""
    if isinstance(target, classmethod | staticmethod):
        target = target.__func__
    while isinstance(target, functools.partial):
        target = target.func
    return target


def _calls(target: object) -> tuple[object, ...]:
    """``target`` itself and, for a callable object, the ``__call__`` Python would run."""
    target = _unwrapped(target)
    if inspect.isroutine(target) or isinstance(target, type):
        return (target,)
    # The type's __call__, not the instance's: Python looks special methods up on the type.
    return (target, getattr(type(target), "__call__", None))  # noqa: B004


def is_async_callable(target: object) -> bool:
    """Whether calling ``target`` runs an ``async def`` (through partials and ``__call__``)."""
    return any(inspect.iscoroutinefunction(call) for call in _calls(target))


def describe(target: object) -> str:
    """A short name for ``target`` in an error message; never raises."""
    name = getattr(target, "__qualname__", None)
    if isinstance(name, str):
        return name
    return safe_repr(target)


class ReturnedAwaitable(BaseException):
    """A target taken for sync returned an awaitable.

    A BaseException, so that no policy takes it for a failure of the dependency (the
    breaker ignores it, retry does not retry it) on its way out of the driver, where
    :func:`refuse_awaitable` turns it into the caller's ``TypeError``.
    """


def refuse_awaitable(target: object, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, raising :class:`ReturnedAwaitable` if a call returns an awaitable."""

    def call_sync_target(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()  # never awaited, and never will be: say so quietly
            raise ReturnedAwaitable(target)
        return result

    return call_sync_target


def awaitable_refusal(target: object) -> TypeError:
    """The error for a target taken for sync that returned an awaitable."""
    return TypeError(
        f"hazina took {describe(target)} for a sync callable (it is no `async def`, and "
        f"neither is its __call__), but it returned an awaitable, whose outcome no policy "
        f"could see. Decorate an `async def` function that awaits it instead."
    )


if TYPE_CHECKING:
    _FunctionWrapper = wrapt.FunctionWrapper[Any, Any]
else:
    # wrapt's classes are subscriptable only from 2.2 on; the floor is 1.16.
    _FunctionWrapper = wrapt.FunctionWrapper


class PolicyFunctionWrapper(_FunctionWrapper):
    """wrapt's wrapper, plus the ``policy`` attribute every hazina wrapper carries."""

    @property
    def policy(self) -> Any:
        return self._self_policy

    def __get__(self, instance: object, owner: type[Any] | None = None) -> Any:
        # A target that is no descriptor (a callable object, a builtin, a partial) is
        # not bound by a class, and neither is its wrapper. wrapt does this itself from
        # 1.17; 1.16 calls the target's missing __get__ and raises AttributeError.
        if not hasattr(type(self.__wrapped__), "__get__"):
            return self
        return super().__get__(instance, owner)


def check_target(target: object) -> None:
    """Raise ``TypeError`` if no hazina decorator can wrap ``target``."""
    for call in _calls(target):
        if inspect.isgeneratorfunction(call) or inspect.isasyncgenfunction(call):
            raise TypeError(
                f"hazina cannot decorate the generator function {describe(call)}: it "
                f"returns before its body runs, so nothing would be protected (and a "
                f"cache would hand every caller one generator, exhausted after the "
                f"first). Decorate a function that consumes it, e.g. returns a list."
            )
    if isinstance(target, classmethod | staticmethod):
        target = target.__func__
    if not callable(target):
        raise TypeError(f"hazina decorators apply to callables, got {target!r}")


def apply_policy(policy: Policy[Any, Any], target: Callable[..., Any]) -> Any:
    """Wrap ``target`` so every call runs under ``policy``."""
    check_target(target)
    if isinstance(target, classmethod | staticmethod):
        return type(target)(apply_policy(policy, target.__func__))
    is_async = is_async_callable(target)
    if inspect.isfunction(target):
        driver = policy._driver_for(target, is_async)
        functools.update_wrapper(driver, target)
        # update_wrapper copied an inner hazina layer's `policy`; each layer shows its own.
        driver.policy = policy  # type: ignore[attr-defined]
        return driver

    def make_driver(wrapped: Callable[..., Any]) -> Callable[..., Any]:
        if is_async:
            return policy._async_driver(wrapped)
        # Not knowable when decorated: an object whose sync __call__ returns a coroutine.
        return policy._sync_driver(refuse_awaitable(target, wrapped))

    def through_policy(
        wrapped: Callable[..., Any], instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        # Rare path: the bound callable differs per call, so the driver is built per call.
        try:
            return make_driver(wrapped)(*args, **kwargs)
        except ReturnedAwaitable:
            raise awaitable_refusal(target) from None

    wrapper = PolicyFunctionWrapper(target, through_policy)
    wrapper._self_policy = policy  # type: ignore[attr-defined]
    return wrapper


class PolicyDecorator(Generic[PolicyT]):
    """What ``@retry(...)`` and friends return when given a name or options."""

    __slots__ = ("_get_policy",)

    def __init__(self, get_policy: Callable[[Callable[..., Any]], PolicyT]) -> None:
        self._get_policy = get_policy

    def __call__(self, fn: Callable[P, R], /) -> Decorated[P, R, PolicyT]:
        # Refuse an unsupported target before the policy is created, so a mistake
        # leaves nothing behind in the registry.
        check_target(fn)
        return apply_policy(self._get_policy(fn), fn)  # type: ignore[no-any-return]


def default_name(target: Callable[..., Any]) -> str:
    """The name a policy gets when none is given: the target's module and qualified name."""
    function = getattr(target, "__func__", target)
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", None)
    if not isinstance(qualname, str) or not isinstance(module, str):
        # A repr-based name (partials, callable objects) would differ per object and per
        # process, silently giving every decoration a policy of its own.
        raise ConfigurationError(
            f"hazina cannot derive a stable policy name for {safe_repr(target)}; "
            f"pass one, e.g. @retry('payments-api')"
        )
    if "<lambda>" in qualname.split("."):
        # Every lambda is called <lambda>: named after it, all the lambdas of a module
        # would share one policy (two cached lambdas would return each other's results).
        raise ConfigurationError(
            f"hazina cannot name a policy after the lambda {module}.{qualname}: every "
            f"lambda there has that name. Pass one, e.g. retry('payments-api')(lambda: ...)"
        )
    return f"{module}.{qualname}"


def decorator_for(
    name_or_fn: str | Callable[..., Any] | None,
    get_policy: Callable[[str], PolicyT],
    *,
    name_of: Callable[[Callable[..., Any]], str] = default_name,
    apply: Callable[[PolicyT, Any], Any] = apply_policy,
    decorator: Callable[[Callable[[Callable[..., Any]], PolicyT]], Any] = PolicyDecorator,
) -> Any:
    """Shared body of every decorator: bare ``@x``, ``@x()``, ``@x("name", ...)``.

    A decorator that names, wraps or types its result differently (``@cached``)
    passes its own ``name_of``, ``apply`` and ``decorator``.
    """
    if name_or_fn is None or isinstance(name_or_fn, str):
        name = name_or_fn
        return decorator(lambda fn: get_policy(name if name is not None else name_of(fn)))
    if callable(name_or_fn) or isinstance(name_or_fn, classmethod | staticmethod):
        fn = name_or_fn
        check_target(fn)
        return apply(get_policy(name_of(fn)), fn)
    raise TypeError(
        f"the first argument must be a policy name (str) or the function to decorate, "
        f"got {name_or_fn!r}"
    )
