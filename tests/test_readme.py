"""The README tells the truth: CI runs its commands, its examples run, its API list is whole."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import hazina
from hazina._core import registry as _registry

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def test_quick_start_is_two_commands_and_ci_runs_the_second() -> None:
    """The quick start has exactly two commands, and .ci/run runs the second verbatim."""
    commands = re.findall(r"```bash\n(.*?)\n```", _section("Quick start"), re.S)
    assert len(commands) == 2
    assert all("\n" not in command for command in commands)
    ci_lines = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert ci_lines[-1] == commands[1]
    assert "examples/" in commands[0]


#: The Redis URL the README's examples use, replaced by the test server's.
README_REDIS = "redis://localhost:6379/0"
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


@pytest.mark.parametrize(
    "source", PYTHON_BLOCKS, ids=[f"block{i}" for i, _ in enumerate(PYTHON_BLOCKS)]
)
def test_readme_example_runs(
    source: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Each Python example in the README runs as written, against a fresh default registry
    (and the test Redis server where an example names one)."""
    if README_REDIS in source:
        source = source.replace(README_REDIS, request.getfixturevalue("redis_url"))
    fresh = hazina.Registry()
    monkeypatch.setattr(_registry, "registry", fresh)
    monkeypatch.setattr(hazina, "registry", fresh)
    exec(compile(source, "README.md", "exec"), {"__name__": "readme_example"})
