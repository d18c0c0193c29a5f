"""One worker's membership of the scoring stream's consumer group: reading, claiming idle
messages, acking, giving back, and the dead-letter records.

It only touches Redis; what a message means for a comment is the worker's business.
A message is acked only once the decision it led to is committed; one whose worker
died stays pending and is claimed by another after SCORE_CLAIM_IDLE_MS.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import redis

from service.redis_keys import join
from service.stream import GROUP, group_backlog
from workers.heartbeat import isonow

log = logging.getLogger(__name__)

NO_ERROR = "no error recorded: the worker handling it stopped (crash, kill or timeout)"

# (entry id, fields or None when the entry was deleted, times delivered)
Entry = tuple[str, dict[str, str] | None, int]


def read_group(
    client: redis.Redis,
    consumer: str,
    streams: dict[str, str],
    *,
    count: int,
    block_ms: int | None,
) -> dict[str, list[Entry]]:
    """XREADGROUP as ``consumer`` of the group: each stream's new entries, by stream name
    (no BLOCK when ``block_ms`` is None)."""
    answer = client.xreadgroup(GROUP, consumer, streams, count=count, block=block_ms)
    if isinstance(answer, dict):  # RESP3
        answer = list(answer.items())
    return {
        stream: [(entry_id, fields, 1) for entry_id, fields in messages]
        for stream, messages in answer or []
    }


def comment_id_of(fields: Mapping[str, str]) -> int | None:
    """The message's comment id, or None when the message is malformed."""
    value = fields.get("comment_id")
    if value is None or not value.isascii() or not value.isdigit():
        return None
    return int(value)


class GroupMember:
    """Membership of the ``scorers`` group on one stream; the group is made on first use.

    ``start_id`` is where a group made here starts reading.
    """

    start_id = "0"

    def __init__(self, client: redis.Redis, stream: str) -> None:
        self.redis = client
        self.stream = stream
        self._group_ready = False

    def ensure_group(self) -> None:
        """Create the group unless this member did already (and it was not lost since)."""
        if self._group_ready:
            return
        try:
            self.redis.xgroup_create(self.stream, GROUP, id=self.start_id, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def forget_group(self) -> None:
        """The group is gone (Redis lost its data): the next ``ensure_group`` creates it."""
        self._group_ready = False


class Consumer(GroupMember):
    """A named consumer in the ``scorers`` group of ``stream``."""

    # Whatever is in the stream and the group never saw is work to do (acked entries
    # are deleted, so the stream holds only unfinished work).
    start_id = "0"

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        name: str,
        *,
        dead_stream: str,
        error_prefix: str,
        batch_max: int,
        window_max: int,
        claim_idle_ms: int,
        max_attempts: int,
        error_ttl_s: int,
    ) -> None:
        super().__init__(client, stream)
        self.name = name
        self.dead_stream = dead_stream
        self.error_prefix = error_prefix
        self.batch_max = batch_max
        self.window_max = max(batch_max, window_max)
        self.claim_idle_ms = claim_idle_ms
        self.max_attempts = max_attempts
        self.error_ttl_s = error_ttl_s
        self._in_hand: list[str] = []  # ids of the messages being worked on
        self._claim_cursor = "0-0"
        self._next_claim = 0.0

    def read(self, block_ms: int) -> list[Entry]:
        """New messages for this consumer, waiting up to ``block_ms``."""
        return self._read({self.stream: ">"}, block_ms).get(self.stream, [])

    def read_with(self, other: str, block_ms: int) -> tuple[list[Entry], list[Entry]]:
        """One blocking read of ``other`` (a stream with a group of the same name) and this
        one, so a message on either wakes an idle worker at once: (this stream's new
        messages, the other's)."""
        found = self._read({other: ">", self.stream: ">"}, block_ms)
        return found.get(self.stream, []), found.get(other, [])

    def _read(self, streams: dict[str, str], block_ms: int) -> dict[str, list[Entry]]:
        return read_group(self.redis, self.name, streams, count=self.window(), block_ms=block_ms)

    def window(self) -> int:
        """How many messages to read: SCORE_BATCH_MAX, or while a backlog builds this
        consumer's share of the undelivered messages, up to SCORE_WINDOW_MAX.

        A wider window lets the scorer sort more texts by length, so its passes are
        fuller and padded less; the share leaves work for the group's other live consumers.
        """
        if self.window_max == self.batch_max:
            return self.batch_max
        backlog = group_backlog(self.redis, self.stream)
        if backlog <= self.batch_max:
            return self.batch_max
        return max(self.batch_max, min(self.window_max, backlog // self.live_consumers()))

    def live_consumers(self) -> int:
        """Consumers of the group seen within SCORE_CLAIM_IDLE_MS, this one included. A
        worker killed without leaving stays in the group; past that idle time its
        messages are claimable and it no longer counts."""
        try:
            consumers = self.redis.xinfo_consumers(self.stream, GROUP)
        except redis.ResponseError:  # no group yet
            return 1
        return 1 + sum(
            1 for c in consumers if c["name"] != self.name and c["idle"] < self.claim_idle_ms
        )

    def forget_departed(self, after_ms: int) -> list[str]:
        """Remove from the group the consumers idle for ``after_ms`` with nothing pending:
        workers killed without leaving, which XINFO would otherwise list forever. A live
        worker reads every few seconds, so it is never that idle; one removed anyway is
        re-created by its next read. The names removed."""
        try:
            consumers = self.redis.xinfo_consumers(self.stream, GROUP)
        except redis.ResponseError:  # no group yet
            return []
        departed = [
            c["name"]
            for c in consumers
            if c["name"] != self.name and c["pending"] == 0 and c["idle"] >= after_ms
        ]
        for name in departed:
            self.redis.xgroup_delconsumer(self.stream, GROUP, name)
        if departed:
            log.info(
                "worker %s: removed %d departed consumers from the group (%s)",
                self.name,
                len(departed),
                ", ".join(departed),
            )
        return departed

    def claim_due(self) -> bool:
        return time.monotonic() >= self._next_claim

    def claim(self) -> tuple[list[Entry], list[Entry]]:
        """Messages idle over SCORE_CLAIM_IDLE_MS (their worker died or failed them), claimed:
        (those to work on, those delivered more than SCORE_MAX_ATTEMPTS times)."""
        self._next_claim = time.monotonic() + self.claim_idle_ms / 2000
        cursor, claimed, *_ = self.redis.xautoclaim(
            self.stream,
            GROUP,
            self.name,
            self.claim_idle_ms,
            start_id=self._claim_cursor,
            count=self.batch_max,
        )
        self._claim_cursor = cursor
        if cursor != "0-0":
            self._next_claim = 0.0  # more to claim: go on next turn
        if not claimed:
            return [], []
        counts = self.redis.pipeline(transaction=False)
        for entry_id, _ in claimed:
            counts.xpending_range(self.stream, GROUP, entry_id, entry_id, 1)
        entries = []
        for (entry_id, fields), pending in zip(claimed, counts.execute(), strict=True):
            attempts = pending[0]["times_delivered"] if pending else 1
            entries.append((entry_id, fields, attempts))
        log.info("worker %s: claimed %d idle messages", self.name, len(entries))
        # A deleted entry (fields None) is acked by the worker, never dead-lettered.
        exhausted = [e for e in entries if e[2] > self.max_attempts and e[1] is not None]
        return [entry for entry in entries if entry not in exhausted], exhausted

    def idle(self) -> bool:
        """True when no message of the group is pending with any consumer."""
        return self.redis.xpending(self.stream, GROUP)["pending"] == 0

    def ack(self, entries: list[Entry]) -> None:
        """XACK and XDEL (the stream stays bounded) and forget their recorded errors."""
        if not entries:
            return
        ids = [entry_id for entry_id, _, _ in entries]
        pipe = self.redis.pipeline()
        pipe.xack(self.stream, GROUP, *ids)
        pipe.xdel(self.stream, *ids)
        retried = [self._error_key(entry_id) for entry_id, _, n in entries if n > 1]
        if retried:
            pipe.delete(*retried)
        pipe.execute()

    def give_back(self, entries: list[Entry]) -> None:
        """Hand messages not yet worked on back to the group at once (stopping mid-window):
        re-added as new messages and acked in one MULTI, so other workers need not wait
        SCORE_CLAIM_IDLE_MS to claim them."""
        if not entries:
            return
        ids = [entry_id for entry_id, _, _ in entries]
        pipe = self.redis.pipeline()
        for _, fields, _ in entries:
            pipe.xadd(self.stream, fields or {})
        pipe.xack(self.stream, GROUP, *ids)
        pipe.xdel(self.stream, *ids)
        pipe.execute()
        log.info("worker %s: gave back %d messages not yet scored", self.name, len(ids))

    def hold(self, entries: list[Entry]) -> None:
        """Say which messages are being worked on: ``touch`` keeps those from looking idle."""
        self._in_hand = [entry_id for entry_id, _, _ in entries]

    @contextmanager
    def holding(self, entries: list[Entry]) -> Iterator[None]:
        """``hold(entries)`` for the block; nothing is in hand after it."""
        self.hold(entries)
        try:
            yield
        finally:
            self._in_hand = []

    def touch(self) -> None:
        """Reset the idle time of the messages in hand (XCLAIM JUSTID counts no delivery),
        so that live workers do not claim them, nor dead-letter them in the end, while
        this worker waits for the database or works through a window."""
        if self._in_hand:
            try:
                self.redis.xclaim(self.stream, GROUP, self.name, 0, self._in_hand, justid=True)
            except redis.RedisError as exc:
                log.debug("worker %s: messages not touched (%s)", self.name, exc)

    def record_errors(self, errors: dict[str, str]) -> None:
        """Keep each failed entry's error for its dead-letter record, should it come to that."""
        pipe = self.redis.pipeline(transaction=False)
        for entry_id, error in errors.items():
            pipe.set(self._error_key(entry_id), error[:1000], ex=self.error_ttl_s)
        pipe.execute()

    def bury(
        self,
        entries: list[Entry],
        comment_ids: Mapping[str, int | None],
        held: list[int],
        error: str | None = None,
    ) -> None:
        """Record dead letters in ``{prefix}:score:dead`` and ack the entries, in one MULTI.

        An entry gets a record when its comment was just ``held`` or it names no comment
        (``comment_ids`` maps entry ids to comment ids); one whose comment was decided or
        deleted meanwhile is only acked.
        """
        ids = [entry_id for entry_id, _, _ in entries]
        recorded = self.redis.mget([self._error_key(entry_id) for entry_id in ids])
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
                "consumer": self.name,
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
        pipe.delete(*[self._error_key(entry_id) for entry_id in ids])
        pipe.execute()

    def _error_key(self, entry_id: str) -> str:
        """Where a failed entry's last error waits for its dead-letter record."""
        return join(self.error_prefix, entry_id)

    def leave(self) -> None:
        """Remove this consumer from the group when it holds no pending messages."""
        try:
            if not self.redis.xpending_range(self.stream, GROUP, "-", "+", 1, self.name):
                self.redis.xgroup_delconsumer(self.stream, GROUP, self.name)
        except redis.RedisError as exc:
            log.debug("worker %s: not removed from the group (%s)", self.name, exc)
