"""The app's Redis connection and its key names (every key carries REDIS_PREFIX)."""

from __future__ import annotations

import redis
from flask import Flask, current_app


def init_app(app: Flask) -> None:
    """Create the app's Redis client; it connects on first use, not here."""
    timeout = app.config["REDIS_TIMEOUT_S"]
    app.extensions["civility.redis"] = redis.Redis.from_url(
        app.config["REDIS_URL"],
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        decode_responses=True,
    )


def get_redis() -> redis.Redis:
    """The current app's Redis client."""
    return current_app.extensions["civility.redis"]


def key(*parts: str) -> str:
    """A Redis key under the current app's prefix: ``key("score")`` → ``civility:score``."""
    return ":".join((current_app.config["REDIS_PREFIX"], *parts))
