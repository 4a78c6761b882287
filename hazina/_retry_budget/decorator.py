"""A retry budget has no decorator: it is shared through ``@retry(..., budget=name)``.

Make one with ``registry.retry_budget(name, ratio=..., min_per_second=..., window=...)``,
or let the first ``@retry(budget=name)`` create it with defaults.
"""

from __future__ import annotations
