"""Rate limits per API key, per author and per client IP, counted in Redis by Flask-Limiter."""

from __future__ import annotations

import functools
import logging
import math
import time

from flask import Flask, current_app
from flask_limiter import Limiter
from limits import RateLimitItem, parse

from service.errors import abort

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Bind a Flask-Limiter to the app; its strategy and Redis storage do the counting."""
    limiter = Limiter(key_func=lambda: "global", strategy="moving-window")
    limiter.init_app(app)
    app.extensions["civility.limiter"] = limiter


@functools.lru_cache(maxsize=64)
def _item(limit: str) -> RateLimitItem:
    return parse(limit)


def check(scope: str, identity: str) -> None:
    """Count one request against the ``RATELIMIT_PER_<SCOPE>`` limit; 429 when it is spent.

    A Redis outage skips the check (logged) rather than failing the request.
    """
    cfg = current_app.config
    if not cfg["RATELIMIT_ENABLED"]:
        return
    limit = cfg[f"RATELIMIT_PER_{scope.upper()}"]
    item = _item(limit)
    strategy = current_app.extensions["civility.limiter"].limiter
    try:
        allowed = strategy.hit(item, scope, identity)
        if allowed:
            return
        reset_at, _remaining = strategy.get_window_stats(item, scope, identity)
    except Exception as exc:  # the storage raises its driver's errors
        log.warning("rate limit %s: not checked, storage unavailable (%s)", scope, exc)
        return
    retry_after = max(1, math.ceil(reset_at - time.time()))
    abort(
        429, f"Rate limit exceeded: {limit} per {scope}.", headers={"Retry-After": str(retry_after)}
    )
