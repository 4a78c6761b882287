"""Rare events are logged on hazina.<kind> loggers, at their level, with their fields in extra."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator

import pytest

import hazina
from hazina.testing import FakeClock, instant_waits


def records(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == logger]


def failing_breaker(registry: hazina.Registry) -> Callable[[], None]:
    @hazina.circuit_breaker(
        "payments", registry=registry, failure_threshold=1, open_for=10, success_threshold=1
    )
    def pay() -> None:
        raise ConnectionError("down")

    return pay


def test_a_breaker_opening_warns_and_probing_and_closing_inform(
    caplog: pytest.LogCaptureFixture, registry: hazina.Registry, clock: FakeClock
) -> None:
    """Opening is a WARNING; half-open and closed are INFO; extra names the kind, policy, states."""
    caplog.set_level(logging.INFO, "hazina")
    pay = failing_breaker(registry)
    with pytest.raises(ConnectionError):
        pay()
    clock.advance(10)
    breaker = registry.circuit_breaker("payments")
    assert breaker.state == "half_open"
    breaker.reset()

    logged = records(caplog, "hazina.circuit_breaker")
    assert [(record.levelname, record.hazina_new) for record in logged] == [  # type: ignore[attr-defined]
        ("WARNING", "open"),
        ("INFO", "half_open"),
        ("INFO", "closed"),
    ]
    opened = logged[0]
    assert opened.hazina_kind == "circuit_breaker"  # type: ignore[attr-defined]
    assert opened.hazina_name == "payments"  # type: ignore[attr-defined]
    assert opened.hazina_old == "closed"  # type: ignore[attr-defined]
    assert "payments" in opened.getMessage()
    assert "open" in opened.getMessage()


def test_a_forced_open_breaker_warns(
    caplog: pytest.LogCaptureFixture, registry: hazina.Registry
) -> None:
    """force_open() is logged like an opening: at WARNING."""
    caplog.set_level(logging.INFO, "hazina")
    registry.circuit_breaker("payments").force_open()
    [record] = records(caplog, "hazina.circuit_breaker")
    assert record.levelno == logging.WARNING
    assert record.hazina_new == "forced_open"  # type: ignore[attr-defined]


def test_an_open_breaker_logs_nothing_per_rejection_above_debug(
    caplog: pytest.LogCaptureFixture, registry: hazina.Registry
) -> None:
    """A thousand rejected calls log nothing at INFO; at DEBUG each one is a record."""
    pay = failing_breaker(registry)
    caplog.set_level(logging.INFO, "hazina")
    with pytest.raises(ConnectionError):
        pay()
    caplog.clear()
    for _ in range(1000):
        with pytest.raises(hazina.CircuitOpenError):
            pay()
    assert caplog.records == []

    caplog.set_level(logging.DEBUG, "hazina")
    for _ in range(3):
        with pytest.raises(hazina.CircuitOpenError):
            pay()
    logged = records(caplog, "hazina.circuit_breaker")
    assert [record.levelno for record in logged] == [logging.DEBUG] * 3
    assert logged[0].hazina_state == "open"  # type: ignore[attr-defined]
    assert logged[0].hazina_retry_after == 10.0  # type: ignore[attr-defined]


def test_rate_limit_rejections_and_waits_stay_at_debug(
    caplog: pytest.LogCaptureFixture, registry: hazina.Registry
) -> None:
    """Limiter refusals and waits are per-call events: DEBUG only."""
    caplog.set_level(logging.INFO, "hazina")
    limiter = registry.rate_limiter("api", rate=1, per=60)
    assert limiter.try_acquire()
    assert not limiter.try_acquire()
    assert caplog.records == []

    caplog.set_level(logging.DEBUG, "hazina")
    assert limiter.try_acquire("alice")
    assert not limiter.try_acquire("alice")
    [record] = records(caplog, "hazina.rate_limiter")
    assert record.levelno == logging.DEBUG
    assert record.hazina_key == "alice"  # type: ignore[attr-defined]
    assert record.hazina_cost == 1  # type: ignore[attr-defined]


def test_nothing_is_formatted_when_the_level_is_off(
    caplog: pytest.LogCaptureFixture, registry: hazina.Registry
) -> None:
    """A per-call event with DEBUG off never touches its fields (no repr, no extra)."""

    class Key:
        shown = 0

        def __repr__(self) -> str:
            Key.shown += 1
            return "Key()"

    caplog.set_level(logging.INFO, "hazina")
    limiter = registry.rate_limiter("api", rate=1, per=60)
    key = Key()
    for _ in range(5):
        limiter.try_acquire(key)
    assert Key.shown == 0


def test_a_retry_scheduled_informs_and_giving_up_warns(
    caplog: pytest.LogCaptureFixture, registry: hazina.Registry
) -> None:
    """RetryScheduled is INFO, RetryGaveUp WARNING, with attempt numbers and the error."""
    caplog.set_level(logging.INFO, "hazina")

    @hazina.retry("fetch", registry=registry, attempts=2)
    def fetch() -> None:
        raise TimeoutError("slow")

    with instant_waits(), pytest.raises(TimeoutError):
        fetch()
    scheduled, gave_up = records(caplog, "hazina.retry")
    assert scheduled.levelno == logging.INFO
    assert scheduled.hazina_attempt == 1  # type: ignore[attr-defined]
    assert isinstance(scheduled.hazina_error, TimeoutError)  # type: ignore[attr-defined]
    assert gave_up.levelno == logging.WARNING
    assert gave_up.hazina_attempts == 2  # type: ignore[attr-defined]
    assert gave_up.hazina_name == "fetch"  # type: ignore[attr-defined]


def test_a_health_check_getting_worse_warns_and_better_informs(
    caplog: pytest.LogCaptureFixture, registry: hazina.Registry
) -> None:
    """Healthy first is INFO, healthy to unhealthy WARNING, back to healthy INFO."""
    caplog.set_level(logging.INFO, "hazina")
    up = [True, False, True]
    registry.health_check("db", lambda: up.pop(0))
    for _ in range(3):
        registry.check_health_sync()
    logged = records(caplog, "hazina.health_check")
    assert [(r.levelname, r.hazina_new) for r in logged] == [  # type: ignore[attr-defined]
        ("INFO", "healthy"),
        ("WARNING", "unhealthy"),
        ("INFO", "healthy"),
    ]


def test_a_check_that_starts_unhealthy_warns(
    caplog: pytest.LogCaptureFixture, registry: hazina.Registry
) -> None:
    """The first run of a check counts as getting worse when it is not healthy."""
    caplog.set_level(logging.INFO, "hazina")
    registry.health_check("db", lambda: False)
    registry.check_health_sync()
    [record] = records(caplog, "hazina.health_check")
    assert record.levelno == logging.WARNING


def test_logging_is_on_by_default_for_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    """With no logging configured at all, an opening breaker still reaches stderr."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers.clear()  # as in a program that never configured logging
    try:
        failing = failing_breaker(hazina.Registry())
        with pytest.raises(ConnectionError):
            failing()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert "circuit_breaker 'payments'" in capsys.readouterr().err


# -- structlog ---------------------------------------------------------------------------


@pytest.fixture
def structlog_stream() -> Iterator[io.StringIO]:
    """stdlib logging routed through structlog's ProcessorFormatter into a string."""
    import structlog

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.ExtraAdder()],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.KeyValueRenderer(key_order=["event"]),
            ],
        )
    )
    logger = logging.getLogger("hazina")
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def test_structlog_renders_hazina_events_as_key_values(
    structlog_stream: io.StringIO, registry: hazina.Registry
) -> None:
    """With structlog routing stdlib logging, an opening breaker is one key-value line."""
    failing = failing_breaker(registry)
    with pytest.raises(ConnectionError):
        failing()
    line = structlog_stream.getvalue().strip()
    assert "hazina_kind='circuit_breaker'" in line
    assert "hazina_name='payments'" in line
    assert "hazina_new='open'" in line
    assert "level='warning'" in line
