"""hazina's pytest plugin: fixtures for testing code that uses hazina.

Loaded by pytest through the ``hazina`` entry point whenever hazina is installed;
``-p no:hazina`` turns it off.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._core import registry as default
from ._core.clock import FakeClock
from ._core.registry import Registry


@pytest.fixture
def hazina_clock() -> FakeClock:
    """The fake clock of ``hazina_registry``: it moves only when told, or slept on."""
    return FakeClock()


@pytest.fixture
def hazina_registry(hazina_clock: FakeClock) -> Registry:
    """A fresh registry on ``hazina_clock``, for policies the test makes itself."""
    return Registry(clock=hazina_clock)


@pytest.fixture
def hazina_events(hazina_registry: Registry) -> Iterator[list[object]]:
    """Every event emitted during the test by ``hazina.registry`` and ``hazina_registry``."""
    received: list[object] = []
    unsubscribes = [
        registry.subscribe(received.append) for registry in (default.registry, hazina_registry)
    ]
    yield received
    for unsubscribe in unsubscribes:
        unsubscribe()


@pytest.fixture
def hazina_reset() -> Iterator[None]:
    """Reset ``hazina.registry`` after the test: every policy's state back to fresh."""
    yield
    default.registry.reset()
