"""Rate limiter configuration: what is accepted, what equals what, and clear errors early."""

from __future__ import annotations

from typing import Any

import pytest

import hazina

BAD_CONFIGS: list[tuple[dict[str, Any], str]] = [
    ({"rate": 0}, "rate"),
    ({"rate": -1}, "rate"),
    ({"rate": "10"}, "rate"),
    ({"rate": True}, "rate"),
    ({"rate": float("nan")}, "rate"),
    ({"rate": float("inf")}, "rate"),
    ({"rate": 1, "per": 0}, "per"),
    ({"rate": 1, "per": -1}, "per"),
    ({"rate": 5, "burst": 0.5}, "burst"),
    ({"rate": 5, "burst": 0}, "burst"),
    ({"rate": 0.5}, "burst"),  # burst defaults to the rate, which is below 1
    ({"rate": 5, "cost": 6}, "cost"),
    ({"rate": 5, "burst": 2, "cost": 3}, "cost"),
    ({"rate": 5, "cost": -1}, "cost"),
    ({"rate": 5, "cost": "1"}, "cost"),
    ({"limits": ["10/fortnight"]}, "limits"),
    ({"limits": ["ten/second"]}, "limits"),
    ({"limits": ["10 per"]}, "limits"),
    ({"limits": "10/second; 5/fortnight"}, "limits"),
    ({"limits": ["10/second/2"]}, "limits"),
    ({"limits": ["0/second"]}, "limits"),
    ({"limits": ["-1/second"]}, "limits"),
    ({"limits": ["10/0 minutes"]}, "limits"),
    ({"limits": []}, "limits"),
    ({"limits": [42]}, "limits"),
    ({"limits": 42}, "limits"),
    ({"limits": ["10/second"], "rate": 10}, "limits"),
    ({"limits": ["10/second"], "burst": 3}, "limits"),
    ({"limits": ["10/minute", "5/second"], "cost": 6}, "cost"),
    ({"rate": 1, "algorithm": "leaky_bucket"}, "algorithm"),
    ({"rate": 5, "burst": 8, "algorithm": "sliding_window"}, "burst"),
    ({"limits": [hazina.Limit(5, burst=8)], "algorithm": "sliding_window"}, "burst"),
    ({"rate": 1, "max_keys": 0}, "max_keys"),
    ({"rate": 1, "max_keys": 1.5}, "max_keys"),
    ({"rate": 1, "key": "user"}, "key"),
    ({"rate": 1, "wait": "yes"}, "wait"),
    ({"rate": 1, "wait": True, "max_wait": -1}, "max_wait"),
    ({"rate": 1, "max_wait": 5}, "max_wait"),
    ({}, "rate"),
    ({"per": 60}, "rate"),
]


def operation() -> None:
    """The function every decoration in this module targets."""


@pytest.mark.parametrize(
    ("config", "param"), BAD_CONFIGS, ids=[repr(config) for config, _ in BAD_CONFIGS]
)
def test_bad_configuration_fails_at_decoration_time(
    registry: hazina.Registry, config: dict[str, Any], param: str
) -> None:
    """A bad value raises ConfigurationError naming the limiter and the parameter, before any
    call, and leaves no limiter behind."""
    with pytest.raises(hazina.ConfigurationError) as caught:
        hazina.rate_limited("payments", registry=registry, **config)(operation)

    message = str(caught.value)
    assert "rate_limiter 'payments'" in message
    assert f"{param} must be" in message
    assert isinstance(caught.value, ValueError)
    assert len(registry) == 0


#: Finite numbers that pass "above 0" but break the arithmetic at call time.
ABSURD_CONFIGS: list[tuple[dict[str, Any], str]] = [
    ({"rate": 1e-300, "burst": 1}, "rate"),  # one token every 1e300 s: no sleep that long
    ({"rate": 1e-300, "per": 1e300, "burst": 1}, "per"),  # rate / per == 0.0
    ({"rate": 1, "per": 1e300}, "per"),
    ({"rate": 1e300}, "rate"),  # a token is 1e-300 s of GCRA schedule: lost in the clock
    ({"rate": 1e12, "algorithm": "gcra"}, "rate"),
    ({"rate": 1e17, "per": 1e9}, "rate"),  # a bucket of 1e17 tokens: taking 1 changes nothing
    ({"rate": 1, "burst": 1e300}, "burst"),
    ({"limits": ["1/" + "9" * 400 + " seconds"]}, "limits"),  # beyond float range
    ({"limits": [f"{10**16}/second"]}, "limits"),
]


@pytest.mark.parametrize(
    ("config", "param"), ABSURD_CONFIGS, ids=[repr(config)[:60] for config, _ in ABSURD_CONFIGS]
)
def test_absurd_limits_are_refused_at_decoration_time(
    registry: hazina.Registry, config: dict[str, Any], param: str
) -> None:
    """Regression (issue 10): finite but absurd rates, periods and bursts passed validation
    and then raised ZeroDivisionError or OverflowError at call time, or let GCRA admit every
    call; they are refused up front with a ConfigurationError naming the limiter."""
    with pytest.raises(hazina.ConfigurationError) as caught:
        hazina.rate_limited("payments", registry=registry, **config)(operation)

    assert "rate_limiter 'payments'" in str(caught.value)
    assert f"{param} must be" in str(caught.value)
    assert len(registry) == 0


def test_the_bounds_of_a_limit_are_accepted(registry: hazina.Registry) -> None:
    """A billion tokens a second, and one token every ``threading.TIMEOUT_MAX`` seconds,
    are still limits."""
    import threading

    fast = registry.rate_limiter("fast", rate=1e9, algorithm="gcra")
    slow = registry.rate_limiter("slow", rate=1, per=threading.TIMEOUT_MAX)

    fast.acquire()
    slow.acquire()
    with pytest.raises(hazina.RateLimitExceeded):
        slow.acquire()


def test_a_limit_object_refuses_absurd_numbers_too() -> None:
    """``Limit`` itself refuses what the limiter would: here a period of 1e300 seconds."""
    with pytest.raises(hazina.ConfigurationError, match="per must be"):
        hazina.Limit(1, 1e300)


def test_error_shows_the_bad_value(registry: hazina.Registry) -> None:
    """The message quotes the offending value itself."""
    with pytest.raises(hazina.ConfigurationError, match=r"'10/fortnight'"):
        registry.rate_limiter("api", limits=["5/second", "10/fortnight"])
    with pytest.raises(hazina.ConfigurationError, match=r"cost must be at most .*\(5\).*got 6"):
        registry.rate_limiter("api", rate=5, cost=6)


def test_unknown_parameter_is_named(registry: hazina.Registry) -> None:
    """A misspelt option is refused with a suggestion."""
    with pytest.raises(hazina.ConfigurationError, match="did you mean 'max_wait'"):
        registry.rate_limiter("api", rate=1, max_wiat=3)  # type: ignore[call-arg]


LIMIT_STRINGS = [
    ("10/second", hazina.Limit(10, 1)),
    ("10/seconds", hazina.Limit(10, 1)),
    ("10/s", hazina.Limit(10, 1)),
    ("5/minute", hazina.Limit(5, 60)),
    ("5/minutes", hazina.Limit(5, 60)),
    ("5/m", hazina.Limit(5, 60)),
    ("2/hour", hazina.Limit(2, 3600)),
    ("2/hours", hazina.Limit(2, 3600)),
    ("2/h", hazina.Limit(2, 3600)),
    ("1/day", hazina.Limit(1, 86400)),
    ("1/days", hazina.Limit(1, 86400)),
    ("1/d", hazina.Limit(1, 86400)),
    (" 1000 / Hour ", hazina.Limit(1000, 3600)),
    ("10/5 minutes", hazina.Limit(10, 300)),
    ("10/30s", hazina.Limit(10, 30)),
]


@pytest.mark.parametrize(("text", "limit"), LIMIT_STRINGS)
def test_limit_strings(registry: hazina.Registry, text: str, limit: hazina.Limit) -> None:
    """Each documented spelling of a limit means the limit it says."""
    assert registry.rate_limiter("api", limits=[text]).config.limits == (limit,)


def test_one_limit_string_alone(registry: hazina.Registry) -> None:
    """``limits=`` also takes a single string or Limit without a list around it."""
    assert registry.rate_limiter("a", limits="3/minute").config.limits == (hazina.Limit(3, 60),)
    assert registry.rate_limiter("b", limits=hazina.Limit(3)).config.limits == (hazina.Limit(3),)


def test_spellings_of_one_limit_are_one_configuration(registry: hazina.Registry) -> None:
    """``rate=10`` equals its spelt-out defaults, the string "10/second" and ``Limit(10)``."""
    spellings: list[dict[str, Any]] = [
        {"rate": 10},
        {"rate": 10, "per": 1, "burst": 10},
        {"limits": ["10/second"]},
        {"limits": "10/s"},
        {"limits": [hazina.Limit(10, 1, burst=10)]},
    ]
    configs = [registry.rate_limiter(f"n{i}", **kw).config for i, kw in enumerate(spellings)]

    assert all(config == configs[0] for config in configs)
    assert configs[0].limits == (hazina.Limit(10, 1.0, 10),)
    assert (configs[0].rate, configs[0].per, configs[0].burst) == (10, 1.0, 10)


def test_defaults(registry: hazina.Registry) -> None:
    """Token bucket, 100 000 keys, cost 1, no key, raise rather than wait."""
    config = registry.rate_limiter("api", rate=3).config

    assert (config.algorithm, config.max_keys, config.cost, config.key) == (
        "token_bucket",
        100_000,
        1,
        None,
    )
    assert (config.wait, config.max_wait) == (False, None)


def test_capacity_is_the_smallest_burst(registry: hazina.Registry) -> None:
    """With several limits, the largest admissible cost is the smallest burst among them."""
    limiter = registry.rate_limiter("api", limits=[hazina.Limit(10, 1, burst=20), "15/minute"])

    assert limiter.config.capacity == 15
    assert registry.rate_limiter("ok", limits=["15/minute", "50/hour"], cost=15)


def test_sliding_window_capacity_is_its_rate(registry: hazina.Registry) -> None:
    """The sliding window holds at most ``rate`` in a window, so that is its largest cost."""
    limiter = registry.rate_limiter("api", rate=4, per=10, algorithm="sliding_window")

    assert limiter.config.capacity == 4


def test_cost_function_is_checked_per_call_not_at_decoration(registry: hazina.Registry) -> None:
    """A cost function's values are unknown until a call, so decoration accepts it."""
    limiter = registry.rate_limiter("api", rate=1, cost=lambda n: n)

    assert callable(limiter.config.cost)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((0,), {}, "rate must be a number above 0, got 0"),
        ((1, -5), {}, "per must be a number above 0, got -5"),
        ((5,), {"burst": 0}, "burst must be a number of 1 or more, got 0"),
        ((0.5,), {}, "it defaults to rate"),
        (("5",), {}, "rate must be a number above 0"),
    ],
)
def test_limit_objects_validate_themselves(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    """``Limit(...)`` refuses impossible values where it is written, with a clear message."""
    with pytest.raises(hazina.ConfigurationError, match=message):
        hazina.Limit(*args, **kwargs)


def test_limit_burst_defaults_to_rate() -> None:
    """A Limit without burst holds as many tokens as it refills per period."""
    limit = hazina.Limit(7, 60)

    assert limit.burst == 7
    assert limit.per_second == pytest.approx(7 / 60)
    assert str(limit) == "7/60s"
    assert str(hazina.Limit(7, 60, burst=10)) == "7/60s (burst 10)"


@pytest.mark.parametrize(
    "arguments",
    [{"rate": 10**400}, {"rate": 1, "per": 10**400}, {"rate": 1, "burst": 10**400}],
    ids=["rate", "per", "burst"],
)
def test_limit_with_an_int_too_large_for_a_float_is_a_configuration_error(
    arguments: dict[str, Any],
) -> None:
    """Regression: Limit(10**400) raised a raw OverflowError from its own copy of the
    number check; it is a ConfigurationError naming the parameter, like every bad value."""
    (parameter,) = set(arguments) - {"rate"} or {"rate"}
    with pytest.raises(hazina.ConfigurationError, match=f"Limit: {parameter} must be"):
        hazina.Limit(**arguments)
