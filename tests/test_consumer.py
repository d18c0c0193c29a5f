"""The worker's read window: its share of the backlog among the group's live consumers."""

from __future__ import annotations

import time

import pytest

from service.stream import GROUP
from workers.consumer import Consumer


@pytest.fixture
def stream(redis_server, redis_prefix: str) -> str:
    name = f"{redis_prefix}:score"
    redis_server.xgroup_create(name, GROUP, id="0", mkstream=True)
    return name


def consumer(redis_server, stream: str, name: str, claim_idle_ms: int = 60000) -> Consumer:
    return Consumer(
        redis_server,
        stream,
        name,
        dead_stream=f"{stream}:dead",
        error_prefix=f"{stream}:error",
        batch_max=4,
        window_max=64,
        claim_idle_ms=claim_idle_ms,
        max_attempts=5,
        error_ttl_s=60,
    )


def add(redis_server, stream: str, count: int) -> None:
    for n in range(count):
        redis_server.xadd(stream, {"comment_id": str(n + 1)})


def test_window_is_one_batch_without_a_backlog(redis_server, stream):
    add(redis_server, stream, 3)
    assert consumer(redis_server, stream, "a").window() == 4


def test_window_takes_the_backlog_up_to_its_maximum(redis_server, stream):
    add(redis_server, stream, 40)
    assert consumer(redis_server, stream, "a").window() == 40
    add(redis_server, stream, 60)
    assert consumer(redis_server, stream, "a").window() == 64


def test_window_shares_the_backlog_with_live_consumers_only(redis_server, stream):
    add(redis_server, stream, 60)
    redis_server.xgroup_createconsumer(stream, GROUP, "killed-long-ago")
    time.sleep(0.15)
    redis_server.xgroup_createconsumer(stream, GROUP, "alive")
    me = consumer(redis_server, stream, "me", claim_idle_ms=100)

    # "killed-long-ago" has been idle past the claim time: it no longer counts.
    assert me.live_consumers() == 2
    assert me.window() == 30
    assert len(me.read(block_ms=1)) == 30
    # Having read, it is in the group itself and still counts once.
    assert me.live_consumers() == 2


def test_consumers_long_idle_with_nothing_pending_are_removed_from_the_group(redis_server, stream):
    add(redis_server, stream, 1)
    redis_server.xgroup_createconsumer(stream, GROUP, "killed-long-ago")
    holding = consumer(redis_server, stream, "killed-holding-a-message")
    assert len(holding.read(block_ms=1)) == 1  # pending with it, never acked
    time.sleep(0.6)
    redis_server.xgroup_createconsumer(stream, GROUP, "alive")
    me = consumer(redis_server, stream, "me")
    redis_server.xgroup_createconsumer(stream, GROUP, "me")

    assert me.forget_departed(after_ms=500) == ["killed-long-ago"]

    names = {c["name"] for c in redis_server.xinfo_consumers(stream, GROUP)}
    # The one holding a message stays until a live worker claims it; the rest were recent.
    assert names == {"killed-holding-a-message", "alive", "me"}
    assert redis_server.xpending(stream, GROUP)["pending"] == 1
    assert me.forget_departed(after_ms=500) == []
