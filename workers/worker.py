"""The scoring worker: reads comment ids from the stream, scores, decides, commits, then acks.

The database is the source of truth: a message is acknowledged only after the
decision it led to is committed, so a crash at any point means the message is
delivered again, and a redelivered message whose comment is no longer pending is
acknowledged without another decision.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Mapping
from typing import Any

import redis
import sqlalchemy as sa
from flask import Flask

from service import metrics, redis_keys
from service.extensions import db
from workers.analyze import Responder
from workers.batch import Decider, Outcome
from workers.consumer import Consumer, Entry, comment_id_of
from workers.daemon import Backoff, Daemon
from workers.heartbeat import Heartbeat
from workers.pruner import Pruner
from workers.routing import load_router
from workers.scorers import Scorer
from workers.sweeper import sweep
from workers.threads import OPERATORS_OWN

log = logging.getLogger(__name__)


def load_configured_scorer(config: Mapping[str, Any]) -> tuple[Scorer, bool]:
    """The scorers SCORERS (or SCORER) names behind a language router, each replaced by
    SCORER_FALLBACK's when it cannot load; the flag says a fallback took over.

    Raises ScorerUnavailable when one loads neither way (SCORER_FALLBACK ``none``: when
    one does not), ValueError when a setting is malformed (the message names it).
    """
    return load_router(config, log)


class Worker(Daemon):
    """One consumer of the scoring stream; ``run()`` until SIGTERM/SIGINT or, in burst mode,
    until the stream is empty and nothing is pending."""

    finishing = "the batch in hand"
    abandoning = "unacked work is redelivered"

    def __init__(
        self,
        app: Flask,
        scorer: Scorer,
        *,
        fallback_active: bool = False,
        consumer: str | None = None,
        burst: bool = False,
    ) -> None:
        cfg = app.config
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        super().__init__(f"worker {self.consumer}", db_retry_max_s=cfg["DB_RETRY_MAX_S"])
        self.scorer = scorer
        self.decider = Decider(scorer)
        self.burst = burst
        self.batch_max: int = cfg["SCORE_BATCH_MAX"]
        self.block_ms: int = cfg["SCORE_BLOCK_MS"]
        claim_idle_ms: int = cfg["SCORE_CLAIM_IDLE_MS"]
        max_attempts: int = cfg["SCORE_MAX_ATTEMPTS"]
        self.sweep_after_s: int = cfg["SWEEP_AFTER_S"]
        self.sweep_interval_s: int = cfg["SWEEP_INTERVAL_S"]
        self.consumer_forget_s: int = cfg["SCORE_CONSUMER_FORGET_S"]
        # A failed entry's last error must outlive its retries (one per claim_idle).
        error_ttl_s = max(60, math.ceil(2 * claim_idle_ms / 1000 * max_attempts))
        with app.app_context():
            self.stream = redis_keys.score_stream()
            dead_stream = redis_keys.dead_letters()
            error_prefix = redis_keys.score_errors()
            self.sweeper_lock = redis_keys.sweeper_lock()
            self.swept_prefix = redis_keys.swept()
            prune_lock = redis_keys.prune_lock()
            heartbeat_key = redis_keys.heartbeat(self.consumer)
            analyze_stream, analyzers_key = redis_keys.analyze_stream(), redis_keys.analyzers()
        timeout = cfg["REDIS_TIMEOUT_S"]
        # Not the app's client: its socket timeout is shorter than a blocking XREADGROUP.
        self.redis = redis.Redis.from_url(
            cfg["REDIS_URL"],
            decode_responses=True,
            socket_connect_timeout=timeout,
            socket_timeout=self.block_ms / 1000 + timeout,
            health_check_interval=30,
        )
        self.queue = Consumer(
            self.redis,
            self.stream,
            self.consumer,
            dead_stream=dead_stream,
            error_prefix=error_prefix,
            batch_max=self.batch_max,
            window_max=cfg["SCORE_WINDOW_MAX"],
            claim_idle_ms=claim_idle_ms,
            max_attempts=max_attempts,
            error_ttl_s=error_ttl_s,
        )
        self.heartbeat = Heartbeat(
            self.redis,
            heartbeat_key,
            cfg["HEARTBEAT_S"],
            {
                "consumer": self.consumer,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "model": scorer.model,
                "scorer_spec": cfg["SCORERS"] or cfg["SCORER"],
                "fallback_active": fallback_active,
                "batch_max": self.batch_max,
                "window_max": self.queue.window_max,
            },
        )
        self.analyze = Responder(
            self.redis,
            stream=analyze_stream,
            ready_key=analyzers_key,
            consumer=self.consumer,
            scorer=scorer,
            gather_ms=cfg["ANALYZE_GATHER_MS"],
            batch_max=cfg["ANALYZE_BATCH_MAX"],
            reply_ttl_s=cfg["ANALYZE_REPLY_TTL_S"],
            live_s=3 * cfg["HEARTBEAT_S"],
            claim_idle_ms=cfg["ANALYZE_TIMEOUT_MS"],
        )
        self.pruner = Pruner(self.redis, cfg, prune_lock, self.consumer)
        self._next_sweep = 0.0  # the first turn sweeps
        # Messages in hand are touched this often while requests are answered: a quarter of
        # the idle time after which other workers would claim them.
        self.touch_every_s = claim_idle_ms / 4000
        self._next_touch = 0.0
        self._serving_s = 0.0  # spent answering synchronous requests inside backlog passes

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> int:
        """Work until stopped; 0 after a clean stop."""
        self.handle_signals()
        log.info(
            "worker %s: started (model %s, batch %d, torch threads wait %s%s)",
            self.consumer,
            self.scorer.model,
            self.batch_max,
            " ".join(f"{k}={os.environ[k]}" for k in OPERATORS_OWN if k in os.environ) or "-",
            ", burst" if self.burst else "",
        )
        self.analyze.warm_up()
        self.heartbeat.start()
        backoff = Backoff(self.db_retry_max_s)
        try:
            while not self.stopping:
                try:
                    if self._turn():
                        break
                    backoff.reset()
                except redis.ResponseError as exc:
                    if not str(exc).startswith(("NOGROUP", "UNBLOCKED")):
                        raise
                    # Redis lost its data (FLUSHALL, a restart without persistence) and the
                    # group with it: a blocked read answers UNBLOCKED, the next NOGROUP.
                    # Recreate the group; the sweeper re-adds what was lost.
                    log.warning("stream %s: consumer group gone (%s); recreating", self.stream, exc)
                    self.queue.forget_group()
                    self.analyze.forget_group()
                    self._next_sweep = 0.0
                except redis.RedisError as exc:
                    delay = backoff.next()
                    log.warning(
                        "worker %s: Redis unavailable (%s); retrying in %.1fs",
                        self.consumer,
                        exc,
                        delay,
                    )
                    self.sleep(delay)
        finally:
            self.analyze.leave()
            self.heartbeat.stop()
            self.queue.leave()
        log.info(
            "worker %s: stopped (%d comments decided)", self.consumer, self.heartbeat.scored_total
        )
        return 0

    def _turn(self) -> bool:
        """One turn of the loop; True when a burst worker has nothing left to do."""
        self.queue.ensure_group()
        self._serve()  # synchronous requests first: their callers are waiting
        entries: list[Entry] = []
        if self.queue.claim_due():
            entries, exhausted = self.queue.claim()
            if exhausted:
                self._dead_letter(exhausted)
        if not entries:
            entries = self.analyze.read_with(self.queue, self.block_ms)
            self.queue.hold(entries)  # read, so pending: kept from looking idle meanwhile
            self._serve()
        if entries:
            with self.queue.holding(entries):
                self._handle(entries)
        # After the first read, not before: a sweep waits for the database, the stream not.
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.sweep_interval_s
            if self.consumer_forget_s > 0:
                self.queue.forget_departed(self.consumer_forget_s * 1000)
            if self._sweep():
                return False
            self._serve()  # what came in while the sweep waited on the database
        # Retention (workers/pruner.py): a bounded slice when due, answering synchronous
        # requests between its batches; a burst worker finishes it.
        pruned = self.pruner.run_due(between=self._serve)
        if pruned is not None and not pruned.finished:
            return False
        return not entries and self.burst and self.queue.idle()

    # -- the stream -----------------------------------------------------------------------

    def _dead_letter(self, entries: list[Entry], error: str | None = None) -> None:
        """Give up on entries: their pending comments become held (``scoring_failed``) and
        each gets a record in ``{prefix}:score:dead``; then they are acked.

        The comments are held and committed first, then records and acks go in one
        MULTI: a crash in between redelivers an entry whose comment is no longer
        pending, which is acked without a second record.
        """
        comment_ids = {entry_id: comment_id_of(fields or {}) for entry_id, fields, _ in entries}
        wanted = [cid for cid in comment_ids.values() if cid is not None]
        held: list[int] = []
        if wanted:
            held = self.with_db_retry("dead letters", lambda: self.decider.hold(wanted))
            if held is None:
                return  # stopping while the database is down: leave them for another worker
        self.queue.bury(entries, comment_ids, held, error)

    def _sweep(self) -> int | None:
        """Run the sweeper (when no other worker did lately); how many comments it re-added."""
        try:
            return sweep(
                self.redis,
                stream=self.stream,
                lock_key=self.sweeper_lock,
                swept_prefix=self.swept_prefix,
                after_s=self.sweep_after_s,
                interval_s=self.sweep_interval_s,
                owner=self.consumer,
            )
        except sa.exc.SQLAlchemyError as exc:
            db.session.rollback()
            log.warning("sweeper: skipped this run, database error (%s)", exc)
            return None

    # -- a batch --------------------------------------------------------------------------

    def _handle(self, entries: list[Entry]) -> None:
        """Score and decide the messages read, pass by pass as the scorer plans them; each
        pass is committed, then acked. Failures stay unacked; on a stop, what no pass
        reached yet is given back."""
        by_comment: dict[int, list[Entry]] = {}
        malformed: list[Entry] = []
        gone: list[Entry] = []
        for entry in entries:
            fields = entry[1]
            if fields is None:  # deleted from the stream while pending: nothing to do
                gone.append(entry)
            elif (comment_id := comment_id_of(fields)) is None:
                malformed.append(entry)
            else:
                by_comment.setdefault(comment_id, []).append(entry)
        if malformed:
            self._dead_letter(malformed, error="malformed message: no integer comment_id")
        self.queue.ack(gone)
        if not by_comment:
            return
        ids = list(by_comment)
        texts = self.with_db_retry("batch", lambda: self.decider.pending_texts(ids))
        if texts is None:
            log.warning(
                "batch of %d: left unacked, stopping while the database is down", len(entries)
            )
            return
        self.queue.ack([e for cid in ids if cid not in texts for e in by_comment[cid]])
        passes = self.decider.plan(texts)
        for number, group in enumerate(passes):
            waiting = [e for later in passes[number:] for cid in later for e in by_comment[cid]]
            if self.stopping and number:
                self.queue.give_back(waiting)
                return
            self.queue.hold(waiting)
            if number:
                self.queue.touch()  # the window's rest must not look idle to other workers
            # Before the first pass too: reading and planning the batch (language
            # detection) took tens of ms, and a request waits for one layer of a pass at
            # most (the scorer lets it in between them).
            self._serve()
            if not self._decide_pass(group, {cid: by_comment[cid] for cid in group}):
                return

    def _decide_pass(self, texts: dict[int, str], by_comment: dict[int, list[Entry]]) -> bool:
        """Score one pass, decide it in one transaction, then ack what is done; False when
        a stop came while the database was down (its messages stay unacked)."""
        started, serving_s = time.monotonic(), self._serving_s
        size = sum(len(found) for found in by_comment.values())
        outcome = self._decide(texts)
        if outcome is None:
            log.warning("batch of %d: left unacked, stopping while the database is down", size)
            return False
        self.heartbeat.record(size, len(outcome.decided))
        self.decider.log_decided(outcome.decided)
        for comment_id, error in outcome.failed.items():
            log.warning("comment %s: not decided, will be retried (%s)", comment_id, error)
        if outcome.failed:
            self.queue.record_errors(
                {
                    entry_id: error
                    for comment_id, error in outcome.failed.items()
                    for entry_id, _, _ in by_comment[comment_id]
                }
            )
        self.queue.ack([e for cid in outcome.decided + outcome.skipped for e in by_comment[cid]])
        # The batch's own time: not the synchronous passes answered in its middle.
        elapsed = time.monotonic() - started - (self._serving_s - serving_s)
        metrics.SCORING_BATCH_SIZE.observe(size)
        metrics.SCORING_BATCH_SECONDS.observe(elapsed)
        log.info(
            "batch of %d: %d decided, %d skipped, %d failed in %.3fs",
            size,
            len(outcome.decided),
            len(outcome.skipped),
            len(outcome.failed),
            elapsed,
        )
        return True

    def _decide(self, texts: dict[int, str]) -> Outcome | None:
        """Score the texts in one call, then decide them in one transaction; None when a
        stop came while the database was down."""
        outcome = Outcome()
        # Scoring happens outside any transaction: on SQLite a transaction holds the
        # database's write lock, and the API must not wait for a forward pass.
        # A long text read in several passes lets synchronous requests in between them.
        scored = self.decider.score(texts, between=self._serve_between)
        # And before the transaction: a request must not wait for the database either.
        self._serve_between()
        ready = {cid: result for cid, result in scored.items() if result.error is None}
        outcome.failed.update(
            {cid: f"scoring: {result.error}" for cid, result in scored.items() if result.error}
        )
        if ready:
            applied = self.with_db_retry("batch", lambda: self.decider.apply(ready))
            if applied is None:
                return None
            outcome.merge(applied)
        return outcome

    def _serve(self) -> None:
        """Answer the synchronous requests waiting. Requests back to back keep a worker
        answering for as long as they come, in the middle of a batch too: the batch's
        messages are touched meanwhile, or after SCORE_CLAIM_IDLE_MS another worker would
        claim them (a delivery counted each time, and dead letters in the end)."""
        self.analyze.serve(each_pass=self._keep_held)

    def _keep_held(self) -> None:
        now = time.monotonic()
        if now >= self._next_touch:
            self._next_touch = now + self.touch_every_s
            self.queue.touch()

    def _serve_between(self) -> None:
        """Synchronous requests in the middle of a backlog pass. A Redis failure here must
        not fail the scoring around it: it is logged, and the next turn's own read meets it
        where the loop handles it (backoff, a lost group recreated)."""
        started = time.monotonic()
        try:
            self._serve()
        except redis.RedisError as exc:
            log.warning(
                "worker %s: synchronous requests not served between passes (%s)", self.consumer, exc
            )
        finally:
            self._serving_s += time.monotonic() - started

    def while_waiting(self) -> None:
        """While the database is down, the messages in hand must not look idle to others."""
        self.queue.touch()
