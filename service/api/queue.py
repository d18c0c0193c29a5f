"""The review queue: filtered, sorted, cursor-paged comments with everything a moderator needs."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint

from service.api import cursor
from service.api.common import REF_RE, REF_RULE, PageArgs, page_size
from service.api.schemas import ArticleRef, Counts, QueueFilter, QueueItem
from service.auth import Role, require
from service.errors import abort
from service.extensions import db
from service.models import Article, Comment
from service.moderation.review import conditions, queue_counts, render_items
from service.score_key import ScoreKey

blp = Blueprint(
    "queue", __name__, url_prefix="/v1/queue", description="What moderators review, and how much."
)
SECURITY = [{"bearerAuth": ["moderator"]}]  # the least role allowed (OpenAPI 3.1 roles)
SORTS = ("created", "-created", "-score")


class QueueArgs(QueueFilter, PageArgs):
    sort = ma.fields.String(
        load_default="created",
        validate=ma.validate.OneOf(SORTS),
        metadata={
            "description": "`created` (oldest first, the default), `-created` (newest "
            "first) or `-score` (highest score of `label`, or of any label, first)."
        },
    )


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


def _bound(text: str, sort: str) -> tuple[Any, int]:
    """The keyset bound of a cursor made for ``sort``; 422 naming ``cursor`` otherwise."""
    hint = "use the next_cursor of a previous page with the same sort."
    value = cursor.number if sort == "-score" else cursor.moment
    cursor_sort, bound, row_id = cursor.decode(text, (cursor.text, value, cursor.row_id), hint)
    if cursor_sort != sort:
        cursor.invalid(hint)
    return bound, row_id


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
            bound = _bound(args["cursor"], sort)
            after = sa.tuple_(*key)
            query = query.where(after < bound if descending else after > bound)
        order = [column.desc() for column in key] if descending else list(key)
        rows = db.session.execute(query.order_by(*order).limit(limit + 1)).all()
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last, last_key = page[-1]
            next_cursor = cursor.encode(sort, last_key, last.id)
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
        counts = queue_counts(
            g.site.id, article_id=article_id, by_article=args["by_article"], limit=limit
        )
        site_counts = counts.pop(None)
        out: dict[str, Any] = {"site": site_counts}
        if args["by_article"]:
            busiest = list(counts)  # most held first, then most reported
            articles = {
                a.id: a
                for a in db.session.scalars(sa.select(Article).where(Article.id.in_(busiest)))
            }
            out["articles"] = [{"article": articles[a], **counts[a]} for a in busiest]
        return out
