"""The decorator core shared by @retry and @circuit_breaker: forms, naming, metadata, targets."""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from conftest import Flavor

import hazina
from hazina.testing import instant_waits


@attrs.frozen
class Kind:
    """One hazina decorator under test, with the policy class it makes."""

    decorator: Callable[..., Any]
    policy_class: type[hazina.Retry] | type[hazina.CircuitBreaker]
    kind: str

    def __call__(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        """The decorator called with a name and/or options (typed, for class bodies)."""
        decorate: Callable[[Any], Any] = self.decorator(*args, **kwargs)
        return decorate


RETRY = Kind(hazina.retry, hazina.Retry, "retry")
BREAKER = Kind(hazina.circuit_breaker, hazina.CircuitBreaker, "circuit_breaker")


@pytest.fixture(params=[RETRY, BREAKER], ids=["retry", "circuit_breaker"])
def kind(request: pytest.FixtureRequest) -> Kind:
    """Run the test once for @retry and once for @circuit_breaker."""
    chosen: Kind = request.param
    return chosen


@pytest.fixture
def default_registry() -> Iterator[hazina.Registry]:
    """The process-wide default registry (on the system clock, so with instant retry waits),
    with every policy a test adds removed afterwards."""
    before = {(policy.kind, policy.name) for policy in hazina.registry}
    with instant_waits():
        yield hazina.registry
    for policy in list(hazina.registry):
        if (policy.kind, policy.name) not in before:
            hazina.registry.remove(policy.kind, policy.name)


def failures_seen(policy: Any) -> int:
    """How many calls ``policy`` saw end in a failure (a give-up for retry)."""
    stats = policy.stats()
    return int(stats.give_ups if isinstance(policy, hazina.Retry) else stats.failures)


def check_runs_through_policy(
    flavor: Flavor, fn: Any, good: tuple[Any, ...], expected: object, bad: tuple[Any, ...]
) -> None:
    """Call ``fn`` once with ``good`` args (expecting ``expected``) and once with failing ``bad``.

    The failing call proves the policy saw the error, which a sync wrapper around an async
    target would not.
    """
    assert flavor.call(fn, *good) == expected
    with pytest.raises(ValueError, match="bad"):
        flavor.call(fn, *bad)
    assert fn.policy.stats().calls == 2
    assert failures_seen(fn.policy) == 1


def checked(x: int) -> int:
    """Double ``x``, refusing negatives: the module-level target of naming tests."""
    if x < 0:
        raise ValueError("bad")
    return x * 2


async def achecked(x: int) -> int:
    """Double ``x`` asynchronously, refusing negatives."""
    return checked(x)


def target(flavor: Flavor) -> Callable[[int], Any]:
    """``checked`` or ``achecked``, by flavor."""
    return achecked if flavor.is_async else checked


# -- forms -----------------------------------------------------------------------------


def test_bare_form(kind: Kind, flavor: Flavor, default_registry: hazina.Registry) -> None:
    """The bare decorator wraps the function under a policy of its kind named after it."""

    def fn(x: int) -> int:
        return checked(x)

    async def afn(x: int) -> int:
        return checked(x)

    wrapped = kind.decorator(afn if flavor.is_async else fn)

    assert isinstance(wrapped.policy, kind.policy_class)
    local = "afn" if flavor.is_async else "fn"
    assert wrapped.policy.name == f"core.test_decorator_core.test_bare_form.<locals>.{local}"
    assert default_registry.get(kind.kind, wrapped.policy.name) is wrapped.policy
    check_runs_through_policy(flavor, wrapped, (2,), 4, (-1,))


def test_empty_call_form(kind: Kind, flavor: Flavor, default_registry: hazina.Registry) -> None:
    """The decorator called with no arguments behaves like the bare one."""
    wrapped = kind.decorator()(target(flavor))

    assert isinstance(wrapped.policy, kind.policy_class)
    assert (
        wrapped.policy.name == f"core.test_decorator_core.{'a' if flavor.is_async else ''}checked"
    )
    assert default_registry.get(kind.kind, wrapped.policy.name) is wrapped.policy
    check_runs_through_policy(flavor, wrapped, (2,), 4, (-1,))


def test_options_without_a_name(kind: Kind, flavor: Flavor, registry: hazina.Registry) -> None:
    """Keyword options without a name give the default name and the options."""
    wrapped = kind.decorator(registry=registry)(target(flavor))

    assert wrapped.policy.name == f"{__name__}.{target(flavor).__qualname__}"
    assert registry.get(kind.kind, wrapped.policy.name) is wrapped.policy
    check_runs_through_policy(flavor, wrapped, (2,), 4, (-1,))


def test_named_form(kind: Kind, flavor: Flavor, registry: hazina.Registry) -> None:
    """A name as first argument names the policy, whatever the function is called."""
    options: dict[str, Any] = {"attempts": 4} if kind is RETRY else {"open_for": 4}
    wrapped = kind.decorator("payments", registry=registry, **options)(target(flavor))

    assert wrapped.policy.name == "payments"
    assert registry.get(kind.kind, "payments") is wrapped.policy
    assert next(iter(options.values())) in attrs.asdict(wrapped.policy.config).values()
    check_runs_through_policy(flavor, wrapped, (2,), 4, (-1,))


def test_default_name_is_module_and_qualified_name(kind: Kind, registry: hazina.Registry) -> None:
    """A module-level function's policy is named "<module>.<qualname>"."""
    wrapped = kind.decorator(registry=registry)(checked)

    assert wrapped.policy.name == "core.test_decorator_core.checked"
    assert wrapped.policy.name == f"{checked.__module__}.{checked.__qualname__}"


def test_default_name_of_a_method_includes_the_class(kind: Kind, registry: hazina.Registry) -> None:
    """A method's policy is named after the module, class and method."""

    class Service:
        @kind(registry=registry)
        def fetch(self) -> None:
            """A method."""

    assert Service.fetch.policy.name == (
        f"{__name__}.test_default_name_of_a_method_includes_the_class.<locals>.Service.fetch"
    )


@pytest.mark.parametrize("first", [42, 3.5, b"payments", ["payments"]])
def test_a_first_argument_neither_name_nor_callable_is_refused(kind: Kind, first: object) -> None:
    """A first argument that is neither a str nor a callable raises TypeError at once."""
    with pytest.raises(TypeError, match=re.escape(repr(first))):
        kind.decorator(first)


# -- metadata ----------------------------------------------------------------------------


def sync_fetch(url: str, *, deadline: float = 1.0, retries: int | None = None) -> bytes:
    """Fetch ``url`` synchronously."""
    return url.encode()


async def async_fetch(url: str, *, deadline: float = 1.0, retries: int | None = None) -> bytes:
    """Fetch ``url`` asynchronously."""
    return url.encode()


@pytest.mark.parametrize("original", [sync_fetch, async_fetch], ids=["def", "async def"])
def test_wrapper_keeps_the_function_metadata(
    kind: Kind, registry: hazina.Registry, original: Callable[..., Any]
) -> None:
    """The wrapper keeps name, qualname, doc, module, __wrapped__, signature and sync-ness."""
    wrapped = kind.decorator("fetch", registry=registry)(original)

    assert wrapped.__name__ == original.__name__
    assert wrapped.__qualname__ == original.__qualname__
    assert wrapped.__doc__ == original.__doc__
    assert wrapped.__module__ == original.__module__
    assert wrapped.__wrapped__ is original
    assert inspect.signature(wrapped) == inspect.signature(original)
    assert inspect.iscoroutinefunction(wrapped) is inspect.iscoroutinefunction(original)
    assert inspect.iscoroutinefunction(wrapped) is (original is async_fetch)
    # The original itself is left alone.
    assert not hasattr(original, "policy")


def test_each_layer_of_a_stack_exposes_its_own_policy(
    flavor: Flavor, registry: hazina.Registry
) -> None:
    """In a stack, the outer wrapper's policy is the outer one and the inner's the inner."""
    retried: Any = hazina.retry("outer", registry=registry, attempts=2)(
        hazina.circuit_breaker("inner", registry=registry)(target(flavor))
    )
    guarded: Any = hazina.circuit_breaker("outer", registry=registry)(
        hazina.retry("inner", registry=registry, attempts=2)(target(flavor))
    )

    assert isinstance(retried.policy, hazina.Retry)
    assert retried.policy.name == "outer"
    assert isinstance(retried.__wrapped__.policy, hazina.CircuitBreaker)
    assert retried.__wrapped__.policy.name == "inner"
    assert isinstance(guarded.policy, hazina.CircuitBreaker)
    assert isinstance(guarded.__wrapped__.policy, hazina.Retry)
    assert inspect.signature(retried) == inspect.signature(target(flavor))
    assert inspect.iscoroutinefunction(retried) is flavor.is_async
    # Every attempt of the outer retry is seen by the inner breaker.
    with pytest.raises(ValueError, match="bad"):
        flavor.call(retried, -1)
    assert retried.__wrapped__.policy.stats().failures == 2
    assert retried.policy.stats().give_ups == 1


# -- methods -----------------------------------------------------------------------------


class Account:
    """Instances with their own state, to see that ``self`` arrives intact."""

    def __init__(self, owner: str) -> None:
        self.owner = owner

    def greet(self, greeting: str) -> str:
        if greeting == "bad":
            raise ValueError("bad")
        return f"{greeting}, {self.owner}"

    async def agreet(self, greeting: str) -> str:
        return self.greet(greeting)


def test_instance_methods_receive_their_own_instance(
    kind: Kind, flavor: Flavor, registry: hazina.Registry
) -> None:
    """A decorated method binds like the original: each instance gets itself as self."""

    class Decorated(Account):
        greet = kind.decorator("greet", registry=registry)(Account.greet)
        agreet = kind.decorator("agreet", registry=registry)(Account.agreet)

    name = "agreet" if flavor.is_async else "greet"
    alice, bob = Decorated("alice"), Decorated("bob")

    assert flavor.call(getattr(alice, name), "hi") == "hi, alice"
    assert flavor.call(getattr(bob, name), greeting="hello") == "hello, bob"
    assert flavor.call(getattr(Decorated, name), bob, "hey") == "hey, bob"
    with pytest.raises(ValueError, match="bad"):
        flavor.call(getattr(alice, name), "bad")
    policy = getattr(alice, name).policy
    assert policy is getattr(bob, name).policy
    assert policy is getattr(Decorated, name).policy
    assert policy.stats().calls == 4
    assert failures_seen(policy) == 1


def test_instance_methods_decorated_in_the_class_body(
    kind: Kind, flavor: Flavor, registry: hazina.Registry
) -> None:
    """The usual spelling, a decorator over a method in the class body, binds self."""

    class Greeter:
        def __init__(self, owner: str) -> None:
            self.owner = owner

        @kind(registry=registry)
        def greet(self, greeting: str) -> str:
            return f"{greeting}, {self.owner}"

        @kind(registry=registry)
        async def agreet(self, greeting: str) -> str:
            return f"{greeting}, {self.owner}"

    name = "agreet" if flavor.is_async else "greet"

    assert flavor.call(getattr(Greeter("alice"), name), "hi") == "hi, alice"
    assert flavor.call(getattr(Greeter("bob"), name), "hi") == "hi, bob"
    assert inspect.iscoroutinefunction(Greeter("x").agreet)
    assert not inspect.iscoroutinefunction(Greeter("x").greet)


def make_class_and_static_methods(kind: Kind, registry: hazina.Registry) -> type[Any]:
    """A class whose class and static methods are decorated in both orders, sync and async."""
    decorate = kind

    class Factory:
        tag = "base"

        @decorate("cls_above", registry=registry)
        @classmethod
        def cls_above(cls, x: int) -> str:
            if x < 0:
                raise ValueError("bad")
            return f"{cls.tag}:{x}"

        @classmethod
        @decorate("cls_below", registry=registry)
        def cls_below(cls, x: int) -> str:
            if x < 0:
                raise ValueError("bad")
            return f"{cls.tag}:{x}"

        @decorate("acls_above", registry=registry)
        @classmethod
        async def acls_above(cls, x: int) -> str:
            if x < 0:
                raise ValueError("bad")
            return f"{cls.tag}:{x}"

        @classmethod
        @decorate("acls_below", registry=registry)
        async def acls_below(cls, x: int) -> str:
            if x < 0:
                raise ValueError("bad")
            return f"{cls.tag}:{x}"

        @decorate("static_above", registry=registry)
        @staticmethod
        def static_above(x: int) -> str:
            if x < 0:
                raise ValueError("bad")
            return f"static:{x}"

        @staticmethod
        @decorate("static_below", registry=registry)
        def static_below(x: int) -> str:
            if x < 0:
                raise ValueError("bad")
            return f"static:{x}"

        @decorate("astatic_above", registry=registry)
        @staticmethod
        async def astatic_above(x: int) -> str:
            if x < 0:
                raise ValueError("bad")
            return f"static:{x}"

        @staticmethod
        @decorate("astatic_below", registry=registry)
        async def astatic_below(x: int) -> str:
            if x < 0:
                raise ValueError("bad")
            return f"static:{x}"

    return Factory


@pytest.mark.parametrize("order", ["above", "below"])
def test_classmethods_in_either_decorator_order(
    kind: Kind, flavor: Flavor, registry: hazina.Registry, order: str
) -> None:
    """A classmethod decorated above or below @classmethod gets the (sub)class as cls."""
    factory = make_class_and_static_methods(kind, registry)

    class Sub(factory):  # type: ignore[valid-type, misc]
        tag = "sub"

    name = f"{'a' if flavor.is_async else ''}cls_{order}"

    assert isinstance(factory.__dict__[name], classmethod)
    assert flavor.call(getattr(factory, name), 1) == "base:1"
    assert flavor.call(getattr(factory(), name), 2) == "base:2"
    assert flavor.call(getattr(Sub, name), 3) == "sub:3"
    with pytest.raises(ValueError, match="bad"):
        flavor.call(getattr(factory, name), -1)
    policy = getattr(factory, name).policy
    assert isinstance(policy, kind.policy_class)
    assert policy.name == name
    assert policy.stats().calls == 4
    assert failures_seen(policy) == 1
    assert inspect.iscoroutinefunction(getattr(factory, name)) is flavor.is_async


@pytest.mark.parametrize("order", ["above", "below"])
def test_staticmethods_in_either_decorator_order(
    kind: Kind, flavor: Flavor, registry: hazina.Registry, order: str
) -> None:
    """A staticmethod decorated above or below @staticmethod gets no instance or class."""
    factory = make_class_and_static_methods(kind, registry)
    name = f"{'a' if flavor.is_async else ''}static_{order}"

    assert isinstance(factory.__dict__[name], staticmethod)
    assert flavor.call(getattr(factory, name), 1) == "static:1"
    assert flavor.call(getattr(factory(), name), 2) == "static:2"
    with pytest.raises(ValueError, match="bad"):
        flavor.call(getattr(factory(), name), -1)
    policy = getattr(factory, name).policy
    assert isinstance(policy, kind.policy_class)
    assert policy.stats().calls == 3
    assert failures_seen(policy) == 1
    assert inspect.iscoroutinefunction(getattr(factory, name)) is flavor.is_async


@pytest.mark.parametrize("wrapper", [classmethod, staticmethod])
def test_default_name_looks_through_classmethod_and_staticmethod(
    kind: Kind, registry: hazina.Registry, wrapper: type[Any]
) -> None:
    """Decorating a classmethod/staticmethod object names the policy after its function."""

    def method(*args: object) -> None:
        """Does nothing."""

    wrapped = kind.decorator(registry=registry)(wrapper(method))

    assert isinstance(wrapped, wrapper)
    assert wrapped.__func__.policy.name == f"{__name__}.{method.__qualname__}"


# -- other callables ---------------------------------------------------------------------


class Doubler:
    """A callable object that records the arguments it gets."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> int:
        self.seen.append(args)
        if args[-1] < 0:
            raise ValueError("bad")
        return int(args[-1]) * 2


class AsyncDoubler(Doubler):
    """A callable object whose ``__call__`` is a coroutine function."""

    async def __call__(self, *args: Any) -> int:  # type: ignore[override]
        return super().__call__(*args)


def make_doubler(flavor: Flavor) -> Doubler:
    """A sync or async callable object, by flavor."""
    return AsyncDoubler() if flavor.is_async else Doubler()


def test_callable_object(kind: Kind, flavor: Flavor, registry: hazina.Registry) -> None:
    """A callable object (sync or async __call__) runs under the policy with its own args."""
    doubler = make_doubler(flavor)
    wrapped = kind.decorator("doubler", registry=registry)(doubler)

    check_runs_through_policy(flavor, wrapped, (2,), 4, (-1,))
    assert doubler.seen[0] == (2,)
    assert wrapped.__wrapped__ is doubler


def test_callable_object_in_a_class_body_is_not_bound(
    kind: Kind, flavor: Flavor, registry: hazina.Registry
) -> None:
    """A decorated callable object stored on a class does not get the instance as an argument."""
    doubler = make_doubler(flavor)

    class Holder:
        double = kind.decorator("doubler", registry=registry)(doubler)

    check_runs_through_policy(flavor, Holder().double, (2,), 4, (-1,))
    assert flavor.call(Holder.double, 5) == 10
    assert doubler.seen[0] == (2,)
    assert doubler.seen[-1] == (5,)
    assert Holder().double.policy is Holder.double.policy


def test_functools_partial(kind: Kind, flavor: Flavor, registry: hazina.Registry) -> None:
    """A functools.partial of a sync or async function runs under the policy."""

    def scale(factor: int, x: int) -> int:
        return factor * checked(x) // 2

    async def ascale(factor: int, x: int) -> int:
        return scale(factor, x)

    partial = functools.partial(ascale if flavor.is_async else scale, 3)
    wrapped = kind.decorator("scaled", registry=registry)(partial)

    check_runs_through_policy(flavor, wrapped, (2,), 6, (-1,))


@pytest.mark.parametrize(
    "target",
    [functools.partial(max, 1), Doubler()],
    ids=["partial", "callable object"],
)
def test_unnamed_target_without_a_stable_name_is_refused(
    kind: Kind, registry: hazina.Registry, target: Callable[..., Any]
) -> None:
    """Without a name, a target whose name would come from its repr is refused, asking for one."""
    with pytest.raises(hazina.ConfigurationError, match="stable policy name"):
        kind.decorator(registry=registry)(target)
    assert len(registry) == 0


def test_builtin(kind: Kind, registry: hazina.Registry) -> None:
    """A builtin such as len runs under the policy, named "builtins.len" by default."""
    wrapped = kind.decorator(registry=registry)(len)

    assert wrapped([1, 2, 3]) == 3
    with pytest.raises(TypeError):
        wrapped(5)
    assert wrapped.policy.name == "builtins.len"
    assert wrapped.policy.stats().calls == 2
    assert failures_seen(wrapped.policy) == 1


# -- refused targets ---------------------------------------------------------------------


def generator(n: int) -> Iterator[int]:
    """A generator function."""
    yield from range(n)


async def async_generator(n: int) -> Any:
    """An async generator function."""
    for i in range(n):
        yield i


@pytest.mark.parametrize("original", [generator, async_generator], ids=["gen", "async gen"])
@pytest.mark.parametrize("named", [True, False], ids=["named", "unnamed"])
def test_generator_functions_are_refused(
    kind: Kind, registry: hazina.Registry, original: Callable[..., Any], named: bool
) -> None:
    """Generator and async generator functions raise TypeError at decoration time."""
    decorator = kind("gen", registry=registry) if named else kind(registry=registry)

    with pytest.raises(TypeError, match="generator"):
        decorator(original)


@pytest.mark.parametrize("original", [generator, async_generator], ids=["gen", "async gen"])
def test_generator_functions_are_refused_by_the_bare_form(
    kind: Kind, original: Callable[..., Any], default_registry: hazina.Registry
) -> None:
    """The bare decorator refuses generator functions with TypeError too."""
    with pytest.raises(TypeError, match="generator"):
        kind.decorator(original)


@pytest.mark.parametrize("refused", [generator, async_generator, 42], ids=["gen", "agen", "int"])
def test_a_refused_decoration_registers_no_policy(
    kind: Kind, registry: hazina.Registry, refused: Any
) -> None:
    """Regression: a target refused with TypeError used to leave its policy registered."""
    options: dict[str, Any] = {"attempts": 5} if kind is RETRY else {"open_for": 5}
    with pytest.raises(TypeError):
        kind("payments", registry=registry, **options)(refused)

    assert len(registry) == 0


class GeneratorCall:
    """A callable object whose ``__call__`` is a generator function."""

    def __call__(self, n: int) -> Iterator[int]:
        yield from range(n)


@pytest.mark.parametrize(
    "refused",
    [functools.partial(generator, 3), GeneratorCall(), functools.partial(async_generator, 3)],
    ids=["partial", "callable object", "partial of async gen"],
)
@pytest.mark.parametrize(
    "decorator", [hazina.retry, hazina.cached, hazina.circuit_breaker], ids=lambda d: d.__name__
)
def test_generators_behind_a_partial_or_a_call_method_are_refused(
    decorator: Callable[..., Any], registry: hazina.Registry, refused: Any
) -> None:
    """Regression (issue 10): a partial of a generator function failed with AttributeError
    and a callable object whose ``__call__`` yields was cached (its second caller got an
    exhausted generator); both are refused with a TypeError saying why."""
    with pytest.raises(TypeError, match="generator function"):
        decorator("gen", registry=registry)(refused)
    assert len(registry) == 0


LAMBDA_DECORATORS = [hazina.retry, hazina.circuit_breaker, hazina.cached]
# Module-level, as the issue found them: a lambda nested in a function was refused already.
plus_one = lambda x: x + 1  # noqa: E731
plus_two = lambda x: x + 2  # noqa: E731


@pytest.mark.parametrize("decorator", LAMBDA_DECORATORS, ids=lambda d: d.__name__)
def test_a_bare_decorated_lambda_is_refused(
    decorator: Callable[..., Any], default_registry: hazina.Registry
) -> None:
    """Regression (issue 10): two lambdas decorated without a name shared one policy named
    ``<lambda>`` (two cached lambdas returned each other's results); without a name a
    lambda is refused, asking for one."""
    before = len(default_registry)

    with pytest.raises(hazina.ConfigurationError, match="lambda"):
        decorator(plus_one)
    with pytest.raises(hazina.ConfigurationError, match="lambda"):
        decorator()(plus_two)
    with pytest.raises(hazina.ConfigurationError, match="lambda"):
        decorator(lambda x: x + 3)
    assert len(default_registry) == before


@pytest.mark.parametrize("decorator", LAMBDA_DECORATORS, ids=lambda d: d.__name__)
def test_a_named_lambda_is_decorated(
    decorator: Callable[..., Any], registry: hazina.Registry
) -> None:
    """Given a name, a lambda is decorated like any function."""
    plus_one = decorator("plus-one", registry=registry)(lambda x: x + 1)

    assert plus_one(1) == 2
    assert plus_one.policy.name == "plus-one"


class SyncCallReturningCoroutine:
    """A callable object whose plain ``__call__`` returns a coroutine."""

    def __call__(self, x: int) -> Any:
        return achecked(x)


def test_a_partial_of_a_callable_object_with_an_async_call_is_async(
    kind: Kind, registry: hazina.Registry
) -> None:
    """Regression (issue 10): a partial of an object whose ``__call__`` is ``async def`` was
    taken for sync, so the policy saw a coroutine object instead of its outcome; it is now
    decorated as async and sees the error the coroutine raises."""
    wrapped = kind.decorator("doubled", registry=registry)(functools.partial(AsyncDoubler()))

    with asyncio.Runner() as runner:
        check_runs_through_policy(Flavor(True, runner), wrapped, (2,), 4, (-1,))


def test_a_sync_callable_returning_a_coroutine_is_refused_clearly(
    kind: Kind, registry: hazina.Registry
) -> None:
    """Regression (issue 10): an object whose plain ``__call__`` returns a coroutine was run
    as sync, so the policy counted a coroutine object as a success; not knowable when it is
    decorated, it is refused with a TypeError at the first call, which the policy counts as
    neither a failure nor a retryable error."""
    wrapped = kind.decorator("coro", registry=registry)(SyncCallReturningCoroutine())

    with pytest.raises(TypeError, match="returned an awaitable"):
        wrapped(2)

    stats = wrapped.policy.stats()
    if kind is RETRY:
        assert (stats.calls, stats.attempts, stats.successes) == (1, 1, 0)
    else:
        assert (stats.failures, stats.successes) == (0, 0)
