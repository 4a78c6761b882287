"""One policy's link to its Redis backend: key names, time, errors and shared configuration."""

from __future__ import annotations

import datetime
import enum
import json
import logging
from collections.abc import Sequence
from time import monotonic
from typing import TYPE_CHECKING, Any

import attrs

from .._core.clock import Clock
from .._core.counters import Counter, new_counter, read_counter
from .._core.errors import ConfigurationError
from .keys import KeyNames
from .scripts import Script, Unreachable
from .wire import Command

if TYPE_CHECKING:
    from .backend import RedisBackend

logger = logging.getLogger("hazina.redis")

CONFIG_SCRIPT = Script(__package__, "config.lua")
#: How long a stored configuration outlives the last process that created its policy.
CONFIG_TTL_MS = 7 * 24 * 3600 * 1000
#: Seconds between renewals of the configuration key by each process that uses it.
CONFIG_RENEW_AFTER = 3600.0
#: Parameters that only shape what one process does, never the shared state.
LOCAL_PARAMETERS = frozenset({"on_backend_error", "wait", "max_wait", "local_fraction"})


def shared_configuration(config: object) -> str:
    """The parameters of ``config`` that shape shared state, as canonical JSON.

    Callables and exception types cannot be compared across processes and are left out,
    as are the parameters in :data:`LOCAL_PARAMETERS`.
    """

    def plain(value: object) -> object:
        if isinstance(value, enum.Enum):
            return value.value
        if attrs.has(type(value)):
            return {
                field.name: plain(getattr(value, field.name))
                for field in attrs.fields(type(value))  # type: ignore[arg-type]
            }
        if isinstance(value, tuple | list):
            return [plain(item) for item in value]
        return value

    def comparable(value: object) -> bool:
        if isinstance(value, tuple):
            return all(comparable(item) for item in value)
        return not callable(value)

    shared = {
        field.name: plain(getattr(config, field.name))
        for field in attrs.fields(type(config))  # type: ignore[arg-type]
        if field.name not in LOCAL_PARAMETERS and comparable(getattr(config, field.name))
    }
    return json.dumps(shared, sort_keys=True, separators=(",", ":"), default=_comparable_text)


def _comparable_text(value: object) -> str:
    """A value JSON has no form for, as text that is the same in every process."""
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    # Never repr(): an object's default repr holds its address, which differs per process.
    return f"{type(value).__module__}.{type(value).__qualname__}"


class BackendLink:
    """What a Redis policy uses of its backend, with its own error count."""

    def __init__(
        self, backend: RedisBackend, kind: str, name: str, config: object, clock: Clock
    ) -> None:
        self.backend = backend
        self.kind = kind
        self.name = name
        self.keys = KeyNames(backend.prefix, kind, name)
        #: Failed round trips (not calls skipped while the backend is marked down).
        self.errors: Counter = new_counter()
        self._clock = clock if backend.clock == "registry" else None
        self._config = shared_configuration(config)
        # When the shared configuration is next checked and its key renewed (monotonic
        # seconds): at creation, then every CONFIG_RENEW_AFTER (never more often than
        # sync_interval), in a round trip of its own, never inside a decision.
        self._config_due = 0.0
        self._broken: ConfigurationError | None = None
        backend.attach(kind, name)
        self._check_config(at_creation=True)

    @property
    def backend_errors(self) -> int:
        """Failed round trips so far."""
        return read_counter(self.errors)

    def now(self) -> float | str:
        """The time argument of a script: ``""`` for the server's ``TIME``."""
        return "" if self._clock is None else self._clock.now()

    def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """One decision; :class:`Unreachable` (counted if a round trip failed) instead."""
        return self.execute(script, script.command(keys, args))

    def may_batch(self) -> bool:
        """Whether a read may go out with others now: Redis answers, this policy's shared
        configuration is sound, and no renewal of it is due (that takes its own trip)."""
        return (
            self._broken is None
            and not self.backend.down_until
            and monotonic() < self._config_due
            and self.backend.has_sync_client
        )

    def execute(self, script: Script, command: Command) -> Any:
        """:meth:`run` with the whole ``EVALSHA`` command built (once, by a hot path)."""
        if monotonic() >= self._config_due:
            self._check_config(at_creation=False)
        if self._broken is not None:
            raise Unreachable(self.backend.retry_interval, attempted=False) from self._broken
        try:
            return self.backend.execute(script, command)
        except Unreachable as unreachable:
            if unreachable.attempted:
                next(self.errors)
            raise

    async def arun(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """:meth:`run` for async code."""
        return await self.aexecute(script, script.command(keys, args))

    async def aexecute(self, script: Script, command: Command) -> Any:
        """:meth:`execute` for async code."""
        if monotonic() >= self._config_due:
            await self._acheck_config()
        if self._broken is not None:
            raise Unreachable(self.backend.retry_interval, attempted=False) from self._broken
        try:
            return await self.backend.aexecute(script, command)
        except Unreachable as unreachable:
            if unreachable.attempted:
                next(self.errors)
            raise

    # -- shared configuration ------------------------------------------------------------

    def _config_call(self) -> tuple[list[str], list[object]]:
        return [self.keys.policy("config")], [self._config, CONFIG_TTL_MS]

    def _check_config(self, *, at_creation: bool) -> None:
        keys, args = self._config_call()
        try:
            stored = self.backend.run(CONFIG_SCRIPT, keys, args)
        except Unreachable as unreachable:
            if unreachable.attempted:
                next(self.errors)
            return  # checked at Redis's first answer
        except ConfigurationError:
            return  # only an async client: the first async call checks
        self._judge(stored, at_creation=at_creation)

    async def _acheck_config(self) -> None:
        keys, args = self._config_call()
        try:
            stored = await self.backend.arun(CONFIG_SCRIPT, keys, args)
        except Unreachable as unreachable:
            if unreachable.attempted:
                next(self.errors)
            return
        self._judge(stored, at_creation=False)

    def _judge(self, stored: bytes | str | None, *, at_creation: bool) -> None:
        self._config_due = monotonic() + max(self.backend.sync_interval, CONFIG_RENEW_AFTER)
        if stored is None:
            return
        theirs = stored.decode() if isinstance(stored, bytes) else stored
        error = ConfigurationError(
            f"{self.kind} {self.name!r} exists on {self.backend!r} with a different "
            f"configuration: stored {theirs}, this process has {self._config}"
        )
        if at_creation:
            raise error
        # Found later (Redis was down at creation): the policy must not share state
        # shaped differently, so it acts as if the backend were down.
        self._broken = error
        logger.error("hazina: %s", error, extra={"hazina_backend": repr(self.backend)})
