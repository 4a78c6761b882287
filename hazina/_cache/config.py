"""What a cache is configured with, what it reports, and the event it emits."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypedDict

import attrs

from .._core.conditions import ErrorTest, validate_error_test
from .._core.validation import (
    BACKEND_ERROR_CHOICES,
    BackendErrorChoice,
    Duration,
    InvalidValue,
    boolean,
    duration,
    one_of,
    optional_callable,
    optional_duration,
    positive_int,
    seconds,
)
from .expiry import PRIORITIES, ExpiresAt, Priority, valid_expires_at
from .serializers import Serializer, valid_serializer

_key_function = optional_callable("a function of the call's arguments")


@attrs.frozen(kw_only=True)
class CacheConfig:
    """A cache's configuration; see :func:`hazina.cached`."""

    max_size: int = attrs.field(default=1024, validator=positive_int)
    ttl: float | None = attrs.field(converter=seconds, default=None, validator=optional_duration)
    sliding: float | None = attrs.field(
        converter=seconds, default=None, validator=optional_duration
    )
    expires_at: ExpiresAt | None = attrs.field(default=None, validator=valid_expires_at)
    priority: Priority = attrs.field(default="normal", validator=one_of(*PRIORITIES))
    typed: bool = attrs.field(default=False, validator=boolean)
    key: Callable[..., Hashable] | None = attrs.field(default=None, validator=_key_function)
    single_flight: bool = attrs.field(default=True, validator=boolean)
    on_backend_error: BackendErrorChoice = attrs.field(
        default="local", validator=one_of(*BACKEND_ERROR_CHOICES)
    )
    serializer: Serializer = attrs.field(default="json", validator=valid_serializer)
    lease: float = attrs.field(converter=seconds, default=10.0, validator=duration)
    refresh_after: float | None = attrs.field(
        converter=seconds, default=None, validator=optional_duration
    )
    stale_if_error: float | None = attrs.field(
        converter=seconds, default=None, validator=optional_duration
    )
    stale_on: ErrorTest = attrs.field(default=Exception, validator=validate_error_test)

    def __attrs_post_init__(self) -> None:
        if self.typed and self.key is not None:
            raise InvalidValue(
                "typed",
                True,
                "False when key= is given (the key function decides what a key holds)",
            )
        if (
            self.refresh_after is not None
            and self.ttl is not None
            and self.refresh_after >= self.ttl
        ):
            # An entry would expire before it is ever old enough to refresh.
            raise InvalidValue(
                "refresh_after",
                self.refresh_after,
                f"less than ttl ({self.ttl!r}), or None",
            )


class CacheOptions(TypedDict, total=False):
    """Keyword arguments of :func:`hazina.cached` and its factory."""

    max_size: int
    ttl: Duration | None
    sliding: Duration | None
    expires_at: ExpiresAt | None
    priority: Priority
    typed: bool
    key: Callable[..., Hashable] | None
    single_flight: bool
    on_backend_error: BackendErrorChoice
    serializer: Serializer
    lease: Duration
    refresh_after: Duration | None
    stale_if_error: Duration | None
    stale_on: ErrorTest
