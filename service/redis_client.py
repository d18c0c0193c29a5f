"""The app's Redis connection (its key names are in service/redis_keys.py)."""

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
