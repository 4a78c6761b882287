"""The public ``@cached`` decorator, and the type of what it returns.

It decorates through the shared core (``apply_policy``) like every hazina decorator,
then adds what only a cache has: ``cache_invalidate`` and ``cache_clear``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import (
    Any,
    Concatenate,
    ParamSpec,
    Protocol,
    Self,
    TypeVar,
    Unpack,
    overload,
)

from .._core.backend import BackendChoice
from .._core.decorate import (
    PolicyFunctionWrapper,
    apply_policy,
    check_target,
    decorator_for,
    default_name,
    is_async_callable,
)
from .._core.errors import ConfigurationError
from .._core.registry import Registry, registry_or_default
from .config import CacheOptions
from .policy import Cache

P = ParamSpec("P")
Q = ParamSpec("Q")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
S = TypeVar("S")
S_contra = TypeVar("S_contra", contravariant=True)
T = TypeVar("T")


class CachedFunction(Protocol[P, R_co]):
    """A function decorated with :func:`cached`: same parameters and result, plus its cache."""

    @property
    def policy(self) -> Cache:
        """The cache this function's results are kept in."""
        ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    def cache_invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Remove the entry a call with these arguments would use; whether one was there."""
        ...

    def cache_clear(self) -> None:
        """Remove every entry of the cache (shared by every function using it)."""
        ...

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Self: ...

    @overload
    def __get__(
        self: CachedFunction[Concatenate[S, Q], T],
        instance: S,
        owner: type[Any] | None = None,
    ) -> CachedMethod[S, Q, T]: ...


class CachedMethod(Protocol[S_contra, Q, R_co]):
    """A cached method read from an instance: called without ``self``, invalidated with it.

    ``instance.method.cache_invalidate(instance, *args)``: the method is a plain function
    bound by Python (the fastest call there is), so the bound ``cache_invalidate`` is the
    function's own and cannot know the instance; pass it.
    """

    @property
    def policy(self) -> Cache:
        """The cache this method's results are kept in."""
        ...

    def __call__(self, *args: Q.args, **kwargs: Q.kwargs) -> R_co: ...

    def cache_invalidate(self, instance: S_contra, /, *args: Q.args, **kwargs: Q.kwargs) -> bool:
        """Remove the entry ``instance.method(*args, **kwargs)`` would use."""
        ...

    def cache_clear(self) -> None:
        """Remove every entry of the cache (for every instance)."""
        ...


class CacheDecorator:
    """What ``@cached(...)`` returns when given a name or options."""

    __slots__ = ("_get_policy",)

    def __init__(self, get_policy: Callable[[Callable[..., Any]], Cache]) -> None:
        self._get_policy = get_policy

    def __call__(self, fn: Callable[P, R], /) -> CachedFunction[P, R]:
        # Refuse an unsupported target before the policy is created, so a mistake
        # leaves nothing behind in the registry.
        check_target(fn)
        return _apply(self._get_policy(fn), fn)  # type: ignore[no-any-return]


@overload
def cached(fn: Callable[P, R], /) -> CachedFunction[P, R]: ...


@overload
def cached(
    name: str | None = None,
    /,
    *,
    registry: Registry | None = None,
    backend: BackendChoice | None = None,
    **config: Unpack[CacheOptions],
) -> CacheDecorator: ...


def cached(
    name: str | Callable[..., Any] | None = None,
    /,
    *,
    registry: Registry | None = None,
    backend: BackendChoice | None = None,
    **config: Any,
) -> Any:
    """Cache a function's results by its arguments, in the cache ``name`` (created or reused).

    Works on functions, ``async def`` functions (the awaited value is cached) and
    methods (the instance is part of the key). Concurrent calls that miss the same key
    run the function once and share its result or its exception; exceptions are never
    cached; ``None`` is cached like any value.

    Args:
        name: The cache's name; functions sharing a name share its entries (equal
            arguments, same entry). Defaults to the function's module and qualified name.
        backend: Where the state lives: a shared backend such as
            ``hazina.redis.RedisBackend``, or ``"memory"``; by default the registry's.
        registry: Where the cache lives; ``hazina.registry`` by default.
        max_size: The most entries kept (default 1024); the least recently used entry
            of the lowest priority goes first.
        ttl: Seconds an entry lives after it is stored (default: no limit).
        sliding: Seconds an entry lives after it was last read; never past ``ttl``
            or ``expires_at``.
        expires_at: When entries expire: a datetime (naive means local time), epoch
            seconds, or a function of the value returning one of those (or ``None``).
        priority: ``"low"``, ``"normal"`` (default), ``"high"`` or ``"never_remove"``.
        typed: Keep arguments of different types apart (``1`` and ``1.0``).
        key: A function of the call's arguments (``self`` included for methods)
            returning the hashable key, in place of the arguments themselves.
        single_flight: Let concurrent misses of one key wait for one call (default True).
        on_backend_error: What calls do while a shared backend does not answer:
            ``"local"`` (default, in-process state), ``"allow"`` or ``"deny"``.
        serializer: On Redis, how values are stored: ``"json"`` (default, strict),
            ``"pickle"``, or an object with ``dumps`` and ``loads``.
        lease: On Redis, seconds other processes wait for one process's load of a
            missing key before loading it themselves (default 10).

    Raises:
        ConfigurationError: A value is invalid, or ``name`` exists with another
            configuration.
    """

    return decorator_for(
        name,
        lambda chosen: registry_or_default(registry).cache(chosen, backend=backend, **config),
        name_of=_cache_name,
        apply=_apply,
        decorator=CacheDecorator,
    )


def _cache_name(fn: Callable[..., Any]) -> str:
    """The default name of a cache; refused for a function defined inside another.

    Every function one factory makes has the same qualified name, so named after it,
    closures over different values would share one cache and return each other's
    results. A retry or breaker shared that way is harmless; a cache is wrong.
    """
    derived = default_name(fn)
    if "<locals>" in derived:
        raise ConfigurationError(
            f"@cached needs a name for {derived}: it is defined inside another function, "
            f"and every function made there would share one cache (and each other's "
            f"results). Pass a name, and key= if the values it closes over matter."
        )
    return derived


def _apply(policy: Cache, target: Any) -> Any:
    """Decorate ``target`` with ``policy`` and give it ``cache_invalidate``/``cache_clear``."""
    if isinstance(target, classmethod | staticmethod):
        return type(target)(_apply(policy, target.__func__))
    if inspect.isfunction(target):
        decorated = apply_policy(policy, target)
        # Set after the core's update_wrapper, which copied any inner cache's own.
        decorated.cache_invalidate = _invalidator(policy, target, ())
        decorated.cache_clear = policy.clear
        return decorated
    return _CachedCallable(policy, target)


def _invalidator(
    policy: Cache, target: Callable[..., Any], bound: tuple[Any, ...]
) -> Callable[..., bool]:
    def cache_invalidate(*args: Any, **kwargs: Any) -> bool:
        return policy.delete(policy.key_of_call(target, bound + args, kwargs))

    return cache_invalidate


class _CachedCallable(PolicyFunctionWrapper):
    """A cached callable that is not a plain function (a bound method, a partial, an object).

    The core would build a driver per call for these; a cache builds it once. A bound
    method is cached through its function with its instance as first argument, so
    bound methods of two instances never share entries.
    """

    def __init__(self, policy: Cache, target: Callable[..., Any]) -> None:
        bound: tuple[Any, ...] = ()
        function = target
        if inspect.ismethod(target):
            bound, function = (target.__self__,), target.__func__
        make_driver = policy._async_driver if is_async_callable(function) else policy._sync_driver
        driver = make_driver(function)

        def through_cache(
            wrapped: Callable[..., Any],
            instance: object,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            if wrapped is target:
                return driver(*bound, *args, **kwargs)
            # Bound anew by a class it was placed in: rare, so built per call.
            return make_driver(wrapped)(*args, **kwargs)

        super().__init__(target, through_cache)
        self._self_policy = policy
        self._self_cache_invalidate = _invalidator(policy, function, bound)

    @property
    def cache_invalidate(self) -> Callable[..., bool]:
        """Remove the entry a call with these arguments would use; whether one was there."""
        return self._self_cache_invalidate

    def cache_clear(self) -> None:
        """Remove every entry of the cache."""
        self._self_policy.clear()
