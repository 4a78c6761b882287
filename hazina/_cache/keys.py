"""Cache keys built from a call's arguments, and the error that names an unhashable one.

A call without keyword arguments uses its own ``args`` tuple as the key: Python has
already built it, so the common case allocates nothing. Keyword arguments follow a
private marker, sorted by name, so their order does not matter. The instance of a
method is simply the first positional argument, so two instances never share entries
(unless their class makes them equal and hash alike, as ``__eq__``/``__hash__`` say).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable
from typing import Any

#: Builds a key from ``(args, kwargs)``.
KeyBuilder = Callable[[tuple[Any, ...], dict[str, Any]], Hashable]


class _KeywordsFollow:
    """Separates positional from keyword arguments in a key; equal only to itself."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<keywords>"


_KEYWORDS = (_KeywordsFollow(),)


def plain_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
    """The default key: the positional arguments, then the keyword ones sorted by name."""
    if not kwargs:
        return args
    # Names are unique, so sorting never compares the (maybe incomparable) values.
    return args + _KEYWORDS + tuple(sorted(kwargs.items()))


def typed_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
    """The default key plus every argument's type, so ``1`` and ``1.0`` differ."""
    key = plain_key(args, kwargs)
    types = tuple(type(arg) for arg in args)
    if kwargs:
        types += tuple(type(value) for _, value in sorted(kwargs.items()))
    return (key, types)


def custom_key(key: Callable[..., Hashable]) -> KeyBuilder:
    """A builder that asks the user's ``key=`` function, with the call's own arguments."""

    def build(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
        return key(*args, **kwargs)

    return build


def unhashable_argument(
    cache: str,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    custom: bool,
) -> TypeError | None:
    """The error to raise when a call's key could not be hashed, or ``None`` if the
    arguments are all hashable (the ``TypeError`` came from somewhere else)."""
    where = getattr(fn, "__qualname__", repr(fn))
    if custom:
        return TypeError(
            f"cache {cache!r}: the key= function returned an unhashable key for a call "
            f"of {where}(); make it return something hashable (a tuple of str/int, ...)"
        )
    names = _positional_names(fn)
    culprits = [
        (names[index] if index < len(names) else f"*args[{index - len(names)}]", value)
        for index, value in enumerate(args)
    ] + list(kwargs.items())
    for name, value in culprits:
        if not _hashable(value):
            return TypeError(
                f"cache {cache!r}: argument {name!r} of {where}() is unhashable "
                f"({type(value).__name__}), so it cannot be part of a cache key; pass "
                f"key=, a function of the same arguments that returns a hashable key "
                f"(a tuple, a string, ...)"
            )
    return None


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _positional_names(fn: Callable[..., Any]) -> list[str]:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins and other callables without a signature
        return []
    return [
        parameter.name
        for parameter in parameters
        if parameter.kind
        in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
