"""The review queue: filtered, sorted, cursor-paged comments with everything a moderator needs."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint

from service.api.comments import ReportOut
from service.api.common import (
    ID_MAX,
    REF_RE,
    REF_RULE,
    CleanString,
    DateTimeIn,
    PageArgs,
    check_moment,
    page_size,
)
from service.api.stats import Counts, queue_counts
from service.auth import Role, require
from service.errors import abort
from service.extensions import db
from service.models import Article, Author, Comment, Report, utcnow
from service.moderation.authors import status_of
from service.moderation.policy import LABELS
from service.moderation.states import CommentStatus
from service.score_key import ScoreKey, literal

blp = Blueprint(
    "queue", __name__, url_prefix="/v1/queue", description="What moderators review, and how much."
)
SECURITY = [{"bearerAuth": ["moderator"]}]  # the least role allowed (OpenAPI 3.1 roles)
SORTS = ("created", "-created", "-score")
COMMENT_FIELDS = (
    "id",
    "body",
    "status",
    "parent_id",
    "scores",
    "max_score",
    "model",
    "language",
    "language_confidence",
    "created_at",
    "scored_at",
    "decided_at",
    "decided_by",
)


class QueueFilter(ma.Schema):
    """The comments a queue (or a bulk decision's ``filter``) selects; all given must match."""

    status = ma.fields.String(
        load_default=CommentStatus.HELD.value,
        validate=ma.validate.OneOf([s.value for s in CommentStatus]),
        metadata={"description": "Comment status (default `held`)."},
    )
    reported = ma.fields.Boolean(
        metadata={"description": "true: only comments with unresolved reports; false: none."}
    )
    article = ma.fields.String(
        validate=ma.validate.Regexp(REF_RE, error=f"Expected {REF_RULE}."),
        metadata={"description": "Article ref."},
    )
    author = CleanString(
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "Author id (the site's user id)."},
    )
    reason = ma.fields.String(
        validate=ma.validate.Regexp(r"^[a-z0-9_]{1,50}$", error="Expected a reason code."),
        metadata={
            "description": "A reason code the comment carries, e.g. `banned_word`, "
            "`toxicity`, `link`, `reported`, `scoring_failed`."
        },
    )
    label = ma.fields.String(
        validate=ma.validate.OneOf(LABELS),
        metadata={
            "description": "Score label that min_score/max_score and sort=-score use "
            "(default: the comment's highest label)."
        },
    )
    min_score = ma.fields.Float(
        allow_nan=False,
        validate=ma.validate.Range(min=0, max=1),
        metadata={"description": "Score at least this."},
    )
    max_score = ma.fields.Float(
        allow_nan=False,
        validate=ma.validate.Range(min=0, max=1),
        metadata={"description": "Score at most this."},
    )
    language = ma.fields.String(
        validate=ma.validate.Regexp(r"^[a-z]{2,3}$", error="Expected a language code like fr."),
        metadata={"description": "Language the comment was read as (ISO 639-1 code, e.g. `fr`)."},
    )
    since = DateTimeIn(metadata={"description": "Submitted at or after (ISO 8601)."})
    until = DateTimeIn(metadata={"description": "Submitted before (ISO 8601)."})

    @ma.validates_schema
    def _ranges(self, data: dict[str, Any], **kwargs: Any) -> None:
        low, high = data.get("min_score"), data.get("max_score")
        if low is not None and high is not None and low > high:
            raise ma.ValidationError("Must not be above max_score.", "min_score")
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and since >= until:
            raise ma.ValidationError("Must be before until.", "since")


class QueueArgs(QueueFilter, PageArgs):
    sort = ma.fields.String(
        load_default="created",
        validate=ma.validate.OneOf(SORTS),
        metadata={
            "description": "`created` (oldest first, the default), `-created` (newest "
            "first) or `-score` (highest score of `label`, or of any label, first)."
        },
    )


class ArticleRef(ma.Schema):
    ref = ma.fields.String()
    title = ma.fields.String(allow_none=True)
    url = ma.fields.String(allow_none=True)


class AuthorSummary(ma.Schema):
    id = ma.fields.String()
    name = ma.fields.String(allow_none=True)
    status = ma.fields.String(
        metadata={"description": "active, trusted, premod or banned (expired suspensions: active)."}
    )
    approved_count = ma.fields.Integer()
    rejected_count = ma.fields.Integer()


class QueueItem(ma.Schema):
    id = ma.fields.Integer()
    body = ma.fields.String()
    status = ma.fields.String()
    parent_id = ma.fields.Integer(allow_none=True)
    article = ma.fields.Nested(ArticleRef)
    author = ma.fields.Nested(AuthorSummary)
    scores = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float(), allow_none=True)
    max_score = ma.fields.Float(allow_none=True)
    model = ma.fields.String(allow_none=True)
    language = ma.fields.String(allow_none=True, metadata={"description": "Read as (ISO 639-1)."})
    language_confidence = ma.fields.Float(allow_none=True)
    reasons = ma.fields.List(ma.fields.Dict(), metadata={"description": "Why the policy decided."})
    reports = ma.fields.List(ma.fields.Nested(ReportOut), metadata={"description": "Open reports."})
    created_at = ma.fields.AwareDateTime()
    scored_at = ma.fields.AwareDateTime(allow_none=True)
    decided_at = ma.fields.AwareDateTime(allow_none=True)
    decided_by = ma.fields.String(allow_none=True)


class QueuePage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(QueueItem))
    next_cursor = ma.fields.String(
        allow_none=True,
        metadata={"description": "Pass as `cursor` (same filters); null at the end."},
    )


class CountsArgs(ma.Schema):
    article = ma.fields.String(
        validate=ma.validate.Regexp(REF_RE, error=f"Expected {REF_RULE}."),
        metadata={"description": "Count one article only."},
    )
    by_article = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Also list articles with work waiting, most held first."},
    )
    limit = ma.fields.Integer(
        validate=ma.validate.Range(min=1), metadata={"description": "Articles listed (default 50)."}
    )


class ArticleCounts(Counts):
    article = ma.fields.Nested(ArticleRef)


class CountsOut(ma.Schema):
    site = ma.fields.Nested(Counts, metadata={"description": "The site (or `article`) totals."})
    articles = ma.fields.List(ma.fields.Nested(ArticleCounts))


def conditions(site_id: int, filters: dict[str, Any]) -> list[Any]:
    """SQL conditions for a QueueFilter's fields, scoped to ``site_id``.

    The status is rendered into the SQL (it is one of CommentStatus), so the partial
    indexes over held comments match under generic plans too.
    """
    where = [Comment.site_id == site_id, Comment.status == literal(filters["status"])]
    if "reported" in filters:
        open_report = sa.exists().where(
            Report.comment_id == Comment.id, Report.resolved_at.is_(None)
        )
        where.append(open_report if filters["reported"] else ~open_report)
    if "article" in filters:
        article_id = sa.select(Article.id).where(
            Article.site_id == site_id, Article.ref == filters["article"]
        )
        where.append(Comment.article_id == article_id.correlate(None).scalar_subquery())
    if "author" in filters:
        author_id = sa.select(Author.id).where(
            Author.site_id == site_id, Author.ref == filters["author"]
        )
        where.append(Comment.author_id == author_id.correlate(None).scalar_subquery())
    if "reason" in filters:
        code = filters["reason"].replace("_", "\\_")  # "_" is LIKE's any-character
        where.append(Comment.reason_codes.like(f"% {code} %", escape="\\"))
    if "language" in filters:
        where.append(Comment.language == filters["language"])
    # The sort key (-1 for no score) so the score indexes serve filters too; scores are
    # probabilities, so ">= 0" keeps unscored comments out as a NULL comparison would.
    score = ScoreKey(filters.get("label"))
    if "min_score" in filters:
        where.append(score >= filters["min_score"])
    if "max_score" in filters:
        where.append(sa.and_(score >= 0, score <= filters["max_score"]))
    if "since" in filters:
        where.append(Comment.created_at >= filters["since"])
    if "until" in filters:
        where.append(Comment.created_at < filters["until"])
    return where


def _encode(sort: str, value: Any, row_id: int) -> str:
    value = value.isoformat() if isinstance(value, datetime) else value
    raw = json.dumps([sort, value, row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, sort: str) -> tuple[Any, int]:
    """The keyset bound of a cursor made for ``sort``; 422 naming ``cursor`` otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, row_id = json.loads(raw)
        if cursor_sort != sort or type(row_id) is not int or not 0 < row_id <= ID_MAX:
            raise ValueError(cursor)
        if sort == "-score":
            if type(value) not in (int, float):
                raise ValueError(cursor)
            return float(value), row_id
        when = datetime.fromisoformat(value)
        if when.tzinfo is None:
            raise ValueError(cursor)
        return check_moment(when), row_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        abort(
            422,
            "Invalid cursor: use the next_cursor of a previous page with the same sort.",
            errors={"query": {"cursor": ["Not a valid cursor."]}},
        )
        raise  # unreachable: abort raises


def open_reports(comment_ids: list[int]) -> dict[int, list[Report]]:
    """Unresolved reports of ``comment_ids``, oldest first, by comment id."""
    by_comment: dict[int, list[Report]] = {cid: [] for cid in comment_ids}
    if comment_ids:
        rows = db.session.scalars(
            sa.select(Report)
            .where(Report.comment_id.in_(comment_ids), Report.resolved_at.is_(None))
            .order_by(Report.id)
        )
        for report in rows:
            by_comment[report.comment_id].append(report)
    return by_comment


def render_items(comments: list[Comment]) -> list[dict[str, Any]]:
    """Comments as QueueItems, with their open reports read in one query."""
    reports = open_reports([comment.id for comment in comments])
    now = utcnow()
    items = []
    for comment in comments:
        author = comment.author
        items.append(
            {
                **{name: getattr(comment, name) for name in COMMENT_FIELDS},
                "article": comment.article,
                "author": {
                    "id": author.ref,
                    "name": author.name,
                    "status": status_of(author, now),
                    "approved_count": author.approved_count,
                    "rejected_count": author.rejected_count,
                },
                "reasons": comment.reasons or [],
                "reports": reports[comment.id],
            }
        )
    return items


@blp.route("")
class Queue(MethodView):
    decorators = [require(Role.MODERATOR)]

    @blp.doc(security=SECURITY)
    @blp.arguments(QueueArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, QueuePage)
    def get(self, args: dict):
        """List comments for review: filter, sort, page; each item complete for a dashboard."""
        cfg = current_app.config
        limit = page_size(args.get("limit"), cfg["PAGE_SIZE"], cfg["PAGE_SIZE_MAX"])
        sort = args["sort"]
        if sort == "-score":
            key = (ScoreKey(args.get("label")), Comment.id)
        else:
            key = (Comment.created_at, Comment.id)
        descending = sort.startswith("-")
        query = sa.select(Comment, key[0]).where(*conditions(g.site.id, args))
        if args.get("cursor"):
            bound = _decode(args["cursor"], sort)
            after = sa.tuple_(*key)
            query = query.where(after < bound if descending else after > bound)
        order = [column.desc() for column in key] if descending else list(key)
        rows = db.session.execute(query.order_by(*order).limit(limit + 1)).all()
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last, last_key = page[-1]
            next_cursor = _encode(sort, last_key, last.id)
        return {"items": render_items([comment for comment, _ in page]), "next_cursor": next_cursor}


@blp.route("/counts")
class QueueCounts(MethodView):
    decorators = [require(Role.MODERATOR)]

    @blp.doc(security=SECURITY)
    @blp.arguments(CountsArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, CountsOut)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args: dict):
        """Count held, reported and pending comments, with the oldest pending one's age."""
        cfg = current_app.config
        limit = page_size(args.get("limit"), cfg["PAGE_SIZE"], cfg["PAGE_SIZE_MAX"])
        article_id = None
        if "article" in args:
            article = db.session.scalar(
                sa.select(Article).where(
                    Article.site_id == g.site.id, Article.ref == args["article"]
                )
            )
            if article is None:
                abort(404, f"No article {args['article']!r} on this site.")
            article_id = article.id
        counts = queue_counts(g.site.id, article_id=article_id, by_article=args["by_article"])
        site_counts = counts.pop(None)
        out: dict[str, Any] = {"site": site_counts}
        if args["by_article"]:
            busiest = sorted(counts, key=lambda a: (-counts[a]["held"], -counts[a]["reported"], a))
            busiest = busiest[:limit]
            articles = {
                a.id: a
                for a in db.session.scalars(sa.select(Article).where(Article.id.in_(busiest)))
            }
            out["articles"] = [{"article": articles[a], **counts[a]} for a in busiest]
        return out
