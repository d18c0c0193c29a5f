"""Every Redis key Civility uses, named in one place; each starts with REDIS_PREFIX.

The functions without a ``prefix`` read the current app's; a process that keeps a
key beyond one app context (the worker) reads them once, when it starts.
"""

from __future__ import annotations

from flask import current_app


def join(*parts: str) -> str:
    """A key from its parts, the way every key here is built: ``civility:score:dead``."""
    return ":".join(parts)


def key(*parts: str) -> str:
    """A Redis key under the current app's prefix: ``key("score")`` → ``civility:score``."""
    return join(current_app.config["REDIS_PREFIX"], *parts)


def score_stream() -> str:
    """The scoring stream, comment ids to score: ``{prefix}:score``."""
    return key("score")


def dead_letters() -> str:
    """Records of the scoring messages given up on: ``{prefix}:score:dead``."""
    return key("score", "dead")


def score_errors() -> str:
    """Prefix of a failed scoring message's last error, ``{prefix}:score:error:<entry id>``."""
    return key("score", "error")


def sweeper_lock() -> str:
    """Held by the worker sweeping now, so one sweeps at a time: ``{prefix}:sweeper``."""
    return key("sweeper")


def prune_lock() -> str:
    """Held by the worker pruning old rows now, and for the interval after a finished
    run, so one prunes at a time: ``{prefix}:prune``."""
    return key("prune")


def swept() -> str:
    """Prefix of the marks of comments swept lately, ``{prefix}:swept:<comment id>``."""
    return key("swept")


def heartbeat(consumer: str) -> str:
    """Heartbeat of one scoring worker, ``{prefix}:worker:<consumer>`` (``*`` matches all)."""
    return key("worker", consumer)


def analyze_stream() -> str:
    """Synchronous scoring requests: ``{prefix}:analyze``."""
    return key("analyze")


def analyzers() -> str:
    """The workers answering synchronous requests, scored by when they stop counting:
    ``{prefix}:analyzers``."""
    return key("analyzers")


def reply(request_id: str) -> str:
    """Where the answer to one synchronous request is pushed: ``{prefix}:reply:<id>``."""
    return key("reply", request_id)


def ratelimits(prefix: str) -> str:
    """Flask-Limiter's prefix for the rate-limit buckets: ``{prefix}:rl`` (read while the
    app's settings are built, before any app context)."""
    return join(prefix, "rl")
