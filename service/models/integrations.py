"""Models around the content: webhook endpoints, deliveries and attempts, analyze
feedback, Coral secrets, dashboard sessions, daily stats rollups and day counts."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.extensions import db
from service.models.types import BigId, SiteRow, Timestamps, UTCDateTime, utcnow

if TYPE_CHECKING:
    from service.models.content import ApiKey


class WebhookEndpoint(SiteRow, Timestamps, db.Model):
    __tablename__ = "webhook_endpoint"
    __table_args__ = (sa.Index("ix_webhook_site", "site_id"),)

    url: Mapped[str] = mapped_column(sa.String(2000))
    description: Mapped[str | None] = mapped_column(sa.String(500))
    # None = every event type.
    event_types: Mapped[list[str] | None] = mapped_column(sa.JSON)
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(500))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    secret: Mapped[str] = mapped_column(sa.String(200))
    previous_secret: Mapped[str | None] = mapped_column(sa.String(200))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookDelivery(db.Model):
    """Outbox row: one event for one endpoint, written in the transaction that caused it."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        sa.Index("ix_delivery_due", "status", "next_attempt_at"),
        sa.Index("ix_delivery_endpoint", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The webhook-id header: stable across retries so receivers can de-duplicate.
    message_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_endpoint.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(sa.String(40))
    comment_id: Mapped[int | None] = mapped_column(BigId)
    # The exact bytes signed and sent.
    payload: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    last_latency_ms: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(db.Model):
    """One HTTP attempt of a delivery: the delivery log."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (sa.Index("ix_attempt_delivery", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_delivery.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column()
    status_code: Mapped[int | None] = mapped_column()
    latency_ms: Mapped[int | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(sa.String(1000))
    response_excerpt: Mapped[str | None] = mapped_column(sa.String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AnalyzeFeedback(SiteRow, db.Model):
    """A label a site sent through Perspective's ``suggestscore`` (e.g. Coral's moderator
    approve = 0, reject = 1): examples to calibrate thresholds from."""

    __tablename__ = "analyze_feedback"
    __table_args__ = (sa.Index("ix_analyze_feedback_site_created", "site_id", "created_at"),)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    client_token: Mapped[str | None] = mapped_column(sa.String(200))
    community_id: Mapped[str | None] = mapped_column(sa.String(200))
    session_id: Mapped[str | None] = mapped_column(sa.String(200))
    # Perspective attribute -> the suggested value, e.g. {"TOXICITY": 1.0}.
    attributes: Mapped[dict[str, float]] = mapped_column(sa.JSON)
    languages: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    text: Mapped[str | None] = mapped_column(sa.Text)  # None when the site sent doNotStore


class CoralSecret(db.Model):
    """A signing secret of Coral's external moderation phase, kept to verify its requests;
    a replaced one verifies until ``expires_at``."""

    __tablename__ = "coral_secret"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id", ondelete="CASCADE"), index=True)
    # Plain, not hashed: an HMAC is checked with the secret itself.
    secret: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DashboardSession(db.Model):
    """A dashboard sign-in: the cookie carries a random token, this row says it is live.

    Sign-out, an admin or the key's revocation end it (``ended_at``) everywhere the cookie
    is replayed; a new secret key makes every cookie unreadable, so ends them all.
    """

    __tablename__ = "dashboard_session"
    __table_args__ = (
        sa.Index("ix_dashboard_session_key", "key_id", "ended_at"),
        sa.Index("ix_dashboard_session_expires", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id", ondelete="CASCADE"))
    key_id: Mapped[int] = mapped_column(sa.ForeignKey("api_key.id", ondelete="CASCADE"))
    csrf: Mapped[str] = mapped_column(sa.String(64))
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    user_agent: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(sa.String(100))

    api_key: Mapped[ApiKey] = relationship(lazy="joined", innerjoin=True)


class StatsDay(db.Model):
    """A closed UTC day's additive /v1/stats counts for one site (service.rollups)."""

    __tablename__ = "stats_day"

    site_id: Mapped[int] = mapped_column(
        sa.ForeignKey("site.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    counts: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DayStatusCount(db.Model):
    """How many of a site's comments submitted on a UTC day are in one language and status
    now (service.moderation.status_counts keeps it; pending ones are not counted)."""

    __tablename__ = "day_status_count"

    site_id: Mapped[int] = mapped_column(
        sa.ForeignKey("site.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    # "" for comments no scorer gave a language (a key column cannot be null).
    language: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    # Read by no scorer made for the language (reason unsupported_language).
    unsupported: Mapped[bool] = mapped_column(primary_key=True)
    comments: Mapped[int] = mapped_column(sa.Integer)


class ArticleStatusCount(db.Model):
    """How many of an article's comments are in one status now, and how many of those have
    open reports (kept by service.moderation.status_counts; pending ones are not counted)."""

    __tablename__ = "article_status_count"

    site_id: Mapped[int] = mapped_column(
        sa.ForeignKey("site.id", ondelete="CASCADE"), primary_key=True
    )
    article_id: Mapped[int] = mapped_column(
        sa.ForeignKey("article.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    comments: Mapped[int] = mapped_column(sa.Integer)
    # Of those, approved or held ones with open reports (the queue's reported).
    reported: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
