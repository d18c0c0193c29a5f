"""The workers' share of retention: one of them prunes per interval, a bounded slice a turn."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis
import sqlalchemy as sa

from service.extensions import db
from service.retention import Pruned, Retention, prune

log = logging.getLogger(__name__)

# How often a worker asks Redis whether pruning is due (when another one holds the turn).
CHECK_S = 60.0


class Pruner:
    """Runs service.retention's pruning from a worker loop: ``run_due()`` every turn.

    The workers share one Redis key: whoever sets it (NX) prunes for at most ``budget``
    seconds. A run that finished keeps the key for the interval, so the workers together
    prune once per interval; one the budget cut short deletes it, so the next turn of any
    worker goes on where it stopped, and scoring runs between the slices.
    """

    def __init__(self, client: redis.Redis, cfg: Mapping[str, Any], lock_key: str, owner: str):
        self.client = client
        self.retention = Retention.from_config(cfg)
        self.interval_s: int = cfg["PRUNE_INTERVAL_S"]
        self.budget_s: float = cfg["PRUNE_BUDGET_S"]
        self.lock_key = lock_key
        self.owner = owner
        self._next_check = 0.0

    def run_due(self, between: Callable[[], object] | None = None) -> Pruned | None:
        """Prune a slice when it is this worker's turn; None when it was not. ``between`` runs
        after each committed batch (the worker answers synchronous requests there)."""
        if self.interval_s <= 0 or not self.retention.prunes_anything:
            return None
        if time.monotonic() < self._next_check:
            return None
        self._next_check = time.monotonic() + min(CHECK_S, self.interval_s)
        # Held past the budget by a margin: one slow batch must not let a second worker in.
        if not self.client.set(self.lock_key, self.owner, nx=True, ex=int(self.budget_s) + 60):
            return None
        try:
            pruned = prune(
                self.retention, deadline=time.monotonic() + self.budget_s, between=between
            )
        except sa.exc.SQLAlchemyError as exc:
            db.session.rollback()
            self.client.delete(self.lock_key)
            log.warning("retention: skipped this run, database error (%s)", exc)
            return None
        if pruned.finished:
            self.client.set(self.lock_key, self.owner, ex=self.interval_s)
        else:
            self.client.delete(self.lock_key)
            self._next_check = 0.0  # more to do: the next turn goes on
        return pruned
