"""@cached and the Cache policy: values, keys, invalidation, the policy API, stats, logging.

Every behavioural scenario runs sync and async through the ``flavor`` fixture unless it
is inherently one of them. Expiry, eviction and concurrency have modules of their own
(``test_expiry.py``, ``test_eviction.py``, ``test_concurrency.py`` beside this one).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

import hazina
from hazina import CacheStats
from hazina._core import registry as _registry

if TYPE_CHECKING:
    from conftest import Flavor

Cached = hazina.CachedFunction[..., Any]

#: Real seconds a thread may take before the test calls it stuck.
TIMEOUT = 5.0


class Body:
    """A function body that records every run and returns what ``result`` makes of the args."""

    def __init__(self, result: Callable[..., Any] = lambda *args, **kwargs: args) -> None:
        self.result = result
        self.runs: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.runs.append((args, kwargs))
        return self.result(*args, **kwargs)


def cached(
    flavor: Flavor,
    registry: hazina.Registry,
    body: Callable[..., Any],
    name: str = "c",
    **config: Any,
) -> Cached:
    """``body`` as a sync or async function cached in ``registry``'s cache ``name``."""
    decorate: Any = hazina.cached(name, registry=registry, **config)
    fn: Cached = decorate(flavor.define(body))
    return fn


def stats(
    hits: int = 0,
    misses: int = 0,
    loads: int = 0,
    load_errors: int = 0,
    coalesced: int = 0,
    evictions: int = 0,
    expirations: int = 0,
    size: int = 0,
) -> CacheStats:
    """A stats snapshot with ``hit_rate`` derived from hits and misses."""
    return CacheStats(
        hits=hits,
        misses=misses,
        hit_rate=hits / (hits + misses) if hits + misses else 0.0,
        loads=loads,
        load_errors=load_errors,
        coalesced=coalesced,
        evictions=evictions,
        expirations=expirations,
        size=size,
    )


class Boom(Exception):
    """The dependency failed."""


# -- values ---------------------------------------------------------------------------


def test_repeated_call_is_served_from_the_cache(flavor: Flavor, registry: hazina.Registry) -> None:
    """The second call with the same argument returns the first result without running."""
    body = Body(lambda x: {"value": x})
    fn = cached(flavor, registry, body)

    first = flavor.call(fn, 1)
    second = flavor.call(fn, 1)

    assert first == {"value": 1}
    assert second is first
    assert len(body.runs) == 1
    assert fn.policy.stats() == stats(hits=1, misses=1, loads=1, size=1)


def test_different_arguments_have_different_entries(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """Each distinct argument runs the function once."""
    body = Body(lambda x: x * 10)
    fn = cached(flavor, registry, body)

    assert [flavor.call(fn, x) for x in (1, 2, 1, 2, 3)] == [10, 20, 10, 20, 30]
    assert [args for args, _ in body.runs] == [(1,), (2,), (3,)]


def test_none_is_cached_like_any_value(flavor: Flavor, registry: hazina.Registry) -> None:
    """A function returning None runs once; None is a value, not a miss."""
    body = Body(lambda: None)
    fn = cached(flavor, registry, body)

    assert flavor.call(fn) is None
    assert flavor.call(fn) is None
    assert len(body.runs) == 1
    assert fn.policy.stats().hits == 1


def test_exceptions_are_not_cached(flavor: Flavor, registry: hazina.Registry) -> None:
    """A call that raises stores nothing: the next call runs the function again."""
    outcomes: list[Any] = [Boom("first"), Boom("second"), "fine"]

    def body() -> Any:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    fn = cached(flavor, registry, body)

    with pytest.raises(Boom, match="first"):
        flavor.call(fn)
    with pytest.raises(Boom, match="second"):
        flavor.call(fn)
    assert flavor.call(fn) == "fine"
    assert flavor.call(fn) == "fine"
    assert fn.policy.stats() == stats(hits=1, misses=3, loads=3, load_errors=2, size=1)


@pytest.mark.asyncio
async def test_async_caches_the_awaited_value_not_the_coroutine(
    registry: hazina.Registry,
) -> None:
    """An async function's awaited result is cached; awaiting it again never reuses a coroutine."""
    runs = 0

    @hazina.cached("c", registry=registry)
    async def fetch(x: int) -> int:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0)
        return x + 1

    assert await fetch(1) == 2
    assert await fetch(1) == 2
    assert runs == 1
    assert fetch.policy.get((1,)) == 2


def test_sync_function_returning_a_coroutine_is_refused(registry: hazina.Registry) -> None:
    """A plain function that returns a coroutine object raises instead of caching it."""

    async def work() -> int:
        return 1

    @hazina.cached("c", registry=registry)
    def wrong() -> Any:
        return work()

    with pytest.raises(TypeError, match="coroutine"):
        wrong()
    assert wrong.policy.stats().size == 0


@pytest.mark.asyncio
async def test_async_function_whose_awaited_value_is_a_coroutine_is_refused(
    registry: hazina.Registry,
) -> None:
    """Regression (cache review): an async function whose awaited value is itself a coroutine
    (a forgotten await) was not refused; now it is, as set() and the sync path refuse one."""

    async def inner() -> int:
        return 1

    @hazina.cached("co", registry=registry)
    async def forgot_await(key: int) -> Any:
        return inner()  # a bug in the user's code: the coroutine itself is returned

    value: Any = None
    try:
        with pytest.raises(TypeError, match="coroutine"):
            value = await forgot_await(1)
    finally:
        if inspect.iscoroutine(value):
            value.close()
        forgot_await.cache_clear()


# -- keys -------------------------------------------------------------------------------


def test_keyword_order_does_not_matter(flavor: Flavor, registry: hazina.Registry) -> None:
    """The same keyword arguments in another order use the same entry."""
    body = Body(lambda a, b: a - b)
    fn = cached(flavor, registry, body)

    assert flavor.call(fn, a=5, b=2) == 3
    assert flavor.call(fn, b=2, a=5) == 3
    assert len(body.runs) == 1


def test_keyword_values_are_part_of_the_key(flavor: Flavor, registry: hazina.Registry) -> None:
    """Different keyword values are different entries, and never collide with positionals."""
    body = Body(lambda *args, **kwargs: (args, sorted(kwargs.items())))
    fn = cached(flavor, registry, body)

    flavor.call(fn, a=1)
    flavor.call(fn, a=2)
    flavor.call(fn, "a", 1)
    flavor.call(fn, ("a", 1))

    assert len(body.runs) == 4


def test_positional_and_keyword_spellings_are_different_entries(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """f(1) and f(x=1) are keyed apart, as functools.lru_cache does (no signature binding)."""
    body = Body(lambda x: x)
    fn = cached(flavor, registry, body)

    flavor.call(fn, 1)
    flavor.call(fn, x=1)

    assert len(body.runs) == 2


def test_equal_values_of_different_types_share_an_entry_by_default(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """Without typed, 1 and 1.0 are equal keys."""
    body = Body(lambda x: repr(x))
    fn = cached(flavor, registry, body)

    assert flavor.call(fn, 1) == "1"
    assert flavor.call(fn, 1.0) == "1"
    assert len(body.runs) == 1


def test_typed_keeps_equal_values_of_different_types_apart(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """With typed=True, 1, 1.0 and True (and keyword values alike) are three entries."""
    body = Body(lambda x=None, y=None: repr(x if y is None else y))
    fn = cached(flavor, registry, body, typed=True)

    assert [flavor.call(fn, v) for v in (1, 1.0, True, 1)] == ["1", "1.0", "True", "1"]
    assert [flavor.call(fn, y=v) for v in (1, 1.0, 1)] == ["1", "1.0", "1"]
    assert len(body.runs) == 5


def test_custom_key_function(flavor: Flavor, registry: hazina.Registry) -> None:
    """key= decides the entry: calls it maps to one key share it, and the policy API sees it."""
    body = Body(lambda user, verbose=False: f"profile of {user['id']}")
    fn = cached(flavor, registry, body, key=lambda user, verbose=False: user["id"])

    assert flavor.call(fn, {"id": 7, "name": "a"}) == "profile of 7"
    assert flavor.call(fn, {"id": 7, "name": "b"}, verbose=True) == "profile of 7"
    assert len(body.runs) == 1
    assert fn.policy.get(7) == "profile of 7"


def test_unhashable_argument_is_named_and_key_suggested(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A list argument raises TypeError naming the parameter and suggesting key=."""

    def total(prices: list[int], *, currency: str = "EUR") -> str:
        return f"{sum(prices)} {currency}"

    async def async_total(prices: list[int], *, currency: str = "EUR") -> str:
        return total(prices, currency=currency)

    decorate: Any = hazina.cached("totals", registry=registry)
    fn: Cached = decorate(async_total if flavor.is_async else total)

    with pytest.raises(TypeError) as raised:
        flavor.call(fn, [1, 2])

    message = str(raised.value)
    assert "'prices'" in message
    assert "key=" in message
    assert "'totals'" in message
    assert "list" in message


def test_unhashable_keyword_and_extra_arguments_are_named(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """The culprit is named whether passed by keyword or through *args."""

    def body(first: int, *rest: object, **options: object) -> int:
        return first

    async def async_body(first: int, *rest: object, **options: object) -> int:
        return first

    decorate: Any = hazina.cached("c", registry=registry)
    fn: Cached = decorate(async_body if flavor.is_async else body)

    with pytest.raises(TypeError, match="argument 'tags'"):
        flavor.call(fn, 1, tags={"a"})
    with pytest.raises(TypeError, match=r"argument '\*args\[1\]'"):
        flavor.call(fn, 1, 2, {"k": "v"})
    assert fn.policy.stats().loads == 0


def test_unhashable_custom_key_blames_the_key_function(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A key= function returning something unhashable is what the TypeError points at."""
    fn = cached(flavor, registry, Body(), key=lambda x: [x])

    with pytest.raises(TypeError, match="key= function returned an unhashable key"):
        flavor.call(fn, 1)


def test_type_error_from_comparing_keys_is_not_blamed_on_hashability(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A hashable argument whose __eq__ raises TypeError keeps its own error."""

    class Odd:
        def __hash__(self) -> int:
            return 1

        def __eq__(self, other: object) -> bool:
            raise TypeError("odd comparison")

    fn = cached(flavor, registry, Body(lambda odd: "v"))
    flavor.call(fn, Odd())  # stored; the next lookup's hash collides with it

    with pytest.raises(TypeError, match="odd comparison"):
        flavor.call(fn, Odd())


def test_methods_keep_instances_apart(flavor: Flavor, registry: hazina.Registry) -> None:
    """Two instances calling a cached method with the same argument get their own entries."""
    body = Body(lambda self, scale: self.side * scale)

    class Square:
        area = cached(flavor, registry, body)

        def __init__(self, side: int) -> None:
            self.side = side

    small, big = Square(2), Square(5)

    assert flavor.call(small.area, 3) == 6
    assert flavor.call(big.area, 3) == 15
    assert flavor.call(small.area, 3) == 6
    assert flavor.call(big.area, 3) == 15
    assert len(body.runs) == 2


def test_static_and_class_methods(flavor: Flavor, registry: hazina.Registry) -> None:
    """Cached static and class methods work in either decorator order, keyed by their args."""
    static_body = Body(lambda x: x * 2)
    class_body = Body(lambda cls, x: (cls.__name__, x))

    class Tools:
        double = staticmethod(cached(flavor, registry, static_body, name="double"))
        tag = classmethod(cached(flavor, registry, class_body, name="tag"))

    class Child(Tools):
        pass

    assert flavor.call(Tools.double, 4) == 8
    assert flavor.call(Tools().double, 4) == 8
    assert flavor.call(Tools.tag, 1) == ("Tools", 1)
    assert flavor.call(Child.tag, 1) == ("Child", 1)
    assert flavor.call(Tools().tag, 1) == ("Tools", 1)
    assert len(static_body.runs) == 1
    assert len(class_body.runs) == 2


def test_bound_method_decorated_directly_keeps_instances_apart(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """cached(...)(obj.method) keys by the instance too, so two objects never share entries."""
    body = Body(lambda self, x: (self.label, x))

    class Client:
        fetch = flavor.define(body)

        def __init__(self, label: str) -> None:
            self.label = label

    decorate: Any = hazina.cached("shared", registry=registry)
    a, b = Client("a"), Client("b")
    fetch_a: Cached = decorate(a.fetch)
    fetch_b: Cached = decorate(b.fetch)

    assert flavor.call(fetch_a, 1) == ("a", 1)
    assert flavor.call(fetch_b, 1) == ("b", 1)
    assert flavor.call(fetch_a, 1) == ("a", 1)
    assert len(body.runs) == 2
    assert fetch_a.policy is fetch_b.policy
    assert fetch_a.cache_invalidate(1) is True
    assert fetch_a.cache_invalidate(1) is False
    assert fetch_b.policy.stats().size == 1


def test_partial_is_cached_by_its_call_arguments(registry: hazina.Registry) -> None:
    """A functools.partial can be cached; its call arguments make the key."""
    body = Body(lambda base, x: base + x)
    fn: Cached = hazina.cached("p", registry=registry)(functools.partial(body, 100))

    assert fn(1) == 101
    assert fn(1) == 101
    assert len(body.runs) == 1
    assert fn.cache_invalidate(1) is True
    fn.cache_clear()
    assert fn.policy is registry.cache("p")


def test_functions_sharing_a_cache_name_share_entries(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """Two functions decorated with one cache name read each other's entries (by arguments)."""
    first = cached(flavor, registry, Body(lambda x: ("first", x)), name="shared")
    second = cached(flavor, registry, Body(lambda x: ("second", x)), name="shared")

    assert flavor.call(first, 1) == ("first", 1)
    assert flavor.call(second, 1) == ("first", 1)
    assert first.policy is second.policy


# -- invalidation ---------------------------------------------------------------------


def test_cache_invalidate_removes_only_that_entry(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """cache_invalidate(args) makes the next call with those args run again, and no other."""
    body = Body(lambda x, unit="m": f"{x}{unit}")
    fn = cached(flavor, registry, body)
    flavor.call(fn, 1)
    flavor.call(fn, 2, unit="km")

    assert fn.cache_invalidate(2, unit="km") is True
    assert fn.cache_invalidate(2, unit="km") is False
    flavor.call(fn, 1)
    flavor.call(fn, 2, unit="km")

    assert [args for args, _ in body.runs] == [(1,), (2,), (2,)]


def test_cache_invalidate_of_a_method_takes_the_instance(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A method's entry is invalidated by passing the instance first, bound or not."""
    body = Body(lambda self, x: x)

    class Repo:
        find: hazina.CachedFunction[[Repo, int], Any] = cached(flavor, registry, body)

    repo = Repo()
    flavor.call(repo.find, 1)
    flavor.call(repo.find, 2)

    # The instance is part of the key (and type checkers flag the missing instance).
    assert repo.find.cache_invalidate(1) is False  # type: ignore[arg-type, call-arg]
    assert repo.find.cache_invalidate(repo, 1) is True
    assert Repo.find.cache_invalidate(repo, 2) is True
    assert repo.find.policy.stats().size == 0


def test_cache_invalidate_with_an_unhashable_argument_explains(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """cache_invalidate names an unhashable argument like a call does."""

    def count(items: list[int]) -> int:
        return len(items)

    async def async_count(items: list[int]) -> int:
        return len(items)

    decorate: Any = hazina.cached("c", registry=registry)
    fn: Cached = decorate(async_count if flavor.is_async else count)

    with pytest.raises(TypeError, match=r"argument 'items' of .*count"):
        fn.cache_invalidate([1])


def test_cache_invalidate_follows_typed_and_key(flavor: Flavor, registry: hazina.Registry) -> None:
    """cache_invalidate builds the key the same way calls do, typed or custom."""
    typed = cached(flavor, registry, Body(), name="typed", typed=True)
    custom = cached(flavor, registry, Body(), name="custom", key=lambda x: f"k{x}")
    flavor.call(typed, 1)
    flavor.call(custom, 1)

    assert typed.cache_invalidate(1.0) is False
    assert typed.cache_invalidate(1) is True
    assert custom.cache_invalidate(1) is True
    assert custom.policy.get("k1") is None


def test_cache_clear_empties_the_cache(flavor: Flavor, registry: hazina.Registry) -> None:
    """cache_clear removes every entry; calls run again afterwards."""
    body = Body()
    fn = cached(flavor, registry, body)
    for x in range(3):
        flavor.call(fn, x)

    fn.cache_clear()

    assert fn.policy.stats().size == 0
    flavor.call(fn, 0)
    assert len(body.runs) == 4


# -- the policy API -------------------------------------------------------------------


def test_set_get_delete(registry: hazina.Registry) -> None:
    """set stores, get reads (or gives the default), delete removes and says if it did."""
    cache = registry.cache("api")

    assert cache.get("k") is None
    assert cache.get("k", "fallback") == "fallback"
    assert cache.set("k", None) is True
    assert cache.get("k", "fallback") is None
    assert cache.set("k", "v") is True
    assert cache.get("k") == "v"
    assert cache.delete("k") is True
    assert cache.delete("k") is False
    assert cache.get("k") is None
    assert cache.stats() == stats(hits=2, misses=3, size=0)


def test_policy_api_refuses_unhashable_keys_clearly(registry: hazina.Registry) -> None:
    """get, set, delete and get_or_set name the cache and the key when it is unhashable."""
    cache = registry.cache("api")
    key: Any = ["k"]

    for attempt in (
        lambda: cache.get(key),
        lambda: cache.set(key, 1),
        lambda: cache.delete(key),
        lambda: cache.get_or_set(key, lambda: 1),
    ):
        with pytest.raises(TypeError, match=r"cache 'api': key \['k'\] is unhashable"):
            attempt()


def test_decorated_function_and_policy_api_share_entries(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """A value set through the policy under a call's key is what the call returns."""
    body = Body(lambda x: "loaded")
    fn = cached(flavor, registry, body)

    fn.policy.set((5,), "preset")

    assert flavor.call(fn, 5) == "preset"
    assert body.runs == []


def test_get_or_set_runs_the_factory_once(registry: hazina.Registry) -> None:
    """get_or_set calls the factory with no arguments on a miss only."""
    cache = registry.cache("api")
    factory = Body(lambda: "made")

    assert cache.get_or_set("k", factory) == "made"
    assert cache.get_or_set("k", factory) == "made"
    assert factory.runs == [((), {})]
    assert cache.stats() == stats(hits=1, misses=1, loads=1, size=1)


@pytest.mark.asyncio
async def test_aget_or_set_awaits_the_factory_once(registry: hazina.Registry) -> None:
    """aget_or_set awaits the factory on a miss and stores its result, not a coroutine."""
    cache = registry.cache("api")
    runs = 0

    async def factory() -> str:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0)
        return "made"

    assert await cache.aget_or_set("k", factory) == "made"
    assert await cache.aget_or_set("k", factory) == "made"
    assert runs == 1
    assert cache.get("k") == "made"


def test_get_or_set_does_not_cache_exceptions(registry: hazina.Registry) -> None:
    """A factory that raises stores nothing and counts a load error."""
    cache = registry.cache("api")

    def factory() -> str:
        raise Boom("no")

    with pytest.raises(Boom):
        cache.get_or_set("k", factory)

    assert cache.get("k", "absent") == "absent"
    assert cache.stats() == stats(misses=2, loads=1, load_errors=1)


def test_set_refuses_a_coroutine(registry: hazina.Registry) -> None:
    """Storing a coroutine object is refused: it could be awaited only once."""
    cache = registry.cache("api")

    async def work() -> None:
        return None

    with pytest.raises(TypeError, match="coroutine"):
        cache.set("k", work())
    assert cache.stats().size == 0


# -- registry, stats, reset -----------------------------------------------------------


def test_factory_returns_the_same_cache_and_refuses_another_configuration(
    registry: hazina.Registry,
) -> None:
    """registry.cache(name) get-or-creates; asking again with other options raises."""
    cache = registry.cache("users", ttl=60)

    assert registry.cache("users") is cache
    assert registry.cache("users", ttl=60, max_size=1024) is cache
    assert registry.get("cache", "users") is cache
    with pytest.raises(hazina.ConfigurationError, match="ttl=60"):
        registry.cache("users", ttl=30)


def _square(x: int) -> int:
    return x * x


def _cube(x: int) -> int:
    return x**3


def test_bare_decorator_names_the_cache_after_the_function(
    registry: hazina.Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """@cached and @cached() without a name use the default registry and the qualified name."""
    monkeypatch.setattr(_registry, "registry", registry)

    square = hazina.cached(_square)
    cube = hazina.cached()(_cube)

    assert square(3) == 9
    assert cube(2) == 8
    assert square.policy.name == f"{__name__}._square"
    assert registry.get("cache", f"{__name__}._cube") is cube.policy


def test_a_nested_function_needs_a_name(registry: hazina.Registry) -> None:
    """Without a name, a function defined inside another is refused: its closures would
    share one cache and return each other's results."""

    def make_adder(n: int) -> Any:
        @hazina.cached(registry=registry)
        def add(x: int) -> int:
            return x + n

        return add

    with pytest.raises(hazina.ConfigurationError, match="needs a name"):
        make_adder(1)
    assert len(registry) == 0


def test_closures_of_one_factory_no_longer_share_one_cache(registry: hazina.Registry) -> None:
    """Regression (cache review): closures of one factory, cached by default name, shared one
    cache and returned each other's results; now they must be named, and named apart they stay
    apart."""

    def make_unnamed(n: int) -> Any:
        @hazina.cached(registry=registry)
        def add(x: int) -> int:
            return x + n

        return add

    def make_named(n: int) -> Any:
        @hazina.cached(f"add-{n}", registry=registry)
        def add(x: int) -> int:
            return x + n

        return add

    with pytest.raises(hazina.ConfigurationError, match="needs a name"):
        make_unnamed(1)
    add_one, add_two = make_named(1), make_named(2)
    assert (add_one(5), add_two(5)) == (6, 7)


@pytest.mark.asyncio
async def test_async_closures_of_one_factory_no_longer_share_one_cache(
    registry: hazina.Registry,
) -> None:
    """Regression (cache review): the same for coroutine functions made by one factory, which
    now need a name too."""

    def make_unnamed(n: int) -> Any:
        @hazina.cached(registry=registry)
        async def add(x: int) -> int:
            return x + n

        return add

    with pytest.raises(hazina.ConfigurationError, match="needs a name"):
        make_unnamed(1)


def test_stats_appear_in_the_registry_snapshot(flavor: Flavor, registry: hazina.Registry) -> None:
    """registry.stats() holds the cache's CacheStats; snapshot() is plain JSON-ready data."""
    fn = cached(flavor, registry, Body(), name="users")
    flavor.call(fn, 1)
    flavor.call(fn, 1)

    assert registry.stats()["cache"]["users"] == stats(hits=1, misses=1, loads=1, size=1)
    snapshot = registry.snapshot()["cache"]["users"]
    assert snapshot["hit_rate"] == 0.5
    assert json.loads(json.dumps(snapshot)) == snapshot


def test_reset_empties_the_cache_and_zeroes_the_counters(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """reset() (or registry.reset()) forgets entries and counts; configuration is kept."""
    body = Body()
    fn = cached(flavor, registry, body, ttl=5)
    flavor.call(fn, 1)
    flavor.call(fn, 1)

    registry.reset()

    assert fn.policy.stats() == stats()
    assert fn.policy.config.ttl == 5
    flavor.call(fn, 1)
    assert len(body.runs) == 2
    assert fn.policy.stats() == stats(misses=1, loads=1, size=1)


def test_load_failing_after_reset_no_longer_counts_an_error_in_the_new_period(
    registry: hazina.Registry,
) -> None:
    """Regression (cache review): a load begun before reset() and failing after it counted a
    load error in the new period, so load_errors could exceed loads."""
    cache = registry.cache("c")
    started, release = threading.Event(), threading.Event()

    def factory() -> int:
        started.set()
        release.wait(TIMEOUT)
        raise Boom

    def call() -> None:
        with pytest.raises(Boom):
            cache.get_or_set("k", factory)

    thread = threading.Thread(target=call)
    thread.start()
    assert started.wait(TIMEOUT)
    cache.reset()
    release.set()
    thread.join(TIMEOUT)

    stats = cache.stats()
    assert stats.load_errors <= stats.loads


def test_policy_repr_and_kind(registry: hazina.Registry) -> None:
    """A cache says what it is and is listed under the "cache" kind."""
    cache = registry.cache("users")

    assert repr(cache) == "<Cache 'users'>"
    assert cache.kind == "cache"
    assert list(registry) == [cache]


# -- logging --------------------------------------------------------------------------


def test_hits_and_misses_are_logged_at_debug(
    flavor: Flavor, registry: hazina.Registry, caplog: pytest.LogCaptureFixture
) -> None:
    """With the hazina logger at DEBUG, each miss and hit is logged with cache and key."""
    caplog.set_level(logging.DEBUG, logger="hazina")
    fn = cached(flavor, registry, Body(), name="users")

    flavor.call(fn, 42)
    flavor.call(fn, 42)

    messages = [r.getMessage() for r in caplog.records if r.name == "hazina"]
    assert messages == ["cache 'users': miss for (42,)", "cache 'users': hit for (42,)"]


def test_nothing_is_formatted_while_debug_is_off(
    flavor: Flavor, registry: hazina.Registry, caplog: pytest.LogCaptureFixture
) -> None:
    """Below DEBUG, no record is made and no key is ever turned into text."""
    caplog.set_level(logging.INFO, logger="hazina")
    shown = 0

    class Key:
        def __repr__(self) -> str:
            nonlocal shown
            shown += 1
            return "Key()"

    fn = cached(flavor, registry, Body(lambda key: "v"))
    key = Key()
    for _ in range(3):
        flavor.call(fn, key)

    assert shown == 0
    assert [r for r in caplog.records if r.name == "hazina"] == []


def test_debug_switched_on_later_is_seen_from_the_next_miss(
    flavor: Flavor, registry: hazina.Registry, caplog: pytest.LogCaptureFixture
) -> None:
    """Debug logging enabled after decoration starts with the next miss, hits included."""
    caplog.set_level(logging.INFO, logger="hazina")
    fn = cached(flavor, registry, Body())
    flavor.call(fn, 1)

    caplog.set_level(logging.DEBUG, logger="hazina")
    flavor.call(fn, 2)
    flavor.call(fn, 2)

    messages = [r.getMessage() for r in caplog.records if r.name == "hazina"]
    assert messages == ["cache 'c': miss for (2,)", "cache 'c': hit for (2,)"]
