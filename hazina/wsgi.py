"""WSGI middleware: rate limits answered with 429 and the IETF RateLimit fields.

Standard library only; no extra to install.
"""

from __future__ import annotations

from ._http.wsgi import RateLimitMiddleware, remote_addr

__all__ = ["RateLimitMiddleware", "remote_addr"]
