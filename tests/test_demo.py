"""The demo the README's quick start runs keeps working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.py"


def test_demo_runs_to_the_end() -> None:
    """examples/demo.py exits cleanly and gets as far as printing the registry."""
    finished = subprocess.run(
        [sys.executable, str(DEMO)], capture_output=True, text=True, timeout=60, check=False
    )
    assert finished.returncode == 0, finished.stderr
    assert "-- the registry --" in finished.stdout
    assert "rate_limiter 'search'" in finished.stdout
    assert "-- chaos on:" in finished.stdout
    assert "chaos off again" in finished.stdout
