"""Turning keyword arguments into a validated configuration, or a clear error.

Validators raise :class:`InvalidValue` because they know the parameter but not the
policy; :func:`build_config` adds the policy's kind and name so that the
:class:`~hazina.ConfigurationError` a user sees names all three.
"""

from __future__ import annotations

import datetime
import difflib
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeAlias, TypeGuard, TypeVar

import attrs

from .errors import ConfigurationError, safe_repr

C = TypeVar("C")


#: The longest duration any setting may have, in seconds: the longest wait the
#: interpreter's own sleeps and lock timeouts accept (about 292 years on 64-bit
#: platforms); ``time.sleep`` raises OverflowError beyond it. Use ``None`` for "never".
MAX_SECONDS: float = threading.TIMEOUT_MAX
#: The largest count (rate, burst, cost) that float arithmetic keeps exact to the unit:
#: above 2**53, taking one token from a full bucket would leave it full.
MAX_COUNT: float = float(2**53)


class InvalidValue(Exception):
    """Raised inside a configuration class: ``param`` got ``value``, wanted ``expected``."""

    def __init__(self, param: str, value: object, expected: str) -> None:
        super().__init__(param, value, expected)
        self.param = param
        self.value = value
        self.expected = expected


def is_finite_number(value: object) -> TypeGuard[int | float]:
    """A real, finite int or float (not a bool)."""
    # bools are ints to Python, but `attempts=True` is a mistake, not a number.
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float is no usable duration or rate
        return False


def positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A finite number greater than zero."""
    if not (is_finite_number(value) and value > 0):
        raise InvalidValue(attribute.name, value, "a number greater than 0")


def non_negative(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A finite number, zero or more."""
    if not (is_finite_number(value) and value >= 0):
        raise InvalidValue(attribute.name, value, "a number of 0 or more")


def optional_positive(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``None``, or a finite number greater than zero."""
    if value is not None:
        positive(instance, attribute, value)


def positive_int(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A whole number of 1 or more."""
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise InvalidValue(attribute.name, value, "a whole number of 1 or more")


def duration(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Seconds: above 0, at most :data:`MAX_SECONDS`."""
    if not (is_finite_number(value) and 0 < value <= MAX_SECONDS):
        raise InvalidValue(
            attribute.name, value, f"a number of seconds above 0 and at most {MAX_SECONDS:g}"
        )


def optional_duration(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``None``, or seconds above 0 and at most :data:`MAX_SECONDS`."""
    if value is not None:
        duration(instance, attribute, value)


def non_negative_duration(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Seconds: 0 or more, at most :data:`MAX_SECONDS`."""
    if not (is_finite_number(value) and 0 <= value <= MAX_SECONDS):
        raise InvalidValue(attribute.name, value, f"a number of seconds from 0 to {MAX_SECONDS:g}")


def optional_non_negative_duration(
    instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    """``None``, or seconds from 0 to :data:`MAX_SECONDS`."""
    if value is not None:
        non_negative_duration(instance, attribute, value)


def unit_interval(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A rate: a number above 0 and at most 1."""
    if not (is_finite_number(value) and 0 < value <= 1):
        raise InvalidValue(attribute.name, value, "a number above 0 and at most 1")


def optional_unit_interval(
    instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    """``None``, or a rate above 0 and at most 1."""
    if value is not None:
        unit_interval(instance, attribute, value)


def non_negative_or_none(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``None``, or a finite number, zero or more."""
    if value is not None and not (is_finite_number(value) and value >= 0):
        raise InvalidValue(attribute.name, value, "None or a number of 0 or more")


def optional_positive_int(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``None``, or a whole number of 1 or more."""
    if value is not None:
        positive_int(instance, attribute, value)


def optional_at_least_one(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``None``, or a finite number of 1 or more (a burst: at least one whole call)."""
    if value is not None and not (is_finite_number(value) and value >= 1):
        raise InvalidValue(attribute.name, value, "a number of 1 or more")


def boolean(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``True`` or ``False``; not a truthy stand-in such as 1 or "yes"."""
    if not isinstance(value, bool):
        raise InvalidValue(attribute.name, value, "True or False")


def optional_callable(what: str) -> Callable[[object, attrs.Attribute[Any], object], None]:
    """``None``, or a callable; ``what`` says which callable, for the error message."""

    def validate(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and not callable(value):
            raise InvalidValue(attribute.name, value, f"None or {what}")

    return validate


def one_of(*choices: object) -> Callable[[object, attrs.Attribute[Any], object], None]:
    """One of a fixed set of values."""
    shown = ", ".join(repr(c) for c in choices)

    def validate(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in choices:
            raise InvalidValue(attribute.name, value, f"one of {shown}")

    return validate


#: What a policy on a shared backend does while the backend does not answer.
BACKEND_ERROR_CHOICES = ("local", "allow", "deny")
BackendErrorChoice: TypeAlias = Literal["local", "allow", "deny"]


#: A duration parameter's type: seconds, or a :class:`datetime.timedelta`.
Duration: TypeAlias = float | datetime.timedelta


def seconds(value: Any) -> Any:
    """A :class:`datetime.timedelta` as its seconds (a float); anything else unchanged.

    Every duration parameter takes a timedelta this way, so a configuration holds
    seconds only and ``timedelta(seconds=5)`` configures the same policy as ``5``.
    """
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return value


def build_config(kind: str, name: str, config_class: type[C], options: Mapping[str, Any]) -> C:
    """Build ``config_class(**options)`` for the policy ``kind`` ``name``, or explain why not.

    A :class:`datetime.timedelta` given for a parameter becomes its seconds first, except
    for a point in time (a name ending in ``_at``).
    """
    known = [field.name for field in attrs.fields(config_class)]  # type: ignore[arg-type]
    for param in options:
        if param not in known:
            close = difflib.get_close_matches(param, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            unknown = ConfigurationError(
                f"{kind} {name!r}: unknown parameter {param!r}{hint} "
                f"(known: {', '.join(sorted(known))})"
            )
            unknown.param = param
            raise unknown
    try:
        return config_class(
            **{
                # A name ending in `_at` (expires_at) is a point in time: a timedelta there
                # would silently become an instant in 1970, so it is left to be refused.
                param: value if param.endswith("_at") else seconds(value)
                for param, value in options.items()
            }
        )
    except InvalidValue as invalid:
        error = ConfigurationError(
            f"{kind} {name!r}: {invalid.param} must be {invalid.expected}, "
            f"got {safe_repr(invalid.value)}"
        )
        error.param = invalid.param
        raise error from None


def describe_difference(old: object, new: object) -> str:
    """Name the fields in which two configurations of one class differ."""
    differences = [
        f"{field.name}={getattr(old, field.name)!r} (asked for {getattr(new, field.name)!r})"
        for field in attrs.fields(type(old))  # type: ignore[arg-type]
        if getattr(old, field.name) != getattr(new, field.name)
    ]
    return ", ".join(differences)
