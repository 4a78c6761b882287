"""examples/metrics_app.py serves live metrics and health while the demo's service runs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

APP = Path(__file__).resolve().parent.parent / "examples" / "metrics_app.py"


@pytest.fixture
def base_url() -> Iterator[str]:
    """The example running under real uvicorn on a free 127.0.0.1 port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, str(APP), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/metrics", timeout=1).close()
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, "the example exited"
                assert time.monotonic() < deadline, "the example never answered"
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def calls(url: str) -> float:
    """The inventory retry's calls counter, from a real scrape."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "hazina_retry_calls_total" and sample.labels["name"] == "inventory":
                return sample.value
    raise AssertionError("no hazina_retry_calls_total for inventory")


def test_metrics_change_while_the_service_runs(base_url: str) -> None:
    """Two scrapes a moment apart show the counter growing; /health answers JSON."""
    first = calls(base_url)
    deadline = time.monotonic() + 10
    while calls(base_url) <= first:
        assert time.monotonic() < deadline, "the counter never moved"
        time.sleep(0.2)
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=5) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as unhealthy:  # 503 is a valid answer too
        body = json.loads(unhealthy.read())
    assert {"inventory-ping", "memory", "policies"} <= set(body["checks"])
