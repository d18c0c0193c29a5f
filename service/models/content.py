"""Models of moderated content: sites, keys, articles, authors, comments, their events,
reports and bulk actions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.extensions import db
from service.models.types import BigId, SiteRow, Timestamps, UTCDateTime, partial_index, utcnow
from service.moderation.policy import LABELS
from service.moderation.states import AuthorStatus, CommentStatus
from service.score_key import ScoreKey, column, index_name


class Site(Timestamps, db.Model):
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


class Article(SiteRow, Timestamps, db.Model):
    __tablename__ = "article"
    __table_args__ = (sa.UniqueConstraint("site_id", "ref"),)

    ref: Mapped[str] = mapped_column(sa.String(200))
    url: Mapped[str | None] = mapped_column(sa.String(2000))
    title: Mapped[str | None] = mapped_column(sa.String(500))
    comments_open: Mapped[bool] = mapped_column(default=True)
    mode: Mapped[str | None] = mapped_column(sa.String(8))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Author(SiteRow, db.Model):
    __tablename__ = "author"
    __table_args__ = (sa.UniqueConstraint("site_id", "ref"),)

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


# The partial index ix_comment_open_reported's condition (and the queue counts' query).
OPEN_REPORTED = "open_reports > 0 AND status IN ('approved', 'held')"


class Comment(SiteRow, db.Model):
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
        # The held ones carry the key's column (Postgres), so a count over a threshold
        # (the bulk dry run) is read from the index alone.
        *(
            partial_index(
                index_name(label),
                "site_id",
                ScoreKey(label).desc(),
                sa.literal_column("id").desc(),
                where="status = 'held'",
                postgresql_include=[column(label)],
            )
            for label in (None, *LABELS)
        ),
        # Held and pending counts by article (/v1/queue/counts?by_article=true).
        partial_index(
            "ix_comment_waiting_article",
            "site_id",
            "article_id",
            "status",
            "created_at",
            where="status IN ('held', 'pending')",
        ),
        # Approved or held comments with open reports, by article: the queue's reported
        # counts are an index-only scan of these (service.moderation.report_counts).
        partial_index("ix_comment_open_reported", "site_id", "article_id", where=OPEN_REPORTED),
        # /v1/stats' comments by language in a window, from the index alone.
        sa.Index(
            "ix_comment_site_created_language",
            "site_id",
            "created_at",
            postgresql_include=["language", "status", "reason_codes"],
        ),
        # Replies of a deleted comment (ON DELETE SET NULL), found without a table scan.
        partial_index(
            "ix_comment_parent",
            "parent_id",
            where="parent_id IS NOT NULL",
        ),
        # The worker's sweeper: pending comments across all sites, oldest first.
        sa.Index("ix_comment_status_created", "status", "created_at"),
    )

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
    # Each label's score, copied from scores by moderate() (service.score_key.columns_of):
    # the held score indexes carry them, so counts over a threshold skip the table.
    score_toxicity: Mapped[float | None] = mapped_column(sa.Float)
    score_severe_toxicity: Mapped[float | None] = mapped_column(sa.Float)
    score_obscene: Mapped[float | None] = mapped_column(sa.Float)
    score_threat: Mapped[float | None] = mapped_column(sa.Float)
    score_insult: Mapped[float | None] = mapped_column(sa.Float)
    score_identity_attack: Mapped[float | None] = mapped_column(sa.Float)
    score_sexual_explicit: Mapped[float | None] = mapped_column(sa.Float)
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
    # Its unresolved reports, kept by service.moderation.report_counts.
    open_reports: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")

    article: Mapped[Article] = relationship(lazy="joined", innerjoin=True)
    author: Mapped[Author] = relationship(lazy="joined", innerjoin=True)


# What /v1/stats reads of a decision, carried by its indexes (index-only scans).
EVENT_STATS_COLUMNS = ["id", "comment_id", "actor", "from_status", "to_status", "reason_code"]


class ModerationEvent(SiteRow, db.Model):
    """Append-only audit row: one per status change."""

    __tablename__ = "moderation_event"
    __table_args__ = (
        sa.Index("ix_event_comment", "comment_id", "id"),
        sa.Index("ix_event_site_created", "site_id", "created_at"),
        # /v1/stats reads decisions in a window from this index alone (SQLite's lists the
        # included columns as keys).
        partial_index(
            "ix_event_site_decided",
            "site_id",
            "created_at",
            postgresql_include=EVENT_STATS_COLUMNS,
            where="from_status IS NOT NULL",
        ),
        # Moderators' decisions only: overrides and moderator latencies of long windows.
        partial_index(
            "ix_event_site_human",
            "site_id",
            "created_at",
            postgresql_include=EVENT_STATS_COLUMNS,
            where="actor <> 'policy' AND from_status IS NOT NULL",
        ),
        # Comments' first moderator decisions: /v1/stats' moderator latency, from the index.
        partial_index(
            "ix_event_site_first_review",
            "site_id",
            "created_at",
            postgresql_include=["latency_s"],
            where="latency_s IS NOT NULL",
        ),
        sa.Index("ix_event_bulk", "bulk_id", "id"),
    )

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
    # On a moderator's decision (moderate.is_decision): what the policy had decided for
    # the comment (None: it decided nothing), so overrides are counted without a join;
    # and on the comment's first such decision, the seconds since it was submitted.
    policy_status: Mapped[str | None] = mapped_column(sa.String(16))
    latency_s: Mapped[float | None] = mapped_column(sa.Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Report(SiteRow, db.Model):
    __tablename__ = "report"
    __table_args__ = (
        sa.Index("ix_report_comment_open", "comment_id", "resolved_at"),
        partial_index(
            "ix_report_site_open",
            "site_id",
            "comment_id",
            where="resolved_at IS NULL",
        ),
        sa.Index("ix_report_site_created", "site_id", "created_at"),
        partial_index(
            "ix_report_site_resolved",
            "site_id",
            "resolved_at",
            where="resolved_at IS NOT NULL",
        ),
    )

    comment_id: Mapped[int] = mapped_column(sa.ForeignKey("comment.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(sa.String(20))
    reporter_ref: Mapped[str | None] = mapped_column(sa.String(200))
    note: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(sa.String(100))


class SiteEvent(SiteRow, db.Model):
    """Append-only audit of changes to a site's settings."""

    __tablename__ = "site_event"
    __table_args__ = (sa.Index("ix_site_event_site", "site_id", "id"),)

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
