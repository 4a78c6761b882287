"""Limit strings as Flask-Limiter and slowapi configs spell them, and limits= forms."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

import hazina

DAY = 86400.0


def limits_of(spec: Any) -> list[tuple[float, float]]:
    """``(rate, per)`` of each limit a limiter built from ``limits=spec`` holds."""
    limiter = hazina.Registry().rate_limiter("api", limits=spec)
    return [(limit.rate, limit.per) for limit in limiter.config.limits]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10/second", [(10, 1)]),
        ("10 per second", [(10, 1)]),
        ("10 PER Second", [(10, 1)]),
        ("100 per 5 minutes", [(100, 300)]),
        ("100/5 minutes", [(100, 300)]),
        ("3/m", [(3, 60)]),
        ("3/s", [(3, 1)]),
        ("3/h", [(3, 3600)]),
        ("3/d", [(3, DAY)]),
        ("5/month", [(5, 30 * DAY)]),
        ("5 per 2 months", [(5, 60 * DAY)]),
        ("1000/year", [(1000, 365 * DAY)]),
        ("1000 per years", [(1000, 365 * DAY)]),
        ("10/second; 100/minute", [(10, 1), (100, 60)]),
        ("10/second, 100 per hour,1000/day", [(10, 1), (100, 3600), (1000, DAY)]),
    ],
)
def test_limit_strings_parse(text: str, expected: list[tuple[float, float]]) -> None:
    """Each spelling gives the limits it names, in order."""
    assert limits_of(text) == expected


def test_a_list_mixes_strings_of_several_limits_and_limit_objects() -> None:
    """limits= takes a list of strings (each possibly several limits) and Limit objects."""
    spec = ["10/second; 100/minute", hazina.Limit(5, datetime.timedelta(hours=1))]

    assert limits_of(spec) == [(10, 1), (100, 60), (5, 3600)]


def test_the_same_limits_spelled_differently_are_the_same_configuration() -> None:
    """A factory call spelling its limits another way gets the same limiter."""
    registry = hazina.Registry()
    limiter = registry.rate_limiter("api", limits="10 per second; 100 per minute")

    assert registry.rate_limiter("api", limits=["10/s", "100/m"]) is limiter
    assert registry.rate_limiter("api", limits=["10/second", hazina.Limit(100, 60)]) is limiter


@pytest.mark.parametrize(
    ("text", "bad_part"),
    [
        ("10/second; 5/fortnight", "5/fortnight"),
        ("10/second, ten/minute", "ten/minute"),
        ("10/second;", ""),
        ("10 per", "10 per"),
        ("10 per 0 minutes", "10 per 0 minutes"),
        ("5/mo", "5/mo"),
    ],
)
def test_a_bad_part_is_named(text: str, bad_part: str) -> None:
    """The ConfigurationError names the part that does not parse, not just the whole."""
    with pytest.raises(hazina.ConfigurationError, match=r"rate_limiter 'api': limits") as raised:
        hazina.Registry().rate_limiter("api", limits=text)

    assert f"got {bad_part!r}" in str(raised.value)


def test_limit_per_takes_a_timedelta() -> None:
    """Limit(rate, per) with a timedelta period equals the same period in seconds."""
    assert hazina.Limit(5, datetime.timedelta(minutes=2)) == hazina.Limit(5, 120)
    with pytest.raises(hazina.ConfigurationError, match="per"):
        hazina.Limit(5, datetime.timedelta(0))
