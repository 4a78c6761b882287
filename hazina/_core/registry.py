"""Named policies, their stats and their events, in one place."""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, Protocol, TypeVar, Unpack, cast

import attrs

from .._breaker.config import CircuitBreakerOptions
from .._breaker.policy import CircuitBreaker
from .._bulkhead.config import BulkheadOptions
from .._bulkhead.policy import Bulkhead
from .._cache.config import CacheOptions
from .._cache.policy import Cache
from .._chaos.config import ChaosOptions
from .._chaos.policy import Chaos
from .._fallback.config import FallbackOptions
from .._fallback.policy import Fallback
from .._health.config import HealthCheckOptions, to_tags
from .._health.policy import CheckFunction, HealthCheck, check_function
from .._health.records import HealthReport
from .._health.runner import run_checks, run_checks_sync
from .._hedge.config import HedgeOptions
from .._hedge.policy import Hedge
from .._ratelimit.config import RateLimiterOptions
from .._ratelimit.policy import RateLimiter
from .._retry.config import RetryOptions
from .._retry.policy import Retry
from .._retry_budget.config import RetryBudgetOptions
from .._retry_budget.policy import RetryBudget
from .._timeout.config import TimeoutOptions
from .._timeout.policy import Timeout
from .backend import Backend, BackendChoice, BatchReader, SharedReading
from .clock import SYSTEM_CLOCK, Clock, checked_clock
from .errors import ConfigurationError, safe_repr
from .forks import fresh_lock, reset_after_fork
from .host import Host
from .logs import event_emitter
from .policy import Policy, merged_options
from .validation import build_config, describe_difference

logger = logging.getLogger("hazina")

PolicyT = TypeVar("PolicyT", bound=Policy[Any, Any])
Listener = Callable[[Any], object]


class Registered(Protocol):
    """What a registry holds: policies, and health checks (which wrap no calls)."""

    kind: ClassVar[str]
    name: str
    config: Any
    #: Parameters spelled out for it, and those of them set by ``configure()``.
    given: dict[str, Any]
    configured: dict[str, Any]

    def reconfigure(self, **changes: Any) -> None: ...

    def stats(self) -> Any: ...

    def reset(self) -> None: ...


#: Every kind a registry holds, in the order stats are reported. A new kind is one
#: more class here and one typed factory method below.
KINDS: tuple[str, ...] = tuple(
    held.kind
    for held in (
        CircuitBreaker,
        Retry,
        Cache,
        RateLimiter,
        HealthCheck,
        RetryBudget,
        Fallback,
        Hedge,
        Timeout,
        Bulkhead,
        Chaos,
    )
)


def _config_class(kind: str) -> type[Any]:
    """The configuration class of ``kind`` (every class of a kind shares it)."""
    pending: list[type[Any]] = [Policy, HealthCheck]
    while pending:
        held = pending.pop()
        if getattr(held, "kind", None) == kind:
            return held.config_class  # type: ignore[no-any-return]
        pending.extend(held.__subclasses__())
    raise KeyError(kind)  # pragma: no cover - every kind in KINDS has a class


def _folded(name: str) -> str:
    """A name as configuration matches it: case-insensitive, with ``-`` and ``_`` alike."""
    return name.casefold().replace("-", "_")


def _kind_named(given: str, where: str) -> str:
    for kind in KINDS:
        if _folded(kind) == _folded(given):
            return kind
    raise ConfigurationError(
        f"{where}unknown policy kind {given!r} (known: {', '.join(sorted(KINDS))})"
    )


#: Kinds a policy may ask its host for by name (``Host.get_or_create``).
_COMPANIONS: dict[str, type[Policy[Any, Any]]] = {RetryBudget.kind: RetryBudget}


class Registry:
    """Holds named policies: get-or-create, look up, stats, events.

    ``hazina.registry`` is the default one every decorator uses; make your own for
    isolation (tests, tenants) and pass it as ``registry=``.

    Args:
        clock: Where every policy of this registry reads time and sleeps.
        backend: Where the policies of kinds with shared state (circuit breakers, caches,
            rate limiters) keep it, e.g. ``hazina.redis.RedisBackend``; in memory if
            ``None``. One policy opts out with ``backend="memory"``.
    """

    def __init__(self, *, clock: Clock | None = None, backend: Backend | None = None) -> None:
        self.clock: Clock = SYSTEM_CLOCK if clock is None else checked_clock(clock)
        self.backend: Backend | None = backend
        # Re-entrant: a factory may be called from a listener it triggers.
        self._lock = threading.RLock()
        reset_after_fork(self)
        self._policies: dict[str, dict[str, Registered]] = {kind: {} for kind in KINDS}
        # Values set by configure(), by kind and folded name, for policies made later too.
        self._configured: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self._noted: set[tuple[str, str]] = set()
        # Replaced (never mutated) so _emit can iterate without a lock.
        self._listeners: tuple[Listener, ...] = ()
        # What each policy sees of its registry: the clock, and where events go (the
        # listeners, then the logger of the policy's kind; see _host_for). This one,
        # for a policy made without its kind, logs on the ``hazina`` logger.
        self._host = Host(self.clock, event_emitter(None, self), self._companion)
        self._hosts: dict[str, Host] = {}

    # -- factories ---------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        fresh_lock(self._lock)

    def circuit_breaker(
        self,
        name: str,
        /,
        *,
        backend: BackendChoice | None = None,
        **config: Unpack[CircuitBreakerOptions],
    ) -> CircuitBreaker:
        """Get the circuit breaker ``name``, creating it with ``config`` if new."""
        return self._get_or_create(CircuitBreaker, name, config, backend)

    def retry(self, name: str, /, **config: Unpack[RetryOptions]) -> Retry:
        """Get the retry policy ``name``, creating it with ``config`` if new."""
        return self._get_or_create(Retry, name, config)

    def retry_budget(self, name: str, /, **config: Unpack[RetryBudgetOptions]) -> RetryBudget:
        """Get the retry budget ``name``, creating it with ``config`` if new.

        Retry policies share it with ``@retry(..., budget=name)``: together their retries
        add at most ``ratio`` (default 0.2) of the first attempts seen in the last
        ``window`` seconds (default 10), plus ``min_per_second`` (default 10) * ``window``.

        Args:
            name: The budget's name, as ``@retry(budget=...)`` gives it.
            ratio: Retries allowed per first attempt over the window (default 0.2).
            min_per_second: A reserve of this many retries per second of the window that
                needs no first attempts (default 10).
            window: Seconds of first attempts and retries the budget looks back over
                (default 10).
        """
        return self._get_or_create(RetryBudget, name, config)

    def _companion(self, kind: str, name: str) -> Any:
        return self._get_or_create(_COMPANIONS[kind], name, {})

    def cache(
        self, name: str, /, *, backend: BackendChoice | None = None, **config: Unpack[CacheOptions]
    ) -> Cache:
        """Get the cache ``name``, creating it with ``config`` if new."""
        return self._get_or_create(Cache, name, config, backend)

    def rate_limiter(
        self,
        name: str,
        /,
        *,
        backend: BackendChoice | None = None,
        **config: Unpack[RateLimiterOptions],
    ) -> RateLimiter:
        """Get the rate limiter ``name``, creating it with ``config`` if new."""
        return self._get_or_create(RateLimiter, name, config, backend)

    def fallback(self, name: str, /, **config: Unpack[FallbackOptions]) -> Fallback:
        """Get the fallback policy ``name``, creating it with ``config`` if new."""
        return self._get_or_create(Fallback, name, config)

    def hedge(self, name: str, /, **config: Unpack[HedgeOptions]) -> Hedge:
        """Get the hedge policy ``name``, creating it with ``config`` if new."""
        return self._get_or_create(Hedge, name, config)

    def timeout(self, name: str, /, **config: Unpack[TimeoutOptions]) -> Timeout:
        """Get the timeout ``name``, creating it with ``config`` if new."""
        return self._get_or_create(Timeout, name, config)

    def bulkhead(self, name: str, /, **config: Unpack[BulkheadOptions]) -> Bulkhead:
        """Get the bulkhead ``name``, creating it with ``config`` if new."""
        return self._get_or_create(Bulkhead, name, config)

    def chaos(self, name: str, /, **config: Unpack[ChaosOptions]) -> Chaos:
        """Get the chaos policy ``name``, creating it with ``config`` if new."""
        return self._get_or_create(Chaos, name, config)

    def health_check(
        self, name: str, fn: CheckFunction, /, **config: Unpack[HealthCheckOptions]
    ) -> HealthCheck:
        """Register ``fn`` as the health check ``name``; a name already taken is refused."""
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"health_check name must be a non-empty string, got {name!r}")
        configured = self._configured_for(HealthCheck.kind, name)
        given: dict[str, Any] = {**config, **(configured or {})}
        if configured is not None:
            self._note_precedence(HealthCheck.kind, name, config, configured)
        check = HealthCheck(
            name,
            build_config(HealthCheck.kind, name, HealthCheck.config_class, given),
            check_function(name, fn),
            self._host_for(HealthCheck.kind),
        )
        with self._lock:
            if name in self._policies[HealthCheck.kind]:
                raise ConfigurationError(
                    f"health_check {name!r} is already registered; names are unique "
                    f"(registry.remove('health_check', {name!r}) first to replace it)"
                )
            self._policies[HealthCheck.kind][name] = check
        check.given = given
        check.configured = dict(configured or {})
        return check

    # -- configuration at run time ----------------------------------------------------

    def reconfigure(self, kind: str, name: str, /, **changes: Any) -> None:
        """Change parameters of the policy ``kind`` ``name`` while it runs.

        See :meth:`Policy.reconfigure`; ``KeyError`` if there is no such policy.
        """
        self.get(kind, name).reconfigure(**changes)

    def configure(self, mapping: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
        """Create or reconfigure policies from ``{kind: {name: {param: value}}}``.

        Kinds and names match case-insensitively with ``-`` and ``_`` alike. An entry
        whose policy exists reconfigures it; one that matches no policy yet is held
        until the first factory or decorator call of that name, which creates the policy
        with these values. Configured values take precedence over values in code.
        Everything is checked before anything changes: a ``ConfigurationError`` names
        where the value came from (``hazina.config`` readers note files and variables),
        the kind, the policy and the parameter.
        """
        sources: Mapping[tuple[str, str, str], str] = getattr(mapping, "sources", {})
        plan: list[tuple[str, str, dict[str, Any], Registered | None]] = []
        for kind_given, by_name in mapping.items():
            kind = _kind_named(kind_given, sources.get((kind_given, "", ""), ""))
            for name, params in by_name.items():
                params = dict(params)
                where = sources.get((kind_given, name, ""), "")
                with self._lock:
                    matches = [
                        held
                        for held_name, held in self._policies[kind].items()
                        if _folded(held_name) == _folded(name)
                    ]
                if len(matches) > 1:
                    raise ConfigurationError(
                        f"{where}{kind} {name!r} matches several policies "
                        f"({', '.join(repr(held.name) for held in matches)}); names are "
                        f"matched case-insensitively with '-' and '_' alike"
                    )
                target = matches[0] if matches else None
                self._check_entry(kind, name, params, target, sources, kind_given)
                plan.append((kind, name, params, target))
        for kind, name, params, target in plan:
            with self._lock:
                self._configured[kind][_folded(name)] = params
            if target is not None:
                target.reconfigure(**params)  # a shared backend may refuse (BackendUnavailable)
                target.configured = {**target.configured, **params}

    def _check_entry(
        self,
        kind: str,
        name: str,
        params: dict[str, Any],
        target: Registered | None,
        sources: Mapping[tuple[str, str, str], str],
        kind_given: str,
    ) -> None:
        config_class = _config_class(kind)
        shown = name
        changes = params
        if target is not None:
            shown = target.name
            params = merged_options(type(target), target.given, params)
        try:
            config = build_config(kind, shown, config_class, params)
            if isinstance(target, Policy):
                target._check_change(params, changes, config)  # a shared backend's rules
        except ConfigurationError as error:
            param = error.param
            incomplete = target is None and param not in params and param is not None
            if incomplete:
                # A required parameter the code will give (a limiter's rate): the
                # configured values are checked with it when the policy is created.
                return
            where = sources.get((kind_given, name, param or ""), "") or sources.get(
                (kind_given, name, ""), ""
            )
            raise ConfigurationError(f"{where}{error}") from None

    def _configured_for(self, kind: str, name: str) -> dict[str, Any] | None:
        return self._configured[kind].get(_folded(name))

    def _get_or_create(
        self,
        policy_class: type[PolicyT],
        name: str,
        options: Mapping[str, Any],
        backend: BackendChoice | None = None,
    ) -> PolicyT:
        kind = policy_class.kind
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"{kind} name must be a non-empty string, got {name!r}")
        config_class = policy_class.config_class
        wanted = build_config(kind, name, config_class, options) if options else None
        make = self._maker(policy_class, name, backend)
        with self._lock:
            existing = self._policies[kind].get(name)
            if existing is None:
                configured = self._configured_for(kind, name)
                given = merged_options(policy_class, options, configured or {})
                if configured is None:
                    config = (
                        wanted if wanted is not None else build_config(kind, name, config_class, {})
                    )
                else:
                    config = build_config(kind, name, config_class, given)
                    self._note_precedence(kind, name, options, configured)
                policy: PolicyT = make(name, config, self._host_for(kind))
                policy.given = given
                if configured is not None:
                    policy.configured = dict(configured)
                policy._created()
                self._policies[kind][name] = policy
                return policy
        held = getattr(existing, "backend", "memory")
        if backend is not None and held != backend:
            raise ConfigurationError(
                f"{kind} {name!r} already exists on another backend ({held!r}, "
                f"asked for {backend!r})"
            )
        if wanted is not None and wanted != existing.config:
            held_configured: dict[str, Any] = getattr(existing, "configured", {})
            if held_configured and (
                build_config(
                    kind, name, config_class, merged_options(policy_class, options, held_configured)
                )
                == existing.config
            ):
                self._note_precedence(kind, name, options, held_configured)
                return existing  # type: ignore[return-value]
            raise ConfigurationError(
                f"{kind} {name!r} already exists with a different configuration: "
                f"{describe_difference(existing.config, wanted)}"
            )
        return existing  # type: ignore[return-value]

    def _note_precedence(
        self, kind: str, name: str, options: Mapping[str, Any], configured: Mapping[str, Any]
    ) -> None:
        overridden = {
            param: value
            for param, value in configured.items()
            if param in options and options[param] != value
        }
        if overridden and (kind, name) not in self._noted:
            self._noted.add((kind, name))
            logger.info(
                "%s %r: configured values %r take precedence over the code's %r",
                kind,
                name,
                overridden,
                {param: options[param] for param in overridden},
            )

    def _maker(
        self, policy_class: type[PolicyT], name: str, backend: BackendChoice | None
    ) -> Callable[[str, Any, Host], PolicyT]:
        """The in-memory class, or what the chosen backend makes for this kind."""
        chosen = self.backend if backend is None else backend
        if chosen is None or chosen == "memory":
            return policy_class
        maker = chosen.policy_maker(policy_class.kind)
        if maker is not None:
            return maker
        if backend is not None:
            raise ConfigurationError(
                f"{policy_class.kind} {name!r}: backend= applies to kinds with shared "
                f"state (circuit_breaker, cache, rate_limiter)"
            )
        return policy_class  # the registry's default backend does not cover this kind

    # -- health ----------------------------------------------------------------------

    async def check_health(self, *, tags: str | Iterable[str] | None = None) -> HealthReport:
        """Run the health checks (those carrying any of ``tags``, or all) concurrently.

        Cancelling the caller cancels the checks.
        """
        return await run_checks(self._health_checks(tags))

    def check_health_sync(self, *, tags: str | Iterable[str] | None = None) -> HealthReport:
        """:meth:`check_health` from plain code; ``RuntimeError`` inside a running event loop."""
        return run_checks_sync(self._health_checks(tags))

    def _health_checks(self, tags: str | Iterable[str] | None) -> list[HealthCheck]:
        held = self._policies["health_check"].values()
        checks: list[HealthCheck] = list(held)  # type: ignore[arg-type]
        if tags is None:
            return checks
        wanted = set(to_tags(tags))
        return [check for check in checks if wanted.intersection(check.config.tags)]

    # -- lookup --------------------------------------------------------------------

    def get(self, kind: str, name: str) -> Registered:
        """The policy of ``kind`` called ``name``; ``KeyError`` if there is none."""
        try:
            return self._policies[kind][name]
        except KeyError:
            raise KeyError(f"no {kind} named {name!r} in this registry") from None

    def remove(self, kind: str, name: str) -> None:
        """Forget the policy; functions already decorated with it keep using it."""
        with self._lock:
            try:
                del self._policies[kind][name]
            except KeyError:
                raise KeyError(f"no {kind} named {name!r} in this registry") from None

    def __iter__(self) -> Iterator[Registered]:
        for kind in KINDS:
            yield from list(self._policies[kind].values())

    def __len__(self) -> int:
        return sum(len(policies) for policies in self._policies.values())

    def reset(self) -> None:
        """Put every policy's state back to fresh; configurations are kept."""
        for policy in self:
            policy.reset()

    # -- observation -------------------------------------------------------------

    def stats(self) -> dict[str, dict[str, Any]]:
        """``{kind: {name: stats}}`` for every policy, as frozen snapshots.

        Policies whose stats read a shared backend (a Redis breaker's state) are read
        together: one round trip per backend, none while it is down.
        """
        result: dict[str, dict[str, Any]] = {}
        batches: dict[int, tuple[BatchReader, list[tuple[str, str, SharedReading, Any]]]] = {}
        for kind in KINDS:
            by_name: dict[str, Any] = {}
            for name, policy in list(self._policies[kind].items()):
                # getattr, not isinstance with a runtime-checkable protocol: that check
                # costs about 20 µs a policy, as much as a scrape's whole share.
                reading = getattr(policy, "reading_command", None)
                request = None if reading is None else reading()
                if request is None:
                    by_name[name] = policy.stats()
                    continue
                backend, command = request
                batch = batches.setdefault(id(backend), (backend, []))
                batch[1].append((kind, name, cast(SharedReading, policy), command))
                by_name[name] = None  # filled in below, in this order
            result[kind] = by_name
        for backend, requests in batches.values():
            answers = backend.read_many([command for *_, command in requests])
            for index, (kind, name, reader, _) in enumerate(requests):
                answer = None if answers is None else answers[index]
                result[kind][name] = reader.stats_from(answer)
        return result

    def snapshot(self) -> dict[str, dict[str, dict[str, Any]]]:
        """:meth:`stats` as plain JSON-ready data."""
        return {
            kind: {name: _plain(stats) for name, stats in by_name.items()}
            for kind, by_name in self.stats().items()
        }

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every event; returns a function that unsubscribes.

        Listeners run synchronously, before the call that caused the event returns. One
        that raises is logged and does not break that call.
        """
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            with self._lock:
                listeners = list(self._listeners)
                if listener in listeners:
                    listeners.remove(listener)
                self._listeners = tuple(listeners)

        return unsubscribe

    def _host_for(self, kind: str) -> Host:
        host = self._hosts.get(kind)
        if host is None:
            emit = event_emitter(kind, self)
            host = self._hosts.setdefault(kind, Host(self.clock, emit, self._companion))
        return host

    def _emit(self, event: object) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("hazina event listener %r raised on %r", listener, event)

    def __repr__(self) -> str:
        return f"<Registry with {len(self)} policies>"


def _plain(stats: object) -> dict[str, Any]:
    def serialize(_: object, __: object, value: object) -> object:
        return value.value if isinstance(value, enum.Enum) else value

    return attrs.asdict(stats, value_serializer=serialize)  # type: ignore[arg-type]


#: The registry every decorator uses unless given ``registry=``.
registry: Registry = Registry()


def registry_or_default(given: Registry | None) -> Registry:
    """``given``, or the default registry as it is now.

    Looked up at call time (decoration, registration), not import time, so that
    tests can swap the default.
    """
    if given is None:
        return registry
    if not isinstance(given, Registry):
        raise TypeError(f"registry= must be a hazina.Registry or None, got {safe_repr(given)}")
    return given
