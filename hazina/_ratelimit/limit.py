"""One rate limit: ``rate`` tokens per ``per`` seconds, ``burst`` at most, and its spellings."""

from __future__ import annotations

import datetime
import re
from typing import Any

import attrs

from .._core.errors import ConfigurationError
from .._core.validation import MAX_COUNT, MAX_SECONDS, is_finite_number

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


#: The fastest refill, in tokens a second. A GCRA schedule advances by 1/rate seconds a
#: token; much finer steps than a nanosecond are lost in the clock's float and would
#: let every call through.
MAX_PER_SECOND = 1e9


def limit_problem(rate: float, per: float, burst: float) -> tuple[str, float, str] | None:
    """What is wrong with a limit of finite positive numbers, as ``(param, value,
    expected)``; ``None`` if nothing is.

    Numbers that pass every "above 0" check can still break the arithmetic at call time:
    a period beyond the interpreter's longest wait, a rate so slow that one token takes
    longer than that, or so fast (or a burst so large) that taking a token changes no
    float.
    """
    if per > MAX_SECONDS:
        return "per", per, f"a number of seconds above 0 and at most {MAX_SECONDS:g}"
    if rate > MAX_COUNT:
        return "rate", rate, f"a number above 0 and at most {MAX_COUNT:g}"
    if burst > MAX_COUNT:
        return "burst", burst, f"a number from 1 to {MAX_COUNT:g}"
    per_second = rate / per
    if per_second > MAX_PER_SECOND:
        return "rate", rate, f"at most {MAX_PER_SECOND:g} a second (got {per_second:g} a second)"
    if per / rate > MAX_SECONDS:
        return (
            "rate",
            rate,
            f"at least one token every {MAX_SECONDS:g} seconds "
            f"(got one every {per / rate:g} seconds)",
        )
    return None


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

    def __attrs_post_init__(self) -> None:
        problem = limit_problem(self.rate, self.per, self.burst)
        if problem is not None:
            param, value, expected = problem
            raise ConfigurationError(f"Limit: {param} must be {expected}, got {value!r}")

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
    try:
        per = multiple * unit
    except OverflowError:  # more digits than a float holds
        raise ValueError(
            f"expected a period of at most {MAX_SECONDS:g} seconds, got {text!r}"
        ) from None
    return Limit(count, per)
