"""The public API: what ``hazina`` exports, and that it ships its type information.

That the exports are exactly the names the API reference documents is checked in
``test_docs.py``.
"""

from __future__ import annotations

import importlib.resources
import types

import hazina
import hazina.testing


def test_all_is_sorted_without_duplicates() -> None:
    """hazina.__all__ is sorted and lists each name once."""
    assert hazina.__all__ == sorted(hazina.__all__)
    assert len(hazina.__all__) == len(set(hazina.__all__))


def test_every_exported_name_exists() -> None:
    """Every name in hazina.__all__ is an attribute of the package, and none is a module."""
    for name in hazina.__all__:
        assert hasattr(hazina, name), name
        assert not isinstance(getattr(hazina, name), types.ModuleType), name


def test_star_import_gives_exactly_all() -> None:
    """``from hazina import *`` binds the names in __all__ and nothing else."""
    namespace: dict[str, object] = {}
    exec("from hazina import *", namespace)

    assert set(namespace) - {"__builtins__"} == set(hazina.__all__)


def test_testing_module_exports() -> None:
    """hazina.testing exports its helpers in a sorted __all__ of names that exist."""
    assert hazina.testing.__all__ == sorted(hazina.testing.__all__)
    for name in hazina.testing.__all__:
        assert hasattr(hazina.testing, name), name


def test_package_ships_py_typed() -> None:
    """The installed package carries the PEP 561 py.typed marker."""
    assert importlib.resources.files("hazina").joinpath("py.typed").is_file()


def test_hazina_imports_without_the_exporters_installed() -> None:
    """With prometheus_client and opentelemetry unimportable, hazina, its testing kit and
    its pytest plugin import, load neither, and only the exporter modules refuse."""
    import subprocess
    import sys

    script = """
import sys
for blocked in ("prometheus_client", "opentelemetry", "structlog"):
    sys.modules[blocked] = None  # what an absent package looks like to import
import hazina, hazina.testing, hazina.health, hazina.pytest_plugin
for name in ("hazina.prometheus", "hazina.otel"):
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(name + " imported without its extra")
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, hazina, hazina.testing; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "prometheus_client" not in loaded
    assert "opentelemetry" not in loaded
