"""Database models: sites, keys, articles, authors, comments, events and reports."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.extensions import db
from service.moderation.policy import LABELS
from service.moderation.states import AuthorStatus, CommentStatus
from service.score_key import ScoreKey, index_name

# SQLite only autoincrements INTEGER PRIMARY KEY; Postgres gets a BIGINT identity.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(sa.types.TypeDecorator):
    """Stores naive UTC, returns aware UTC: SQLite keeps no time zone."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class Site(db.Model):
    __tablename__ = "site"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    origins: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    # Moderation settings: validated by the API schema and PolicySettings.from_site first.
    mode: Mapped[str] = mapped_column(sa.String(8), default="post")
    hold_at: Mapped[dict[str, float]] = mapped_column(sa.JSON, default=dict)
    reject_at: Mapped[dict[str, float]] = mapped_column(sa.JSON, default=dict)
    banned_words: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    suspect_words: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    hold_links: Mapped[bool] = mapped_column(default=False)
    new_author_premod: Mapped[int] = mapped_column(default=0)
    requeue_reports: Mapped[int] = mapped_column(default=3)
    lazy_articles: Mapped[bool] = mapped_column(default=True)
    public_reads: Mapped[bool] = mapped_column(default=False)
    # Language → scorer spec the site wants for it; and what becomes of unread languages.
    language_scorers: Mapped[dict[str, str] | None] = mapped_column(sa.JSON, default=dict)
    unsupported_language: Mapped[str] = mapped_column(sa.String(8), default="hold")
    # What a browser may write (service/embed_tokens.py): off | sso | anonymous. The embed
    # secret signs readers' HS256 tokens; after a rotation the previous one still verifies
    # until its overlap ends.
    browser_submissions: Mapped[str] = mapped_column(sa.String(16), default="off")
    embed_secret: Mapped[str | None] = mapped_column(sa.String(200))
    embed_previous_secret: Mapped[str | None] = mapped_column(sa.String(200))
    embed_previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ApiKey(db.Model):
    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(100))
    prefix: Mapped[str] = mapped_column(sa.String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    site: Mapped[Site] = relationship(lazy="joined")


class Article(db.Model):
    __tablename__ = "article"
    __table_args__ = (sa.UniqueConstraint("site_id", "ref"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id", ondelete="CASCADE"))
    ref: Mapped[str] = mapped_column(sa.String(200))
    url: Mapped[str | None] = mapped_column(sa.String(2000))
    title: Mapped[str | None] = mapped_column(sa.String(500))
    comments_open: Mapped[bool] = mapped_column(default=True)
    mode: Mapped[str | None] = mapped_column(sa.String(8))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Author(db.Model):
    __tablename__ = "author"
    __table_args__ = (sa.UniqueConstraint("site_id", "ref"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id", ondelete="CASCADE"))
    ref: Mapped[str] = mapped_column(sa.String(200))
    name: Mapped[str | None] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(16), default=AuthorStatus.ACTIVE)
    status_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notes: Mapped[str | None] = mapped_column(sa.Text)
    approved_count: Mapped[int] = mapped_column(default=0)
    rejected_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When DELETE /v1/authors/{ref} last erased them (service/erasure.py).
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Comment(db.Model):
    __tablename__ = "comment"
    __table_args__ = (
        sa.UniqueConstraint("site_id", "idempotency_key"),
        # Public reads and per-article queues.
        sa.Index("ix_comment_article_status_created", "article_id", "status", "created_at", "id"),
        # Site-wide queues and counts.
        sa.Index("ix_comment_site_status_created", "site_id", "status", "created_at"),
        sa.Index("ix_comment_author", "author_id", "created_at"),
        # "Most toxic first" queues: service.score_key's sort key, for every status by the
        # highest label, and for held comments (the review queue) by each label.
        sa.Index(
            "ix_comment_site_status_max_score",
            "site_id",
            "status",
            ScoreKey(None).desc(),
            sa.literal_column("id").desc(),
        ),
        *(
            sa.Index(
                index_name(label),
                "site_id",
                ScoreKey(label).desc(),
                sa.literal_column("id").desc(),
                postgresql_where=sa.text("status = 'held'"),
                sqlite_where=sa.text("status = 'held'"),
            )
            for label in (None, *LABELS)
        ),
        # Held and pending counts by article (/v1/queue/counts?by_article=true).
        sa.Index(
            "ix_comment_waiting_article",
            "site_id",
            "article_id",
            "status",
            "created_at",
            postgresql_where=sa.text("status IN ('held', 'pending')"),
            sqlite_where=sa.text("status IN ('held', 'pending')"),
        ),
        # Replies of a deleted comment (ON DELETE SET NULL), found without a table scan.
        sa.Index(
            "ix_comment_parent",
            "parent_id",
            postgresql_where=sa.text("parent_id IS NOT NULL"),
            sqlite_where=sa.text("parent_id IS NOT NULL"),
        ),
        # The worker's sweeper: pending comments across all sites, oldest first.
        sa.Index("ix_comment_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id", ondelete="CASCADE"))
    article_id: Mapped[int] = mapped_column(sa.ForeignKey("article.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("comment.id", ondelete="SET NULL"))
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("author.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(sa.Text)
    # Assigned only by service.moderation.moderate (and the insert as pending).
    status: Mapped[str] = mapped_column(sa.String(16), default=CommentStatus.PENDING)
    scores: Mapped[dict[str, float] | None] = mapped_column(sa.JSON)
    model: Mapped[str | None] = mapped_column(sa.String(200))
    # The language the worker read it as (detected, or the fallback when unsure) and the
    # detector's probability for what it detected.
    language: Mapped[str | None] = mapped_column(sa.String(16))
    language_confidence: Mapped[float | None] = mapped_column(sa.Float)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    # Derived from scores/reasons (by moderate()) so queues can filter and sort in SQL
    # on both SQLite and Postgres: the highest label score, and " code1 code2 ".
    max_score: Mapped[float | None] = mapped_column(sa.Float)
    reason_codes: Mapped[str | None] = mapped_column(sa.String(500))
    client_ip: Mapped[str | None] = mapped_column(sa.String(45))
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", sa.JSON)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(255))
    # The X-Request-ID of the submission, so logs follow a comment through the worker
    # and its webhooks.
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    request_hash: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(sa.String(100))

    article: Mapped[Article] = relationship(lazy="joined", innerjoin=True)
    author: Mapped[Author] = relationship(lazy="joined", innerjoin=True)


# What /v1/stats reads of a decision, carried by its indexes (index-only scans).
EVENT_STATS_COLUMNS = ["id", "comment_id", "actor", "from_status", "to_status", "reason_code"]


class ModerationEvent(db.Model):
    """Append-only audit row: one per status change."""

    __tablename__ = "moderation_event"
    __table_args__ = (
        sa.Index("ix_event_comment", "comment_id", "id"),
        sa.Index("ix_event_site_created", "site_id", "created_at"),
        # /v1/stats reads decisions in a window from this index alone (SQLite's lists the
        # included columns as keys).
        sa.Index(
            "ix_event_site_decided",
            "site_id",
            "created_at",
            postgresql_include=EVENT_STATS_COLUMNS,
            postgresql_where=sa.text("from_status IS NOT NULL"),
            sqlite_where=sa.text("from_status IS NOT NULL"),
        ),
        # Moderators' decisions only: overrides and moderator latencies of long windows.
        sa.Index(
            "ix_event_site_human",
            "site_id",
            "created_at",
            postgresql_include=EVENT_STATS_COLUMNS,
            postgresql_where=sa.text("actor <> 'policy' AND from_status IS NOT NULL"),
            sqlite_where=sa.text("actor <> 'policy' AND from_status IS NOT NULL"),
        ),
        sa.Index("ix_event_bulk", "bulk_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id", ondelete="CASCADE"))
    comment_id: Mapped[int] = mapped_column(sa.ForeignKey("comment.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(sa.String(16))
    to_status: Mapped[str] = mapped_column(sa.String(16))
    actor: Mapped[str] = mapped_column(sa.String(100))
    reason_code: Mapped[str | None] = mapped_column(sa.String(50))
    note: Mapped[str | None] = mapped_column(sa.Text)
    scores: Mapped[dict[str, float] | None] = mapped_column(sa.JSON)
    model: Mapped[str | None] = mapped_column(sa.String(200))
    reasons: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    bulk_id: Mapped[str | None] = mapped_column(sa.String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Report(db.Model):
    __tablename__ = "report"
    __table_args__ = (
        sa.Index("ix_report_comment_open", "comment_id", "resolved_at"),
        sa.Index(
            "ix_report_site_open",
            "site_id",
            "comment_id",
            postgresql_where=sa.text("resolved_at IS NULL"),
            sqlite_where=sa.text("resolved_at IS NULL"),
        ),
        sa.Index("ix_report_site_created", "site_id", "created_at"),
        sa.Index(
            "ix_report_site_resolved",
            "site_id",
            "resolved_at",
            postgresql_where=sa.text("resolved_at IS NOT NULL"),
            sqlite_where=sa.text("resolved_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id", ondelete="CASCADE"))
    comment_id: Mapped[int] = mapped_column(sa.ForeignKey("comment.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(sa.String(20))
    reporter_ref: Mapped[str | None] = mapped_column(sa.String(200))
    note: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(sa.String(100))


class SiteEvent(db.Model):
    """Append-only audit of changes to a site's settings."""

    __tablename__ = "site_event"
    __table_args__ = (sa.Index("ix_site_event_site", "site_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id", ondelete="CASCADE"))
    actor: Mapped[str] = mapped_column(sa.String(100))
    changes: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BulkAction(db.Model):
    """One moderator bulk decision: its events carry ``bulk_id`` so it can be undone."""

    __tablename__ = "bulk_action"
    __table_args__ = (sa.Index("ix_bulk_site_created", "site_id", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id", ondelete="CASCADE"))
    actor: Mapped[str] = mapped_column(sa.String(100))
    decision: Mapped[str] = mapped_column(sa.String(16))
    reason_code: Mapped[str | None] = mapped_column(sa.String(50))
    note: Mapped[str | None] = mapped_column(sa.Text)
    selection: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    matched: Mapped[int] = mapped_column(default=0)
    changed: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(sa.String(16), default="running")
    undo_of: Mapped[str | None] = mapped_column(sa.String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undone_by: Mapped[str | None] = mapped_column(sa.String(100))


class WebhookEndpoint(db.Model):
    __tablename__ = "webhook_endpoint"
    __table_args__ = (sa.Index("ix_webhook_site", "site_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id", ondelete="CASCADE"))
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


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


class AnalyzeFeedback(db.Model):
    """A label a site sent through Perspective's ``suggestscore`` (e.g. Coral's moderator
    approve = 0, reject = 1): examples to calibrate thresholds from."""

    __tablename__ = "analyze_feedback"
    __table_args__ = (sa.Index("ix_analyze_feedback_site_created", "site_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id", ondelete="CASCADE"))
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
