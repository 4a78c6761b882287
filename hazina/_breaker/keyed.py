"""Keyed breakers: one breaker state per key (a host, a tenant) under one policy.

Each key's state is a plain in-memory breaker of its own, held in a bounded
:class:`~hazina._core.keytable.KeyTable`. A call whose key's breaker is closed costs the
key function, one dict lookup and one lock-free counter bump (the key's, for its window);
the table is read without a lock and keys are not moved to the end on such calls.
Recency is read from the keys' completion counters instead, when room is needed (the
table's second chance), so the keys forgotten first are closed ones with nothing in
their window, then the idle ones.

Outcomes other than plain successes are counted in a :class:`~.tally.Tally` that every
key's breaker bumps too. Completed calls are the keys' own counters, summed when stats are
read; a key forgotten has its count folded in then, and the calls it still had running
are folded in when the last of them lets go of it (a finalizer), so forgetting a key
loses nothing from the stats.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any

from .._core.counters import Counter, read_counter
from .._core.keytable import KeyTable
from .records import (
    CLOSED,
    FORCED_OPEN,
    HALF_OPEN,
    OPEN,
    SUCCESS,
    CircuitState,
    CircuitStateChanged,
)
from .tally import Tally

if TYPE_CHECKING:
    from .policy import CircuitBreaker


def _nothing_to_remember(circuit: CircuitBreaker, now: float) -> bool:
    """Whether a key's breaker is as good as a new one: closed, no failure or slow call."""
    return circuit.is_clean(now)


def _touched(circuit: CircuitBreaker) -> bool:
    completed = read_counter(circuit.completions)
    if completed == circuit.seen_completions:
        return False
    circuit.seen_completions = completed
    return True


class Keyed:
    """The per-key states of a keyed breaker, and what its stats need of them."""

    def __init__(
        self, breaker: CircuitBreaker, make: Callable[[Hashable, Tally], CircuitBreaker]
    ) -> None:
        self.breaker = breaker
        self.tally = Tally()
        self.base = self.tally.read()
        #: Guards the table's changes; lookups on the hot path go without it.
        self.lock = threading.Lock()
        # Completions of the keys forgotten since the last reset (its generation).
        self._retired = 0
        self._retired_lock = threading.Lock()
        self._generation = 0
        #: Set by ``force_open()``: every key's state, and each new one, is forced open.
        self.forced = False
        self.table: KeyTable[CircuitBreaker] = KeyTable(
            breaker.config.max_keys,
            lambda key: self._make(make, key),
            _nothing_to_remember,
            _touched,
            self._forget,
        )

    def _make(
        self, make: Callable[[Hashable, Tally], CircuitBreaker], key: Hashable
    ) -> CircuitBreaker:
        circuit = make(key, self.tally)
        if self.forced:
            circuit.force_quietly()
        return circuit

    def _forget(self, circuit: CircuitBreaker) -> None:
        folded = read_counter(circuit.completions)
        with self._retired_lock:
            self._retired += folded
        weakref.finalize(circuit, self._fold_late, circuit.completions, folded, self._generation)

    def _fold_late(self, completions: Counter, folded: int, generation: int) -> None:
        late = read_counter(completions) - folded
        with self._retired_lock:
            if late and generation == self._generation:
                self._retired += late

    def completed(self) -> int:
        """Completed calls of every key since the last reset."""
        with self.lock:  # no key is forgotten (and folded in) while they are summed
            live = sum(read_counter(circuit.completions) for circuit in self.table.values())
            with self._retired_lock:
                return live + self._retired

    def circuit(self, key: Hashable) -> CircuitBreaker:
        """The breaker of ``key``, made (forgetting another if need be) when new."""
        try:
            with self.lock:
                circuit = self.table.obtain(key, self.breaker.clock.now())
                # Placed at the end just now, for a call about to complete: only calls
                # after that one count as uses since (see the table's second chance).
                circuit.seen_completions = read_counter(circuit.completions) + 1
                return circuit
        except TypeError as error:
            raise TypeError(
                f"circuit_breaker {self.breaker.name!r}: the key {key!r} is not hashable; "
                f"make the key function return a hashable value"
            ) from error

    def admit(self, key: Hashable) -> tuple[CircuitBreaker, int | None]:
        """Admit a call for ``key``: its breaker and probe, or raise ``CircuitOpenError``."""
        circuit = self.circuit(key)
        return circuit, circuit.admit()

    def record(
        self,
        key: Hashable,
        circuit: CircuitBreaker,
        outcome: int,
        probe: int | None,
        duration: float,
    ) -> None:
        """Record the outcome of a call that returned."""
        circuit.record(outcome, probe, duration)

    def record_error(
        self,
        key: Hashable,
        circuit: CircuitBreaker,
        error: BaseException,
        probe: int | None,
        duration: float,
    ) -> None:
        """Record a call that raised, with the breaker ``key`` has now.

        A call admitted while closed may outlive its key's place in the table; its error
        then counts for the key's new state, so no failure is lost.
        """
        if probe is None:
            circuit = self.circuit(key)
        circuit.record_error(error, probe, duration)

    def state_of(self, key: Hashable) -> CircuitState:
        try:
            circuit = self.table.get(key)
        except TypeError:
            self.circuit(key)  # raises the explained TypeError
            raise
        if circuit is None:
            return FORCED_OPEN if self.forced else CLOSED
        return circuit.state

    def circuits(self) -> list[CircuitBreaker]:
        with self.lock:
            return list(self.table.values())

    def open_keys(self) -> int:
        """How many keys are open or half-open now."""
        return sum(circuit.state in (OPEN, HALF_OPEN) for circuit in self.circuits())

    def force_open(self) -> None:
        """Every key's state forced open, quietly: the breaker reports it once."""
        with self.lock:
            self.forced = True
            for circuit in self.table.values():
                circuit.force_quietly()

    def clear(self) -> list[object]:
        """Forget every key and zero the counts; the closings to report."""
        with self.lock:
            circuits = list(self.table.values())
            self.table.clear()
            self.base = self.tally.read()
            with self._retired_lock:
                self._retired = 0
                self._generation += 1
            forced, self.forced = self.forced, False
        name, dry_run = self.breaker.name, self.breaker.config.dry_run
        if forced:
            return []  # the breaker's own forced_open -> closed says it
        return [
            CircuitStateChanged(
                name, circuit.stored_state, CLOSED, key=circuit.key, dry_run=dry_run
            )
            for circuit in circuits
            if circuit.stored_state is not CLOSED
        ]


# -- drivers: a closed key's call reads its state with no lock ---------------------------
# The rest (a new or forgotten key, a key not closed, a time window or slow-call rule)
# goes through the slow drivers below, which take the table's lock.


def keyed_sync_driver(
    breaker: CircuitBreaker, keyed: Keyed, fn: Callable[..., Any]
) -> Callable[..., Any]:
    """A plain function that calls ``fn`` through the breaker of its arguments' key."""
    key_of, get = breaker.config.key, keyed.table.entries.get
    # A big table is sharded (see KeyTable): a key's state is in its hash's shard.
    gets, mask = keyed.table.gets, keyed.table.mask
    slow, on_error = slow_sync_call(breaker, keyed, fn), keyed.record_error
    assert key_of is not None
    if breaker.config.slow_call_duration is not None or breaker.config.window == "time":

        def call_timed(*args: Any, **kwargs: Any) -> Any:
            return slow(key_of(*args, **kwargs), args, kwargs)

        return call_timed

    def call_through_breaker(*args: Any, **kwargs: Any) -> Any:
        key = key_of(*args, **kwargs)
        try:
            circuit = gets[hash(key) & mask](key) if mask else get(key)
        except TypeError:  # unhashable: the slow path explains
            circuit = None
        if circuit is None or circuit.stored_state is not CLOSED:
            return slow(key, args, kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            on_error(key, circuit, error, None, 0.0)
            raise
        next(circuit.completions)
        return result

    return call_through_breaker


def keyed_async_driver(
    breaker: CircuitBreaker, keyed: Keyed, fn: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    """An ``async def`` function that awaits ``fn`` through the breaker of its key."""
    key_of, get = breaker.config.key, keyed.table.entries.get
    # A big table is sharded (see KeyTable): a key's state is in its hash's shard.
    gets, mask = keyed.table.gets, keyed.table.mask
    slow, on_error = slow_async_call(breaker, keyed, fn), keyed.record_error
    assert key_of is not None
    if breaker.config.slow_call_duration is not None or breaker.config.window == "time":

        async def call_timed(*args: Any, **kwargs: Any) -> Any:
            return await slow(key_of(*args, **kwargs), args, kwargs)

        return call_timed

    async def call_through_breaker(*args: Any, **kwargs: Any) -> Any:
        key = key_of(*args, **kwargs)
        try:
            circuit = gets[hash(key) & mask](key) if mask else get(key)
        except TypeError:  # unhashable: the slow path explains
            circuit = None
        if circuit is None or circuit.stored_state is not CLOSED:
            return await slow(key, args, kwargs)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            on_error(key, circuit, error, None, 0.0)
            raise
        next(circuit.completions)
        return result

    return call_through_breaker


SlowCall = Callable[[Hashable, tuple[Any, ...], dict[str, Any]], Any]


def slow_sync_call(breaker: CircuitBreaker, keyed: Keyed, fn: Callable[..., Any]) -> SlowCall:
    """Call ``fn`` for ``key`` through its breaker, taking the table's lock; timed."""
    now = breaker.clock.now
    admit, complete, on_error = keyed.admit, keyed.record, keyed.record_error

    def call(key: Hashable, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        circuit, probe = admit(key)
        started = now()
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            on_error(key, circuit, error, probe, now() - started)
            raise
        complete(key, circuit, SUCCESS, probe, now() - started)
        return result

    return call


def slow_async_call(
    breaker: CircuitBreaker, keyed: Keyed, fn: Callable[..., Awaitable[Any]]
) -> SlowCall:
    """:func:`slow_sync_call` for ``async def`` functions."""
    now = breaker.clock.now
    admit, complete, on_error = keyed.admit, keyed.record, keyed.record_error

    async def call(key: Hashable, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        circuit, probe = admit(key)
        started = now()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            on_error(key, circuit, error, probe, now() - started)
            raise
        complete(key, circuit, SUCCESS, probe, now() - started)
        return result

    return call
