"""A chaos policy's configuration, and the keyword arguments that build it."""

from __future__ import annotations

import builtins
import importlib
from typing import Any, TypedDict

import attrs

from .._core.validation import (
    Duration,
    InvalidValue,
    boolean,
    is_finite_number,
    non_negative_duration,
)


class NotGiven:
    """The type of :data:`NOT_GIVEN`: ``result`` was not given (``None`` is a result)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Any = NotGiven()


def _rate(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not (is_finite_number(value) and 0 <= value <= 1):
        raise InvalidValue(attribute.name, value, "a number from 0 to 1")


def _exception_named(value: Any) -> Any:
    """An exception class given by name (from a file or a variable): ``"TimeoutError"``,
    ``"package.module.Error"``; anything else unchanged."""
    if not isinstance(value, str):
        return value
    module_name, _, attribute = value.rpartition(".")
    try:
        found = (
            getattr(importlib.import_module(module_name), attribute)
            if module_name
            else getattr(builtins, attribute)
        )
    except (ImportError, AttributeError, ValueError):
        raise InvalidValue("error", value, "the name of an exception class") from None
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise InvalidValue("error", value, "the name of an exception class")
    return found


def _error(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None or isinstance(value, BaseException):
        return
    if isinstance(value, type) and issubclass(value, BaseException):
        return
    raise InvalidValue(attribute.name, value, "None, an exception class or an exception")


def _seed(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise InvalidValue(attribute.name, value, "None or a whole number")


@attrs.frozen(kw_only=True)
class ChaosConfig:
    """A chaos policy's configuration; see :func:`hazina.chaos`."""

    error: type[BaseException] | BaseException | None = attrs.field(
        default=None, converter=_exception_named, validator=_error
    )
    error_rate: float = attrs.field(default=0.0, validator=_rate)
    latency: float = attrs.field(default=0.0, validator=non_negative_duration)
    latency_rate: float = attrs.field(default=0.0, validator=_rate)
    result: Any = attrs.field(default=NOT_GIVEN)
    result_rate: float = attrs.field(default=0.0, validator=_rate)
    enabled: bool = attrs.field(default=True, validator=boolean)
    seed: int | None = attrs.field(default=None, validator=_seed)

    def __attrs_post_init__(self) -> None:
        if self.error_rate > 0 and self.error is None:
            raise InvalidValue("error", None, "an exception class or instance when error_rate > 0")
        if self.error_rate > 0 and isinstance(self.error, type):
            # Instantiated per injection: one that needs arguments would raise TypeError
            # from every injected call instead of itself.
            try:
                self.error()
            except Exception:
                raise InvalidValue(
                    "error",
                    self.error,
                    "an exception class that takes no arguments, or an instance",
                ) from None
        if self.result_rate > 0 and self.result is NOT_GIVEN:
            raise InvalidValue("result", NOT_GIVEN, "given when result_rate > 0")


class ChaosOptions(TypedDict, total=False):
    """Keyword arguments of :func:`hazina.chaos` and its factory."""

    error: type[BaseException] | BaseException | str | None
    error_rate: float
    latency: Duration
    latency_rate: float
    result: Any
    result_rate: float
    enabled: bool
    seed: int | None
