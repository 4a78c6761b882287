"""One rate limit: ``rate`` tokens per ``per`` seconds, ``burst`` at most, and its spellings."""

from __future__ import annotations

import datetime
import re
from typing import Any

import attrs

from .._core.errors import ConfigurationError
from .._core.validation import is_finite_number

_DAY = 86400.0
_SECONDS = {
    "second": 1.0,
    "minute": 60.0,
    "hour": 3600.0,
    "day": _DAY,
    # Calendar-free on purpose: a limit is a fixed span, not "until the 1st".
    "month": 30 * _DAY,
    "year": 365 * _DAY,
}
_UNITS = {
    **{unit: seconds for unit, seconds in _SECONDS.items()},
    **{f"{unit}s": seconds for unit, seconds in _SECONDS.items()},
    # "m" is a minute (Flask-Limiter and slowapi read it so); month and year have no letter.
    **{
        unit[0]: seconds
        for unit, seconds in _SECONDS.items()
        if unit in ("second", "minute", "hour", "day")
    },
}
# "10/second", "10 / minutes", "10/h", "10 per second", and with a multiple of the unit:
# "10/5 minutes", "10 per 5 minutes".
_LIMIT = re.compile(r"\s*(\d+)(?:\s*/\s*|\s+per\s+)(?:(\d+)\s*)?([a-z]+)\s*", re.IGNORECASE)
_SEPARATOR = re.compile(r"[;,]")
LIMIT_FORMAT = (
    "'N/unit', 'N per unit' or 'N per K units', several separated by ';' or ',' "
    "(units second, minute, hour, day, month, year, their plurals, and s, m, h, d)"
)


def _duration(value: Any) -> Any:
    # A timedelta is a period like any other; the validator then checks the seconds.
    return value.total_seconds() if isinstance(value, datetime.timedelta) else value


def _rate(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not (is_finite_number(value) and value > 0):
        raise ConfigurationError(f"Limit: {attribute.name} must be a number above 0, got {value!r}")


def _burst(instance: Limit, _: attrs.Attribute[Any], value: object) -> None:
    if not (is_finite_number(value) and value >= 1):
        # The default burst is the rate, so a slow rate needs its burst spelled out.
        hint = "" if value is not instance.rate else " (it defaults to rate: give burst=1 or more)"
        raise ConfigurationError(f"Limit: burst must be a number of 1 or more, got {value!r}{hint}")


@attrs.frozen
class Limit:
    """``rate`` tokens per ``per`` seconds, with room for ``burst`` at once.

    A call of cost ``c`` takes ``c`` tokens. The token bucket and GCRA admit up to
    ``burst`` at once and refill at ``rate / per`` tokens a second; the sliding window
    admits at most ``rate`` in any ``per`` seconds.

    Args:
        rate: Tokens per period; above 0.
        per: The period in seconds (default 1; a ``timedelta`` too); above 0.
        burst: The most tokens available at once (default ``rate``); 1 or more.

    Raises:
        ConfigurationError: A value is out of range.
    """

    rate: float = attrs.field(validator=_rate)
    per: float = attrs.field(default=1.0, converter=_duration, validator=_rate)
    burst: float = attrs.field(
        default=attrs.Factory(lambda self: self.rate, takes_self=True), validator=_burst
    )

    @property
    def per_second(self) -> float:
        """Tokens refilled a second."""
        return self.rate / self.per

    def __str__(self) -> str:
        text = f"{self.rate:g}/{self.per:g}s"
        return text if self.burst == self.rate else f"{text} (burst {self.burst:g})"


def split_limits(text: str) -> list[str]:
    """The parts of ``"10/second; 1000/hour"``: one limit each, separated by ``;`` or ``,``."""
    return [part.strip() for part in _SEPARATOR.split(text)]


def parse_limit(text: str) -> Limit:
    """The :class:`Limit` a string like ``"10/second"`` or ``"1000 per 5 minutes"`` spells.

    Raises:
        ValueError: ``text`` is not a limit in that form (a message says which forms are).
    """
    match = _LIMIT.fullmatch(text)
    unit = _UNITS.get(match.group(3).lower()) if match else None
    if match is None or unit is None:
        raise ValueError(f"expected {LIMIT_FORMAT}, got {text!r}")
    multiple = int(match.group(2)) if match.group(2) else 1
    count = int(match.group(1))
    if count < 1 or multiple < 1:
        raise ValueError(f"expected a count and a period above 0, got {text!r}")
    return Limit(count, multiple * unit)
