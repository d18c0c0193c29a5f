"""What the soak samples while it runs and the invariants it checks at the end."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

DECISIONS = ("approved", "held", "rejected")


def _engine(cluster: Any) -> sa.Engine:
    if getattr(cluster, "engine", None) is None:
        cluster.engine = cluster.civility.engine()
    return cluster.engine


def sample(cluster: Any, now: float) -> dict[str, Any]:
    """One point of the timeline: comments, decided, deliveries, delivered, queue depth."""
    with _engine(cluster).connect() as conn:
        comments, decided = conn.execute(
            sa.text("SELECT count(*), count(*) FILTER (WHERE status != 'pending') FROM comment")
        ).one()
        deliveries, delivered = conn.execute(
            sa.text(
                "SELECT count(*), count(*) FILTER (WHERE status = 'succeeded') "
                "FROM webhook_delivery"
            )
        ).one()
    try:
        client = redis.Redis.from_url(cluster.redis.url, socket_timeout=0.5)
        queue = client.xlen(f"{cluster.civility.prefix}:score")
        client.close()
    except redis.RedisError:
        queue = None
    return {
        "t": round(now, 2),
        "comments": comments,
        "decided": decided,
        "deliveries": deliveries,
        "delivered": delivered,
        "received": len(cluster.receiver.accepted()),
        "queue": queue,
    }


def check(civility: Any, receiver: Any, loadgen: dict, ids: list[int], count: int) -> dict:
    """Each invariant as (passed, detail)."""
    statuses = loadgen["statuses"]
    checks: dict[str, tuple[bool, str]] = {}
    server_errors = sum(n for s, n in statuses.items() if s == "error" or int(s) >= 500)
    checks["every comment answered 202"] = (
        statuses.get("202", 0) == count and len(set(ids)) == count,
        f"answers {statuses}",
    )
    checks["zero 5xx or connection errors"] = (
        server_errors == 0,
        f"{server_errors}; first errors {loadgen['error_samples'][:3]}",
    )
    engine = civility.engine()
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, status FROM comment")).all()
        policy = conn.execute(
            sa.text("SELECT comment_id, to_status FROM moderation_event WHERE actor = 'policy'")
        ).all()
        deliveries = conn.execute(
            sa.text("SELECT message_id, event_type, comment_id, status FROM webhook_delivery")
        ).all()
        failed_scoring = conn.execute(
            sa.text("SELECT count(*) FROM comment WHERE reason_codes LIKE '% scoring_failed %'")
        ).scalar()
    engine.dispose()
    status = {row.id: row.status for row in rows}
    per_comment = Counter(row.comment_id for row in policy)
    undecided = [cid for cid, s in status.items() if s not in DECISIONS]
    twice = [cid for cid, n in per_comment.items() if n != 1]
    unaudited = [cid for cid in status if per_comment[cid] == 0]
    checks["every comment decided exactly once"] = (
        len(status) == count and not undecided and not twice and not unaudited,
        f"{len(status)} comments, {len(status) - len(undecided)} decided, "
        f"{len(twice)} with more than one policy event, {len(unaudited)} with none; "
        f"{failed_scoring} held as scoring_failed",
    )
    by_comment: dict[int, list[str]] = {}
    for row in deliveries:
        by_comment.setdefault(row.comment_id, []).append(row.event_type)
    expected_wrong = [
        cid
        for cid, s in status.items()
        if sorted(by_comment.get(cid, [])) != sorted(["comment.created", f"comment.{s}"])
    ]
    accepted = receiver.accepted()
    missing = [row.message_id for row in deliveries if row.message_id not in accepted]
    unsigned = sum(1 for d in receiver.deliveries if not d.signed)
    checks["every expected webhook delivered, signature valid"] = (
        not expected_wrong and not missing and unsigned == 0,
        f"{len(deliveries)} expected (created + decision per comment), {len(accepted)} received "
        f"with a valid signature, {len(missing)} missing, {len(expected_wrong)} comments with "
        f"the wrong events, {unsigned} bad signatures; {len(receiver.deliveries)} POSTs in all",
    )
    return checks


RECOVERY_LOGS = {
    "messages claimed from killed workers": (r"claimed (\d+) idle messages", "worker"),
    "comments re-enqueued by the sweeper": (r"sweeper: (\d+) comments pending", "worker"),
    "consumer group recreated after Redis lost it": (r"consumer group gone", "worker"),
    "ingests that could not XADD (Redis down)": (r"not enqueued, Redis unavailable", "api"),
}


def recovery(logdir: Path) -> dict[str, int]:
    """How often each recovery path ran, counted from the processes' logs."""
    counts = {}
    for what, (pattern, prefix) in RECOVERY_LOGS.items():
        total = 0
        for path in logdir.glob(f"{prefix}*.log"):
            for match in re.finditer(pattern, path.read_text(errors="replace")):
                total += int(match.group(1)) if match.groups() else 1
        counts[what] = total
    return counts
