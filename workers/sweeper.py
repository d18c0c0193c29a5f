"""The sweeper: re-enqueues comments still pending after SWEEP_AFTER_S.

It covers an XADD that failed at ingest and a Redis that lost its data: the
database is the source of truth, the stream only carries work.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import redis
import sqlalchemy as sa

from service.extensions import db
from service.models import Comment, utcnow
from service.moderation.states import CommentStatus
from service.redis_keys import join

log = logging.getLogger(__name__)

# Most comments one run re-enqueues, and most pages of candidates it reads: a long
# backlog is worked off over several runs instead of flooding the stream at once.
SWEEP_BATCH = 1000
SWEEP_PAGES = 10


def sweep(
    client: redis.Redis,
    *,
    stream: str,
    lock_key: str,
    swept_prefix: str,
    after_s: int,
    interval_s: int,
    owner: str,
) -> int | None:
    """Re-XADD comments pending longer than ``after_s``; None when another worker swept lately.

    Only comments submitted before the oldest message still in the stream count: a
    younger one is most likely still waiting its turn behind a backlog (acked messages
    are deleted, so the stream holds only unfinished work), and re-adding it would only
    grow the stream. A younger comment whose message was lost is swept once the backlog
    has moved past it.

    The lock ``lock_key`` is taken for ``interval_s`` and not released, so the
    workers together sweep once per interval. A comment re-added is remembered
    under ``{swept_prefix}:<id>`` for ``after_s``, so the same backlog is not
    re-added on every run.
    """
    if not client.set(lock_key, owner, nx=True, ex=max(1, interval_s)):
        return None
    cutoff = utcnow() - timedelta(seconds=after_s)
    oldest = client.xrange(stream, count=1)
    if oldest:
        cutoff = min(cutoff, _entry_time(oldest[0][0]))
    added = 0
    after_id = 0
    for _ in range(SWEEP_PAGES):
        ids = _pending_ids(cutoff, after_id, SWEEP_BATCH - added)
        if not ids:
            break
        after_id = ids[-1]
        marks = client.pipeline(transaction=False)
        for comment_id in ids:
            marks.set(join(swept_prefix, str(comment_id)), owner, nx=True, ex=max(1, after_s))
        fresh = [cid for cid, marked in zip(ids, marks.execute(), strict=True) if marked]
        if fresh:
            adds = client.pipeline(transaction=False)
            for comment_id in fresh:
                adds.xadd(stream, {"comment_id": str(comment_id)})
            adds.execute()
            added += len(fresh)
        if added >= SWEEP_BATCH:
            break
    if added:
        log.warning("sweeper: %d comments pending over %ss re-enqueued", added, after_s)
    return added


def _entry_time(entry_id: str) -> datetime:
    """When a stream entry was added: the milliseconds in its id (Redis's clock)."""
    milliseconds = int(entry_id.partition("-")[0])
    return datetime.fromtimestamp(milliseconds / 1000, UTC)


def _pending_ids(cutoff: datetime, after_id: int, limit: int) -> list[int]:
    """One page of ids of comments pending since before ``cutoff``, oldest id first."""
    try:
        return list(
            db.session.scalars(
                sa.select(Comment.id)
                .where(
                    Comment.status == CommentStatus.PENDING,
                    Comment.created_at < cutoff,
                    Comment.id > after_id,
                )
                .order_by(Comment.id)
                .limit(limit)
            )
        )
    finally:
        # End the read at once: on SQLite every transaction holds the write lock.
        db.session.rollback()
