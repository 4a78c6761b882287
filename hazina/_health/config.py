"""A health check's configuration, and the keyword arguments that build it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypedDict

import attrs

from .._core.validation import Duration, InvalidValue, boolean, duration, seconds


def to_tags(value: str | Iterable[str]) -> tuple[str, ...]:
    """Tags as a tuple without duplicates; one string is one tag (not its letters)."""
    tags = (value,) if isinstance(value, str) else tuple(value)
    for tag in tags:
        if not isinstance(tag, str) or not tag or "/" in tag:
            raise TypeError(f"every tag must be a non-empty string without '/', got {tag!r}")
    return tuple(dict.fromkeys(tags))


def _tags(value: object) -> tuple[str, ...]:
    try:
        return to_tags(value)  # type: ignore[arg-type]
    except TypeError:
        # Also what a non-iterable gets, e.g. tags=5.
        raise InvalidValue(
            "tags", value, "a string or an iterable of non-empty strings without '/'"
        ) from None


@attrs.frozen(kw_only=True)
class HealthCheckConfig:
    """A health check's configuration; see :func:`hazina.health_check`."""

    timeout: float = attrs.field(converter=seconds, default=5.0, validator=duration)
    critical: bool = attrs.field(default=True, validator=boolean)
    # A tag is one path segment of the HTTP endpoint (/health/<tag>), hence no '/'.
    tags: tuple[str, ...] = attrs.field(default=(), converter=_tags)


class HealthCheckOptions(TypedDict, total=False):
    """Keyword arguments of :func:`hazina.health_check` and ``registry.health_check``."""

    timeout: Duration
    critical: bool
    tags: str | Iterable[str]
