"""Worker heartbeats: a Redis key per live worker that expires when the worker goes silent."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import redis

log = logging.getLogger(__name__)

# Throughput is averaged over this window, so a burst shows and then fades.
RATE_WINDOW_S = 60.0


def isonow() -> str:
    """The current UTC time in ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class Heartbeat:
    """``SET {prefix}:worker:<consumer> <json> EX 3*interval`` every ``interval_s``.

    A thread beats, so a worker busy in a long batch or waiting on the database
    still shows as alive; the key disappears three beats after the process dies.
    """

    def __init__(
        self, client: redis.Redis, key: str, interval_s: float, identity: dict[str, Any]
    ) -> None:
        self.client = client
        self.key = key
        self.interval_s = interval_s
        self.identity = {**identity, "started_at": isonow()}
        self.last_batch_size = 0
        self.scored_total = 0
        self._recent: deque[tuple[float, int]] = deque()  # (monotonic time, comments decided)
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def record(self, batch_size: int, decided: int) -> None:
        """Count one batch: its size and how many comments it decided."""
        now = time.monotonic()
        with self._lock:
            self.last_batch_size = batch_size
            self.scored_total += decided
            self._recent.append((now, decided))
            while self._recent and self._recent[0][0] < now - RATE_WINDOW_S:
                self._recent.popleft()

    def rate_per_s(self) -> float:
        """Comments decided per second over the last RATE_WINDOW_S (or since start)."""
        now = time.monotonic()
        with self._lock:
            total = sum(n for t, n in self._recent if t >= now - RATE_WINDOW_S)
        window = min(RATE_WINDOW_S, max(now - self._started, 1.0))
        return round(total / window, 2)

    def payload(self) -> dict[str, Any]:
        """What the key holds: who this worker is and how it is doing."""
        with self._lock:
            counters = {"last_batch_size": self.last_batch_size, "scored_total": self.scored_total}
        return {**self.identity, **counters, "rate_per_s": self.rate_per_s(), "seen_at": isonow()}

    def beat(self) -> None:
        """Write the key once; a Redis error is logged once per outage, never raised."""
        try:
            self.client.set(
                self.key, json.dumps(self.payload()), ex=max(1, round(3 * self.interval_s))
            )
        except redis.RedisError as exc:
            if not self._failing:
                log.warning("heartbeat %s: Redis unavailable (%s)", self.key, exc)
            self._failing = True
        else:
            if self._failing:
                log.info("heartbeat %s: Redis is back", self.key)
            self._failing = False

    def start(self) -> None:
        """Beat now, then every ``interval_s`` on a daemon thread."""
        self.beat()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and delete the key: a clean exit is not a dead worker."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 1)
        try:
            self.client.delete(self.key)
        except redis.RedisError as exc:
            log.warning("heartbeat %s: not deleted (%s); it expires by itself", self.key, exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beat()
