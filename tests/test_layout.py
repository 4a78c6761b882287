"""The package keeps the shape its architecture promises, so the next kind fits in as well."""

from __future__ import annotations

import ast
import re
import typing
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

import hazina
from hazina._breaker.config import CircuitBreakerOptions
from hazina._bulkhead.config import BulkheadOptions
from hazina._cache.config import CacheOptions
from hazina._fallback.config import FallbackOptions
from hazina._health.config import HealthCheckOptions
from hazina._hedge.config import HedgeOptions
from hazina._ratelimit.config import RateLimiterOptions
from hazina._retry.config import RetryOptions
from hazina._retry_budget.config import RetryBudgetOptions
from hazina._timeout.config import TimeoutOptions

PACKAGE = Path(hazina.__file__).resolve().parent
FEATURES = sorted(
    path.name
    for path in PACKAGE.iterdir()
    if path.is_dir()
    and path.name.startswith("_")
    and path.name not in {"_core", "_redis", "_http", "__pycache__"}
)
SHAPE = {"config", "records", "policy", "drivers", "decorator"}


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        dotted = ".".join(("hazina", *path.relative_to(PACKAGE).with_suffix("").parts))
        yield dotted, ast.parse(path.read_text(), str(path))


def _imported(module: str, node: ast.ImportFrom) -> str:
    """The absolute name of the module an ``ImportFrom`` inside ``module`` reads."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".")[: -node.level]
    return ".".join([*package, node.module] if node.module else package)


def test_every_feature_folder_has_the_same_files() -> None:
    """Each policy kind's folder holds config, records, policy, drivers and decorator."""
    assert FEATURES == [
        "_breaker",
        "_bulkhead",
        "_cache",
        "_chaos",
        "_fallback",
        "_health",
        "_hedge",
        "_ratelimit",
        "_retry",
        "_retry_budget",
        "_timeout",
    ]
    for feature in FEATURES:
        present = {path.stem for path in (PACKAGE / feature).glob("*.py")}
        assert present >= SHAPE, f"{feature} lacks {sorted(SHAPE - present)}"


def test_no_module_imports_a_private_name_from_another_folder() -> None:
    """What one folder uses of another is public within the package (no leading underscore)."""
    offences = []
    for module, tree in _modules():
        folder = module.split(".")[1]
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = _imported(module, node)
            if not source.startswith("hazina.") or source.split(".")[1] == folder:
                continue
            offences += [
                f"{module} imports {alias.name} from {source}"
                for alias in node.names
                if alias.name.startswith("_")
            ]
    assert offences == []


def test_the_registry_imports_every_kind_at_the_top_of_its_module() -> None:
    """No function-local imports in the registry: it knows the kinds, they do not know it."""
    tree = dict(_modules())["hazina._core.registry"]
    local = [
        ast.unparse(node)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    assert local == []


def test_no_policy_module_imports_the_registry() -> None:
    """Policies depend on their host (clock, emit), never on the registry that holds them."""
    for module, tree in _modules():
        if not module.endswith((".policy", ".drivers", ".config", ".records")):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert _imported(module, node) != "hazina._core.registry", module


OPTIONS = [
    (CircuitBreakerOptions, hazina.CircuitBreakerConfig),
    (RetryOptions, hazina.RetryConfig),
    (CacheOptions, hazina.CacheConfig),
    (RateLimiterOptions, hazina.RateLimiterConfig),
    (HealthCheckOptions, hazina.HealthCheckConfig),
    (RetryBudgetOptions, hazina.RetryBudgetConfig),
    (FallbackOptions, hazina.FallbackConfig),
    (HedgeOptions, hazina.HedgeConfig),
    (TimeoutOptions, hazina.TimeoutConfig),
    (BulkheadOptions, hazina.BulkheadConfig),
]


@pytest.mark.parametrize(
    ("options", "config"), OPTIONS, ids=[config.__name__ for _, config in OPTIONS]
)
def test_decorator_keywords_match_the_config_field_for_field(options: type, config: type) -> None:
    """A decorator's keyword TypedDict names every config field, with the same type.

    A field with a converter may accept more than it stores (``tags`` takes one string),
    so only its name is compared.
    """
    fields = {field.name: field for field in attrs.fields(config)}
    keywords = typing.get_type_hints(options)
    assert list(keywords) == list(fields)
    assert options.__total__ is False  # type: ignore[attr-defined]
    for name, field in fields.items():
        if field.converter is None:
            assert str(keywords[name]) == str(_field_type(config, name)), name


def _field_type(config: type, name: str) -> object:
    return typing.get_type_hints(config)[name]


# -- sync and async drivers in step ------------------------------------------------------

# Each pair is the same code once `async`/`await` are stripped; where they must differ,
# the difference is written down here with its reason (and the test checks it is real).
KNOWN_DIFFERENCES: dict[str, str] = {
    "hazina._cache.policy.Cache.load_sync": (
        "a task joining another caller's load awaits a future bridged to its own loop, "
        "and passes itself so its cancellation is told apart; a thread blocks on the flight"
    ),
    "hazina._cache.policy.Cache.refresh_sync": (
        "a sync background refresh runs on a thread of its own, an async one as a task on "
        "the caller's event loop"
    ),
    "hazina._cache.redis.RedisCache._refresh_fleet_sync": (
        "as Cache.refresh_sync: a thread for sync, a task for async"
    ),
    "hazina._http.client.read_raw_sync": (
        "httpx streams are iterated with `async for` and closed with aclose() in async code"
    ),
    "hazina._hedge.drivers.sync_driver": (
        "a sync caller cannot walk away from an attempt it runs itself, so every sync "
        "attempt runs on a worker thread; an async caller awaits its first attempt in its "
        "own task under a timer, and only hedges become tasks"
    ),
    "hazina._timeout.drivers.sync_driver": (
        "a task is cancelled at its deadline; a thread cannot be, so the sync call runs in "
        "a worker thread and its caller stops waiting at the deadline"
    ),
    "hazina._bulkhead.policy.Bulkhead.enter_slow_sync": (
        "a queued thread blocks on a latch with a timeout; a queued task awaits a future "
        "of its own loop under asyncio.timeout, and may be granted from another thread"
    ),
}

_ASYNC_WORDS = [
    (r"\basync_", "sync_"),
    (r"_async_", "_sync_"),
    (r"_async\b", "_sync"),
    (r"\basleep\b", "sleep"),
    (r"\ba(run|execute)\b", r"\1"),
]


class _StripAsync(ast.NodeTransformer):
    """Turn an async function into the sync function it should mirror."""

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        self.generic_visit(node)
        return ast.copy_location(
            ast.FunctionDef(**{field: getattr(node, field) for field in node._fields}), node
        )

    def visit_Await(self, node: ast.Await) -> ast.AST:
        visited: ast.AST = self.visit(node.value)
        return visited

    def visit_AsyncWith(self, node: ast.AsyncWith) -> ast.AST:
        self.generic_visit(node)
        return ast.copy_location(
            ast.With(**{field: getattr(node, field) for field in node._fields}), node
        )

    def visit_AsyncFor(self, node: ast.AsyncFor) -> ast.AST:
        self.generic_visit(node)
        return ast.copy_location(
            ast.For(**{field: getattr(node, field) for field in node._fields}), node
        )


def _without_docs_and_types(function: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        function.body = body[1:] or [ast.Pass()]
    for node in ast.walk(function):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.returns = None
            node.decorator_list = []
            if node is not function and node.body:
                _without_docs_and_types(node)
        if isinstance(node, ast.arg):
            node.annotation = None
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            node.annotation = ast.Constant(None)


def _driver_pairs() -> Iterator[tuple[str, ast.AST, ast.AST]]:
    """Every function or method named ``..async..`` whose ``..sync..`` twin stands beside it."""
    for module, tree in _modules():
        scopes: list[ast.Module | ast.ClassDef] = [tree]
        scopes += [node for node in tree.body if isinstance(node, ast.ClassDef)]
        for scope in scopes:
            functions = {
                node.name: node
                for node in scope.body
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            }
            prefix = module if isinstance(scope, ast.Module) else f"{module}.{scope.name}"
            for name, function in functions.items():
                twin_name = name.replace("async", "sync")
                if "async" in name and twin_name in functions:
                    yield f"{prefix}.{twin_name}", functions[twin_name], function


def _normalised(function: ast.AST) -> str:
    copy = ast.parse(ast.unparse(function)).body[0]
    assert isinstance(copy, ast.FunctionDef | ast.AsyncFunctionDef)
    _without_docs_and_types(copy)
    text = ast.unparse(ast.fix_missing_locations(_StripAsync().visit(copy)))
    for pattern, replacement in _ASYNC_WORDS:
        text = re.sub(pattern, replacement, text)
    return text


DRIVER_PAIRS = list(_driver_pairs())


def test_every_feature_has_driver_pairs() -> None:
    """The pair check below covers every kind that wraps calls (health checks wrap none)."""
    kinds = {name.split(".")[1] for name, _, _ in DRIVER_PAIRS}
    assert kinds >= {
        "_breaker",
        "_bulkhead",
        "_cache",
        "_fallback",
        "_hedge",
        "_ratelimit",
        "_retry",
        "_timeout",
    }
    assert set(KNOWN_DIFFERENCES) <= {name for name, _, _ in DRIVER_PAIRS}


@pytest.mark.parametrize(
    ("name", "sync", "asynchronous"), DRIVER_PAIRS, ids=[name for name, _, _ in DRIVER_PAIRS]
)
def test_sync_and_async_drivers_stay_in_step(
    name: str, sync: ast.AST, asynchronous: ast.AST
) -> None:
    """A sync driver and its async twin are the same code once async and await are stripped."""
    same = _normalised(sync) == _normalised(asynchronous)
    if name in KNOWN_DIFFERENCES:
        assert not same, f"{name} no longer differs; drop it from KNOWN_DIFFERENCES"
    else:
        assert same, f"{name} and its async twin have drifted apart"
