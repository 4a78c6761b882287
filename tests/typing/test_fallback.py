"""Locks down the fallback's typing: ``mypy --strict`` checks this file, pytest runs it.

Every ``assert_type`` must hold for mypy. Lines that must be *rejected* carry a
``# type: ignore[code]``; with ``warn_unused_ignores`` on, mypy fails if hazina's types
stopped catching the mistake. The ``check_*`` functions are only type-checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, assert_type

import hazina

REGISTRY = hazina.Registry()


@hazina.fallback("typing.profile", registry=REGISTRY, value=None, on=KeyError)
def profile(user: str) -> dict[str, str] | None:
    """Look ``user`` up."""
    return {"user": user}


async def guest(error: BaseException, user: str) -> dict[str, str]:
    """What an unknown user gets."""
    return {"user": "guest"}


@hazina.fallback("typing.aprofile", registry=REGISTRY, handler=guest)
async def aprofile(user: str) -> dict[str, str]:
    """Look ``user`` up, asynchronously."""
    raise KeyError(user)


class Service:
    """A class with a method under a fallback."""

    @hazina.fallback("typing.Service.get", registry=REGISTRY, handler=lambda e, self, n: -n)
    def get(self, n: int) -> int:
        """Return ``n``."""
        return n


def check_decorated_functions_keep_their_types() -> None:
    """Parameters and results survive; ``policy`` is a Fallback."""
    assert_type(profile("u"), dict[str, str] | None)
    assert_type(profile.policy, hazina.Fallback)
    fetching = aprofile("u")
    assert_type(fetching, Coroutine[Any, Any, dict[str, str]]).close()
    assert_type(Service().get(2), int)
    assert_type(Service().get.policy, hazina.Fallback)


def check_policy_api() -> None:
    """The factory and the stats have their documented types."""
    policy = REGISTRY.fallback("typing.profile")
    assert_type(policy, hazina.Fallback)
    assert_type(policy.stats(), hazina.FallbackStats)
    assert_type(policy.stats().fallbacks, int)
    assert_type(policy.config, hazina.FallbackConfig)


def check_mistakes_are_caught() -> None:
    """Wrong options and arguments are type errors."""
    hazina.fallback("typing.bad", handler="guest")  # type: ignore[call-overload]
    hazina.fallback("typing.bad", value=0, on="KeyError")  # type: ignore[call-overload]
    hazina.fallback("typing.bad", fallback=0)  # type: ignore[call-overload]
    REGISTRY.fallback("typing.bad", valu=0)  # type: ignore[call-arg]
    profile(1)  # type: ignore[arg-type]
    wrong: hazina.Retry = profile.policy  # type: ignore[assignment]
    del wrong


def test_typed_declarations_run() -> None:
    """The declarations above work at run time too."""
    assert profile("u") == {"user": "u"}
    assert asyncio.run(aprofile("u")) == {"user": "guest"}
    assert Service().get(2) == 2
