"""/metrics and /health for a running service: the demo's flaky inventory, scraped live.

Run it with ``python examples/metrics_app.py`` (needs ``hazina[prometheus]`` and
uvicorn), then watch the numbers move::

    curl -s localhost:8000/metrics | grep inventory
    curl -s localhost:8000/health

A background thread calls the demo's ``stock_level`` (cache, retry and breaker over the
flaky inventory service) all the time, and takes the service down for half a second
every few seconds, so the breaker opens and closes and the readiness check follows it.
One small ASGI app serves Prometheus's text format at ``/metrics`` (hazina's collector,
read at each scrape) and the health report at ``/health`` and ``/health/<tag>``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from pathlib import Path
from typing import Any

import prometheus_client
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import demo  # the flaky service and its decorated functions

import hazina
from hazina.health import asgi_app as health_app
from hazina.prometheus import HazinaCollector

metrics = prometheus_client.CollectorRegistry()
metrics.register(HazinaCollector())
metrics_app = prometheus_client.make_asgi_app(registry=metrics)
health = health_app()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/metrics`` to Prometheus's app, everything else to the health app."""
    if scope["type"] == "http" and scope["path"] == "/metrics":
        await metrics_app(scope, receive, send)
    else:
        await health(scope, receive, send)


def traffic(stop: threading.Event) -> None:
    """Call the flaky service without end; an outage every few seconds."""
    request = 0
    while not stop.is_set():
        request += 1
        if request % 150 == 0:
            demo.service.down_until = time.monotonic() + 0.5
        with contextlib.suppress(TimeoutError, ConnectionError, hazina.CircuitOpenError):
            demo.stock_level(f"sku-{request % 7}")
        stop.wait(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    port = parser.parse_args().port
    stop = threading.Event()
    worker = threading.Thread(target=traffic, args=(stop,), daemon=True)
    worker.start()
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    finally:
        stop.set()
        worker.join()


if __name__ == "__main__":
    main()
