"""A timeout refuses every bad value when it is made, naming the policy and the value."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import hazina


@pytest.mark.parametrize(
    ("options", "shown"),
    [
        ({}, "seconds must be a number greater than 0 (there is no default), got None"),
        ({"seconds": 0}, "got 0"),
        ({"seconds": -1}, "got -1"),
        ({"seconds": float("nan")}, "got nan"),
        ({"seconds": float("inf")}, "got inf"),
        ({"seconds": "1"}, "got '1'"),
        ({"seconds": True}, "got True"),
        ({"seconds": 1e300}, "at most 9.22337e+09, got 1e+300"),
        ({"seconds": 1, "max_abandoned": 0}, "max_abandoned must be a whole number"),
        ({"seconds": 1, "max_abandoned": 1.5}, "got 1.5"),
        ({"seconds": 1, "max_abandoned": True}, "got True"),
        ({"seconds": 1, "max_abandoned": "8"}, "got '8'"),
        ({"seconds": 1, "sekonds": 2}, "unknown parameter 'sekonds'"),
    ],
)
def test_a_bad_value_is_a_configuration_error_naming_policy_and_value(
    options: dict[str, Any], shown: str
) -> None:
    """Each wrong type or range fails at decoration time with the policy's name and the value."""
    registry = hazina.Registry()
    with pytest.raises(hazina.ConfigurationError, match="timeout 'slow'") as raised:
        hazina.timeout("slow", registry=registry, **options)(print)
    assert shown in str(raised.value)
    assert len(registry) == 0


def test_a_name_asked_for_with_another_configuration_is_refused() -> None:
    """The same name with a different limit raises instead of silently ignoring it."""
    registry = hazina.Registry()
    first = registry.timeout("t", seconds=1)
    assert registry.timeout("t", seconds=1) is first
    assert registry.timeout("t") is first
    with pytest.raises(hazina.ConfigurationError, match="seconds=1"):
        registry.timeout("t", seconds=2)


def test_the_default_max_abandoned_is_eight() -> None:
    """A timeout allows eight abandoned calls unless told otherwise."""
    assert hazina.Registry().timeout("t", seconds=1).config.max_abandoned == 8


def test_timeout_exceeded_is_a_timeout_error_that_pickles() -> None:
    """TimeoutExceeded is a HazinaError and a TimeoutError and survives pickling."""
    error = hazina.TimeoutExceeded("t", 1.5)
    assert isinstance(error, hazina.HazinaError)
    assert isinstance(error, TimeoutError)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.name, copy.seconds, str(copy)) == (
        hazina.TimeoutExceeded,
        "t",
        1.5,
        str(error),
    )
