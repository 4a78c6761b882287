"""Which exceptions a policy reacts to: exception types, or any predicate.

Parameters such as ``on=``, ``failure_on=`` and ``ignore_on=`` accept an exception
type, a tuple of them, or a predicate over the exception. :func:`when` turns either
into a :class:`Condition`, which combines with ``|`` and ``&``::

    on=when(ConnectionError) | when(lambda e: getattr(e, "status", 0) >= 500)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import attrs

from .validation import InvalidValue

ErrorTest: TypeAlias = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)


class Condition:
    """A test over an exception, combinable with ``|`` (either) and ``&`` (both)."""

    __slots__ = ("_test", "_text")

    def __init__(self, test: Callable[[BaseException], bool], text: str) -> None:
        self._test = test
        self._text = text

    def __call__(self, error: BaseException) -> bool:
        return self._test(error)

    def __or__(self, other: ErrorTest) -> Condition:
        right = when(other)
        return Condition(lambda e: self._test(e) or right._test(e), f"({self} | {right})")

    def __and__(self, other: ErrorTest) -> Condition:
        right = when(other)
        return Condition(lambda e: self._test(e) and right._test(e), f"({self} & {right})")

    def __repr__(self) -> str:
        return self._text


def _is_error_type(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, BaseException)


def when(test: ErrorTest) -> Condition:
    """Make a :class:`Condition` from exception types or a predicate."""
    if isinstance(test, Condition):
        return test
    if _is_error_type(test):
        error_type: type[BaseException] = test  # type: ignore[assignment]
        return Condition(lambda e: isinstance(e, error_type), error_type.__qualname__)
    if isinstance(test, tuple) and all(_is_error_type(t) for t in test):
        types = test
        names = ", ".join(t.__qualname__ for t in types)
        return Condition(lambda e: isinstance(e, types), f"({names})")
    if callable(test) and not isinstance(test, type | tuple):
        return Condition(test, getattr(test, "__qualname__", repr(test)))
    raise TypeError(f"expected an exception type, a tuple of them, or a predicate; got {test!r}")


def validate_error_test(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    """attrs validator: the value must be something :func:`when` accepts."""
    try:
        when(value)
    except TypeError:
        raise InvalidValue(
            attribute.name,
            value,
            "an exception type, a tuple of exception types, or a predicate",
        ) from None


def validate_optional_error_test(
    instance: object, attribute: attrs.Attribute[Any], value: Any
) -> None:
    """attrs validator: ``None``, or something :func:`when` accepts."""
    if value is not None:
        validate_error_test(instance, attribute, value)
