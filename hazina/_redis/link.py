"""One policy's link to its Redis backend: key names, time, errors and shared configuration."""

from __future__ import annotations

import datetime
import enum
import json
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from time import monotonic
from typing import TYPE_CHECKING, Any

import attrs

from .._core.clock import Clock
from .._core.counters import Counter, new_counter, read_counter
from .._core.errors import BackendUnavailable, ConfigurationError
from .._core.forks import reset_after_fork
from .._core.policy import merged_options
from .._core.validation import build_config
from .keys import KeyNames
from .scripts import Script, Unreachable
from .wire import Command

if TYPE_CHECKING:
    from .backend import RedisBackend

logger = logging.getLogger("hazina.redis")

CONFIG_SCRIPT = Script(__package__, "config.lua")
#: How long a stored configuration outlives the last process that created its policy.
CONFIG_TTL_MS = 7 * 24 * 3600 * 1000
#: Parameters that only shape what one process does, never the shared state.
LOCAL_PARAMETERS = frozenset({"on_backend_error", "wait", "max_wait", "local_fraction"})


def shared_configuration(config: object) -> str:
    """The parameters of ``config`` that shape shared state, as canonical JSON.

    Callables and exception types cannot be compared across processes and are left out,
    as are the parameters in :data:`LOCAL_PARAMETERS`.
    """

    def plain(value: object) -> object:
        if isinstance(value, float) and value.is_integer():
            # 60 and 60.0 (or timedelta(minutes=1)) configure the same policy, but
            # JSON writes them apart.
            return int(value)
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

    shared = {
        field.name: plain(getattr(config, field.name))
        for field in attrs.fields(type(config))  # type: ignore[arg-type]
        # A field left out of equality is another spelling of one that is compared (a
        # limiter's rate and per beside its limits): equal configurations must match.
        if field.eq
        and field.name not in LOCAL_PARAMETERS
        and _compared(getattr(config, field.name))
    }
    return json.dumps(shared, sort_keys=True, separators=(",", ":"), default=_comparable_text)


def _compared(value: object) -> bool:
    """Whether ``value`` is compared across processes: not a callable or exception type,
    nor a tuple holding one (``failure_on=(TimeoutError, OSError)``)."""
    if isinstance(value, tuple | list):
        return all(_compared(item) for item in value)
    return not callable(value)


def _comparable_text(value: object) -> str:
    """A value JSON has no form for, as text that is the same in every process."""
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    # Never repr(): an object's default repr holds its address, which differs per process.
    return f"{type(value).__module__}.{type(value).__qualname__}"


class BackendLink:
    """What a Redis policy uses of its backend, with its own error count."""

    def __init__(
        self,
        backend: RedisBackend,
        kind: str,
        name: str,
        config: object,
        clock: Clock,
        shape: Callable[[Any], object] = lambda config: config,
    ) -> None:
        self.backend = backend
        self.kind = kind
        self.name = name
        self.keys = KeyNames(backend.prefix, kind, name)
        #: Failed round trips (not calls skipped while the backend is marked down).
        self.errors: Counter = new_counter()
        self._clock = clock if backend.clock == "registry" else None
        self._shape: Callable[[Any], object] = shape
        self._config = shared_configuration(shape(config))
        # The parameters of a configuration stored by a reconfigure, as JSON ("" for the
        # code's), and the version of the stored configuration this process runs.
        self._params = ""
        self._version: int | None = None
        # When the stored configuration is next checked and its key renewed (monotonic
        # seconds): when the policy is created, then at most every sync_interval, in a
        # round trip of its own, never inside a decision.
        self._config_due = math.inf
        self._broken: ConfigurationError | None = None
        # The stored (configuration, params) this process refused: refused once, logged
        # once, until another is stored.
        self._refused: tuple[str, str] | None = None
        self._owner: SharedPolicy | None = None
        #: Reconfigures this process has stored: a stored configuration found before the
        #: latest of them is older than it, and is not adopted.
        self.stores = 0
        self._adopting = False
        backend.attach(kind, name)
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        if self._adopting:
            # The parent's adopting thread does not exist here: look again at once.
            self._adopting = False
            self._config_due = 0.0

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
        """Whether a read may go out with others now: Redis answers, and this policy's
        shared configuration has been checked and is sound. A check that is due waits for
        the policy's next call: a scrape of many policies stays one round trip."""
        return (
            self._broken is None
            and self._version is not None
            and not self.backend.down_until
            and self.backend.has_sync_client
        )

    def execute(self, script: Script, command: Command) -> Any:
        """:meth:`run` with the whole ``EVALSHA`` command built (once, by a hot path)."""
        if monotonic() >= self._config_due:
            self._check_config()
        if self._broken is not None:
            raise Unreachable(self.backend.retry_interval, attempted=False) from self._broken
        try:
            return self.backend.execute(script, command)
        except Unreachable as unreachable:
            self._count(unreachable)
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
            self._count(unreachable)
            raise

    # -- shared configuration ------------------------------------------------------------

    def start(self, owner: SharedPolicy) -> None:
        """Check the stored configuration when ``owner`` is created: store this one if
        none is, adopt one a reconfigure stored, refuse one that differs (``ConfigurationError``).

        If Redis does not answer, the check runs at its first answer instead.
        """
        self._owner = owner
        if not _only_local(owner.configured):
            # Values from registry.configure() are shared like a reconfigure's (unless
            # none of them travels: then the code's values stay a code configuration).
            check_travels(self.kind, self.name, owner.given, owner.configured)
            self._params = _params_text(portable_params(owner.given))
        self._check_config(at_creation=True)

    def store(self, params: Mapping[str, Any], config: object) -> None:
        """Store a reconfigured ``config`` (built from ``params``) for the whole fleet.

        Raises:
            BackendUnavailable: Redis did not answer; nothing was stored.
            ConfigurationError: The backend has only an asyncio client.
        """
        shared, text = shared_configuration(self._shape(config)), _params_text(params)
        keys = [self.keys.policy("config")]
        try:
            answer = self.backend.run(CONFIG_SCRIPT, keys, ["store", shared, CONFIG_TTL_MS, text])
        except Unreachable as unreachable:
            self._count(unreachable)
            raise BackendUnavailable(self.name, unreachable.retry_after) from unreachable
        self._config, self._params, self._version = shared, text, answer[0]
        self._broken = self._refused = None
        self._config_due = monotonic() + self.backend.sync_interval
        self.stores += 1

    def _config_call(self) -> tuple[list[str], list[object]]:
        if self._version is None:
            args: list[object] = ["create", self._config, CONFIG_TTL_MS, self._params]
        else:
            args = ["check", self._config, CONFIG_TTL_MS, self._params, self._version]
        return [self.keys.policy("config")], args

    def _check_config(self, *, at_creation: bool = False) -> None:
        self._config_due = monotonic() + self.backend.sync_interval
        keys, args = self._config_call()
        stores = self.stores  # before the round trip: a store during it is newer
        try:
            answer = self.backend.run(CONFIG_SCRIPT, keys, args)
        except Unreachable as unreachable:
            self._unchecked(unreachable)
            return
        except ConfigurationError:
            self._config_due = 0.0  # only an async client: the first async call checks
            return
        self._judge(answer, stores, at_creation=at_creation)

    async def _acheck_config(self) -> None:
        self._config_due = monotonic() + self.backend.sync_interval
        keys, args = self._config_call()
        stores = self.stores
        try:
            answer = await self.backend.arun(CONFIG_SCRIPT, keys, args)
        except Unreachable as unreachable:
            self._unchecked(unreachable)
            return
        self._judge(answer, stores, at_creation=False)

    def _count(self, unreachable: Unreachable) -> None:
        """Count a round trip that failed (not one skipped while Redis is marked down)."""
        if unreachable.attempted:
            next(self.errors)

    def _unchecked(self, unreachable: Unreachable) -> None:
        self._count(unreachable)
        if self._version is None:
            self._config_due = 0.0  # never checked: check at Redis's first answer

    def _judge(self, answer: list[Any], stores: int, *, at_creation: bool) -> None:
        version = answer[0]
        if len(answer) == 1:
            return  # unchanged since this process last looked
        stored, params = _text(answer[1]), _text(answer[2])
        if (stored, params) == self._refused:
            return
        if stored == self._config:
            # The same configuration, perhaps now stored by a reconfigure: keep its
            # params, so that a check after the key is lost stores them again.
            self._version, self._params = version, params
            self._broken = self._refused = None
            return
        if params:
            # Stored by a reconfigure (or configure()): it wins over this process's code.
            if at_creation:
                self._adopt(version, stored, params, stores, at_creation=True)
            elif not self._adopting:
                # Never inside the call that found it: that call may hold the policy's
                # locks, and adopting takes them.
                self._adopting = True
                threading.Thread(
                    target=self._adopt,
                    args=(version, stored, params, stores),
                    name=f"hazina-adopt-{self.kind}-{self.name}",
                    daemon=True,
                ).start()
            return
        self._refuse(
            f"{self.kind} {self.name!r} exists on {self.backend!r} with a different "
            f"configuration: stored {stored}, this process has {self._config}",
            at_creation=at_creation,
            seen=(stored, params),
        )

    def _adopt(
        self, version: int, stored: str, params: str, stores: int, *, at_creation: bool = False
    ) -> None:
        try:
            self._adopt_now(version, stored, params, stores, at_creation=at_creation)
        finally:
            self._adopting = False

    def _adopt_now(
        self, version: int, stored: str, params: str, stores: int, *, at_creation: bool
    ) -> None:
        owner = self._owner
        try:
            if owner is None:
                raise ConfigurationError("no policy to adopt it")
            config = owner.adopt_params(_loaded(params), stores)
            if config is None:
                # A reconfigure of this process's own is running, or was stored after
                # this configuration was found: look again soon.
                self._config_due = 0.0
                return
            adopted = shared_configuration(self._shape(config))
            if adopted != stored:
                raise ConfigurationError(
                    f"rebuilt from its parameters it reads {adopted}, not {stored} "
                    f"(are other processes running another version of hazina?)"
                )
        except ConfigurationError as error:
            # Even at creation: the stored configuration is the fleet's, not this
            # process's code, and a process of another version of hazina must start.
            self._refuse(
                f"{self.kind} {self.name!r}: cannot adopt the configuration stored on "
                f"{self.backend!r} by a reconfigure ({params}): {error}",
                at_creation=False,
                seen=(stored, params),
            )
            return
        self._config, self._params, self._version = stored, params, version
        self._broken = self._refused = None
        logger.debug(
            "hazina: %s %r adopted configuration version %s stored on %r: %s",
            self.kind,
            self.name,
            version,
            self.backend,
            params,
        )

    def _refuse(self, message: str, *, at_creation: bool, seen: tuple[str, str]) -> None:
        error = ConfigurationError(message)
        if at_creation:
            raise error
        self._refused = seen
        # Found later (Redis was down at creation, or a stored configuration cannot be
        # adopted): the policy must not share state shaped differently, so it acts as
        # if the backend were down. Checks go on every sync_interval: the same stored
        # configuration is refused (and logged) once.
        self._broken = error
        logger.error("hazina: %s", error, extra={"hazina_backend": repr(self.backend)})


def _loaded(params: str) -> dict[str, Any]:
    """Stored parameters as a mapping; ``ConfigurationError`` if they are none (written
    by another version of hazina, or by hand)."""
    try:
        loaded = json.loads(params)
    except ValueError as error:
        raise ConfigurationError(f"its parameters are not JSON ({error})") from None
    if not isinstance(loaded, dict):
        raise ConfigurationError("its parameters are not a JSON object")
    return loaded


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _params_text(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _portable(value: object) -> object:
    """``value`` as JSON that the parameter accepts back; :data:`NOT_PORTABLE` if none."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else NOT_PORTABLE
    if isinstance(value, enum.Enum):
        return _portable(value.value)
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, tuple | list):
        items = [_portable(item) for item in value]
        return NOT_PORTABLE if NOT_PORTABLE in items else items
    return NOT_PORTABLE


NOT_PORTABLE = object()


def portable_params(given: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of ``given`` that shape shared state and travel as JSON.

    The rest (callables, exception types, :data:`LOCAL_PARAMETERS`) stay each process's own.
    """
    shared = {}
    for param, value in given.items():
        if param in LOCAL_PARAMETERS:
            continue
        portable = _portable(value)
        if portable is not NOT_PORTABLE:
            shared[param] = portable
    return shared


def check_travels(
    kind: str, name: str, given: Mapping[str, Any], changes: Mapping[str, Any]
) -> None:
    """Refuse parameters ``given`` that other processes could not rebuild from JSON.

    A change must travel whole. So must a value kept from before that is data (a
    ``Limit``): left out of the stored parameters, it would be missing, not kept, where
    another process gave it as a string. Other objects (a serializer) are compared by
    type, and each process keeps its own.
    """
    for param, value in given.items():
        if (
            param not in LOCAL_PARAMETERS
            and _compared(value)
            and _portable(value) is NOT_PORTABLE
            and (param in changes or _is_data(value))
        ):
            raise ConfigurationError(
                f"{kind} {name!r}: {param}={value!r} cannot be shared through "
                f"Redis; give it as a number, a string, or a list of them"
            )


def _only_local(changes: Mapping[str, Any]) -> bool:
    """Whether none of ``changes`` travels: each stays every process's own."""
    return all(
        param in LOCAL_PARAMETERS or not _compared(value) for param, value in changes.items()
    )


def _is_data(value: object) -> bool:
    if isinstance(value, tuple | list):
        return any(_is_data(item) for item in value)
    return attrs.has(type(value))


class SharedPolicy:
    """Mixed into a Redis policy: its configuration is the fleet's, changed by any process.

    A reconfigure stores the new configuration (the parameters that travel as JSON, from
    which every process rebuilds it) before changing anything here; other processes adopt
    it at their next check, at most ``sync_interval`` later.
    """

    link: BackendLink
    kind: str
    name: str
    config: Any
    config_class: type[Any]
    given: dict[str, Any]
    configured: dict[str, Any]
    _reconfiguring: threading.Lock

    if TYPE_CHECKING:

        def _apply_config(self, config: Any) -> None: ...

        def _rebuild_drivers(self) -> None: ...

    def _created(self) -> None:
        self.link.start(self)

    def _check_change(
        self, given: Mapping[str, Any], changes: Mapping[str, Any], config: Any
    ) -> None:
        if _only_local(changes):
            return  # nothing will be stored (see _share_config)
        check_travels(self.kind, self.name, given, changes)
        backend = self.link.backend
        if not backend.has_sync_client:
            # Storing is a sync round trip: refuse here, before configure() changes others.
            raise ConfigurationError(
                f"{self.kind} {self.name!r}: {backend!r} has only an asyncio client; "
                f"a reconfigure stores the change through a sync one (client=)"
            )

    def _share_config(
        self, given: Mapping[str, Any], changes: Mapping[str, Any], config: Any
    ) -> None:
        if _only_local(changes):
            # Nothing that travels changed: the fleet has nothing to learn, and Redis need
            # not answer (on_backend_error is switched when it does not).
            return
        self.link.store(portable_params(given), config)

    def adopt_params(self, params: dict[str, Any], stores: int) -> object | None:
        """Run on ``params`` (stored by another process) with this process's own local
        and non-portable parameters; the new configuration, or ``None`` if a reconfigure
        is running here or has been stored since ``stores`` (``ConfigurationError`` if
        they make no valid configuration)."""
        if not self._reconfiguring.acquire(blocking=False):
            return None
        try:
            if self.link.stores != stores:
                return None  # older than this process's latest reconfigure
            travelling = portable_params(self.given)
            own = {param: value for param, value in self.given.items() if param not in travelling}
            given = merged_options(type(self), own, params)
            config: object = build_config(self.kind, self.name, self.config_class, given)
            if config != self.config:
                self._apply_config(config)
                self._rebuild_drivers()
            self.given = given
            # A decorator giving the code's values still finds this policy.
            self.configured = {**self.configured, **params}
            return config
        finally:
            self._reconfiguring.release()
