"""The docs tell the truth: every Python block on every page runs, the API page is whole."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

import hazina
from hazina._core import registry as _registry

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: The Redis URL the examples use, replaced by the test server's.
EXAMPLE_REDIS = "redis://localhost:6379/0"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
BLOCKS = [
    (page, number, source)
    for page in sorted(DOCS.rglob("*.md"))
    if "_build" not in page.parts
    for number, source in enumerate(PYTHON_BLOCK.findall(page.read_text()))
]


@pytest.mark.parametrize(
    ("page", "number", "source"),
    BLOCKS,
    ids=[f"{page.relative_to(DOCS)}:{number}" for page, number, _ in BLOCKS],
)
def test_docs_example_runs(
    page: Path,
    number: int,
    source: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """Each Python example runs as written, against a fresh default registry (and the test
    Redis server where an example names one)."""
    if EXAMPLE_REDIS in source:
        source = source.replace(EXAMPLE_REDIS, request.getfixturevalue("redis_url"))
    fresh = hazina.Registry()
    monkeypatch.setattr(_registry, "registry", fresh)
    monkeypatch.setattr(hazina, "registry", fresh)
    # A real module, so that frameworks that import the example by name (Django's
    # settings) find it.
    module = types.ModuleType("docs_example")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(source, f"{page.relative_to(ROOT)}#{number}", "exec"), module.__dict__)


def test_the_api_page_lists_exactly_the_exports() -> None:
    """Every public name of hazina and its public modules has an entry, and no other name."""
    import hazina.asgi
    import hazina.config
    import hazina.health
    import hazina.httpx
    import hazina.otel
    import hazina.prometheus
    import hazina.redis
    import hazina.testing
    import hazina.wsgi

    listed = set(re.findall(r"^```\{auto\w+\} ([\w.]+)$", (DOCS / "api.md").read_text(), re.M))
    exported = {
        f"{module.__name__}.{name}"
        for module in (
            hazina,
            hazina.testing,
            hazina.health,
            hazina.redis,
            hazina.httpx,
            hazina.asgi,
            hazina.wsgi,
            hazina.config,
            hazina.prometheus,
            hazina.otel,
        )
        for name in module.__all__
    }
    assert listed == exported, "run: python docs/_ext/make_api.py"


def test_the_registry_page_names_every_stats_field_of_every_kind() -> None:
    """A kind's stats fields are all on the registry page: a new field cannot go unlisted."""
    import attrs

    from hazina._core.metrics import stats_class_of
    from hazina._core.registry import KINDS

    page = (DOCS / "registry.md").read_text()
    missing = []
    for kind in KINDS:
        stats_class = stats_class_of(hazina.Registry, kind)
        assert stats_class is not None, kind
        missing += [
            f"{stats_class.__name__}.{field.name}"
            for field in attrs.fields(stats_class)
            if f"`{field.name}`" not in page
        ]
    assert missing == []


def test_the_defaults_page_has_a_table_for_every_kind() -> None:
    """Each kind's configuration class has its generated table."""
    page = (DOCS / "defaults.md").read_text()
    tables = set(re.findall(r"^```\{hazina-defaults\} hazina\.(\w+)$", page, re.M))
    config_classes = {
        getattr(hazina, name).__name__
        for name in hazina.__all__
        if name.endswith("Config") and name != "Config"
    }
    assert tables == config_classes
