"""A fallback policy's configuration, and the keyword arguments that build it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

import attrs

from .._core.conditions import ErrorTest, validate_error_test
from .._core.validation import InvalidValue


class _NotGiven:
    """The default of ``value`` and ``handler``: not ``None``, which is a fine value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<not given>"


#: Typed ``Any`` so that it can stand as the default of fields of any type.
NOT_GIVEN: Any = _NotGiven()


class _Shown(str):
    """Text that an error message shows as it is, not quoted."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def _same(a: object, b: object) -> bool:
    # Identity first: a value such as float("nan") is not equal to itself, and the
    # same decorator applied twice must not be told its configuration differs.
    return a is b or bool(a == b)


def _exactly_one(instance: FallbackConfig, _: attrs.Attribute[Any], handler: object) -> None:
    has_value, has_handler = instance.value is not NOT_GIVEN, handler is not NOT_GIVEN
    if has_handler and not callable(handler):
        raise InvalidValue("handler", handler, "a callable (error, *args, **kwargs) -> result")
    if has_value == has_handler:
        got = f"both (value={instance.value!r}, handler={handler!r})" if has_value else "neither"
        raise InvalidValue("value or handler", _Shown(got), "given, exactly one of them")


@attrs.frozen(kw_only=True)
class FallbackConfig:
    """A fallback policy's configuration; see :func:`hazina.fallback`."""

    value: Any = attrs.field(default=NOT_GIVEN, eq=attrs.cmp_using(eq=_same))
    handler: Callable[..., Any] = attrs.field(default=NOT_GIVEN, validator=_exactly_one)
    on: ErrorTest = attrs.field(default=Exception, validator=validate_error_test)


class FallbackOptions(TypedDict, total=False):
    """Keyword arguments of :func:`hazina.fallback` and its factory."""

    value: Any
    handler: Callable[..., Any]
    on: ErrorTest
