"""The scoring stream: the API adds comment ids, workers read them in the ``scorers`` group.

A comment is stored before its id is added, so losing an XADD (Redis down) loses no
comment: the worker's sweeper adds the ids of comments pending too long again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

import redis

from service.redis_client import get_redis
from service.redis_keys import dead_letters, heartbeat, score_stream

log = logging.getLogger(__name__)

GROUP = "scorers"


def enqueue(comment_ids: Iterable[int]) -> bool:
    """XADD each id to the scoring stream; False (logged) when Redis is unreachable.

    A failure here loses nothing: the comment is stored as pending and the
    worker's sweeper re-enqueues it.
    """
    ids = list(comment_ids)
    try:
        pipe = get_redis().pipeline(transaction=False)
        for comment_id in ids:
            pipe.xadd(score_stream(), {"comment_id": str(comment_id)})
        pipe.execute()
    except redis.RedisError as exc:
        log.warning(
            "comments %s: not enqueued, Redis unavailable (%s); the sweeper will retry", ids, exc
        )
        return False
    return True


def stats() -> dict[str, int]:
    """The queue as /metrics shows it: stream length, the group's lag and pending, dead
    letters, live workers."""
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    pipe.xlen(score_stream())
    pipe.xlen(dead_letters())
    length, dead = pipe.execute()
    group = _group_info(client, score_stream())
    pending = group.get("pending") or 0
    lag = _lag(group, length)
    return {
        "scoring_stream_length": length,
        "scoring_consumer_lag": lag,
        "scoring_pending": pending,
        "scoring_dead_letters": dead,
        "workers_live": len(live_workers()),
    }


def group_backlog(client: redis.Redis, stream: str) -> int:
    """Messages not yet delivered to the group; 0 without a group."""
    group = _group_info(client, stream)
    if not group:
        return 0
    length = client.xlen(stream) if group.get("lag") is None else None
    return _lag(group, length)


def _group_info(client: redis.Redis, stream: str) -> dict:
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:  # no stream yet
        return {}
    return next((info for info in groups if info["name"] == GROUP), {})


def _lag(group: dict, length: int | None) -> int:
    """The group's lag; Redis cannot tell after some deletions, and acked entries are
    deleted, so then: the stream's length less what is pending."""
    lag = group.get("lag")
    if lag is None:
        lag = max(0, (length or 0) - (group.get("pending") or 0))
    return lag


def live_workers() -> list[dict]:
    """The heartbeats of scoring workers seen in the last three beats (they expire)."""
    client = get_redis()
    names = sorted(client.scan_iter(match=heartbeat("*"), count=500))
    if not names:
        return []
    beats = client.mget(names)
    return [json.loads(beat) for beat in beats if beat]
