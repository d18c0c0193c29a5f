"""The sweeper: comments whose message was lost are re-added, those waiting in a backlog not."""

from __future__ import annotations

from datetime import timedelta

from service.models import utcnow
from tests.review_helpers import make_comments, set_created
from workers.sweeper import sweep


def run_sweep(redis_server, redis_prefix: str, owner: str = "test") -> int | None:
    return sweep(
        redis_server,
        stream=f"{redis_prefix}:score",
        lock_key=f"{redis_prefix}:sweeper:{owner}",
        swept_prefix=f"{redis_prefix}:swept",
        after_s=60,
        interval_s=60,
        owner=owner,
    )


def stream_ids(redis_server, redis_prefix: str) -> list[int]:
    return [int(f["comment_id"]) for _, f in redis_server.xrange(f"{redis_prefix}:score")]


def test_sweeper_re_adds_lost_comments_but_not_those_waiting_behind_a_backlog(
    app, site, redis_server, redis_prefix
):
    lost, waiting, also_waiting, young_lost, fresh = make_comments(site.id, 5)
    now = utcnow()
    for comment_id, minutes in ((lost, 11), (waiting, 10), (also_waiting, 9), (young_lost, 8)):
        set_created(comment_id, now - timedelta(minutes=minutes))
    # The backlog: messages added when their comments came in, ten and nine minutes ago.
    for comment_id, minutes in ((waiting, 10), (also_waiting, 9)):
        stamp = int((now - timedelta(minutes=minutes)).timestamp() * 1000)
        redis_server.xadd(f"{redis_prefix}:score", {"comment_id": comment_id}, id=f"{stamp}-0")

    assert run_sweep(redis_server, redis_prefix) == 1
    # Only the comment older than the whole backlog: the others wait their turn, and the
    # one that came in after the backlog began is swept once the backlog moves past it.
    assert stream_ids(redis_server, redis_prefix) == [waiting, also_waiting, lost]

    redis_server.delete(f"{redis_prefix}:score")  # the backlog worked off
    assert run_sweep(redis_server, redis_prefix, owner="again") == 3  # lost: swept already
    assert sorted(stream_ids(redis_server, redis_prefix)) == [waiting, also_waiting, young_lost]
    assert fresh not in stream_ids(redis_server, redis_prefix)  # not pending long enough


def test_sweeper_with_an_empty_stream_re_adds_every_comment_pending_too_long(
    app, site, redis_server, redis_prefix
):
    old, _fresh = make_comments(site.id, 2)
    set_created(old, utcnow() - timedelta(minutes=5))

    assert run_sweep(redis_server, redis_prefix) == 1
    assert stream_ids(redis_server, redis_prefix) == [old]
    # Remembered for after_s: the next run (another worker) does not add it twice.
    assert run_sweep(redis_server, redis_prefix, owner="other") == 0
