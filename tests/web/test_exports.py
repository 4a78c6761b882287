"""What hazina.httpx, hazina.asgi and hazina.wsgi export."""

from __future__ import annotations

import types

import pytest

import hazina.asgi
import hazina.httpx
import hazina.wsgi


@pytest.mark.parametrize("module", [hazina.httpx, hazina.asgi, hazina.wsgi])
def test_each_module_exports_names_that_exist(module: types.ModuleType) -> None:
    """``__all__`` lists each name once (ruff keeps its order), and every name is there."""
    assert len(module.__all__) == len(set(module.__all__))
    for name in module.__all__:
        assert hasattr(module, name), name
