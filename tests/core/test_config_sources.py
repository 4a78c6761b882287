"""configure(), from_toml() and from_env(): sources, matching, precedence and errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import hazina
import hazina.config

EXAMPLE = Path(__file__).parents[2] / "examples" / "hazina.toml"


def test_configure_reconfigures_existing_policies(registry: hazina.Registry) -> None:
    """An entry whose policy exists changes it in place."""
    breaker = registry.circuit_breaker("payments", open_for=30)
    registry.configure({"circuit_breaker": {"payments": {"open_for": 5}}})
    assert breaker.config.open_for == 5


def test_names_and_kinds_match_case_insensitively_with_dash_and_underscore_alike(
    registry: hazina.Registry,
) -> None:
    """'Circuit-Breaker' / 'PAYMENTS_API' reach the breaker called 'payments-api'."""
    breaker = registry.circuit_breaker("payments-api")
    registry.configure({"Circuit-Breaker": {"PAYMENTS_API": {"open_for": 7}}})
    assert breaker.config.open_for == 7


def test_two_policies_matching_one_entry_are_refused(registry: hazina.Registry) -> None:
    """An entry that could mean two policies is a ConfigurationError, and changes neither."""
    one = registry.retry("a-b")
    other = registry.retry("A_B")
    with pytest.raises(hazina.ConfigurationError, match="matches several policies"):
        registry.configure({"retry": {"a_b": {"attempts": 9}}})
    assert one.config.attempts == other.config.attempts == 3


def test_an_entry_waits_for_the_policy_it_names(registry: hazina.Registry) -> None:
    """An entry for a policy not yet made applies when code makes it, under the code's name."""
    registry.configure({"retry": {"inventory_api": {"attempts": 6}}})
    assert "retry" not in {kind for kind, names in registry.stats().items() if names}

    @hazina.retry("Inventory-API", registry=registry)
    def fetch() -> int:
        return 1

    assert fetch.policy.name == "Inventory-API"
    assert fetch.policy.config.attempts == 6


def test_configured_values_win_over_code_whatever_the_order(
    registry: hazina.Registry, caplog: pytest.LogCaptureFixture
) -> None:
    """Code differing only in configured values gets the configured policy (INFO once)."""
    with caplog.at_level(logging.INFO, logger="hazina"):
        registry.configure({"circuit_breaker": {"early": {"open_for": 5}}})
        early = registry.circuit_breaker("early", open_for=30)
        late = registry.circuit_breaker("late", open_for=30)
        registry.configure({"circuit_breaker": {"late": {"open_for": 5}}})
        assert registry.circuit_breaker("late", open_for=30) is late
        assert registry.circuit_breaker("late", open_for=30) is late
    assert early.config.open_for == late.config.open_for == 5
    notes = [r.getMessage() for r in caplog.records if "take precedence" in r.getMessage()]
    assert len(notes) == 2
    with pytest.raises(hazina.ConfigurationError, match="different configuration"):
        registry.circuit_breaker("late", open_for=30, failure_threshold=1)


def test_a_bad_entry_changes_nothing(registry: hazina.Registry) -> None:
    """One bad value in the mapping stops every entry of it from applying."""
    retry = registry.retry("api")
    with pytest.raises(hazina.ConfigurationError, match=r"circuit_breaker 'db': open_for must"):
        registry.configure(
            {"retry": {"api": {"attempts": 9}}, "circuit_breaker": {"db": {"open_for": -1}}}
        )
    assert retry.config.attempts == 3


def test_an_unknown_kind_is_named(registry: hazina.Registry) -> None:
    """A kind that does not exist is a ConfigurationError listing the known ones."""
    with pytest.raises(hazina.ConfigurationError, match=r"unknown policy kind 'breaker'"):
        registry.configure({"breaker": {"db": {"open_for": 1}}})


def test_a_limiter_entry_without_a_rate_is_completed_by_code(registry: hazina.Registry) -> None:
    """A held limiter entry may leave the rate to code; the burst it sets still applies."""
    registry.configure({"rate_limiter": {"api": {"burst": 3}}})
    limiter = registry.rate_limiter("api", rate=10)
    assert limiter.config.limits[0].burst == 3


# -- TOML --------------------------------------------------------------------------------


def test_the_example_file_configures_a_registry(registry: hazina.Registry) -> None:
    """examples/hazina.toml reads and applies to the policies it names."""
    registry.configure(hazina.config.from_toml(EXAMPLE))
    breaker = registry.circuit_breaker("inventory")
    limiter = registry.rate_limiter("inventory_api", rate=1)
    chaos = registry.chaos("inventory")
    assert (breaker.config.open_for, breaker.config.failure_threshold) == (10.0, 3)
    assert [limit.rate for limit in limiter.config.limits] == [100, 2000]
    assert chaos.enabled is False


def test_a_bad_value_in_a_file_names_the_file_table_and_parameter(
    registry: hazina.Registry, tmp_path: Path
) -> None:
    """The error says which file, which [kind.name] and which parameter."""
    path = tmp_path / "bad.toml"
    path.write_text('[retry.api]\nattempts = "three"\n')
    with pytest.raises(hazina.ConfigurationError) as raised:
        registry.configure(hazina.config.from_toml(path))
    message = str(raised.value)
    assert str(path) in message
    assert "[retry.api] attempts" in message
    assert "retry 'api': attempts must be a whole number" in message


def test_an_unknown_parameter_in_a_file_is_named(registry: hazina.Registry, tmp_path: Path) -> None:
    """A misspelt parameter points at its line's table and key, with a suggestion."""
    path = tmp_path / "typo.toml"
    path.write_text("[circuit_breaker.db]\nopen_fro = 3\n")
    with pytest.raises(
        hazina.ConfigurationError, match=r"\[circuit_breaker.db\] open_fro.*open_for"
    ):
        registry.configure(hazina.config.from_toml(path))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[retry\n", "cannot read"),
        ("retry = 3\n", r"\[retry\]: expected a table"),
        ("[retry]\napi = 3\n", r"\[retry.api\]: expected a table"),
    ],
)
def test_a_malformed_file_is_named(tmp_path: Path, text: str, expected: str) -> None:
    """A file that does not parse, or is not kind.name.param, is refused naming it."""
    path = tmp_path / "broken.toml"
    path.write_text(text)
    with pytest.raises(hazina.ConfigurationError, match=expected):
        hazina.config.from_toml(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    """A path that does not exist is a ConfigurationError naming it."""
    with pytest.raises(hazina.ConfigurationError, match=r"nowhere\.toml"):
        hazina.config.from_toml(tmp_path / "nowhere.toml")


# -- environment -------------------------------------------------------------------------


def test_environment_values_are_parsed_as_json_where_they_parse(
    registry: hazina.Registry,
) -> None:
    """Numbers, booleans, null and lists parse as JSON; anything else stays a string."""
    environ = {
        "HAZINA__CIRCUIT_BREAKER__PAYMENTS_API__OPEN_FOR": "12.5",
        "HAZINA__CIRCUIT_BREAKER__PAYMENTS_API__FAILURE_THRESHOLD": "null",
        "HAZINA__RATE_LIMITER__SEARCH__LIMITS": '["5/second", "100/minute"]',
        "HAZINA__RETRY__API__BACKOFF": "linear",
        "HAZINA__CHAOS__API__ENABLED": "false",
        "OTHER__RETRY__API__ATTEMPTS": "9",
    }
    registry.configure(hazina.config.from_env(environ=environ))
    breaker = registry.circuit_breaker("payments-api")
    assert (breaker.config.open_for, breaker.config.failure_threshold) == (12.5, None)
    limiter = registry.rate_limiter("search")
    assert [limit.rate for limit in limiter.config.limits] == [5, 100]
    retry = registry.retry("api")
    assert (retry.config.backoff, retry.config.attempts) == ("linear", 3)
    assert registry.chaos("api").enabled is False


def test_environment_uses_os_environ_and_its_prefix(
    registry: hazina.Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """from_env reads os.environ by default, under the prefix given."""
    monkeypatch.setenv("MYAPP__RETRY__API__ATTEMPTS", "5")
    registry.configure(hazina.config.from_env("MYAPP"))
    assert registry.retry("api").config.attempts == 5


def test_a_bad_value_in_a_variable_names_the_variable(registry: hazina.Registry) -> None:
    """The error names the variable, the kind, the policy and the parameter."""
    registry.retry("api")
    environ = {"HAZINA__RETRY__API__ATTEMPTS": "0"}
    with pytest.raises(hazina.ConfigurationError) as raised:
        registry.configure(hazina.config.from_env(environ=environ))
    assert str(raised.value).startswith(
        "HAZINA__RETRY__API__ATTEMPTS: retry 'api': attempts must be a whole number"
    )


def test_a_misshapen_variable_is_named() -> None:
    """A variable under the prefix without kind, name and parameter is refused naming it."""
    with pytest.raises(hazina.ConfigurationError, match="HAZINA__RETRY__ATTEMPTS: expected"):
        hazina.config.from_env(environ={"HAZINA__RETRY__ATTEMPTS": "3"})


def test_a_health_check_registered_later_takes_its_configured_values(
    registry: hazina.Registry,
) -> None:
    """An entry for a health check applies when the check is registered."""
    registry.configure({"health_check": {"disk": {"timeout": 2.5, "critical": False}}})
    check = registry.health_check("disk", lambda: True, timeout=1)
    assert (check.config.timeout, check.config.critical) == (2.5, False)
