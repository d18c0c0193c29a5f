"""The worker's side of synchronous scoring: answer requests on ``{prefix}:analyze`` ahead of
the comment backlog.

A request is ``{id, texts, deadline, reply}``. The worker gathers what arrives within
ANALYZE_GATHER_MS into one scoring call, drops requests whose deadline has passed
(their caller has answered 503 and gone), RPUSHes each answer to its reply key with a
short TTL, then acks and deletes the entries: nothing of a text stays in Redis.
Entries are never retried: a worker killed mid-request loses that request's answer
only, and the entry left pending is cleared by the next worker's claim.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import redis

from service import metrics
from service.stream import GROUP
from workers.consumer import Consumer, Entry, GroupMember, read_group
from workers.routing import Router, SiteLanguages
from workers.scorers import Scorer

log = logging.getLogger(__name__)

# A drop-in caller always gets scores (Perspective scores a language it was not trained on
# anyway, and says so): a language no loaded scorer reads goes to the fallback language's.
SCORE_EVERY_LANGUAGE = SiteLanguages(unsupported="score")

CLAIM_EVERY_S = 5.0
# How often the gathering looks for more requests. Not a Redis BLOCK: Redis times blocked
# reads out only on its own clock tick (hz 10 by default: up to 100 ms), so a 5 ms BLOCK
# held every lone request ~50 ms on average.
GATHER_POLL_S = 0.001
# Passes measured against their estimates before the estimates get a margin from them.
OVERRUN_SAMPLES = 8
# The answer to a request no pass could answer before its deadline.
REFUSED = {"error": "cannot be scored before its deadline", "unscored": "deadline"}
# (id, texts, deadline, reply key) of one request
Request = tuple[
    str, list[str], float, str
]  # how often pending entries of dead workers are looked for


class PassCost:
    """How long a pass takes, to fit passes to deadlines: a fixed cost per pass plus a cost
    per character of its texts (what the model reads grows with their tokens, windows
    included), fitted by least squares to the last ``samples`` passes.

    A cost per text alone (each pass's seconds over its texts) made small passes look dear
    per text, most of all under load, and the passes fitted to it shrank further: at
    saturation a worker scored 3 texts a pass while most requests expired waiting.
    """

    def __init__(self, samples: int = 32) -> None:
        self._passes: deque[tuple[int, float]] = deque(maxlen=samples)
        # (seconds per pass, seconds per character), fitted when a pass is recorded: a
        # pass's fitting asks for an estimate once per waiting request.
        self._model: tuple[float, float] | None = None
        # Seconds each pass ran over what the fit expected of it beforehand. In seconds, not
        # in proportion: what makes a pass late is mostly time the scheduler gave to other
        # processes, and a ratio to a scorer's millisecond passes would be all noise.
        self._overruns: deque[float] = deque(maxlen=samples)
        self._margin_s = 0.0

    def record(self, chars: int, seconds: float) -> None:
        """A pass over texts of ``chars`` characters in all took ``seconds``."""
        expected = self.seconds(chars)
        if expected is not None:
            self._overruns.append(seconds - expected)
            if len(self._overruns) >= OVERRUN_SAMPLES:
                high = statistics.quantiles(self._overruns, n=10, method="inclusive")[-1]
                self._margin_s = max(0.0, high)
        self._passes.append((max(1, chars), seconds))
        sizes = [n for n, _ in self._passes]
        times = [t for _, t in self._passes]
        if len(set(sizes)) > 1:
            slope, intercept = statistics.linear_regression(sizes, times)
            if slope > 0 and intercept >= 0:
                self._model = (intercept, slope)
                return
            if slope <= 0:
                # No cost of size in sight (a fast scorer's passes are their fixed cost and
                # noise): by the mean, not in proportion, which would make a long text look
                # many times dearer than it is.
                self._model = (statistics.fmean(times), 0.0)
                return
        # One size seen, or a cost per character with none per pass: in proportion.
        self._model = (0.0, sum(times) / sum(sizes))

    def seconds(self, chars: int) -> float | None:
        """The expected seconds of a pass over ``chars`` characters; None before the first."""
        if self._model is None:
            return None
        per_pass, per_char = self._model
        return per_pass + per_char * max(1, chars)

    def bound(self, chars: int) -> float | None:
        """``seconds(chars)`` plus how far the recent passes ran over their estimates (the
        90th percentile): fitted to a deadline by the mean, the pass would miss it as often
        as not, and every answer of a pass that misses is scored for nothing."""
        expected = self.seconds(chars)
        return None if expected is None else expected + self._margin_s


def parse_request(fields: dict[str, str] | None) -> Request | None:
    """(id, texts, deadline, reply key) of a request entry; None when it is malformed."""
    if not fields:
        return None
    try:
        texts = json.loads(fields["texts"])
        deadline = float(fields["deadline"])
        request_id, reply = fields["id"], fields["reply"]
    except (KeyError, ValueError, TypeError):
        return None
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        return None
    return request_id, texts, deadline, reply


def arrived(entry_id: str) -> float | None:
    """When an entry reached the stream, in Unix seconds: the first part of its ID is
    Redis's clock in milliseconds when it was added."""
    try:
        return int(entry_id.split("-", 1)[0]) / 1000
    except ValueError:
        return None


class Responder(GroupMember):
    """One worker's membership of the analyze stream's group, and the passes it scores."""

    start_id = "$"  # only new requests matter: older ones' callers have gone

    def __init__(
        self,
        client: redis.Redis,
        *,
        stream: str,
        ready_key: str,
        consumer: str,
        scorer: Scorer,
        gather_ms: int,
        batch_max: int,
        reply_ttl_s: int,
        live_s: float,
        claim_idle_ms: int,
    ) -> None:
        super().__init__(client, stream)
        self.ready_key = ready_key
        self.consumer = consumer
        self.scorer = scorer
        self.gather_s = gather_ms / 1000
        self.batch_max = batch_max
        self.reply_ttl_s = max(1, reply_ttl_s)
        self.live_s = live_s
        self.claim_idle_ms = claim_idle_ms
        self.inbox: list[Entry] = []
        self.passes = 0
        self.answered = 0
        self.cost = PassCost()  # measured, to fit passes to deadlines
        self._next_ready = 0.0
        self._next_claim = 0.0

    def announce(self) -> None:
        """Say this worker answers synchronous requests: a member of ``{prefix}:analyzers``
        scored with the time it stops counting (the API answers 503 at once without one)."""
        now = time.time()
        if now < self._next_ready:
            return
        self._next_ready = now + self.live_s / 3
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(self.ready_key, {self.consumer: now + self.live_s})
        pipe.zremrangebyscore(self.ready_key, "-inf", now)
        pipe.execute()

    def leave(self) -> None:
        """A clean stop: no API process should count on this worker any more."""
        try:
            self.redis.zrem(self.ready_key, self.consumer)
            if self._group_ready:
                # What it held unanswered had callers that have gone by now.
                self.redis.xgroup_delconsumer(self.stream, GROUP, self.consumer)
        except redis.RedisError as exc:
            log.warning("analyze: %s not removed from %s (%s)", self.consumer, self.ready_key, exc)

    def read_with(self, queue: Consumer, block_ms: int) -> list[Entry]:
        """One blocking read of both streams, so a request wakes an idle worker at once; the
        requests go to the inbox, the comment messages are returned."""
        comments, requests = queue.read_with(self.stream, block_ms)
        self.inbox.extend(requests)
        return comments

    def serve(self, each_pass: Callable[[], object] | None = None) -> int:
        """Answer every request waiting now (and what arrives while gathering); how many.
        ``each_pass`` is called after every pass: this may go on for as long as requests
        come, and the caller may hold work that must not look abandoned meanwhile."""
        self.ensure_group()
        self._claim_abandoned()
        answered = 0
        while True:
            # Requests back to back keep a worker here for as long as they come: it must
            # still say it serves, or the API would answer 503 at once while it scores.
            self.announce()
            # No BLOCK here (None): a BLOCK of 0 would wait forever.
            entries, self.inbox = self.inbox + self._read(None), []
            if not entries:
                return answered
            entries += self._gather(entries)
            answered += self._answer(entries)
            if each_pass is not None:
                each_pass()

    def _read(self, block_ms: int | None, count: int | None = None) -> list[Entry]:
        found = read_group(
            self.redis,
            self.consumer,
            {self.stream: ">"},
            count=count or self.batch_max,
            block_ms=block_ms,
        )
        return found.get(self.stream, [])

    def _gather(self, entries: list[Entry]) -> list[Entry]:
        """More requests for the same pass, for up to gather_ms (never past a deadline)."""
        more: list[Entry] = []
        deadlines = [parsed[2] for e in entries if (parsed := parse_request(e[1]))]
        until = min([time.time() + self.gather_s, *deadlines])
        texts = sum(len(parsed[1]) for e in entries if (parsed := parse_request(e[1])))
        while texts < self.batch_max and (left := until - time.time()) > 0:
            time.sleep(min(left, GATHER_POLL_S))
            found = self._read(None, self.batch_max - texts)
            more += found
            texts += sum(len(parsed[1]) for e in found if (parsed := parse_request(e[1])))
        return more

    def _answer(self, entries: list[Entry]) -> int:
        """Score the live requests in one call, reply to each, then ack and delete all."""
        started = time.perf_counter()
        now = time.time()
        live: list[Request] = []
        sent: dict[str, float | None] = {}
        expired = malformed = 0
        for entry_id, fields, _ in entries:
            parsed = parse_request(fields)
            if parsed is None:
                malformed += fields is not None
            elif parsed[2] <= now:
                expired += 1
            else:
                live.append(parsed)
                sent[parsed[0]] = arrived(entry_id)
        if expired:
            metrics.ANALYZE_DROPPED.labels("expired").inc(expired)
            log.info("analyze: %d requests dropped unscored, their deadline passed", expired)
        if malformed:
            metrics.ANALYZE_DROPPED.labels("malformed").inc(malformed)
            log.warning("analyze: %d malformed requests dropped", malformed)
        live, later, refused = self._fitting(live)
        if refused:
            self._refuse(refused)
        # Those that would miss their deadline in this pass wait for the next (or expire).
        self.inbox += [e for e in entries if (p := parse_request(e[1])) and p in later]
        entries = [e for e in entries if not ((p := parse_request(e[1])) and p in later)]
        texts = [text for _, found, _, _ in live for text in found]
        waited = [max(0.0, now - at) for r in live if (at := sent.get(r[0])) is not None]
        for seconds in waited:
            metrics.ANALYZE_WAIT_SECONDS.observe(seconds)
        replies = self._replies(live, texts)
        pipe = self.redis.pipeline(transaction=False)
        late = 0
        for (_, _, deadline, reply), answer in zip(live, replies, strict=True):
            if deadline <= time.time():
                late += 1  # its caller has gone: no answer left behind in Redis
                continue
            pipe.rpush(reply, json.dumps(answer))
            pipe.expire(reply, self.reply_ttl_s)
        ids = [entry_id for entry_id, _, _ in entries]
        pipe.xack(self.stream, GROUP, *ids)
        pipe.xdel(self.stream, *ids)
        # The pass is measured and logged before its answers go out: whoever reads the log
        # once it has its answer finds the pass there.
        if live:
            elapsed = time.perf_counter() - started
            if texts:
                self.cost.record(sum(map(len, texts)), elapsed)
            self.passes += 1
            self.answered += len(live) - late
            metrics.ANALYZE_PASSES.inc()
            metrics.ANALYZE_PASS_REQUESTS.observe(len(live))
            metrics.ANALYZE_PASS_TEXTS.observe(len(texts))
            log.info(
                "analyze pass: %d requests, %d texts in %.3fs, waited up to %.3fs",
                len(live),
                len(texts),
                elapsed,
                max(waited, default=0.0),
            )
        pipe.execute()
        if late:
            metrics.ANALYZE_DROPPED.labels("late").inc(late)
            log.info("analyze: %d answers dropped, their callers had gone", late)
        return len(live) - late

    def _fitting(self, live: list[Request]) -> tuple[list[Request], list[Request], list[Request]]:
        """The requests one pass can answer before their deadlines (by the measured cost of
        passes), newest first: under overload some are answered rather than none; those
        left for a later pass; and those that not even a pass of their own would answer in
        time (a text too long for the time left), refused at once."""
        if self.cost.seconds(1) is None:
            return live, [], []
        now = time.time()
        chosen: list[Request] = []
        later: list[Request] = []
        refused: list[Request] = []
        chars = 0
        for request in sorted(live, key=lambda r: r[2], reverse=True):
            earliest = min([request[2], *(r[2] for r in chosen)])
            more = sum(map(len, request[1]))
            if self.cost.bound(more) > request[2] - now:
                # Scored anyway, its answer would come too late and every request behind it
                # would wait the whole time.
                refused.append(request)
                continue
            if chosen and self.cost.bound(chars + more) > earliest - now:
                later.append(request)
                continue
            chosen.append(request)
            chars += more
        return chosen, later, refused

    def _refuse(self, refused: list[Request]) -> None:
        """Tell the callers of ``refused`` now, so each answers 503 at once instead of at
        its deadline (an API before this answer kind reads its "error": a 503 too)."""
        pipe = self.redis.pipeline(transaction=False)
        for _, _, _, reply in refused:
            pipe.rpush(reply, json.dumps(REFUSED))
            pipe.expire(reply, self.reply_ttl_s)
        pipe.execute()
        metrics.ANALYZE_DROPPED.labels("over_deadline").inc(len(refused))
        log.info(
            "analyze: %d requests refused unscored, not even a pass of their own would "
            "answer them before their deadline",
            len(refused),
        )

    def _replies(self, live: list[Request], texts: list[str]) -> list[dict[str, Any]]:
        """One answer per request from one ``score_detailed`` call over all their texts."""
        if not texts:
            return [self._reply([]) for _ in live]
        try:
            results = self._score(texts)
            if len(results) != len(texts):
                raise RuntimeError(f"{len(results)} results for {len(texts)} texts")
        except Exception as exc:
            log.error("analyze pass of %d texts: scorer failed", len(texts), exc_info=True)
            return [{"error": f"{type(exc).__name__}: {exc}"} for _ in live]
        replies, start = [], 0
        for _, found, _, _ in live:
            replies.append(self._reply(results[start : start + len(found)]))
            start += len(found)
        return replies

    def _score(self, texts: list[str]) -> list[Any]:
        if isinstance(self.scorer, Router):
            return self.scorer.score_detailed(texts, [SCORE_EVERY_LANGUAGE] * len(texts))
        return self.scorer.score_detailed(texts)

    def warm_up(self) -> None:
        """Score one text before announcing this worker, so its first callers do not pay
        for the model's first pass (torch allocates and plans its kernels then, several
        times a warm pass) and the cost of passes is measured from warm ones: seeded from a
        cold one, the deadline fitting would drop requests a pass could answer."""
        started = time.perf_counter()
        try:
            self._score(["warm up the model before the first request"])
        except Exception:
            log.warning("analyze: warm-up pass failed; the first request pays", exc_info=True)
            return
        log.info("analyze: warm-up pass in %.3fs", time.perf_counter() - started)

    def _reply(self, results: list[Any]) -> dict[str, Any]:
        return {
            "model": self.scorer.model,
            "labels": list(self.scorer.labels),
            "results": [
                {
                    "scores": r.scores,
                    "truncated": r.truncated,
                    # What the router read the text as (and whether a scorer reads that
                    # language), and which of its models scored it.
                    "language": getattr(r, "language", None),
                    "supported": getattr(r, "supported", True),
                    "model": getattr(r, "model", None) or self.scorer.model,
                }
                if r.scores is not None
                else {"error": r.error or "not scored"}
                for r in results
            ],
        }

    def _claim_abandoned(self) -> None:
        """Take over requests a dead worker read and never answered: live ones are answered
        by the next pass, expired ones dropped (Redis clears entries the API deleted)."""
        now = time.monotonic()
        if now < self._next_claim:
            return
        self._next_claim = now + CLAIM_EVERY_S
        answer = self.redis.xautoclaim(
            self.stream, GROUP, self.consumer, self.claim_idle_ms, "0-0", count=self.batch_max
        )
        claimed = answer[1] if len(answer) > 1 else []
        self.inbox += [(entry_id, fields, 2) for entry_id, fields in claimed]
