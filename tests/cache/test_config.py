"""@cached configuration: bad values fail at decoration time, naming cache, parameter, value."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import hazina

BAD_VALUES: list[tuple[str, object]] = [
    ("max_size", 0),
    ("max_size", -1),
    ("max_size", 2.5),
    ("max_size", True),
    ("max_size", None),
    ("ttl", 0),
    ("ttl", -1),
    ("ttl", float("nan")),
    ("ttl", float("inf")),
    ("ttl", "60"),
    ("sliding", 0),
    ("sliding", -5),
    ("expires_at", "tomorrow"),
    ("expires_at", -1),
    ("expires_at", True),
    ("expires_at", float("inf")),
    ("priority", "urgent"),
    ("priority", None),
    ("priority", 2),
    ("typed", "yes"),
    ("typed", 1),
    ("key", 42),
    ("single_flight", None),
]


def operation(x: int) -> int:
    """The function every decoration in this module targets."""
    return x


@pytest.mark.parametrize(("param", "value"), BAD_VALUES, ids=[f"{p}={v!r}" for p, v in BAD_VALUES])
def test_invalid_value_fails_at_decoration_time(
    registry: hazina.Registry, param: str, value: object
) -> None:
    """A bad value raises ConfigurationError naming the cache, the parameter and the value."""
    options: dict[str, Any] = {param: value}

    with pytest.raises(hazina.ConfigurationError) as raised:
        hazina.cached("users", registry=registry, **options)(operation)

    message = str(raised.value)
    for part in ("cache", "'users'", param, repr(value)):
        assert part in message, f"{part!r} not in {message!r}"
    assert len(registry) == 0, "nothing half-made is left behind"


@pytest.mark.parametrize(("param", "value"), BAD_VALUES, ids=[f"{p}={v!r}" for p, v in BAD_VALUES])
def test_invalid_value_fails_in_the_factory(
    registry: hazina.Registry, param: str, value: object
) -> None:
    """registry.cache validates like the decorator does."""
    options: dict[str, Any] = {param: value}

    with pytest.raises(hazina.ConfigurationError, match=param):
        registry.cache("users", **options)


def test_typed_with_a_key_function_is_refused(registry: hazina.Registry) -> None:
    """typed=True means nothing once key= decides the key, so asking for both is an error."""
    with pytest.raises(hazina.ConfigurationError, match="typed must be False when key= is given"):
        hazina.cached("users", registry=registry, typed=True, key=lambda x: x)(operation)


@pytest.mark.parametrize(("typo", "meant"), [("max_szie", "max_size"), ("tll", "ttl")])
def test_unknown_parameter_suggests_the_close_match(
    registry: hazina.Registry, typo: str, meant: str
) -> None:
    """A misspelt parameter is refused with a suggestion."""
    options: dict[str, Any] = {typo: 3}

    with pytest.raises(hazina.ConfigurationError, match=f"did you mean {meant!r}"):
        hazina.cached("users", registry=registry, **options)(operation)


@pytest.mark.parametrize(
    "options",
    [
        {"max_size": 1},
        {"ttl": 0.001, "sliding": 1e9},
        {"expires_at": datetime(2030, 1, 1, tzinfo=UTC)},
        {"expires_at": datetime(2030, 1, 1)},
        {"expires_at": 0},
        {"expires_at": 1_900_000_000.5},
        {"expires_at": lambda value: None},
        {"priority": "never_remove"},
        {"typed": True},
        {"key": lambda x: x},
        {"single_flight": False},
    ],
)
def test_valid_boundary_values_are_accepted(
    registry: hazina.Registry, options: dict[str, Any]
) -> None:
    """Values at the edge of what is allowed decorate without error and are kept as given."""
    fn = hazina.cached("users", registry=registry, **options)(operation)

    for param, value in options.items():
        assert getattr(fn.policy.config, param) == value


def test_defaults(registry: hazina.Registry) -> None:
    """max_size 1024, no expiry, normal priority, untyped, single flight on."""
    config = registry.cache("users").config

    assert config == hazina.CacheConfig(
        max_size=1024,
        ttl=None,
        sliding=None,
        expires_at=None,
        priority="normal",
        typed=False,
        key=None,
        single_flight=True,
    )


@pytest.mark.parametrize(
    ("param", "value"),
    [("ttl", -1), ("sliding", 0), ("priority", "urgent"), ("expires_at", "soon")],
)
def test_invalid_per_entry_option_is_refused(
    registry: hazina.Registry, param: str, value: object
) -> None:
    """set()/get_or_set() check their options like the decorator, before storing anything."""
    cache = registry.cache("users")
    options: dict[str, Any] = {param: value}

    with pytest.raises(hazina.ConfigurationError, match=f"'users': {param}"):
        cache.set("k", 1, **options)
    with pytest.raises(hazina.ConfigurationError, match=param):
        cache.get_or_set("k", lambda: 1, **options)
    assert cache.stats().size == 0


@pytest.mark.parametrize("option", ["ttl", "sliding", "expires_at"])
def test_integer_duration_too_large_for_a_float_is_a_configuration_error(
    registry: hazina.Registry, option: str
) -> None:
    """Regression (cache review): an int too large for a float (10**400) as a duration raised
    OverflowError; now it is a ConfigurationError naming the parameter."""
    config: dict[str, Any] = {option: 10**400}
    with pytest.raises(hazina.ConfigurationError, match=f"'big': {option} must be"):
        registry.cache("big", **config)
