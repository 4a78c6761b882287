"""Retry-After values read as seconds to wait, and written as whole seconds."""

from __future__ import annotations

import math

import pytest

from hazina._http.retry_after import retry_after_header
from hazina.httpx import parse_retry_after

#: 2015-10-21 07:28:00 GMT.
MOMENT = 1445412480.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),  # IMF-fixdate
        ("Wednesday, 21-Oct-15 07:29:00 GMT", 60.0),  # obsolete RFC 850 form
        ("Wed Oct 21 07:28:05 2015", 5.0),  # obsolete asctime form, GMT though unsaid
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),  # in the past: no wait
    ],
)
def test_seconds_and_http_dates_are_read(value: str, seconds: float) -> None:
    """A number of seconds, or an HTTP date in any of its three forms, gives the wait."""
    assert parse_retry_after(value, now=MOMENT) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "١٢", "Wed, 99 Foo 2015"])
def test_unreadable_values_ask_for_nothing(value: str | None) -> None:
    """A missing, negative, fractional or garbled value is no floor at all."""
    assert parse_retry_after(value, now=MOMENT) is None


@pytest.mark.parametrize(
    ("seconds", "header"),
    [(0.0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2"), (59.5, "60"), (None, "1"), (math.inf, "1")],
)
def test_waits_are_written_as_whole_seconds_rounded_up(seconds: float | None, header: str) -> None:
    """A client is never told to come back sooner than it may, nor told 0."""
    assert retry_after_header(seconds) == header
