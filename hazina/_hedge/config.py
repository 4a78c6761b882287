"""A hedge policy's configuration, and the keyword arguments that build it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

import attrs

from .._core.conditions import ErrorTest, validate_error_test
from .._core.validation import (
    MAX_SECONDS,
    Duration,
    InvalidValue,
    is_finite_number,
    positive_int,
    seconds,
)


class _Required:
    """The default of ``delay``: there is no sensible one, so leaving it out is refused."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "required"


#: Typed ``Any`` so that it can stand as the default of a field of any type.
REQUIRED: Any = _Required()

DELAY_EXPECTED = "a number of seconds (0 to threading.TIMEOUT_MAX), or a callable returning one"


class _Shown(str):
    """Text that an error message shows as it is, not quoted."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def _valid_delay(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is REQUIRED:
        raise InvalidValue(attribute.name, _Shown("nothing"), f"given: {DELAY_EXPECTED}")
    if callable(value) and not isinstance(value, type):
        return
    if not (is_finite_number(value) and 0 <= value <= MAX_SECONDS):
        raise InvalidValue(attribute.name, value, DELAY_EXPECTED)


@attrs.frozen(kw_only=True)
class HedgeConfig:
    """A hedge policy's configuration; see :func:`hazina.hedge`."""

    delay: float | Callable[[], float] = attrs.field(
        converter=seconds, default=REQUIRED, validator=_valid_delay
    )
    max_hedges: int = attrs.field(default=1, validator=positive_int)
    on: ErrorTest = attrs.field(default=Exception, validator=validate_error_test)


class HedgeOptions(TypedDict, total=False):
    """Keyword arguments of :func:`hazina.hedge` and its factory."""

    delay: Duration | Callable[[], float]
    max_hedges: int
    on: ErrorTest
