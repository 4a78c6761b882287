"""A timeout's configuration, and the keyword arguments that build it."""

from __future__ import annotations

from typing import TypedDict

import attrs

from .._core.validation import Duration, InvalidValue, optional_duration, positive_int, seconds


@attrs.frozen(kw_only=True)
class TimeoutConfig:
    """A timeout's configuration; see :func:`hazina.timeout`."""

    seconds: float | None = attrs.field(
        converter=seconds, default=None, validator=optional_duration
    )
    max_abandoned: int = attrs.field(default=8, validator=positive_int)

    def __attrs_post_init__(self) -> None:
        if self.seconds is None:
            # No default: any guess would be wrong for most calls.
            raise InvalidValue("seconds", None, "a number greater than 0 (there is no default)")


class TimeoutOptions(TypedDict, total=False):
    """Keyword arguments of :func:`hazina.timeout` and its factory."""

    seconds: Duration | None
    max_abandoned: int
