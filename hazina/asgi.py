"""ASGI middlewares: rate limits answered with 429, load shed with 503.

Standard library only; no extra to install. Non-HTTP scopes (websocket, lifespan) pass
through untouched.
"""

from __future__ import annotations

from ._http.asgi import RateLimitMiddleware, ShedLoadMiddleware, client_host

__all__ = ["RateLimitMiddleware", "ShedLoadMiddleware", "client_host"]
