"""A bulkhead refuses every bad value when it is made, naming the policy and the value."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import hazina


@pytest.mark.parametrize(
    ("options", "shown"),
    [
        ({}, "max_concurrent must be a whole number of 1 or more (there is no default)"),
        ({"max_concurrent": 0}, "got 0"),
        ({"max_concurrent": -2}, "got -2"),
        ({"max_concurrent": 1.5}, "got 1.5"),
        ({"max_concurrent": True}, "got True"),
        ({"max_concurrent": "3"}, "got '3'"),
        ({"max_concurrent": 1, "max_queue": -1}, "max_queue must be a whole number of 0"),
        ({"max_concurrent": 1, "max_queue": 2.5}, "got 2.5"),
        ({"max_concurrent": 1, "max_queue": False}, "got False"),
        ({"max_concurrent": 1, "max_wait": -1}, "max_wait must be a number of seconds from 0"),
        ({"max_concurrent": 1, "max_wait": 1e300}, "max_wait must be a number of seconds from 0"),
        ({"max_concurrent": 1, "dry_run": 1}, "dry_run must be True or False"),
        ({"max_concurrent": 1, "max_wait": float("nan")}, "got nan"),
        ({"max_concurrent": 1, "max_wait": "1"}, "got '1'"),
        ({"max_concurrent": 1, "key": "user"}, "key must be None or a function"),
        ({"max_concurrent": 1, "max_keys": 0}, "max_keys must be a whole number"),
        ({"max_concurrent": 1, "max_keys": 10.0}, "got 10.0"),
        ({"max_concurrent": 1, "max_concurent": 2}, "did you mean 'max_concurrent'"),
    ],
)
def test_a_bad_value_is_a_configuration_error_naming_policy_and_value(
    options: dict[str, Any], shown: str
) -> None:
    """Each wrong type or range fails at decoration time with the policy's name and the value."""
    registry = hazina.Registry()
    with pytest.raises(hazina.ConfigurationError, match="bulkhead 'pool'") as raised:
        hazina.bulkhead("pool", registry=registry, **options)(print)
    assert shown in str(raised.value)
    assert len(registry) == 0


def test_a_name_asked_for_with_another_configuration_is_refused() -> None:
    """The same name with a different limit raises; the same one returns the same policy."""
    registry = hazina.Registry()
    first = registry.bulkhead("b", max_concurrent=2)
    assert registry.bulkhead("b", max_concurrent=2, max_queue=0) is first
    with pytest.raises(hazina.ConfigurationError, match="max_concurrent=2"):
        registry.bulkhead("b", max_concurrent=3)


def test_bulkhead_full_carries_name_key_and_no_retry_after_and_pickles() -> None:
    """BulkheadFull is a HazinaError with name, key and retry_after=None, and pickles."""
    error = hazina.BulkheadFull("b", "tenant-1")
    assert isinstance(error, hazina.HazinaError)
    assert (error.name, error.key, error.retry_after) == ("b", "tenant-1", None)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.name, copy.key, copy.retry_after, str(copy)) == (
        hazina.BulkheadFull,
        "b",
        "tenant-1",
        None,
        str(error),
    )
