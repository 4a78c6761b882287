"""Locks down the typing of the exporters and the testing kit: ``mypy --strict`` checks
this file, pytest runs it.

Lines that must be *rejected* carry a ``# type: ignore[code]``; with
``warn_unused_ignores`` on, mypy fails if hazina's types stopped catching the mistake.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import assert_type

import prometheus_client
import pytest
from prometheus_client.core import Metric

import hazina
import hazina.otel
from hazina.prometheus import HazinaCollector
from hazina.testing import disabled, instant_waits


def test_collector_types() -> None:
    """The collector takes an optional registry and yields Prometheus metric families."""
    collector = HazinaCollector(hazina.Registry())
    assert_type(collector.collect(), Iterator[Metric])
    prometheus_client.CollectorRegistry().register(collector)
    HazinaCollector(registry="default")  # type: ignore[arg-type]


def test_instrument_types() -> None:
    """instrument() returns a handle with uninstrument(); providers are keyword-only."""
    handle = hazina.otel.instrument(hazina.Registry())
    assert_type(handle, hazina.otel.Instrumentation)
    assert_type(handle.uninstrument(), None)
    with pytest.raises(TypeError):
        hazina.otel.instrument(hazina.Registry(), None)  # type: ignore[call-arg]


def test_switch_types() -> None:
    """disabled() and instant_waits() work called plainly and as context managers."""
    with disabled(), instant_waits():
        pass
    disabled("yes")  # type: ignore[arg-type]
    disabled(False)
    instant_waits(False)
