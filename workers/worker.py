"""The scoring worker: reads comment ids from the stream, scores, decides, commits, then acks.

DESIGN.md, Queue contract. The database is the source of truth: a message is
acknowledged only after the decision it led to is committed, so a crash at any
point means the message is delivered again, and a redelivered message whose
comment is no longer pending is acknowledged without another decision.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any, TypeVar

import redis
import sqlalchemy as sa
from flask import Flask

from service import metrics
from service.extensions import db
from service.models import Comment
from service.redis_client import key
from service.stream import GROUP, score_stream
from workers.batch import Decider, Outcome, transient
from workers.heartbeat import Heartbeat, isonow
from workers.scorers import Scorer, ScorerUnavailable, load_scorer
from workers.sweeper import sweep

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_RETRY_S = 0.5  # the first back-off; it doubles up to DB_RETRY_MAX_S
NO_ERROR = "no error recorded: the worker handling it stopped (crash, kill or timeout)"

# (entry id, fields or None when the entry was deleted, times delivered)
Entry = tuple[str, dict[str, str] | None, int]


def load_configured_scorer(config: Mapping[str, Any]) -> tuple[Scorer, bool]:
    """The scorer SCORER names, or SCORER_FALLBACK's; the flag says the fallback took over.

    Raises ScorerUnavailable when neither loads (SCORER_FALLBACK ``none``: when
    SCORER does not), ValueError when a spec names no known scorer.
    """
    spec, fallback = config["SCORER"], config["SCORER_FALLBACK"]
    options: dict[str, Any] = {
        "config_dir": config["MODEL_CONFIG_DIR"],
        "device": config["MODEL_DEVICE"],
        "threads": config["MODEL_THREADS"],
        "max_batch": config["SCORE_BATCH_MAX"],
        "max_tokens": config["MODEL_MAX_TOKENS"],
        "quantize": config["MODEL_QUANTIZE"],
        "log": log,
    }
    try:
        return load_scorer(spec, "none", **options), False
    except ScorerUnavailable as exc:
        if fallback in ("none", spec):
            raise
        log.error("scorer %s: unavailable, falling back to %s: %s", spec, fallback, exc)
        return load_scorer(fallback, "none", **options), True


class Backoff:
    """Exponential delays from FIRST_RETRY_S up to ``max_s``."""

    def __init__(self, max_s: float) -> None:
        self.max_s = max_s
        self.delay = 0.0

    def next(self) -> float:
        self.delay = min(self.max_s, self.delay * 2 or FIRST_RETRY_S)
        return self.delay

    def reset(self) -> None:
        self.delay = 0.0


def comment_id_of(fields: Mapping[str, str]) -> int | None:
    """The message's comment id, or None when the message is malformed."""
    value = fields.get("comment_id")
    if value is None or not value.isascii() or not value.isdigit():
        return None
    return int(value)


class Worker:
    """One consumer of the scoring stream; ``run()`` until SIGTERM/SIGINT or, in burst mode,
    until the stream is empty and nothing is pending."""

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
        self.scorer = scorer
        self.decider = Decider(scorer)
        self.burst = burst
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.batch_max: int = cfg["SCORE_BATCH_MAX"]
        self.block_ms: int = cfg["SCORE_BLOCK_MS"]
        self.claim_idle_ms: int = cfg["SCORE_CLAIM_IDLE_MS"]
        self.max_attempts: int = cfg["SCORE_MAX_ATTEMPTS"]
        self.sweep_after_s: int = cfg["SWEEP_AFTER_S"]
        self.sweep_interval_s: int = cfg["SWEEP_INTERVAL_S"]
        self.db_retry_max_s: float = cfg["DB_RETRY_MAX_S"]
        # A failed entry's last error must outlive its retries (one per claim_idle).
        self.error_ttl_s = max(60, math.ceil(2 * self.claim_idle_ms / 1000 * self.max_attempts))
        with app.app_context():
            self.stream = score_stream()
            self.dead_stream = key("score", "dead")
            self.error_prefix = key("score", "error")
            self.sweeper_lock = key("sweeper")
            self.swept_prefix = key("swept")
            heartbeat_key = key("worker", self.consumer)
        timeout = cfg["REDIS_TIMEOUT_S"]
        # Not the app's client: its socket timeout is shorter than a blocking XREADGROUP.
        self.redis = redis.Redis.from_url(
            cfg["REDIS_URL"],
            decode_responses=True,
            socket_connect_timeout=timeout,
            socket_timeout=self.block_ms / 1000 + timeout,
            health_check_interval=30,
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
                "scorer_spec": cfg["SCORER"],
                "fallback_active": fallback_active,
                "batch_max": self.batch_max,
            },
        )
        self.stopping = False
        self._in_hand: list[str] = []  # ids of the messages being worked on
        self._group_ready = False
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._next_sweep = 0.0  # the first turn sweeps

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> int:
        """Work until stopped; 0 after a clean stop."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        log.info(
            "worker %s: started (model %s, batch %d%s)",
            self.consumer,
            self.scorer.model,
            self.batch_max,
            ", burst" if self.burst else "",
        )
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
                    self._group_ready = False
                    self._next_sweep = 0.0
                except redis.RedisError as exc:
                    delay = backoff.next()
                    log.warning(
                        "worker %s: Redis unavailable (%s); retrying in %.1fs",
                        self.consumer,
                        exc,
                        delay,
                    )
                    self._sleep(delay)
        finally:
            self.heartbeat.stop()
            self._leave_group()
        log.info(
            "worker %s: stopped (%d comments decided)", self.consumer, self.heartbeat.scored_total
        )
        return 0

    def _turn(self) -> bool:
        """One turn of the loop; True when a burst worker has nothing left to do."""
        if not self._group_ready:
            self._ensure_group()
        entries = self._claim() if time.monotonic() >= self._next_claim else []
        if not entries:
            entries = self._read()
        if entries:
            self._in_hand = [entry_id for entry_id, _, _ in entries]
            try:
                self._handle(entries)
            finally:
                self._in_hand = []
        # After the first read, not before: a sweep waits for the database, the stream not.
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.sweep_interval_s
            if self._sweep():
                return False
        return (
            not entries and self.burst and self.redis.xpending(self.stream, GROUP)["pending"] == 0
        )

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.stopping:
            log.warning(
                "worker %s: second %s; stopping now, unacked work is redelivered",
                self.consumer,
                name,
            )
            raise SystemExit(1)
        log.info("worker %s: %s; finishing the batch in hand", self.consumer, name)
        self.stopping = True

    def _sleep(self, seconds: float) -> None:
        """Sleep, waking early when a stop is asked for."""
        deadline = time.monotonic() + seconds
        while not self.stopping and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))

    # -- the stream -----------------------------------------------------------------------

    def _ensure_group(self) -> None:
        try:
            # From "0": whatever is in the stream and the group never saw is work to do
            # (acked entries are deleted, so the stream holds only unfinished work).
            self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _read(self) -> list[Entry]:
        """New messages for this consumer, waiting up to SCORE_BLOCK_MS."""
        answer = self.redis.xreadgroup(
            GROUP, self.consumer, {self.stream: ">"}, count=self.batch_max, block=self.block_ms
        )
        if isinstance(answer, dict):  # RESP3
            answer = list(answer.items())
        return [
            (entry_id, fields, 1) for _, messages in answer or [] for entry_id, fields in messages
        ]

    def _claim(self) -> list[Entry]:
        """Messages idle over SCORE_CLAIM_IDLE_MS (their worker died or failed them), claimed.

        Those delivered more than SCORE_MAX_ATTEMPTS times are dead-lettered here.
        """
        self._next_claim = time.monotonic() + self.claim_idle_ms / 2000
        cursor, claimed, *_ = self.redis.xautoclaim(
            self.stream,
            GROUP,
            self.consumer,
            self.claim_idle_ms,
            start_id=self._claim_cursor,
            count=self.batch_max,
        )
        self._claim_cursor = cursor
        if cursor != "0-0":
            self._next_claim = 0.0  # more to claim: go on next turn
        if not claimed:
            return []
        counts = self.redis.pipeline(transaction=False)
        for entry_id, _ in claimed:
            counts.xpending_range(self.stream, GROUP, entry_id, entry_id, 1)
        entries = []
        for (entry_id, fields), pending in zip(claimed, counts.execute(), strict=True):
            attempts = pending[0]["times_delivered"] if pending else 1
            entries.append((entry_id, fields, attempts))
        log.info("worker %s: claimed %d idle messages", self.consumer, len(entries))
        # A deleted entry (fields None) is acked by _handle, never dead-lettered.
        exhausted = [e for e in entries if e[2] > self.max_attempts and e[1] is not None]
        if exhausted:
            self._dead_letter(exhausted)
        return [entry for entry in entries if entry not in exhausted]

    def _ack(self, entries: list[Entry]) -> None:
        """XACK and XDEL (the stream stays bounded) and forget their recorded errors."""
        if not entries:
            return
        ids = [entry_id for entry_id, _, _ in entries]
        pipe = self.redis.pipeline()
        pipe.xack(self.stream, GROUP, *ids)
        pipe.xdel(self.stream, *ids)
        retried = [f"{self.error_prefix}:{entry_id}" for entry_id, _, n in entries if n > 1]
        if retried:
            pipe.delete(*retried)
        pipe.execute()

    def _touch(self) -> None:
        """Reset the idle time of the messages in hand (XCLAIM JUSTID counts no delivery),
        so that live workers do not claim them, nor dead-letter them in the end, while
        this worker waits for the database."""
        if self._in_hand:
            try:
                self.redis.xclaim(self.stream, GROUP, self.consumer, 0, self._in_hand, justid=True)
            except redis.RedisError as exc:
                log.debug("worker %s: messages not touched (%s)", self.consumer, exc)

    def _record_errors(self, errors: dict[str, str]) -> None:
        """Keep each failed entry's error for its dead-letter record, should it come to that."""
        pipe = self.redis.pipeline(transaction=False)
        for entry_id, error in errors.items():
            pipe.set(f"{self.error_prefix}:{entry_id}", error[:1000], ex=self.error_ttl_s)
        pipe.execute()

    def _dead_letter(self, entries: list[Entry], error: str | None = None) -> None:
        """Give up on entries: their pending comments become held (``scoring_failed``) and
        each gets a record in ``{prefix}:score:dead``; then they are acked.

        The comments are held and committed first, then records and acks go in one
        MULTI: a crash in between redelivers an entry whose comment is no longer
        pending, which is acked without a second record. An entry whose comment was
        decided or deleted meanwhile is only acked.
        """
        comment_ids = {entry_id: comment_id_of(fields or {}) for entry_id, fields, _ in entries}
        wanted = [cid for cid in comment_ids.values() if cid is not None]
        held: list[int] = []
        if wanted:
            held = self._with_db_retry("dead letters", lambda: self.decider.hold(wanted))
            if held is None:
                return  # stopping while the database is down: leave them for another worker
        ids = [entry_id for entry_id, _, _ in entries]
        recorded = self.redis.mget([f"{self.error_prefix}:{entry_id}" for entry_id in ids])
        pipe = self.redis.pipeline()
        for (entry_id, fields, attempts), last_error in zip(entries, recorded, strict=True):
            comment_id = comment_ids[entry_id]
            if comment_id is not None and comment_id not in held:
                continue
            reason = error or last_error or NO_ERROR
            record = {
                "comment_id": (fields or {}).get("comment_id", ""),
                "entry_id": entry_id,
                "attempts": str(attempts),
                "error": reason,
                "consumer": self.consumer,
                "time": isonow(),
            }
            if comment_id is None:
                record["message"] = repr(fields)[:1000]
            pipe.xadd(self.dead_stream, record)
            log.warning(
                "message %s: dead-lettered after %d deliveries (%s)", entry_id, attempts, reason
            )
        pipe.xack(self.stream, GROUP, *ids)
        pipe.xdel(self.stream, *ids)
        pipe.delete(*[f"{self.error_prefix}:{entry_id}" for entry_id in ids])
        pipe.execute()

    def _leave_group(self) -> None:
        """Remove this consumer from the group when it holds no pending messages."""
        try:
            if not self.redis.xpending_range(self.stream, GROUP, "-", "+", 1, self.consumer):
                self.redis.xgroup_delconsumer(self.stream, GROUP, self.consumer)
        except redis.RedisError as exc:
            log.debug("worker %s: not removed from the group (%s)", self.consumer, exc)

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
        """Score and decide one batch, then ack what is done; failures stay unacked."""
        started = time.monotonic()
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
        outcome = self._decide(list(by_comment)) if by_comment else Outcome()
        if outcome is None:
            log.warning(
                "batch of %d: left unacked, stopping while the database is down", len(entries)
            )
            return
        self.heartbeat.record(len(entries), len(outcome.decided))
        self._log_decided(outcome.decided)
        for comment_id, error in outcome.failed.items():
            log.warning("comment %s: not decided, will be retried (%s)", comment_id, error)
        if outcome.failed:
            self._record_errors(
                {
                    entry_id: error
                    for comment_id, error in outcome.failed.items()
                    for entry_id, _, _ in by_comment[comment_id]
                }
            )
        done = [e for cid in outcome.decided + outcome.skipped for e in by_comment[cid]]
        self._ack(done + gone)
        elapsed = time.monotonic() - started
        metrics.SCORING_BATCH_SIZE.observe(len(entries))
        metrics.SCORING_BATCH_SECONDS.observe(elapsed)
        log.info(
            "batch of %d: %d decided, %d skipped, %d failed in %.3fs",
            len(entries),
            len(outcome.decided),
            len(outcome.skipped),
            len(outcome.failed),
            elapsed,
        )

    def _log_decided(self, comment_ids: list[int]) -> None:
        """One line per decided comment with the request id of its submission, so a comment
        can be followed from the API's log through this one to the dispatcher's."""
        if not comment_ids:
            return
        try:
            rows = db.session.execute(
                sa.select(Comment.id, Comment.status, Comment.request_id).where(
                    Comment.id.in_(comment_ids)
                )
            ).all()
        except sa.exc.SQLAlchemyError as exc:
            log.debug("batch: decisions not logged (%s)", exc)
            rows = []
        finally:
            # End the read now: on SQLite it holds the write lock.
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                db.session.rollback()
        for row in rows:
            log.info(
                "comment %s: %s by policy", row.id, row.status, extra={"request_id": row.request_id}
            )

    def _decide(self, ids: list[int]) -> Outcome | None:
        """Score the pending comments among ``ids`` in one call, then decide them in one
        transaction; None when a stop came while the database was down."""
        texts = self._with_db_retry("batch", lambda: self.decider.pending_texts(ids))
        if texts is None:
            return None
        outcome = Outcome(skipped=[cid for cid in ids if cid not in texts])
        # Scoring happens outside any transaction: on SQLite a transaction holds the
        # database's write lock, and the API must not wait for a forward pass.
        scored = self.decider.score(texts)
        ready = {cid: result for cid, result in scored.items() if result.error is None}
        outcome.failed.update(
            {cid: f"scoring: {result.error}" for cid, result in scored.items() if result.error}
        )
        if ready:
            applied = self._with_db_retry("batch", lambda: self.decider.apply(ready))
            if applied is None:
                return None
            outcome.merge(applied)
        return outcome

    def _with_db_retry(self, what: str, action: Callable[[], T]) -> T | None:
        """``action()``, retried with back-off while the database is unreachable.

        Never drops work: it retries until the database answers, or returns None
        when a stop is asked for meanwhile (the messages stay unacked).
        """
        backoff = Backoff(self.db_retry_max_s)
        while True:
            try:
                return action()
            except Exception as exc:
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    db.session.rollback()
                if not transient(exc):
                    raise
                if self.stopping:
                    return None
                delay = backoff.next()
                self._touch()
                log.warning(
                    "%s: database unavailable (%s); retrying in %.1fs",
                    what,
                    str(exc).splitlines()[0],
                    delay,
                )
                self._sleep(delay)
