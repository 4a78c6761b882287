"""A rate limiter whose buckets live in Redis: one limit for every process of a fleet.

Each decision is one round trip: one Lua script (``redis.lua`` beside this module) that
applies every limit of the policy to the key's state, atomically. While Redis does not
answer, ``on_backend_error`` decides: ``"local"`` runs the in-memory limiter this class
inherits (its rates and bursts scaled by ``local_fraction``), ``"allow"`` admits,
``"deny"`` refuses with :class:`~hazina.RateLimitExceeded`.

A waiter (``wait=True``) reserves its tokens on arrival, fleet-wide, and then sleeps
in its own process. One that is cancelled while it sleeps keeps its reservation: a
later caller may already have queued behind it, and handing the tokens back then could
admit two calls in one slot. The slot is wasted; nothing is over-admitted.

``reset()`` and the stats are this process's: the shared buckets belong to the whole
fleet, are left alone, and refill by themselves.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from .._core.deadline import would_pass_deadline
from .._core.errors import RateLimitExceeded
from .._core.host import Host
from .._core.switches import DISABLED, WAITS
from .._redis.link import BackendLink, SharedPolicy
from .._redis.scripts import Script, Unreachable
from .._redis.wire import Command
from .config import RateLimiterConfig
from .limit import Limit
from .meters import Gcra, SlidingWindow, TokenBucket
from .policy import RateLimiter
from .records import LimitStatus, RateLimitDelayed, RateLimiterStats, RateLimitStatus

if TYPE_CHECKING:
    from .._redis.backend import RedisBackend

SCRIPT = Script(__package__, "redis.lua")
ADMITTED, RESERVED, REFUSED = 1, 2, 0


def _scaled(config: RateLimiterConfig) -> RateLimiterConfig:
    """``config`` with every rate and burst scaled by its ``local_fraction``."""
    fraction = config.local_fraction
    if fraction == 1.0:
        return config
    limits = tuple(
        Limit(limit.rate * fraction, limit.per, burst=max(1.0, limit.burst * fraction))
        for limit in config.limits
    )
    # The costs a caller may ask for stay those of the shared limits.
    return attrs.evolve(config, rate=None, per=None, burst=None, limits=limits)


def _encoded(number: float) -> bytes:
    """A number as the script reads it back exactly (``repr`` round-trips a float)."""
    return repr(float(number)).encode()


class _Plan:
    """What a decision sends, built from one configuration and swapped in whole."""

    __slots__ = ("log_suffixes", "shared_keys", "state_suffix", "tail", "usual", "usual_cost")

    def __init__(self, config: RateLimiterConfig, link: BackendLink) -> None:
        # Buckets of another algorithm or number of limits are not read as this one's:
        # a reconfigure to another shape starts every key full, under other key names.
        shape = (config.algorithm, len(config.limits))
        tag = "" if shape == ("token_bucket", 1) else f".{config.algorithm}.{len(config.limits)}"
        self.state_suffix = "s" + tag
        self.log_suffixes: list[str] = []
        if config.algorithm == "sliding_window":
            self.log_suffixes = [f"w{index}{tag}" for index in range(1, len(config.limits) + 1)]
        # Encoded once: redis-py sends bytes as they are, and would format each number
        # on every call.
        numbers: list[float] = []
        for limit in config.limits:
            if config.algorithm == "token_bucket":
                meter = TokenBucket(limit)
                numbers += [meter.burst, meter.per_second]
            elif config.algorithm == "gcra":
                gcra = Gcra(limit)
                numbers += [gcra.burst, gcra.interval]
            else:
                window = SlidingWindow(limit)
                numbers += [window.rate, window.window]
        self.tail: tuple[bytes, ...] = (
            b"" if config.max_wait is None else _encoded(config.max_wait),
            config.algorithm.encode(),
            b"%d" % len(config.limits),
            *(_encoded(number) for number in numbers),
        )
        self.shared_keys = [link.keys.policy(self.state_suffix)] + [
            link.keys.policy(suffix) for suffix in self.log_suffixes
        ]
        self.usual: dict[bytes, Command] = {}
        self.usual_cost = config.cost


class RedisRateLimiter(SharedPolicy, RateLimiter):
    """A rate limiter shared through Redis; made by the registry for ``backend=``."""

    inline_drivers: ClassVar[bool] = False

    def __init__(
        self, name: str, config: RateLimiterConfig, host: Host, backend: RedisBackend
    ) -> None:
        # The inherited in-memory limiter is the stand-in while Redis is down.
        super().__init__(name, _scaled(config), host)
        self.config = config
        self.backend = backend
        self.link = BackendLink(backend, self.kind, name, config, host.clock)
        self._ran_locally = False
        self._fixed_time = backend.clock == "redis"
        self._use(config)

    def _use(self, config: RateLimiterConfig) -> None:
        """Send decisions under ``config``: the plan is one store, so a call sends all of
        one configuration or all of the other."""
        self._capacity = config.capacity
        self._on_error = config.on_backend_error
        plan = _Plan(config, self.link)
        if self._fixed_time and not callable(config.cost):
            # The whole command of the usual decision (no key, the configured cost, the
            # server's time), built and packed once.
            plan.usual = {
                mode: self.backend.prepare(self._command_of(plan, mode, None, config.cost))
                for mode in (b"admit", b"wait")
            }
        self._plan = plan

    def _apply_config(self, config: RateLimiterConfig) -> None:
        # The stand-in keeps its own (scaled) configuration; the shared buckets carry
        # over in Redis while their shape stays (see _Plan).
        self.config = _scaled(self.config)
        super()._apply_config(_scaled(config))
        self.config = config
        self._use(config)

    # -- keys and arguments -------------------------------------------------------------

    def _command(self, mode: bytes, key: Hashable, cost: float) -> Command:
        """The ``EVALSHA`` command of one decision."""
        plan = self._plan
        if key is None and cost == plan.usual_cost and mode in plan.usual:
            return plan.usual[mode]
        return self._command_of(plan, mode, key, cost)

    def _command_of(self, plan: _Plan, mode: bytes, key: Hashable, cost: float) -> Command:
        if key is None:
            keys = plan.shared_keys
        else:
            names = self.link.keys
            try:
                keys = [names.of(key, plan.state_suffix)] + [
                    names.of(key, suffix) for suffix in plan.log_suffixes
                ]
            except TypeError as error:
                raise TypeError(f"rate_limiter {self.name!r}: {error}") from None
        now = self.link.now()
        time = b"" if isinstance(now, str) else _encoded(now)
        return ("EVALSHA", SCRIPT.sha, len(keys), *keys, mode, time, _encoded(cost), *plan.tail)

    # -- the decision ---------------------------------------------------------------------

    def _judge(self, key: Hashable, cost: float, answer: Any) -> float:
        """Count the script's answer; the seconds to wait (0 if admitted), or raise."""
        if self._ran_locally:
            self._back_to_shared()
        if answer == ADMITTED:
            with self.lock:
                self.counts.admitted += 1
            return 0.0
        code, wait = int(answer[0]), float(answer[1])
        if code == REFUSED:
            with self.lock:
                self.counts.rejected += 1
            error = self._refuse(key, cost, wait)
            if error is None:
                return 0.0
            raise error
        if not self._dry_run and would_pass_deadline(wait):
            # Refused, as past an enclosing @timeout's deadline; the reservation stays,
            # as a cancelled waiter's does (see above).
            with self.lock:
                self.counts.rejected += 1
            error = self._refuse(key, cost, wait)
            if error is not None:
                raise error
            return 0.0
        self.emit(RateLimitDelayed(self.name, key, cost, wait, dry_run=self._dry_run))
        if self._dry_run:
            self._waited_out(wait)  # reserved fleet-wide, as for a real waiter; no sleep
            return 0.0
        return wait

    def acquire_slow_sync(self, key: Hashable, cost: float) -> None:
        if not cost or DISABLED.on:
            return self._admitted_free()
        mode = b"wait" if self._may_wait else b"admit"
        try:
            answer = self.link.execute(SCRIPT, self._command(mode, key, cost))
        except Unreachable as down:
            if self._on_error == "local":
                self._ran_locally = True
                return super().acquire_slow_sync(key, cost)
            return self._while_down(key, cost, down)
        wait = self._judge(key, cost, answer)
        if wait:
            if not WAITS.instant:
                self.clock.sleep(wait)
            self._waited_out(wait)
        return None

    async def acquire_slow_async(self, key: Hashable, cost: float) -> None:
        if not cost or DISABLED.on:
            return self._admitted_free()
        mode = b"wait" if self._may_wait else b"admit"
        try:
            answer = await self.link.aexecute(SCRIPT, self._command(mode, key, cost))
        except Unreachable as down:
            if self._on_error == "local":
                self._ran_locally = True
                return await super().acquire_slow_async(key, cost)
            return self._while_down(key, cost, down)
        wait = self._judge(key, cost, answer)
        if wait:
            if not WAITS.instant:
                await self.clock.asleep(wait)
            self._waited_out(wait)
        return None

    def try_acquire(self, key: Hashable = None, cost: float = 1) -> bool:
        cost = self._checked_cost(cost)
        if not cost or DISABLED.on:
            self._admitted_free()
            return True
        try:
            answer = self.link.execute(SCRIPT, self._command(b"admit", key, cost))
        except Unreachable as down:
            if self._on_error == "local":
                self._ran_locally = True
                return super().try_acquire(key, cost)
            try:
                self._while_down(key, cost, down)
            except RateLimitExceeded:
                return False
            return True
        try:
            self._judge(key, cost, answer)
        except RateLimitExceeded:
            return False
        return True

    # -- while Redis does not answer ------------------------------------------------------

    def _while_down(self, key: Hashable, cost: float, down: Unreachable) -> None:
        """``"allow"``: admit; ``"deny"``: refuse until Redis is tried again."""
        if self._on_error == "allow":
            return self._admitted_free()
        self._deny(key, cost, down)

    def _deny(self, key: Hashable, cost: float, down: Unreachable) -> None:
        with self.lock:
            self.counts.rejected += 1
        error = self._refuse(key, cost, down.retry_after)
        if error is not None:
            raise error from down.__cause__

    def _back_to_shared(self) -> None:
        """Redis answers again: the local stand-in's state is dropped, its counts kept."""
        self._ran_locally = False
        with self.lock:
            for meter, state in zip(self.meters, self.shared_entry, strict=True):
                meter.clear(state)
            self.keys.clear()

    # -- reading ---------------------------------------------------------------------------

    def status(self, key: Hashable = None) -> RateLimitStatus:
        """Where ``key`` stands in Redis (this process's stand-in while Redis is down)."""
        probe = min(1.0, self._capacity)
        try:
            answer = self.link.execute(SCRIPT, self._command(b"status", key, probe))
        except Unreachable:
            return super().status(key)
        numbers = [float(value) for value in answer]
        limits = tuple(
            LimitStatus(
                limit,
                round(numbers[3 * index], 9),
                round(numbers[3 * index + 1], 9),
                round(numbers[3 * index + 2], 9),
            )
            for index, limit in enumerate(self.config.limits)
        )
        return RateLimitStatus.of(key, limits)

    def stats(self) -> RateLimiterStats:
        """This process's counters; ``backend_errors`` counts its failed round trips."""
        return attrs.evolve(super().stats(), backend_errors=self.link.backend_errors)
