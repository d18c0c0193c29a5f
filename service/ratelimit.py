"""Rate limits, one bucket per purpose, counted in Redis by Flask-Limiter.

Buckets: per API key, per author, per reader IP (public reads, submissions that name the
reader's `client_ip`), dashboard sign-ins per IP, and failed key lookups per IP. Separate
buckets, so readers spending theirs never lock moderators out of signing in. Behind
CIVILITY_TRUSTED_PROXIES proxies the IP is the client's, from X-Forwarded-For (ProxyFix).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable

from flask import Flask, current_app, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse
from limits.strategies import RateLimiter

from service.errors import abort

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Bind a Flask-Limiter to the app; its strategy and Redis storage do the counting."""
    hops = app.config["TRUSTED_PROXIES"]
    if hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Only the last `hops` entries of each X-Forwarded-* header are believed: the ones
        # our own proxies appended. A client's own X-Forwarded-For is ignored.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
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
    _enforce(scope, identity, lambda strategy, item: strategy.hit(item, scope, identity))


def refuse_if_spent(scope: str, identity: str) -> None:
    """429 when the ``RATELIMIT_PER_<SCOPE>`` bucket is already spent; counts nothing."""
    _enforce(scope, identity, lambda strategy, item: strategy.test(item, scope, identity))


def client_ip() -> str:
    """The caller's IP: the socket's peer, or the client's behind trusted proxies."""
    return request.remote_addr or "unknown"


def _enforce(
    scope: str,
    identity: str,
    allowed: Callable[[RateLimiter, RateLimitItem], bool],
) -> None:
    """429 with Retry-After unless ``allowed(strategy, item)`` says the request may go on;
    nothing when rate limits are off, or (logged) when the storage cannot be reached."""
    cfg = current_app.config
    if not cfg["RATELIMIT_ENABLED"]:
        return
    limit = cfg[f"RATELIMIT_PER_{scope.upper()}"]
    item = _item(limit)
    strategy = current_app.extensions["civility.limiter"].limiter
    try:
        if allowed(strategy, item):
            return
        reset_at, _remaining = strategy.get_window_stats(item, scope, identity)
    except Exception as exc:  # the storage raises its driver's errors
        log.warning("rate limit %s: not checked, storage unavailable (%s)", scope, exc)
        return
    retry_after = max(1, math.ceil(reset_at - time.time()))
    abort(
        429, f"Rate limit exceeded: {limit} per {scope}.", headers={"Retry-After": str(retry_after)}
    )
