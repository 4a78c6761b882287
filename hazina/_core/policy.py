"""What every policy shares: a name, a frozen configuration, a host to report to."""

from __future__ import annotations

import abc
import logging
import threading
import types
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

import attrs

from .clock import Clock
from .forks import fresh_lock, on_fork_in_child
from .host import Host
from .swap import swap_driver
from .validation import build_config

ConfigT = TypeVar("ConfigT")
StatsT = TypeVar("StatsT")


# Policies whose reconfigure lock a forked child must free (held by another thread).
_reconfigurable: weakref.WeakSet[Policy[Any, Any]] = weakref.WeakSet()


def _free_reconfigure_locks() -> None:
    for policy in list(_reconfigurable):
        fresh_lock(policy._reconfiguring)


on_fork_in_child(_free_reconfigure_locks)


class Policy(abc.ABC, Generic[ConfigT, StatsT]):
    """A named, configured piece of resilience held by a :class:`~hazina.Registry`.

    A policy decides; the drivers it hands to the decorator core perform the call,
    the wait or the await. Drivers are built once per decorated function, so the
    hot path never looks the policy up or inspects the function again.
    """

    kind: ClassVar[str]
    config_class: ClassVar[type[Any]]
    #: Alternative spellings of one setting: changing a parameter of one alternative
    #: drops those of the others given before (a fallback's ``value`` or ``handler``;
    #: a limiter's ``limits`` or ``rate``, ``per`` and ``burst``).
    exclusive: ClassVar[tuple[tuple[frozenset[str], ...], ...]] = ()

    def __init__(self, name: str, config: ConfigT, host: Host) -> None:
        self.name = name
        self.config: ConfigT = config
        self.clock: Clock = host.clock
        self.emit: Callable[[object], None] = host.emit
        self.host: Host = host
        #: The parameters spelled out for this policy (a derived default follows the
        #: parameter it derives from on reconfigure, unless it is in here).
        self.given: dict[str, Any] = {}
        #: Those of them set by ``registry.configure()``, which win over code.
        self.configured: dict[str, Any] = {}
        self._reconfiguring = threading.Lock()
        _reconfigurable.add(self)
        # Plain functions decorated with this policy, to rebuild on reconfigure.
        self._decorated: list[tuple[weakref.ref[Any], Callable[..., Any], bool, Any]] = []

    def reconfigure(self, **changes: Any) -> None:
        """Change parameters of this policy while it runs.

        The merged configuration is validated first (``ConfigurationError``: nothing
        changes), then swapped in: calls that start afterwards see all of it, and
        functions already decorated keep this policy. State is kept where it still
        means something (see each kind). Emits :class:`~hazina.PolicyReconfigured`.
        """
        if not changes:
            return
        with self._reconfiguring:
            merged = merged_options(type(self), self.given, changes)
            new = build_config(self.kind, self.name, self.config_class, merged)
            self._check_change(merged, changes, new)
            self._share_config(merged, changes, new)
            self._apply_config(new)
            self.given = merged
            self._rebuild_drivers()
        self.emit(PolicyReconfigured(self.kind, self.name, dict(changes)))

    def _created(self) -> None:
        """Called by the registry once ``given`` and ``configured`` are set."""

    def _check_change(
        self, given: Mapping[str, Any], changes: Mapping[str, Any], config: ConfigT
    ) -> None:
        """Refuse (``ConfigurationError``) a valid configuration this policy cannot take
        (a shared backend's rules); ``registry.configure()`` asks before changing anything."""

    def _share_config(
        self, given: Mapping[str, Any], changes: Mapping[str, Any], config: ConfigT
    ) -> None:
        """Before a reconfigure changes anything here: tell whoever shares this policy
        (a shared backend stores it; it may refuse by raising)."""

    def _apply_config(self, config: ConfigT) -> None:
        """Swap ``config`` in, carrying over the state that still means something.

        Kinds whose state depends on the configuration override this, under their lock.
        """
        self.config = config

    def _driver_for(self, target: Callable[..., Any], is_async: bool) -> Callable[..., Any]:
        """A driver for ``target``, remembered so a reconfigure can give it a new one.

        Built under the reconfigure lock, so a reconfigure running meanwhile either
        comes first (this driver is built from the new configuration) or sees it.
        """
        with self._reconfiguring:
            driver = self._async_driver(target) if is_async else self._sync_driver(target)
            code = getattr(driver, "__code__", None)
            if isinstance(code, types.CodeType):
                live = [entry for entry in self._decorated if entry[0]() is not None]
                live.append((weakref.ref(driver), target, is_async, code))
                self._decorated = live
        return driver

    def _rebuild_drivers(self) -> None:
        for ref, target, is_async, native in self._decorated:
            decorated = ref()
            if decorated is None:
                continue
            new = self._async_driver(target) if is_async else self._sync_driver(target)
            swap_driver(decorated, native, new, is_async)

    @abc.abstractmethod
    def stats(self) -> StatsT:
        """A frozen snapshot of the policy's counters."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Put the policy's state back to fresh; configuration is kept."""

    @abc.abstractmethod
    def _sync_driver(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """A plain function that calls ``fn`` under this policy."""

    @abc.abstractmethod
    def _async_driver(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """An ``async def`` function that awaits ``fn`` under this policy."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def merged_options(
    policy_class: type[Any], given: Mapping[str, Any], changes: Mapping[str, Any]
) -> dict[str, Any]:
    """``given`` updated with ``changes``, dropping alternatives that ``changes`` replace."""
    merged = {**given, **changes}
    for alternatives in getattr(policy_class, "exclusive", ()):
        for alternative in alternatives:
            if alternative & changes.keys():
                for other in alternatives:
                    if other is not alternative:
                        for param in other - changes.keys():
                            merged.pop(param, None)
    return merged


@attrs.frozen
class PolicyReconfigured:
    """A policy's configuration was changed at run time; ``changes`` are the new values."""

    #: Logged at INFO on ``hazina.<kind>``: rare, and worth knowing about.
    log_level: ClassVar[int] = logging.INFO

    kind: str
    name: str
    changes: Mapping[str, Any]
    #: Every event carries it; a chaos injection or a reconfigure is never a dry run.
    dry_run: bool = attrs.field(default=False, kw_only=True)
