"""Health over HTTP, and ready-made checks.

``asgi_app()`` and ``wsgi_app()`` serve the report of ``registry.check_health()`` at
``/health`` and ``/health/<tag>``; ``memory_check()`` and ``policies_check()`` register
common checks.
"""

from __future__ import annotations

from ._health.builtins import memory_check, policies_check
from ._health.http import asgi_app, wsgi_app

__all__ = ["asgi_app", "memory_check", "policies_check", "wsgi_app"]
