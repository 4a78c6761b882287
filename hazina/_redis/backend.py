"""The Redis backend: clients, scripts, and what happens while Redis does not answer.

Every decision is one Lua script run by ``EVALSHA`` (reloaded after ``NOSCRIPT``). Any
failure marks the backend down for ``retry_interval`` seconds: meanwhile no call waits
on Redis (each policy follows its ``on_backend_error``), then one call probes it. An
outage is logged once when it starts (WARNING) and once when it ends (INFO), on the
``hazina.redis`` logger.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import AsyncGenerator, Callable, Sequence
from time import monotonic
from typing import Any, Literal

try:
    import redis
    import redis.asyncio
    from redis.backoff import NoBackoff
    from redis.exceptions import NoScriptError, RedisError
except ImportError as missing:  # pragma: no cover - the extra is installed for the tests
    raise ImportError(
        "hazina.redis needs redis-py; install it with: pip install 'hazina[redis]'"
    ) from missing

from .._breaker.redis import RedisCircuitBreaker
from .._cache.redis import RedisCache
from .._core.backend import PolicyMaker
from .._core.errors import ConfigurationError
from .._core.forks import fresh_lock, reset_after_fork
from .._core.validation import MAX_SECONDS, is_finite_number
from .._ratelimit.redis import RedisRateLimiter
from .keys import check_key_part
from .pipeline import LoopPipeline
from .scripts import Script, Unreachable
from .wire import Command, PackedCommand, Packer, pool_of, send

logger = logging.getLogger("hazina.redis")

ClockChoice = Literal["redis", "registry"]


#: The Redis policy class of each kind with shared state.
POLICY_CLASSES: dict[str, Any] = {
    policy.kind: policy for policy in (RedisCircuitBreaker, RedisCache, RedisRateLimiter)
}


async def _close_with_loop(client: redis.asyncio.Redis) -> AsyncGenerator[None, None]:
    """Close ``client`` when its event loop shuts down.

    A loop has no close hook, but ``asyncio.run()`` (and ``asyncio.Runner``) finalize
    every live async generator before closing it: this one's ``finally`` is that hook.
    """
    try:
        yield
    finally:
        await client.aclose()


#: Each event loop's closers (see :func:`_close_with_loop`), held until the loop goes. A
#: closer dropped with its backend while the loop ran would be closed by a task the
#: loop's shutdown does not wait for, leaving its connection half closed. The price: a
#: backend made and dropped again and again on one loop (one per request, say) keeps
#: each client it made until that loop closes.
_CLOSERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[AsyncGenerator[None, None]]] = (
    weakref.WeakKeyDictionary()
)


class RedisBackend:
    """Fleet-wide state on Redis for circuit breakers, caches and rate limiters.

    Use :meth:`from_url`, or pass existing redis-py clients. Give it to a registry
    (``Registry(backend=...)``) or to one policy (``backend=``).

    Args:
        client: A sync ``redis.Redis``. A plain one's pool carries hazina's commands
            packed by hazina (its ``retry`` and command hooks are not used); a subclass
            or an instrumented client is called through its ``execute_command``.
        async_client: A ``redis.asyncio.Redis`` (used from one event loop).
        prefix: The first part of every key.
        timeout: Seconds a command may take before Redis counts as down.
        retry_interval: Seconds Redis stays marked down before one call probes it.
        clock: ``"redis"``: time from the server's ``TIME`` (hosts may be skewed);
            ``"registry"``: from each policy's registry clock (tests with ``FakeClock``).
        sync_interval: Seconds a process may rely on shared state it read (an open
            breaker) before reading it again.
    """

    def __init__(
        self,
        *,
        client: redis.Redis | None = None,
        async_client: redis.asyncio.Redis | None = None,
        prefix: str = "hazina",
        timeout: float = 0.25,
        retry_interval: float = 1.0,
        clock: ClockChoice = "redis",
        sync_interval: float = 1.0,
    ) -> None:
        if client is None and async_client is None:
            raise ConfigurationError(
                "RedisBackend needs client= or async_client= (or use RedisBackend.from_url)"
            )
        if not isinstance(prefix, str) or not prefix:
            raise ConfigurationError(
                f"RedisBackend: prefix must be a non-empty string, got {prefix!r}"
            )
        check_key_part("the Redis prefix", prefix)
        for param, value in (
            ("timeout", timeout),
            ("retry_interval", retry_interval),
            ("sync_interval", sync_interval),
        ):
            # Bounded like every hazina duration: a socket timeout beyond what the
            # interpreter's waits accept fails at the first command, far from here.
            if not is_finite_number(value) or not 0 < value <= MAX_SECONDS:
                raise ConfigurationError(
                    f"RedisBackend: {param} must be a number of seconds above 0 and at "
                    f"most {MAX_SECONDS:g}, got {value!r}"
                )
        if clock not in ("redis", "registry"):
            raise ConfigurationError(
                f"RedisBackend: clock must be 'redis' or 'registry', got {clock!r}"
            )
        self._client = client
        self._pool = pool_of(client)
        self._packer = None if self._pool is None else Packer(self._pool)
        self._given_async = async_client
        self._make_async: Callable[[], redis.asyncio.Redis] | None = None
        self.prefix: str = prefix
        self.timeout: float = float(timeout)
        self.retry_interval: float = float(retry_interval)
        self.clock: ClockChoice = clock
        self.sync_interval: float = float(sync_interval)
        #: 0.0 while Redis answers; else the monotonic time of the next probe. Read
        #: lock-free on every call; written only on failures and probes.
        self.down_until: float = 0.0
        self._outage_error: BaseException | None = None
        self._state_lock = threading.Lock()
        reset_after_fork(self)
        self._policies: dict[str, None] = {}
        self._pipelines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopPipeline] = (
            weakref.WeakKeyDictionary()
        )

    def _after_fork_in_child(self) -> None:
        fresh_lock(self._state_lock)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "hazina",
        timeout: float = 0.25,
        retry_interval: float = 1.0,
        clock: ClockChoice = "redis",
        sync_interval: float = 1.0,
    ) -> RedisBackend:
        """A backend with its own clients for ``url`` (an asyncio client per event loop)."""
        if not isinstance(url, str):
            raise ConfigurationError(f"RedisBackend: url must be a string, got {url!r}")
        # redis-py connects lazily: the constructor below checks every option before
        # anything talks to Redis. No retries inside redis-py: a failure must mark the
        # backend down at once, not hold the caller for several more timeouts.
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        }
        client = redis.Redis.from_url(url, retry=redis.retry.Retry(NoBackoff(), 0), **options)
        backend = cls(
            client=client,
            prefix=prefix,
            timeout=timeout,
            retry_interval=retry_interval,
            clock=clock,
            sync_interval=sync_interval,
        )
        backend._make_async = lambda: redis.asyncio.Redis.from_url(
            url, retry=redis.asyncio.retry.Retry(NoBackoff(), 0), **options
        )
        return backend

    # -- what the registry asks -------------------------------------------------------

    def policy_maker(self, kind: str) -> PolicyMaker | None:
        """The Redis policy class for ``kind``, bound to this backend; ``None`` if none."""
        policy_class = POLICY_CLASSES.get(kind)
        if policy_class is None:
            return None
        return lambda name, config, host: policy_class(name, config, host, self)

    def attach(self, kind: str, name: str) -> None:
        """Note that a policy uses this backend (named in outage logs)."""
        self._policies[f"{kind}:{name}"] = None

    # -- round trips --------------------------------------------------------------------

    def retry_after(self) -> float:
        """Seconds until the next probe (0 while Redis answers)."""
        until = self.down_until
        return max(0.0, until - monotonic()) if until else 0.0

    def _may_try(self) -> bool:
        """Whether this call may talk to Redis now: it is up, or this call is the probe."""
        if not self.down_until:
            return True
        with self._state_lock:
            if not self.down_until:
                return True
            now = monotonic()
            if now < self.down_until:
                return False
            # This call probes; every other waits out another interval meanwhile.
            self.down_until = now + self.retry_interval
            return True

    def _failed(self, error: BaseException) -> Unreachable:
        with self._state_lock:
            self.down_until = monotonic() + self.retry_interval
            starts = self._outage_error is None
            self._outage_error = error
        if starts:
            policies = sorted(self._policies)
            logger.warning(
                "hazina: Redis backend %s is down (%r); policies %s follow their "
                "on_backend_error until it answers",
                self,
                error,
                ", ".join(policies) or "(none yet)",
                extra={
                    "hazina_backend": repr(self),
                    "hazina_error": repr(error),
                    "hazina_policies": policies,
                },
            )
        else:
            logger.debug("hazina: Redis backend %s still down: %r", self, error)
        return Unreachable(self.retry_interval, attempted=True)

    def _answered(self) -> None:
        with self._state_lock:
            ended = self._outage_error is not None
            self._outage_error = None
            self.down_until = 0.0
        if ended:
            logger.info(
                "hazina: Redis backend %s answers again",
                self,
                extra={"hazina_backend": repr(self)},
            )

    def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run ``script`` once; raise :class:`Unreachable` instead of waiting on a dead Redis."""
        return self.execute(script, script.command(keys, args))

    @property
    def has_sync_client(self) -> bool:
        """Whether sync calls can reach Redis (an asyncio-only backend cannot)."""
        return self._client is not None

    def read_many(self, commands: list[Command]) -> list[Any] | None:
        """Send ``commands`` in one pipelined round trip (a scrape's reads); each one's
        answer, an error answer as its exception, or ``None`` if Redis did not answer
        (which starts an outage like any failed call, so the next scrape waits on
        nothing)."""
        client = self._client
        if client is None or (self.down_until and not self._may_try()):
            return None
        pipeline = client.pipeline(transaction=False)
        queue: Callable[..., Any] = pipeline.execute_command
        for command in commands:
            queue(*command)
        try:
            answers: list[Any] = pipeline.execute(raise_on_error=False)
        except (RedisError, OSError) as error:
            self._failed(error)
            return None
        if self._outage_error is not None:
            self._answered()
        return answers

    def prepare(self, command: Command) -> Command:
        """``command`` in the form :meth:`execute` sends fastest, for a hot path to keep."""
        if self._packer is None:
            return command
        prepared = PackedCommand(command)
        prepared.packed = self._packer.pack(command)
        return prepared

    def execute(self, script: Script, command: Command) -> Any:
        """:meth:`run` with the whole ``EVALSHA`` command built (by a hot path: prepared)."""
        if self.down_until and not self._may_try():
            raise Unreachable(self.retry_after(), attempted=False) from self._outage_error
        try:
            try:
                result = self._send(command)
            except NoScriptError:
                # A restarted or flushed server forgot the script; load it and go on.
                self._send(("SCRIPT", "LOAD", script.source))
                result = self._send(command)
        except (RedisError, OSError) as error:
            raise self._failed(error) from error
        if self._outage_error is not None:
            self._answered()
        return result

    def _send(self, command: Command) -> Any:
        pool, packer = self._pool, self._packer
        if pool is not None and packer is not None:
            if type(command) is PackedCommand:
                return send(pool, command.packed)
            return send(pool, packer.pack(command))
        if self._client is None:
            raise ConfigurationError(
                f"{self!r} has only an asyncio client; this call needs a sync one (client=)"
            )
        call: Callable[..., Any] = self._client.execute_command
        return call(*command)

    async def arun(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """:meth:`run` for async code, on this event loop's client."""
        return await self.aexecute(script, script.command(keys, args))

    async def aexecute(self, script: Script, command: Command) -> Any:
        """:meth:`execute` for async code, on this event loop's client."""
        if self.down_until and not self._may_try():
            raise Unreachable(self.retry_after(), attempted=False) from self._outage_error
        send = (await self._pipeline()).execute
        try:
            try:
                result = await send(*command)
            except NoScriptError:
                await send("SCRIPT", "LOAD", script.source)
                result = await send(*command)
        except (RedisError, OSError, TimeoutError) as error:
            raise self._failed(error) from error
        if self._outage_error is not None:
            self._answered()
        return result

    async def _pipeline(self) -> LoopPipeline:
        """This event loop's pipeline (and client: asyncio clients belong to one loop)."""
        loop = asyncio.get_running_loop()
        pipeline = self._pipelines.get(loop)
        if pipeline is not None:
            return pipeline
        if self._given_async is not None:
            pipeline = LoopPipeline(self._given_async, self.timeout, client_times_out=False)
            self._pipelines[loop] = pipeline
            return pipeline
        if self._make_async is None:
            raise ConfigurationError(
                f"{self!r} has only a sync client; async calls need async_client="
            )
        # A client of our own making is closed with its loop.
        client = self._make_async()
        closer = _close_with_loop(client)
        await anext(closer)
        _CLOSERS.setdefault(loop, []).append(closer)
        pipeline = LoopPipeline(client, self.timeout, client_times_out=True)
        self._pipelines[loop] = pipeline
        return pipeline

    def __repr__(self) -> str:
        client = self._client if self._client is not None else self._given_async
        where = ""
        pool = getattr(client, "connection_pool", None)
        kwargs = getattr(pool, "connection_kwargs", {})
        if "host" in kwargs:
            where = f" {kwargs['host']}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
        return f"<RedisBackend{where} prefix={self.prefix!r}>"
