"""The worker's membership of the scoring group: its read window (a share of the backlog
among the live consumers), reading, the messages in hand, and the group itself."""

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


def test_one_read_of_two_streams_returns_each_streams_messages_apart(redis_server, stream):
    requests = f"{stream}:requests"
    redis_server.xgroup_create(requests, GROUP, id="$", mkstream=True)
    add(redis_server, stream, 2)
    redis_server.xadd(requests, {"id": "r1"})

    comments, other = consumer(redis_server, stream, "a").read_with(requests, block_ms=1)

    assert [fields["comment_id"] for _, fields, _ in comments] == ["1", "2"]
    assert [fields["id"] for _, fields, _ in other] == ["r1"]


def idle_ms(redis_server, stream: str) -> list[int]:
    pending = redis_server.xpending_range(stream, GROUP, "-", "+", 10)
    return [entry["time_since_delivered"] for entry in pending]


def test_touch_keeps_only_the_messages_in_hand_from_looking_idle(redis_server, stream):
    add(redis_server, stream, 2)
    me = consumer(redis_server, stream, "me")
    first, _ = me.read(block_ms=1)
    time.sleep(0.5)

    with me.holding([first]):
        me.touch()
        touched, untouched = idle_ms(redis_server, stream)
        assert touched < 500 <= untouched
    time.sleep(0.2)
    me.touch()  # nothing in hand after the block: nothing is touched
    assert min(idle_ms(redis_server, stream)) >= 200


def test_a_forgotten_group_is_made_again(redis_server, stream):
    me = consumer(redis_server, stream, "me")
    me.ensure_group()  # the group exists already: kept
    redis_server.delete(stream)  # Redis lost its data

    me.ensure_group()
    assert not redis_server.exists(stream)  # made once, not asked again
    me.forget_group()
    me.ensure_group()
    assert [g["name"] for g in redis_server.xinfo_groups(stream)] == [GROUP]
