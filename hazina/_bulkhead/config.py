"""A bulkhead's configuration, and the keyword arguments that build it."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypedDict

import attrs

from .._core.validation import (
    Duration,
    InvalidValue,
    boolean,
    optional_callable,
    optional_non_negative_duration,
    optional_positive_int,
    positive_int,
    seconds,
)


def _whole_or_zero(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        raise InvalidValue(attribute.name, value, "a whole number of 0 or more")


@attrs.frozen(kw_only=True)
class BulkheadConfig:
    """A bulkhead's configuration; see :func:`hazina.bulkhead`."""

    max_concurrent: int | None = attrs.field(default=None, validator=optional_positive_int)
    max_queue: int = attrs.field(default=0, validator=_whole_or_zero)
    max_wait: float | None = attrs.field(
        converter=seconds, default=None, validator=optional_non_negative_duration
    )
    key: Callable[..., Hashable] | None = attrs.field(
        default=None, validator=optional_callable("a function of the call's arguments")
    )
    max_keys: int = attrs.field(default=100_000, validator=positive_int)
    dry_run: bool = attrs.field(default=False, validator=boolean)

    def __attrs_post_init__(self) -> None:
        if self.max_concurrent is None:
            # No default: the right number is a property of what the bulkhead protects.
            raise InvalidValue(
                "max_concurrent", None, "a whole number of 1 or more (there is no default)"
            )


class BulkheadOptions(TypedDict, total=False):
    """Keyword arguments of :func:`hazina.bulkhead` and its factory."""

    max_concurrent: int | None
    max_queue: int
    max_wait: Duration | None
    key: Callable[..., Hashable] | None
    max_keys: int
    dry_run: bool
