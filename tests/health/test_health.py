"""Health checks: what a check's outcome means, how the report aggregates, stats and events.

Scenarios run with sync and async checks (the ``flavor`` fixture) and through both entry
points, ``check_health_sync()`` and ``await check_health()`` (conftest's ``check_health``).
Concurrency, timeouts and cancellation are in ``test_running.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import CheckHealth, Flavor

import hazina
from hazina import HealthCheckStats, HealthResult, HealthStatus, HealthStatusChanged

HEALTHY, DEGRADED, UNHEALTHY = HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY


def returning(value: object) -> Callable[[], object]:
    """A check body that returns ``value``."""

    def check() -> object:
        return value

    return check


def raising(error: BaseException) -> Callable[[], object]:
    """A check body that raises ``error``."""

    def check() -> object:
        raise error

    return check


def register(
    registry: hazina.Registry, flavor: Flavor, name: str, body: Callable[[], object], **config: Any
) -> hazina.HealthCheck:
    """Register ``body`` as a sync or async check called ``name``."""
    hazina.health_check(name, registry=registry, **config)(flavor.define(body))
    check = registry.get("health_check", name)
    assert isinstance(check, hazina.HealthCheck)
    return check


# -- what a check's outcome means ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status", "description", "data"),
    [
        (None, HEALTHY, None, None),
        (True, HEALTHY, None, None),
        (False, UNHEALTHY, None, None),
        (HEALTHY, HEALTHY, None, None),
        (DEGRADED, DEGRADED, None, None),
        (
            HealthResult(DEGRADED, "slow replies", {"p99_ms": 870}),
            DEGRADED,
            "slow replies",
            {"p99_ms": 870},
        ),
        (HealthResult("unhealthy"), UNHEALTHY, None, None),
    ],
)
def test_a_returned_value_gives_the_check_its_status(
    registry: hazina.Registry,
    flavor: Flavor,
    check_health: CheckHealth,
    value: object,
    status: HealthStatus,
    description: str | None,
    data: dict[str, Any] | None,
) -> None:
    """None/True are healthy, False unhealthy, a status or HealthResult says it itself."""
    register(registry, flavor, "db", returning(value))

    entry = check_health().entries["db"]

    assert (entry.status, entry.description, entry.data, entry.error) == (
        status,
        description,
        data,
        None,
    )


def test_a_raising_check_is_unhealthy_with_the_message(
    registry: hazina.Registry, flavor: Flavor, check_health: CheckHealth
) -> None:
    """A check that raises is unhealthy; its message is the description, the error kept."""
    error = ConnectionError("connection refused by db:5432")
    register(registry, flavor, "db", raising(error))

    report = check_health()

    assert report.status is UNHEALTHY
    entry = report.entries["db"]
    assert entry.status is UNHEALTHY
    assert entry.description == "connection refused by db:5432"
    assert entry.error is error
    assert report.to_dict()["checks"]["db"]["error"] == (
        "ConnectionError: connection refused by db:5432"
    )


def test_an_error_without_a_message_is_described_by_its_type(
    registry: hazina.Registry, flavor: Flavor, check_health: CheckHealth
) -> None:
    """A check raising an error with no message gets the error's type as description."""
    register(registry, flavor, "db", raising(ConnectionResetError()))

    entry = check_health().entries["db"]

    assert entry.description == "ConnectionResetError"
    assert entry.status is UNHEALTHY


def test_a_check_returning_something_unexpected_is_unhealthy_and_says_why(
    registry: hazina.Registry, flavor: Flavor, check_health: CheckHealth
) -> None:
    """A value that is no verdict (here a dict) makes the check unhealthy, naming the value."""
    register(registry, flavor, "db", returning({"ok": 1}))

    entry = check_health().entries["db"]

    assert entry.status is UNHEALTHY
    assert entry.description is not None
    assert "dict" in entry.description
    assert "HealthResult" in entry.description


def test_a_result_that_cannot_be_described_does_not_break_the_report(
    registry: hazina.Registry, flavor: Flavor, check_health: CheckHealth
) -> None:
    """A returned object whose repr() raises makes that check unhealthy; the rest report."""

    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("repr is broken")

    register(registry, flavor, "odd", returning(Unprintable()))
    register(registry, flavor, "fine", returning(True))

    report = check_health()

    assert report.entries["odd"].status is UNHEALTHY
    assert report.entries["odd"].description == "repr is broken"
    assert report.entries["fine"].status is HEALTHY


def test_a_sync_check_returning_an_awaitable_is_awaited(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """``lambda: client.ping()`` on an asyncio client works: the coroutine is awaited."""

    async def ping() -> HealthResult:
        await asyncio.sleep(0)
        return HealthResult(DEGRADED, "replica lag")

    registry.health_check("redis", lambda: ping())

    entry = check_health().entries["redis"]

    assert (entry.status, entry.description) == (DEGRADED, "replica lag")


def test_an_async_check_that_cancels_itself_is_unhealthy(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """A check whose own work is cancelled (not the report) is unhealthy, not a crash."""

    async def check() -> None:
        raise asyncio.CancelledError

    registry.health_check("self-cancelling", check)
    registry.health_check("fine", returning(True))

    report = check_health()

    assert report.entries["self-cancelling"].status is UNHEALTHY
    assert report.entries["self-cancelling"].description == "the check was cancelled"
    assert report.entries["fine"].status is HEALTHY


def test_a_health_result_keeps_its_own_copy_of_data() -> None:
    """Changing the dict a HealthResult was made from does not change the result."""
    data = {"lag": 1}
    result = HealthResult("degraded", "lagging", data)
    data["lag"] = 99

    assert result.data == {"lag": 1}
    assert result.status is DEGRADED


def test_a_health_result_refuses_an_unknown_status() -> None:
    """A status that is none of the three raises ValueError naming it."""
    with pytest.raises(ValueError, match="sideways"):
        HealthResult("sideways")


# -- the report ------------------------------------------------------------------------


def test_healthy_degraded_and_unhealthy_give_unhealthy_and_keep_tags_and_data(
    registry: hazina.Registry, flavor: Flavor, check_health: CheckHealth
) -> None:
    """Ported: the worst status wins, and every entry keeps its own tags and data."""
    register(registry, flavor, "a", returning(HealthResult(HEALTHY, "fine", {"n": 1})), tags="x")
    register(
        registry, flavor, "b", returning(HealthResult(DEGRADED, "meh", {"n": 2})), tags=["y", "z"]
    )
    register(registry, flavor, "c", returning(HealthResult(UNHEALTHY, "down", {"n": 3})))

    report = check_health()

    assert report.status is UNHEALTHY
    assert list(report.entries) == ["a", "b", "c"]
    assert [entry.status for entry in report.entries.values()] == [HEALTHY, DEGRADED, UNHEALTHY]
    assert [entry.tags for entry in report.entries.values()] == [("x",), ("y", "z"), ()]
    assert [entry.data for entry in report.entries.values()] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert [entry.description for entry in report.entries.values()] == ["fine", "meh", "down"]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([HEALTHY, HEALTHY], HEALTHY),
        ([HEALTHY, DEGRADED], DEGRADED),
        ([DEGRADED, HEALTHY, DEGRADED], DEGRADED),
        ([UNHEALTHY, HEALTHY], UNHEALTHY),
        ([DEGRADED, UNHEALTHY], UNHEALTHY),
    ],
)
def test_the_worst_status_wins(
    registry: hazina.Registry,
    flavor: Flavor,
    check_health: CheckHealth,
    statuses: list[HealthStatus],
    expected: HealthStatus,
) -> None:
    """The report's status is the worst of its critical checks'."""
    for number, status in enumerate(statuses):
        register(registry, flavor, f"check-{number}", returning(status))

    assert check_health().status is expected


@pytest.mark.parametrize("failure", [False, ConnectionError("down")], ids=["false", "raises"])
def test_a_failing_non_critical_check_makes_the_report_degraded(
    registry: hazina.Registry, flavor: Flavor, check_health: CheckHealth, failure: object
) -> None:
    """A non-critical failure shows unhealthy in its entry but only degrades the report."""
    body = raising(failure) if isinstance(failure, BaseException) else returning(failure)
    register(registry, flavor, "recommendations", body, critical=False)
    register(registry, flavor, "db", returning(True))

    report = check_health()

    assert report.status is DEGRADED
    assert report.entries["recommendations"].status is UNHEALTHY


def test_a_non_critical_check_does_not_hide_a_critical_failure(
    registry: hazina.Registry, flavor: Flavor, check_health: CheckHealth
) -> None:
    """With a critical check unhealthy too, the report is unhealthy."""
    register(registry, flavor, "recommendations", returning(False), critical=False)
    register(registry, flavor, "db", returning(False))

    assert check_health().status is UNHEALTHY


def test_no_checks_is_healthy(registry: hazina.Registry, check_health: CheckHealth) -> None:
    """A registry without checks reports healthy, with no entries."""
    report = check_health()

    assert report.status is HEALTHY
    assert report.entries == {}
    assert report.duration >= 0


def test_to_dict_is_the_documented_json_shape(
    registry: hazina.Registry, flavor: Flavor, check_health: CheckHealth
) -> None:
    """to_dict() gives status, duration and every check's six fields, and is JSON-ready."""
    register(registry, flavor, "db", returning(HealthResult(DEGRADED, "lagging", {"lag_s": 2.5})))
    register(registry, flavor, "cache", raising(TimeoutError("no reply")), tags=["ready"])

    document = json.loads(json.dumps(check_health().to_dict()))

    assert set(document) == {"status", "duration", "checks"}
    assert document["status"] == "unhealthy"
    assert isinstance(document["duration"], float)
    assert document["checks"]["db"] == {
        "status": "degraded",
        "description": "lagging",
        "duration": document["checks"]["db"]["duration"],
        "tags": [],
        "data": {"lag_s": 2.5},
        "error": None,
    }
    assert document["checks"]["cache"]["error"] == "TimeoutError: no reply"
    assert document["checks"]["cache"]["tags"] == ["ready"]
    assert all(check["duration"] >= 0 for check in document["checks"].values())


def test_to_dict_without_details_hides_errors_and_data(
    registry: hazina.Registry, flavor: Flavor, check_health: CheckHealth
) -> None:
    """Without details there is no error or data, and a raising check's message is hidden."""
    register(registry, flavor, "db", raising(ConnectionError("password for admin@10.0.0.5")))
    register(registry, flavor, "disk", returning(HealthResult(DEGRADED, "90% full", {"free": 1})))

    checks = check_health().to_dict(show_details=False)["checks"]

    assert set(checks["db"]) == {"status", "description", "duration", "tags"}
    assert "10.0.0.5" not in json.dumps(checks)
    assert checks["db"]["status"] == "unhealthy"
    assert checks["db"]["description"] == "the check raised an exception (details hidden)"
    # A description the check chose to give is not an exception's message: it stays.
    assert checks["disk"]["description"] == "90% full"
    assert "data" not in checks["disk"]


# -- selecting by tag ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "selected"),
    [
        (None, ["live-only", "both", "ready-only", "untagged"]),
        (["live"], ["live-only", "both"]),
        ("ready", ["both", "ready-only"]),
        (("live", "ready"), ["live-only", "both", "ready-only"]),
        (["nothing-has-this"], []),
    ],
)
def test_tags_select_the_checks_carrying_any_of_them(
    registry: hazina.Registry,
    flavor: Flavor,
    check_health: CheckHealth,
    tags: Any,
    selected: list[str],
) -> None:
    """Ported: check_health(tags=...) runs only the checks with at least one of the tags."""
    register(registry, flavor, "live-only", returning(True), tags=["live"])
    register(registry, flavor, "both", returning(True), tags=["live", "ready"])
    register(registry, flavor, "ready-only", returning(False), tags="ready")
    register(registry, flavor, "untagged", returning(False))

    report = check_health(tags=tags)

    assert list(report.entries) == selected
    assert registry.stats()["health_check"]["untagged"].runs == (1 if tags is None else 0)


# -- registering -----------------------------------------------------------------------


def test_duplicate_names_are_refused(registry: hazina.Registry, flavor: Flavor) -> None:
    """Ported: a second check with a taken name is a ConfigurationError; the first stays."""
    first = register(registry, flavor, "db", returning(True))

    with pytest.raises(hazina.ConfigurationError, match=r"'db' is already registered"):
        register(registry, flavor, "db", returning(False))
    with pytest.raises(hazina.ConfigurationError, match="db"):
        registry.health_check("db", returning(False))

    assert registry.get("health_check", "db") is first


def test_a_removed_name_can_be_registered_again(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """remove() frees the name; the removed check no longer runs."""
    registry.health_check("db", returning(False))
    registry.remove("health_check", "db")
    registry.health_check("db", returning(True))

    assert check_health().status is HEALTHY


def test_the_decorator_returns_the_function_itself(registry: hazina.Registry) -> None:
    """Registering does not wrap: the decorated function is the original, still callable."""

    def ping() -> bool:
        return False

    assert hazina.health_check("db", registry=registry)(ping) is ping
    assert ping() is False
    check = registry.get("health_check", "db")
    assert isinstance(check, hazina.HealthCheck)
    assert check.fn is ping


def test_bare_decorator_names_the_check_after_the_function(
    registry: hazina.Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bare @health_check registers under the function's module and qualified name."""
    from hazina._core import registry as _registry

    monkeypatch.setattr(_registry, "registry", registry)

    @hazina.health_check
    def database() -> bool:
        return True

    @hazina.health_check()
    async def cache() -> bool:
        return True

    prefix = f"{__name__}.test_bare_decorator_names_the_check_after_the_function.<locals>"
    assert set(registry.stats()["health_check"]) == {f"{prefix}.database", f"{prefix}.cache"}
    assert database() is True


def test_a_staticmethod_can_be_a_check(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """A staticmethod decorated in a class body is registered and stays a staticmethod."""

    class Probes:
        @hazina.health_check("static", registry=registry)
        @staticmethod
        def ping() -> HealthStatus:
            return DEGRADED

    assert Probes.ping() is DEGRADED
    assert check_health().entries["static"].status is DEGRADED


def test_a_bound_method_can_be_registered(
    registry: hazina.Registry, check_health: CheckHealth
) -> None:
    """A bound method of no further arguments is a check."""

    class Pool:
        size = 0

        def has_connections(self) -> bool:
            return self.size > 0

    registry.health_check("pool", Pool().has_connections)

    assert check_health().entries["pool"].status is UNHEALTHY


def needs(arg: int) -> bool:
    """A function that cannot be a check: it needs an argument."""
    return bool(arg)


def class_check(cls: type) -> bool:
    """A function that becomes a classmethod, unbound when the decorator sees it."""
    return bool(cls)


def generator() -> Iterator[bool]:
    """A generator function: it returns before its body runs."""
    yield True


@pytest.mark.parametrize(
    ("config", "fn", "match"),
    [
        ({"timeout": 0}, returning(True), r"health_check 'bad': timeout must be .*got 0"),
        ({"timeout": -1.5}, returning(True), r"timeout .*got -1.5"),
        ({"timeout": float("nan")}, returning(True), r"timeout .*got nan"),
        ({"timeout": "1"}, returning(True), r"timeout .*got '1'"),
        ({"timeout": True}, returning(True), r"timeout .*got True"),
        ({"critical": "yes"}, returning(True), r"critical must be True or False, got 'yes'"),
        ({"tags": 5}, returning(True), r"tags must be .*got 5"),
        ({"tags": ["ok", ""]}, returning(True), r"tags must be .*got \['ok', ''\]"),
        ({"tags": ["a/b"]}, returning(True), r"tags must be .*'a/b'"),
        ({}, needs, r"'bad': .*must be callable with no arguments"),
        ({}, generator, r"'bad': .*generator"),
        ({}, classmethod(class_check), r"'bad': a classmethod"),
    ],
)
def test_invalid_configuration_is_refused_at_decoration_time(
    registry: hazina.Registry, config: dict[str, Any], fn: Any, match: str
) -> None:
    """A bad value raises ConfigurationError naming check, parameter and value; nothing stays."""
    with pytest.raises(hazina.ConfigurationError, match=match):
        hazina.health_check("bad", registry=registry, **config)(fn)

    assert registry.stats()["health_check"] == {}


def test_an_unknown_parameter_is_refused(registry: hazina.Registry) -> None:
    """A misspelt option through the registry method is named, with a suggestion."""
    with pytest.raises(hazina.ConfigurationError, match=r"'timout'.*did you mean 'timeout'"):
        registry.health_check("db", returning(True), timout=1)  # type: ignore[call-arg]


def test_a_non_callable_is_refused(registry: hazina.Registry) -> None:
    """Registering something that cannot be called is a ConfigurationError."""
    with pytest.raises(hazina.ConfigurationError, match="callables"):
        registry.health_check("db", 42)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", 7])
def test_an_invalid_name_is_refused(registry: hazina.Registry, name: Any) -> None:
    """A check's name must be a non-empty string."""
    with pytest.raises(hazina.ConfigurationError, match="name"):
        registry.health_check(name, returning(True))


def test_tags_are_kept_in_order_without_duplicates(registry: hazina.Registry) -> None:
    """Tags given twice are kept once, in the order first given."""
    check = registry.health_check("db", returning(True), tags=["ready", "live", "ready"])

    assert check.config.tags == ("ready", "live")
    assert check.config.timeout == 5.0
    assert check.config.critical is True


# -- stats and events ------------------------------------------------------------------


def test_stats_count_runs_failures_and_the_last_status(
    registry: hazina.Registry, flavor: Flavor, check_health: CheckHealth
) -> None:
    """Each run counts; unhealthy runs count as failures; the last status and duration show."""
    outcomes = iter([True, False, HealthResult(DEGRADED), ValueError("bad")])

    def flaky() -> object:
        outcome = next(outcomes)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    register(registry, flavor, "db", flaky)
    assert registry.stats()["health_check"]["db"] == HealthCheckStats(
        runs=0, status=None, failures=0, timeouts=0, last_duration=None
    )

    for _ in range(4):
        check_health()

    stats = registry.stats()["health_check"]["db"]
    assert (stats.runs, stats.status, stats.failures, stats.timeouts) == (4, UNHEALTHY, 2, 0)
    assert stats.last_duration is not None
    assert stats.last_duration >= 0
    assert registry.snapshot()["health_check"]["db"]["status"] == "unhealthy"


def test_reset_clears_health_stats(
    registry: hazina.Registry, flavor: Flavor, check_health: CheckHealth
) -> None:
    """registry.reset() puts a check's counters back to zero and forgets its last status."""
    register(registry, flavor, "db", returning(False), timeout=2)
    check_health()

    registry.reset()

    assert registry.stats()["health_check"]["db"] == HealthCheckStats(0, None, 0, 0, None)
    assert registry.get("health_check", "db").config.timeout == 2


def test_removed_checks_leave_the_stats(registry: hazina.Registry, flavor: Flavor) -> None:
    """registry.remove('health_check', name) forgets the check."""
    register(registry, flavor, "db", returning(True))

    registry.remove("health_check", "db")

    assert registry.stats()["health_check"] == {}
    with pytest.raises(KeyError):
        registry.get("health_check", "db")


def test_status_changes_are_announced(
    registry: hazina.Registry, flavor: Flavor, check_health: CheckHealth, events: list[object]
) -> None:
    """An event comes on the first run and whenever the status differs from the last run's."""
    outcomes = iter([True, True, False, False, HealthResult(DEGRADED), True])
    register(registry, flavor, "db", lambda: next(outcomes))

    for _ in range(6):
        check_health()

    assert [event for event in events if isinstance(event, HealthStatusChanged)] == [
        HealthStatusChanged("db", None, HEALTHY),
        HealthStatusChanged("db", HEALTHY, UNHEALTHY),
        HealthStatusChanged("db", UNHEALTHY, DEGRADED),
        HealthStatusChanged("db", DEGRADED, HEALTHY),
    ]


def test_events_arrive_before_the_report_returns(
    registry: hazina.Registry, flavor: Flavor, check_health: CheckHealth
) -> None:
    """A listener has seen the change by the time check_health returns."""
    seen: list[object] = []
    registry.subscribe(seen.append)
    register(registry, flavor, "db", returning(False))

    check_health()

    assert seen == [HealthStatusChanged("db", None, UNHEALTHY)]


def test_a_raising_listener_does_not_break_the_report(
    registry: hazina.Registry,
    flavor: Flavor,
    check_health: CheckHealth,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A listener that raises on a status change is logged; the report is still whole."""

    def listener(event: object) -> None:
        raise RuntimeError("listener bug")

    registry.subscribe(listener)
    register(registry, flavor, "db", returning(False))

    report = check_health()

    assert report.entries["db"].status is UNHEALTHY
    assert "listener bug" in caplog.text


# -- the sync entry point --------------------------------------------------------------


def test_check_health_sync_inside_a_running_loop_says_what_to_do(
    registry: hazina.Registry,
) -> None:
    """Called from a coroutine, check_health_sync raises instead of blocking the loop."""
    registry.health_check("db", returning(True))

    async def misuse() -> None:
        registry.check_health_sync()

    with pytest.raises(RuntimeError, match=r"running event loop.*await registry\.check_health"):
        asyncio.run(misuse())
    assert registry.stats()["health_check"]["db"].runs == 0


def test_check_health_sync_leaves_no_event_loop_behind(registry: hazina.Registry) -> None:
    """After check_health_sync, plain code still has no running loop and can use asyncio.run."""
    registry.health_check("db", returning(True))

    async def fine() -> bool:
        return True

    registry.health_check("async", fine)

    assert registry.check_health_sync().status is HEALTHY
    assert asyncio.run(fine()) is True
    assert registry.check_health_sync().status is HEALTHY


def test_the_health_module_exports_its_api() -> None:
    """hazina.health exports the apps and the built-ins in a sorted __all__ of real names."""
    import hazina.health

    assert hazina.health.__all__ == ["asgi_app", "memory_check", "policies_check", "wsgi_app"]
    for name in hazina.health.__all__:
        assert callable(getattr(hazina.health, name)), name
