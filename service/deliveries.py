"""Webhook deliveries: claim the due outbox rows, POST one signed, record the attempt.

At-least-once: a row is claimed (``locked_until``) and committed before its POST and
recorded after it, so a dispatcher killed in between leaves a claim that expires and
is taken again, with the same webhook-id. The POST never runs inside a database
transaction. The dispatcher's loop (workers/dispatcher.py) and the API's test ping
both send through ``Courier``.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask

from service import metrics, webhooks
from service.extensions import db
from service.models import Comment, WebhookAttempt, WebhookDelivery, WebhookEndpoint, utcnow
from service.webhooks import DeliveryStatus, Result, UnsafeURL, post

log = logging.getLogger(__name__)

JITTER = 0.1  # each retry waits up to 10% longer than the schedule says
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
# An attempt's result, for civility_webhook_deliveries_total: what became of its delivery.
RESULTS = {
    DeliveryStatus.SUCCEEDED: "succeeded",
    DeliveryStatus.PENDING: "retrying",
    DeliveryStatus.FAILED: "failed",
}


def parse_schedule(text: str) -> list[float]:
    """WEBHOOK_SCHEDULE in seconds: ``"5s,5m,2h"`` is ``[5, 300, 7200]``; ``""`` never retries."""
    delays = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _DURATION.match(part)
        if match is None:
            raise ValueError(
                f"CIVILITY_WEBHOOK_SCHEDULE: {part!r} is not a delay like 30s, 5m, 2h or 1d"
            )
        delays.append(float(match[1]) * _UNITS[match[2]])
    return delays


@dataclass(frozen=True)
class Outgoing:
    """One delivery attempt, read from the database before the POST."""

    delivery_id: int
    endpoint_id: int
    message_id: str
    event_type: str
    url: str
    body: bytes  # the stored payload: exactly the bytes signed and sent
    signing_secrets: list[str]
    request_id: str | None = None  # of the comment's submission, for the log


class Courier:
    """Claims, sends and records deliveries; call inside an app context."""

    def __init__(self, app: Flask) -> None:
        cfg = app.config
        self.schedule = parse_schedule(cfg["WEBHOOK_SCHEDULE"])
        self.connect_timeout: float = cfg["WEBHOOK_CONNECT_TIMEOUT_S"]
        self.read_timeout: float = cfg["WEBHOOK_READ_TIMEOUT_S"]
        self.max_bytes: int = cfg["WEBHOOK_MAX_RESPONSE_BYTES"]
        self.disable_after = timedelta(seconds=cfg["WEBHOOK_DISABLE_AFTER_S"])
        self.batch: int = cfg["WEBHOOK_BATCH"]
        self.lock_s: float = cfg["WEBHOOK_LOCK_S"]
        self.allow_private: bool = cfg["WEBHOOK_ALLOW_PRIVATE"]
        self.dns_timeout_s: float = cfg["WEBHOOK_DNS_TIMEOUT_S"]
        # A claimed row is sent only while its claim will outlast a whole attempt.
        self.send_window_s = self.lock_s - self.connect_timeout - self.read_timeout
        self.sent = 0  # attempts recorded, from any thread
        self._sent_lock = threading.Lock()

    # -- claims -------------------------------------------------------------------------

    def claim(
        self, limit: int | None = None, skip_endpoints: list[int] | None = None
    ) -> list[tuple[int, int]]:
        """Due deliveries of enabled endpoints as (id, endpoint id), claimed for
        WEBHOOK_LOCK_S and committed; none of ``skip_endpoints`` (busy ones)."""
        now = utcnow()
        # Postgres: SKIP LOCKED lets dispatchers claim disjoint rows side by side. SQLite
        # ignores FOR UPDATE, but every transaction there starts with BEGIN IMMEDIATE (see
        # service/__init__.py): the database's single write lock makes each claim exclusive.
        query = (
            sa.select(WebhookDelivery.id, WebhookDelivery.endpoint_id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= now,
                sa.or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
                WebhookEndpoint.enabled.is_(True),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit or self.batch)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        )
        if skip_endpoints:
            query = query.where(WebhookDelivery.endpoint_id.not_in(skip_endpoints))
        try:
            claimed = [(row.id, row.endpoint_id) for row in db.session.execute(query)]
            ids = [delivery_id for delivery_id, _ in claimed]
            if ids:
                db.session.execute(
                    sa.update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_(ids))
                    .values(locked_until=now + timedelta(seconds=self.lock_s))
                )
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        return claimed

    def release(self, ids: list[int]) -> None:
        """Give claimed deliveries back at once, for this or another dispatcher."""
        db.session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids), WebhookDelivery.status == DeliveryStatus.PENDING)
            .values(locked_until=None)
        )
        db.session.commit()

    # -- one delivery -------------------------------------------------------------------

    def deliver(self, delivery_id: int, *, manual: bool = False) -> Result | None:
        """Send one claimed delivery and record the attempt; None when it is not sendable.

        ``manual`` (a test ping): sent even to a disabled endpoint, not retried, and
        not counted for or against the endpoint's health.
        """
        outgoing = self._outgoing(delivery_id, manual=manual)
        if outgoing is None:
            return None
        result = self.send(outgoing)
        self._record(outgoing, result, retry=not manual, track_health=not manual)
        return result

    def _outgoing(self, delivery_id: int, *, manual: bool) -> Outgoing | None:
        try:
            row = db.session.execute(
                sa.select(WebhookDelivery, WebhookEndpoint, Comment.request_id)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .outerjoin(Comment, Comment.id == WebhookDelivery.comment_id)
                .where(WebhookDelivery.id == delivery_id)
            ).one_or_none()
            if row is None or row[0].status != DeliveryStatus.PENDING:
                return None
            delivery, endpoint, request_id = row
            if not endpoint.enabled and not manual:
                delivery.locked_until = None  # disabled since the claim: wait for re-enabling
                return None
            return Outgoing(
                delivery_id=delivery.id,
                endpoint_id=endpoint.id,
                message_id=delivery.message_id,
                event_type=delivery.event_type,
                url=endpoint.url,
                body=delivery.payload.encode("utf-8"),
                signing_secrets=webhooks.active_secrets(endpoint),
                request_id=request_id,
            )
        finally:
            # Ends the transaction before the POST: on SQLite it holds the write lock.
            db.session.commit()

    def send(self, outgoing: Outgoing) -> Result:
        """Sign and POST one attempt, re-checking the URL's addresses right before."""
        timestamp = int(time.time())
        headers = webhooks.signed_headers(
            outgoing.signing_secrets, outgoing.message_id, timestamp, outgoing.body
        )
        try:
            target = webhooks.resolve(
                outgoing.url, allow_private=self.allow_private, timeout_s=self.dns_timeout_s
            )
        except UnsafeURL as exc:
            return Result(error=f"refused: {exc}"[:1000])
        return post(
            target,
            outgoing.body,
            headers,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_bytes=self.max_bytes,
        )

    def _record(self, outgoing: Outgoing, result: Result, *, retry: bool, track_health: bool):
        """Log the attempt and schedule what follows: done, a retry, or failed."""
        now = utcnow()
        delivery = db.session.get(
            WebhookDelivery, outgoing.delivery_id, with_for_update=True, populate_existing=True
        )
        if delivery is None:  # its endpoint was deleted meanwhile
            db.session.commit()
            return
        attempt = delivery.attempts + 1
        with self._sent_lock:
            self.sent += 1
        db.session.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                attempt=attempt,
                status_code=result.status_code,
                latency_ms=result.latency_ms,
                error=result.error,
                response_excerpt=result.excerpt,
            )
        )
        delivery.attempts = attempt
        delivery.last_status_code = result.status_code
        delivery.last_latency_ms = result.latency_ms
        delivery.last_error = result.error
        delivery.locked_until = None
        if result.ok:
            delivery.status = DeliveryStatus.SUCCEEDED
            delivery.delivered_at = now
        elif retry and attempt <= len(self.schedule):
            delay = self.schedule[attempt - 1] * (1 + random.uniform(0, JITTER))
            if result.retry_after_s is not None:
                delay = max(delay, result.retry_after_s)
            delivery.status = DeliveryStatus.PENDING
            delivery.next_attempt_at = now + timedelta(seconds=delay)
        else:
            delivery.status = DeliveryStatus.FAILED
        if track_health:
            self._track_health(outgoing.endpoint_id, result, now)
        status = delivery.status  # read before the commit expires it (a read would begin anew)
        db.session.commit()
        metrics.WEBHOOK_DELIVERIES.labels(RESULTS[status]).inc()
        log.log(
            logging.INFO if result.ok else logging.WARNING,
            "delivery %s (%s) to endpoint %s: %s in %s ms, attempt %d, now %s",
            outgoing.message_id,
            outgoing.event_type,
            outgoing.endpoint_id,
            result.describe(),
            result.latency_ms,
            attempt,
            status,
            extra={"request_id": outgoing.request_id},
        )

    def _track_health(self, endpoint_id: int, result: Result, now: datetime) -> None:
        """Clear ``failing_since`` on success; disable an endpoint failing for too long."""
        endpoint = db.session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
        if endpoint is None:
            return
        if result.ok:
            if endpoint.failing_since is not None:
                endpoint.failing_since = None
            return
        if endpoint.failing_since is None:
            endpoint.failing_since = now
        if endpoint.enabled and now - endpoint.failing_since >= self.disable_after:
            endpoint.enabled = False
            endpoint.disabled_at = now
            endpoint.disabled_reason = (
                f"every delivery failed since {endpoint.failing_since:%Y-%m-%d %H:%M:%S} UTC; "
                f"last: {result.describe()}"
            )[:500]
            log.warning(
                "endpoint %s: disabled, failing since %s", endpoint_id, endpoint.failing_since
            )
