"""The webhook dispatcher: a loop that claims due deliveries and sends them side by side.

Claiming, signing, sending and recording are the Courier's (service/deliveries.py);
this is the process around it: how many go out at once, to one endpoint at once,
waiting for the database, and stopping on a signal. A delivery killed mid-POST keeps
its claim until it expires, then another turn sends it again with the same webhook-id.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from flask import Flask

from service.deliveries import Courier
from service.extensions import db
from workers.daemon import Daemon

log = logging.getLogger(__name__)


def run_dispatcher(app: Flask, *, burst: bool = False) -> int:
    """Deliver until SIGTERM (or, with ``burst``, until nothing is due); the exit status."""
    dispatcher = Dispatcher(app, burst=burst)
    dispatcher.handle_signals()
    return dispatcher.run()


class Dispatcher(Daemon):
    """Sends due deliveries through a Courier, several at once; call inside an app context."""

    finishing = "the delivery in hand"
    abandoning = "claims expire and are retried"

    def __init__(self, app: Flask, *, burst: bool = False) -> None:
        cfg = app.config
        super().__init__("dispatcher", db_retry_max_s=cfg["DB_RETRY_MAX_S"])
        self.courier = Courier(app)
        self.burst = burst
        self.poll_s: float = cfg["WEBHOOK_POLL_S"]
        self.concurrency: int = max(1, cfg["WEBHOOK_CONCURRENCY"])
        self.per_endpoint: int = max(1, cfg["WEBHOOK_PER_ENDPOINT"])
        # The app itself, not current_app's proxy: delivery threads push its context.
        self.app = getattr(app, "_get_current_object", lambda: app)()

    @property
    def sent(self) -> int:
        """Attempts made (and recorded) so far."""
        return self.courier.sent

    def run(self) -> int:
        """Work until ``stopping`` (or, in burst mode, nothing is due); 0 after a clean stop.

        Deliveries go out side by side: up to WEBHOOK_CONCURRENCY at once, at most
        WEBHOOK_PER_ENDPOINT of them to one endpoint, so a receiver that hangs until its
        timeout holds only its own deliveries back. Whenever a slot frees, more are claimed.
        """
        if self.courier.send_window_s <= 0:
            log.warning(
                "dispatcher: WEBHOOK_LOCK_S (%s) should exceed the connect + read timeouts; "
                "a slow receiver may get a delivery twice",
                self.courier.lock_s,
            )
        log.info(
            "dispatcher: started (batch %d, %d at once, %d per endpoint%s)",
            self.courier.batch,
            self.concurrency,
            self.per_endpoint,
            ", burst" if self.burst else "",
        )
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="delivery") as pool:
            in_flight: dict[Future, int] = {}  # future -> endpoint id
            while not self.stopping:
                claimed = self.with_db_retry(
                    "dispatcher", lambda: self._claim_into(pool, in_flight)
                )
                if claimed is None:  # stopping while the database is down
                    break
                if not claimed and not in_flight:
                    if self.burst:
                        break
                    self.sleep(self.poll_s)
                elif in_flight:
                    done, _ = wait(in_flight, timeout=self.poll_s, return_when=FIRST_COMPLETED)
                    for future in done:
                        in_flight.pop(future)
                        if future.exception() is not None:
                            log.error(
                                "dispatcher: a delivery thread failed: %r", future.exception()
                            )
            wait(in_flight)  # the deliveries in hand finish (each within its timeouts)
        log.info("dispatcher: stopped (%d attempts made)", self.sent)
        return 0

    def run_once(self) -> int:
        """Claim one batch of due deliveries and send them, side by side; how many."""
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="delivery") as pool:
            in_flight: dict[Future, int] = {}
            claimed = self._claim_into(pool, in_flight)
            wait(in_flight)
        return claimed

    def _claim_into(self, pool: ThreadPoolExecutor, in_flight: dict[Future, int]) -> int:
        """Claim what free slots allow and start sending it; how many were claimed."""
        free = self.concurrency - len(in_flight)
        if free <= 0:
            return 0
        busy = Counter(in_flight.values())
        full = [endpoint for endpoint, n in busy.items() if n >= self.per_endpoint]
        claimed = self.courier.claim(limit=min(self.courier.batch, free), skip_endpoints=full)
        extra = []
        for delivery_id, endpoint_id in claimed:
            if busy[endpoint_id] >= self.per_endpoint:
                extra.append(delivery_id)
                continue
            busy[endpoint_id] += 1
            in_flight[pool.submit(self._deliver_in_thread, delivery_id)] = endpoint_id
        if extra:
            self.courier.release(extra)
        return len(claimed)

    def _deliver_in_thread(self, delivery_id: int) -> None:
        # A thread of its own needs an app context of its own (and so its own session).
        with self.app.app_context():
            try:
                self.courier.deliver(delivery_id)
            except Exception as exc:
                db.session.rollback()
                # Its claim expires and another turn retries it.
                log.exception("delivery %s: not sent (%s)", delivery_id, type(exc).__name__)
            finally:
                db.session.remove()
